// Forward pass, LRP (epsilon rule, product rules) and gradients for (bi)LSTM text
// classifiers. The equations are those of LRP_FOR_LSTM.md; tests/reference.py is a
// plain-numpy twin that these kernels must match to 1e-10 in float64.
//
// This file is compiled once per instruction set (TEXTLRP_ISA = generic, avx2, avx512),
// each copy in its own namespace; dispatch.cpp picks one at run time, so the installed
// module runs on any CPU of its architecture and uses the widest vectors it has.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "textlrp/kernels.hpp"

namespace textlrp {
namespace TEXTLRP_ISA {

namespace {

// Y[S, N] += X[S, K] * M[K, N], all row-major with signed row strides (a negative ldx or
// ldy walks a sequence backwards). Register-blocked: up to eight rows of Y and two vectors
// of columns stay in registers while K is walked, so each row of M is loaded once per
// block of rows. Every Y[s, j] is summed over k in order, so results do not depend on S.
#if defined(__GNUC__)
// R rows of Y, NV vectors of VB bytes from column j on, accumulated over all K.
// Fused multiply-adds are safe here (the build turns them off elsewhere): these explicit
// vector blocks always cover the same columns, whatever the alignment of the buffers.
#if defined(__clang__)
#define TEXTLRP_FMA_FUNCTION
#define TEXTLRP_FMA_BODY _Pragma("clang fp contract(fast)")
#else
#define TEXTLRP_FMA_FUNCTION __attribute__((optimize("fp-contract=fast")))
#define TEXTLRP_FMA_BODY
#endif
template <class T, int R, int NV, int VB>
TEXTLRP_FMA_FUNCTION inline void gemm_block(int K, const T* const* x, const T* M,
                                            std::ptrdiff_t ldm, T* const* y, int j) {
    TEXTLRP_FMA_BODY
    typedef T V __attribute__((vector_size(VB), aligned(sizeof(T)), may_alias));
    constexpr int W = VB / int(sizeof(T));
    V acc[R][NV];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) acc[r][v] = *(const V*)(y[r] + j + v * W);
    const T* m = M + j;
    for (int k = 0; k < K; ++k, m += ldm) {
        V mv[NV];
        for (int v = 0; v < NV; ++v) mv[v] = *(const V*)(m + v * W);
        for (int r = 0; r < R; ++r) {
            const T xr = x[r][k];
            for (int v = 0; v < NV; ++v) acc[r][v] += xr * mv[v];
        }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) *(V*)(y[r] + j + v * W) = acc[r][v];
}

// All columns of R rows: wide blocks first, then narrower vectors, then scalars.
template <class T, int R, int NV>
inline void gemm_rows(int K, int N, const T* const* x, const T* M, std::ptrdiff_t ldm, T* const* y) {
    constexpr int W64 = 64 / int(sizeof(T));
    int j = 0;
    for (; j + NV * W64 <= N; j += NV * W64) gemm_block<T, R, NV, 64>(K, x, M, ldm, y, j);
    for (; j + W64 <= N; j += W64) gemm_block<T, R, 1, 64>(K, x, M, ldm, y, j);
    if (j + 32 / int(sizeof(T)) <= N) {
        gemm_block<T, R, 1, 32>(K, x, M, ldm, y, j);
        j += 32 / int(sizeof(T));
    }
    if (j + 16 / int(sizeof(T)) <= N) {
        gemm_block<T, R, 1, 16>(K, x, M, ldm, y, j);
        j += 16 / int(sizeof(T));
    }
    for (; j < N; ++j)
        for (int r = 0; r < R; ++r) {
            T acc = y[r][j];
            for (int k = 0; k < K; ++k) acc += x[r][k] * M[k * ldm + j];
            y[r][j] = acc;
        }
}

template <class T>
void gemm_acc(int S, int K, int N, const T* X, std::ptrdiff_t ldx, const T* M, std::ptrdiff_t ldm,
              T* Y, std::ptrdiff_t ldy) {
    int s = 0;
#if defined(__AVX512F__)  // 32 vector registers: eight rows of accumulators fit
    for (; s + 8 <= S; s += 8) {
        const T* x[8];
        T* y[8];
        for (int r = 0; r < 8; ++r) x[r] = X + (s + r) * ldx, y[r] = Y + (s + r) * ldy;
        gemm_rows<T, 8, 2>(K, N, x, M, ldm, y);
    }
#endif
    for (; s + 4 <= S; s += 4) {
        const T* x[4] = {X + s * ldx, X + (s + 1) * ldx, X + (s + 2) * ldx, X + (s + 3) * ldx};
        T* y[4] = {Y + s * ldy, Y + (s + 1) * ldy, Y + (s + 2) * ldy, Y + (s + 3) * ldy};
        gemm_rows<T, 4, 2>(K, N, x, M, ldm, y);
    }
    for (; s < S; ++s) {
        const T* x[1] = {X + s * ldx};
        T* y[1] = {Y + s * ldy};
        gemm_rows<T, 1, 4>(K, N, x, M, ldm, y);
    }
}
#else
template <class T>
void gemm_acc(int S, int K, int N, const T* X, std::ptrdiff_t ldx, const T* M, std::ptrdiff_t ldm,
              T* Y, std::ptrdiff_t ldy) {
    for (int s = 0; s < S; ++s)
        for (int j = 0; j < N; ++j) {
            T acc = Y[s * ldy + j];
            for (int k = 0; k < K; ++k) acc += X[s * ldx + k] * M[k * ldm + j];
            Y[s * ldy + j] = acc;
        }
}
#endif


template <class T>
inline T sign1(T y) {  // sign with sign(0) = +1, as in the epsilon rule
    return y >= T(0) ? T(1) : T(-1);
}

// exp(x[j]) in place, written without libm calls or branches so the loops over a step's
// gates vectorise (libm's exp/tanh took half of the run time). Cody-Waite reduction
// x = n ln2 + r, |r| <= ln2/2, and a Taylor polynomial: below 2 ulp in double, 2 ulp in float.
inline void exp_inplace(double* __restrict x, int n) {
    for (int j = 0; j < n; ++j) {
        const double v = std::min(std::max(x[j], -708.0), 709.0);
        const double magic = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
        const double t = v * 1.4426950408889634 + magic;
        const double k = t - magic;
        const double r = (v - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
        double p = 1.0 / 6227020800.0;  // 1/13!
        p = p * r + 1.0 / 479001600.0;
        p = p * r + 1.0 / 39916800.0;
        p = p * r + 1.0 / 3628800.0;
        p = p * r + 1.0 / 362880.0;
        p = p * r + 1.0 / 40320.0;
        p = p * r + 1.0 / 5040.0;
        p = p * r + 1.0 / 720.0;
        p = p * r + 1.0 / 120.0;
        p = p * r + 1.0 / 24.0;
        p = p * r + 1.0 / 6.0;
        p = p * r + 0.5;
        p = p * r + 1.0;
        p = p * r + 1.0;
        std::int64_t bits;
        std::memcpy(&bits, &t, sizeof bits);
        const std::int64_t e = (bits - std::int64_t(0x4338000000000000) + 1023) << 52;
        double scale;
        std::memcpy(&scale, &e, sizeof scale);
        x[j] = p * scale;
    }
}

inline void exp_inplace(float* __restrict x, int n) {
    for (int j = 0; j < n; ++j) {
        const float v = std::min(std::max(x[j], -87.0f), 88.0f);
        const float magic = 12582912.0f;  // 1.5 * 2^23
        const float t = v * 1.44269504f + magic;
        const float k = t - magic;
        const float r = (v - k * 0.693145752f) - k * 1.42860677e-06f;
        float p = 1.0f / 40320.0f;
        p = p * r + 1.0f / 5040.0f;
        p = p * r + 1.0f / 720.0f;
        p = p * r + 1.0f / 120.0f;
        p = p * r + 1.0f / 24.0f;
        p = p * r + 1.0f / 6.0f;
        p = p * r + 0.5f;
        p = p * r + 1.0f;
        p = p * r + 1.0f;
        std::int32_t bits;
        std::memcpy(&bits, &t, sizeof bits);
        const std::int32_t e = (bits - std::int32_t(0x4B400000) + 127) << 23;
        float scale;
        std::memcpy(&scale, &e, sizeof scale);
        x[j] = p * scale;
    }
}

// a = sigmoid(z) in place over n values.
template <class T>
inline void sigmoid_inplace(const T* __restrict z, T* __restrict a, int n) {
    for (int j = 0; j < n; ++j) a[j] = -z[j];
    exp_inplace(a, n);
    for (int j = 0; j < n; ++j) a[j] = T(1) / (T(1) + a[j]);
}

// a = tanh(z) = 1 - 2 / (exp(2z) + 1); absolute error ~1 ulp of 1 near 0, which is what
// the products and sums downstream see.
template <class T>
inline void tanh_inplace(const T* __restrict z, T* __restrict a, int n) {
    for (int j = 0; j < n; ++j) a[j] = T(2) * z[j];
    exp_inplace(a, n);
    for (int j = 0; j < n; ++j) a[j] = T(1) - T(2) / (a[j] + T(1));
}

}  // namespace

namespace {

// Per-direction state of one sequence, rows in processing order s (the backward
// direction processes positions T-1 .. 0).
template <class T>
struct DirState {
    std::vector<T> zx;  // [T, 4d] W_ih x + b (first layer, kept for occlusion only)
    std::vector<T> z;   // [T, 4d] full pre-activations
    std::vector<T> a;   // [T, 4d] gate activations i, f, g, o
    std::vector<T> c;   // [T, d]
    std::vector<T> tc;  // [T, d] tanh(c)
    std::vector<T> h;   // [T, d]
};

template <class T>
struct LayerState {
    std::vector<T> y;  // [T, out] layer outputs by position (directions concatenated)
    std::vector<DirState<T>> dirs;
};

template <class T>
void grow(std::vector<T>& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
}

// Y[b] += X[b] * M for S rows given by pointers (rows of different sequences).
template <class T>
void gemm_ptr(int S, int K, int N, const T* const* X, const T* M, std::ptrdiff_t ldm, T* const* Y) {
    int s = 0;
#if defined(__GNUC__)
#if defined(__AVX512F__)
    for (; s + 8 <= S; s += 8) gemm_rows<T, 8, 2>(K, N, X + s, M, ldm, Y + s);
#endif
    for (; s + 4 <= S; s += 4) gemm_rows<T, 4, 2>(K, N, X + s, M, ldm, Y + s);
#endif
    for (; s < S; ++s) gemm_acc(1, K, N, X[s], 0, M, ldm, Y[s], 0);
}

// One sequence's workspace: O(T * width), reused from one sequence to the next.
template <class T>
struct Seq {
    int len = 0;
    std::vector<T> x0;                    // [T, e] first-layer input
    std::vector<LayerState<T>> base;      // states of the input as given
    std::vector<LayerState<T>> alt;       // scratch for occlusion
    std::vector<std::vector<T>> head_in;  // input of each dense layer
    std::vector<std::vector<T>> head_y;   // pre-activation of each dense layer
    std::vector<std::vector<T>> r;        // backward buffers per layer input, [T, in_l]
    std::vector<T> top;                   // [T, out_last]: what the head sends to the last layer
    std::vector<T> carry_c, carry_h, tmp;  // per-direction carries of the backward passes
    std::vector<T> steps, wx, s2;         // per-step rows deferred to one matrix product
    T rest = 0;

    const T* scores() const { return head_y.back().data(); }
};

// Which state set of a Seq a pass reads and writes.
enum class States { base, alt };

// Runs groups of sequences of similar length in lock step, so that each step's recurrent
// matrix product serves up to eight sequences per pass over the weights. The arithmetic
// done for one sequence does not depend on which others share its group.
template <class T>
class Group {
public:
    static constexpr int capacity = 8;

    explicit Group(const Model<T>& m) : m_(m), seqs_(capacity) {
        int widest = 0;
        for (const auto& layer : m.layers)
            for (const auto& dir : layer.dirs) widest = std::max(widest, dir.d);
        zeros_.assign(widest, T(0));
        for (auto& q : seqs_) {
            q.base.resize(m.layers.size());
            q.alt.resize(m.layers.size());
            for (std::size_t l = 0; l < m.layers.size(); ++l) {
                q.base[l].dirs.resize(m.layers[l].dirs.size());
                q.alt[l].dirs.resize(m.layers[l].dirs.size());
            }
            q.head_in.resize(m.head.size());
            q.head_y.resize(m.head.size());
            for (std::size_t k = 0; k < m.head.size(); ++k) {
                q.head_in[k].resize(m.head[k].in);
                q.head_y[k].resize(m.head[k].out);
            }
        }
    }

    Seq<T>& seq(int b) { return seqs_[b]; }

    // Embeds ids[0..len) into q, zeros at deleted positions.
    void embed(Seq<T>& q, const std::int64_t* ids, const std::uint8_t* deleted, int len) const {
        q.len = len;
        const int e = m_.embedding_dim;
        grow(q.x0, std::size_t(len) * e);
        for (int t = 0; t < len; ++t) {
            T* row = q.x0.data() + std::size_t(t) * e;
            if (deleted && deleted[t])
                std::fill(row, row + e, T(0));
            else
                std::memcpy(row, m_.embedding.data() + std::size_t(ids[t]) * e, sizeof(T) * e);
        }
    }

    // All layers and the head; g sorted by decreasing length.
    void forward(Seq<T>* const* g, int G, bool keep_input_projection) {
        keep_zx_ = keep_input_projection;
        run_layers(g, G, States::base, 0);
        for (int b = 0; b < G; ++b) head_forward(*g[b], States::base);
    }

    std::int64_t pick_target(const Seq<T>& q, std::int64_t requested) const {
        if (requested >= 0) return requested;
        const T* s = q.scores();
        return std::max_element(s, s + m_.n_classes()) - s;  // first maximum on ties
    }

    void lrp(Seq<T>* const* g, int G, const std::int64_t* targets, const LrpParams& p);
    void gradient(Seq<T>* const* g, int G, const std::int64_t* targets);
    void occlusion(Seq<T>& q, std::int64_t target, const std::uint8_t* deleted, T* drop);

private:
    const Model<T>& m_;
    std::vector<Seq<T>> seqs_;
    const T* xs_[capacity];
    T* ys_[capacity];
    std::vector<T> zeros_;  // stands for c_0 = 0
    bool keep_zx_ = false;   // keep the first layer's input projection apart (occlusion reuses it)

    static std::vector<LayerState<T>>& states(Seq<T>& q, States which) {
        return which == States::alt ? q.alt : q.base;
    }

    static const T* layer_input(Seq<T>& q, States which, std::size_t l) {
        return l == 0 ? q.x0.data() : states(q, which)[l - 1].y.data();
    }

    static int position(int s, int len, std::size_t dir) { return dir == 0 ? s : len - 1 - s; }

    // Number of sequences of g (sorted by decreasing length) still running at step s.
    static int active(Seq<T>* const* g, int G, int s) {
        int n = 0;
        while (n < G && g[n]->len > s) ++n;
        return n;
    }

    // Gates, cell and output of one step, from the full pre-activation z.
    static void activate(int d, const T* z, const T* c_prev, T* a, T* c, T* tc, T* h) {
        sigmoid_inplace(z, a, 2 * d);
        tanh_inplace(z + 2 * d, a + 2 * d, d);
        sigmoid_inplace(z + 3 * d, a + 3 * d, d);
        for (int j = 0; j < d; ++j) {
            const T fc = c_prev ? a[d + j] * c_prev[j] : T(0);
            c[j] = fc + a[j] * a[2 * d + j];
        }
        tanh_inplace(c, tc, d);
        for (int j = 0; j < d; ++j) h[j] = a[3 * d + j] * tc[j];
    }

    // Input projection of all steps at once: one matrix product over the sequence, read
    // backwards for the backward direction.
    static void project(const LstmDirection<T>& D, const T* x, int len, std::size_t dir, T* zx) {
        const int n = 4 * D.d, in = D.in;
        for (int s = 0; s < len; ++s) std::memcpy(zx + std::size_t(s) * n, D.b.data(), sizeof(T) * n);
        const T* first = x + std::size_t(position(0, len, dir)) * in;
        const std::ptrdiff_t ldx = dir == 0 ? in : -std::ptrdiff_t(in);
        gemm_acc(len, in, n, first, ldx, D.W_ih_t.data(), n, zx, n);
    }

    bool keep_zx(States which, std::size_t l) const { return keep_zx_ && which == States::base && l == 0; }

    // Runs layers [from, L) of the chosen states of every sequence of g.
    void run_layers(Seq<T>* const* g, int G, States which, std::size_t from) {
        for (std::size_t l = from; l < m_.layers.size(); ++l) {
            const auto& layer = m_.layers[l];
            const int out = layer.out();
            for (int b = 0; b < G; ++b) {
                Seq<T>& q = *g[b];
                const std::size_t len = q.len;
                auto& ls = states(q, which)[l];
                grow(ls.y, len * out);
                for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
                    const auto& D = layer.dirs[k];
                    auto& ds = ls.dirs[k];
                    const std::size_t n = 4 * std::size_t(D.d), d = D.d;
                    grow(ds.z, len * n);
                    grow(ds.a, len * n);
                    grow(ds.c, len * d);
                    grow(ds.tc, len * d);
                    grow(ds.h, len * d);
                    if (keep_zx(which, l)) {
                        grow(ds.zx, len * n);
                        project(D, layer_input(q, which, l), q.len, k, ds.zx.data());
                    } else {
                        project(D, layer_input(q, which, l), q.len, k, ds.z.data());
                    }
                }
            }
            int off = 0;
            for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
                const auto& D = layer.dirs[k];
                const std::size_t n = 4 * std::size_t(D.d), d = D.d;
                for (int s = 0; s < g[0]->len; ++s) {
                    const int na = active(g, G, s);
                    for (int b = 0; b < na; ++b) {
                        auto& ds = states(*g[b], which)[l].dirs[k];
                        if (keep_zx(which, l))
                            std::memcpy(ds.z.data() + s * n, ds.zx.data() + s * n, sizeof(T) * n);
                        xs_[b] = ds.h.data() + (s - 1) * d;
                        ys_[b] = ds.z.data() + s * n;
                    }
                    if (s > 0) gemm_ptr(na, D.d, int(n), xs_, D.W_hh_t.data(), n, ys_);
                    for (int b = 0; b < na; ++b) {
                        Seq<T>& q = *g[b];
                        auto& ls = states(q, which)[l];
                        auto& ds = ls.dirs[k];
                        activate(D.d, ds.z.data() + s * n, s ? ds.c.data() + (s - 1) * d : nullptr,
                                 ds.a.data() + s * n, ds.c.data() + s * d, ds.tc.data() + s * d,
                                 ds.h.data() + s * d);
                        std::memcpy(ls.y.data() + std::size_t(position(s, q.len, k)) * out + off,
                                    ds.h.data() + s * d, sizeof(T) * d);
                    }
                }
                off += D.d;
            }
        }
    }

    // Features = each last-layer direction's state after its final step.
    void head_forward(Seq<T>& q, States which) {
        T* f = q.head_in[0].data();
        const auto& layer = m_.layers.back();
        const auto& top = states(q, which).back();
        for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
            const int d = layer.dirs[k].d;
            std::memcpy(f, top.dirs[k].h.data() + std::size_t(q.len - 1) * d, sizeof(T) * d);
            f += d;
        }
        for (std::size_t k = 0; k < m_.head.size(); ++k) {
            const auto& L = m_.head[k];
            T* y = q.head_y[k].data();
            std::copy(L.b.begin(), L.b.end(), y);
            gemm_acc(1, L.in, L.out, q.head_in[k].data(), 0, L.W_t.data(), L.out, y, 0);
            if (k + 1 < m_.head.size())
                for (int j = 0; j < L.out; ++j) q.head_in[k + 1][j] = std::max(y[j], T(0));
        }
    }

    // Zeroes the backward buffers of q.
    void prepare_backward(Seq<T>& q) {
        const std::size_t L = m_.layers.size();
        q.r.resize(L);
        for (std::size_t l = 0; l < L; ++l) {
            const std::size_t n = std::size_t(q.len) * m_.layers[l].in();
            grow(q.r[l], n);
            std::fill(q.r[l].begin(), q.r[l].begin() + n, T(0));
        }
        const std::size_t n = std::size_t(q.len) * m_.layers.back().out();
        grow(q.top, n);
        std::fill(q.top.begin(), q.top.begin() + n, T(0));
        q.rest = 0;
    }

    // Puts a feature-level vector onto the last layer's outputs: forward direction at
    // position T-1, backward direction at position 0.
    void scatter_features(Seq<T>& q, const T* f) {
        const auto& layer = m_.layers.back();
        const int out = layer.out();
        int off = 0;
        for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
            const int d = layer.dirs[k].d;
            const int t = position(q.len - 1, q.len, k);
            std::memcpy(q.top.data() + std::size_t(t) * out + off, f + off, sizeof(T) * d);
            off += d;
        }
    }

    // Buffer holding what reaches layer l's outputs from above.
    T* from_above(Seq<T>& q, std::size_t l) {
        return l + 1 == m_.layers.size() ? q.top.data() : q.r[l + 1].data();
    }

    void head_lrp(Seq<T>& q, std::int64_t target, T eps, T bf);
    void head_gradient(Seq<T>& q, std::int64_t target);
};

template <class T>
void Group<T>::head_lrp(Seq<T>& q, std::int64_t target, T eps, T bf) {
    // Epsilon rule layer by layer, starting from the target score alone.
    std::vector<T>& rel = q.carry_c;
    std::vector<T>& coef = q.carry_h;
    std::vector<T>& below = q.tmp;
    const std::size_t C = m_.n_classes();
    grow(rel, C);
    std::fill(rel.begin(), rel.begin() + C, T(0));
    rel[target] = q.scores()[target];
    for (std::size_t k = m_.head.size(); k-- > 0;) {
        const auto& L = m_.head[k];
        const T* y = q.head_y[k].data();
        const T* a = q.head_in[k].data();
        grow(coef, L.out);
        grow(below, L.in);
        T S = 0;
        for (int j = 0; j < L.out; ++j) {
            const T sj = sign1(y[j]);
            coef[j] = rel[j] / (y[j] + eps * sj);
            S += (L.b[j] + eps * sj) * coef[j];
        }
        S = bf * S / T(L.in);
        std::fill(below.begin(), below.begin() + L.in, T(0));
        gemm_acc(1, L.out, L.in, coef.data(), 0, L.W.data(), L.in, below.data(), 0);
        grow(rel, L.in);
        for (int i = 0; i < L.in; ++i) rel[i] = a[i] * below[i] + S;  // ReLU passes relevance unchanged
    }
    scatter_features(q, rel.data());
}

template <class T>
void Group<T>::lrp(Seq<T>* const* g, int G, const std::int64_t* targets, const LrpParams& p) {
    const T eps = T(p.eps), bf = T(p.bias_factor);
    for (int b = 0; b < G; ++b) {
        prepare_backward(*g[b]);
        head_lrp(*g[b], targets[b], eps, bf);
    }
    const bool gates = p.rule != Rule::signal_take_all;
    for (std::size_t l = m_.layers.size(); l-- > 0;) {
        const auto& layer = m_.layers[l];
        const int out = layer.out(), in = layer.in();
        int off = 0;
        for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
            const auto& D = layer.dirs[k];
            const int d = D.d, n = 4 * d;
            const int rows = gates ? 3 * d : d;  // gate rows that receive relevance
            const int first = gates ? 0 : 2 * d;
            for (int b = 0; b < G; ++b) {
                Seq<T>& q = *g[b];
                grow(q.carry_c, d);  // R(c), carried backwards
                grow(q.carry_h, d);  // R(h_prev), carried backwards
                grow(q.tmp, d);
                grow(q.steps, std::size_t(q.len) * n);  // R(z_k) / stab(z_k) per step and gate row
                grow(q.wx, std::size_t(q.len) * in);
                grow(q.s2, q.len);
                std::fill(q.carry_c.begin(), q.carry_c.begin() + d, T(0));
                std::fill(q.carry_h.begin(), q.carry_h.begin() + d, T(0));
            }
            for (int s = g[0]->len - 1; s >= 0; --s) {
                const int na = active(g, G, s);
                for (int b = 0; b < na; ++b) {
                    Seq<T>& q = *g[b];
                    const auto& ds = q.base[l].dirs[k];
                    T* rc = q.carry_c.data();
                    const T* rh = q.carry_h.data();
                    T* coef = q.steps.data() + std::size_t(s) * n;
                    const int t = position(s, q.len, k);
                    const T* a = ds.a.data() + std::size_t(s) * n;
                    const T* z = ds.z.data() + std::size_t(s) * n;
                    const T* c = ds.c.data() + std::size_t(s) * d;
                    const T* c_prev = s ? ds.c.data() + std::size_t(s - 1) * d : nullptr;
                    const T* r_out = from_above(q, l) + std::size_t(t) * out + off;
                    // h = o * tanh(c): all of R(h) goes to c.
                    for (int j = 0; j < d; ++j) rc[j] += r_out[j] + rh[j];
                    // c = f * c_prev + i * g: epsilon rule, identity weights, N = 2d.
                    T S = 0;
                    for (int j = 0; j < d; ++j) {
                        const T sj = sign1(c[j]);
                        S += eps * sj / (c[j] + eps * sj) * rc[j];
                    }
                    S = bf * S / T(2 * d);
                    std::fill(coef, coef + n, T(0));
                    const T* cp = c_prev ? c_prev : zeros_.data();
                    // Split R(c) between f * c_prev and i * g; separate loops per rule so
                    // each one vectorises.
                    T* r_fc = q.tmp.data();
                    T* r_ig = coef + 3 * d;  // the o rows stay zero: used as scratch here
                    for (int j = 0; j < d; ++j) {
                        const T qj = rc[j] / (c[j] + eps * sign1(c[j]));
                        r_fc[j] = a[d + j] * cp[j] * qj + S;
                        r_ig[j] = a[j] * a[2 * d + j] * qj + S;
                    }
                    T* w_fc = coef;  // share of the source (c_prev, g); gate rows reused as scratch
                    T* w_ig = coef + d;
                    switch (p.rule) {
                        case Rule::signal_take_all:
                            for (int j = 0; j < d; ++j) w_fc[j] = w_ig[j] = T(1);
                            break;
                        case Rule::half:
                            for (int j = 0; j < d; ++j) w_fc[j] = w_ig[j] = T(0.5);
                            break;
                        case Rule::prop:
                            for (int j = 0; j < d; ++j) {
                                const T f = a[d + j], i = a[j], gg = a[2 * d + j];
                                w_fc[j] = cp[j] / (f + cp[j] + eps * sign1(f + cp[j]));
                                w_ig[j] = gg / (i + gg + eps * sign1(i + gg));
                            }
                            break;
                        case Rule::abs:
                            for (int j = 0; j < d; ++j) {
                                const T nf = std::abs(a[d + j]) + std::abs(cp[j]);
                                const T ni = std::abs(a[j]) + std::abs(a[2 * d + j]);
                                w_fc[j] = nf > T(0) ? std::abs(cp[j]) / nf : T(0.5);
                                w_ig[j] = ni > T(0) ? std::abs(a[2 * d + j]) / ni : T(0.5);
                            }
                            break;
                    }
                    for (int j = 0; j < d; ++j) {
                        const T r_cp = w_fc[j] * r_fc[j], r_g = w_ig[j] * r_ig[j];
                        const T r_zf = r_fc[j] - r_cp, r_zi = r_ig[j] - r_g;
                        rc[j] = r_cp;
                        coef[2 * d + j] = r_g / (z[2 * d + j] + eps * sign1(z[2 * d + j]));
                        coef[j] = gates ? r_zi / (z[j] + eps * sign1(z[j])) : T(0);
                        coef[d + j] = gates ? r_zf / (z[d + j] + eps * sign1(z[d + j])) : T(0);
                    }
                    std::fill(coef + 3 * d, coef + n, T(0));
                    // Gate pre-activations -> x_t and h_prev, epsilon rule, N = in + d. The x_t
                    // part does not feed later steps: it is done for all steps at once below.
                    T S2 = 0;
                    for (int r = first; r < first + rows; ++r)
                        S2 += (D.b[r] + eps * sign1(z[r])) * coef[r];
                    q.s2[s] = bf * S2 / T(in + d);
                    std::fill(q.tmp.begin(), q.tmp.begin() + d, T(0));
                    xs_[b] = coef + first;
                    ys_[b] = q.tmp.data();
                }
                if (s > 0) gemm_ptr(na, rows, d, xs_, D.W_hh.data() + std::size_t(first) * d, d, ys_);
                for (int b = 0; b < na; ++b) {
                    Seq<T>& q = *g[b];
                    const T* h_prev = s ? q.base[l].dirs[k].h.data() + std::size_t(s - 1) * d : nullptr;
                    T* rh = q.carry_h.data();
                    const T S2 = q.s2[s];
                    for (int j = 0; j < d; ++j) rh[j] = (h_prev ? h_prev[j] * q.tmp[j] : T(0)) + S2;
                }
            }
            for (int b = 0; b < G; ++b) {
                Seq<T>& q = *g[b];
                T* wx = q.wx.data();  // [T, in]: W_ih^T coef per step
                std::fill(wx, wx + std::size_t(q.len) * in, T(0));
                gemm_acc(q.len, rows, in, q.steps.data() + first, n,
                         D.W_ih.data() + std::size_t(first) * in, in, wx, in);
                const T* x = layer_input(q, States::base, l);
                T* rx = q.r[l].data();
                for (int s = 0; s < q.len; ++s) {
                    const int t = position(s, q.len, k);
                    const T* xt = x + std::size_t(t) * in;
                    const T* ws = wx + std::size_t(s) * in;
                    T* rxt = rx + std::size_t(t) * in;
                    for (int i = 0; i < in; ++i) rxt[i] += xt[i] * ws[i] + q.s2[s];
                }
                for (int j = 0; j < d; ++j) q.rest += q.carry_h[j] + q.carry_c[j];
            }
            off += d;
        }
    }
}

template <class T>
void Group<T>::head_gradient(Seq<T>& q, std::int64_t target) {
    std::vector<T>& grad = q.carry_c;
    std::vector<T>& below = q.tmp;
    const std::size_t C = m_.n_classes();
    grow(grad, C);
    std::fill(grad.begin(), grad.begin() + C, T(0));
    grad[target] = T(1);
    for (std::size_t k = m_.head.size(); k-- > 0;) {
        const auto& L = m_.head[k];
        grow(below, L.in);
        std::fill(below.begin(), below.begin() + L.in, T(0));
        gemm_acc(1, L.out, L.in, grad.data(), 0, L.W.data(), L.in, below.data(), 0);
        grow(grad, L.in);
        const T* y_below = k > 0 ? q.head_y[k - 1].data() : nullptr;
        for (int i = 0; i < L.in; ++i) grad[i] = (!y_below || y_below[i] > T(0)) ? below[i] : T(0);
    }
    scatter_features(q, grad.data());
}

template <class T>
void Group<T>::gradient(Seq<T>* const* g, int G, const std::int64_t* targets) {
    for (int b = 0; b < G; ++b) {
        prepare_backward(*g[b]);
        head_gradient(*g[b], targets[b]);
    }
    for (std::size_t l = m_.layers.size(); l-- > 0;) {
        const auto& layer = m_.layers[l];
        const int out = layer.out(), in = layer.in();
        int off = 0;
        for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
            const auto& D = layer.dirs[k];
            const int d = D.d, n = 4 * d;
            for (int b = 0; b < G; ++b) {
                Seq<T>& q = *g[b];
                grow(q.carry_c, d);  // dc
                grow(q.carry_h, d);  // dh carried from the next step
                grow(q.steps, std::size_t(q.len) * n);  // dz of every step
                std::fill(q.carry_c.begin(), q.carry_c.begin() + d, T(0));
                std::fill(q.carry_h.begin(), q.carry_h.begin() + d, T(0));
            }
            for (int s = g[0]->len - 1; s >= 0; --s) {
                const int na = active(g, G, s);
                for (int b = 0; b < na; ++b) {
                    Seq<T>& q = *g[b];
                    const auto& ds = q.base[l].dirs[k];
                    T* dc = q.carry_c.data();
                    T* dh = q.carry_h.data();
                    T* dz = q.steps.data() + std::size_t(s) * n;
                    const int t = position(s, q.len, k);
                    const T* a = ds.a.data() + std::size_t(s) * n;
                    const T* tc = ds.tc.data() + std::size_t(s) * d;
                    const T* c_prev = s ? ds.c.data() + std::size_t(s - 1) * d : nullptr;
                    const T* g_out = from_above(q, l) + std::size_t(t) * out + off;
                    const T* cp = c_prev ? c_prev : zeros_.data();
                    for (int j = 0; j < d; ++j) {
                        const T i = a[j], f = a[d + j], gg = a[2 * d + j], o = a[3 * d + j];
                        const T dhj = g_out[j] + dh[j];
                        const T dcj = dc[j] + dhj * o * (T(1) - tc[j] * tc[j]);
                        dz[j] = dcj * gg * i * (T(1) - i);
                        dz[d + j] = dcj * cp[j] * f * (T(1) - f);
                        dz[2 * d + j] = dcj * i * (T(1) - gg * gg);
                        dz[3 * d + j] = dhj * tc[j] * o * (T(1) - o);
                        dc[j] = dcj * f;
                    }
                    std::fill(dh, dh + d, T(0));
                    xs_[b] = dz;
                    ys_[b] = dh;
                }
                if (s > 0) gemm_ptr(na, n, d, xs_, D.W_hh.data(), d, ys_);
            }
            // d/dx_t for all steps at once (it does not feed the recurrence).
            for (int b = 0; b < G; ++b) {
                Seq<T>& q = *g[b];
                const std::ptrdiff_t ldy = k == 0 ? in : -std::ptrdiff_t(in);
                gemm_acc(q.len, n, in, q.steps.data(), n, D.W_ih.data(), in,
                         q.r[l].data() + std::size_t(position(0, q.len, k)) * in, ldy);
            }
            off += d;
        }
    }
}

// Zeroing x_t changes the first layer only from step t on (forward direction) or down to
// t (backward direction): those steps are recomputed from the stored states, and the
// input projections of all other steps are reused. Deeper layers see a changed input
// everywhere and are rerun.
template <class T>
void Group<T>::occlusion(Seq<T>& q, std::int64_t target, const std::uint8_t* deleted, T* drop) {
    const T base = q.scores()[target];
    const int len = q.len;
    const auto& layer0 = m_.layers[0];
    const bool deep = m_.layers.size() > 1;
    auto& alt0 = q.alt[0];
    if (deep) grow(alt0.y, std::size_t(len) * layer0.out());
    for (std::size_t k = 0; k < layer0.dirs.size(); ++k) {
        const auto& D = layer0.dirs[k];
        auto& as = alt0.dirs[k];
        const std::size_t n = 4 * std::size_t(D.d), d = D.d;
        grow(as.z, n);
        grow(as.a, n);
        grow(as.tc, d);
        grow(as.c, std::size_t(len) * d);
        grow(as.h, std::size_t(len) * d);
    }
    Seq<T>* self[1] = {&q};
    for (int t = 0; t < len; ++t) {
        if (deleted && deleted[t]) {
            drop[t] = T(0);
            continue;
        }
        if (deep) std::copy(q.base[0].y.begin(), q.base[0].y.begin() + std::size_t(len) * layer0.out(), alt0.y.begin());
        int off = 0;
        for (std::size_t k = 0; k < layer0.dirs.size(); ++k) {
            const auto& D = layer0.dirs[k];
            const auto& bs = q.base[0].dirs[k];
            auto& as = alt0.dirs[k];
            const std::size_t n = 4 * std::size_t(D.d), d = D.d;
            const int s0 = k == 0 ? t : len - 1 - t;
            for (int s = s0; s < len; ++s) {
                const T* h_prev = s == 0 ? nullptr : (s == s0 ? bs.h.data() : as.h.data()) + (s - 1) * d;
                const T* c_prev = s == 0 ? nullptr : (s == s0 ? bs.c.data() : as.c.data()) + (s - 1) * d;
                T* z = as.z.data();
                std::memcpy(z, s == s0 ? D.b.data() : bs.zx.data() + s * n, sizeof(T) * n);
                if (h_prev) gemm_acc(1, D.d, int(n), h_prev, 0, D.W_hh_t.data(), n, z, 0);
                activate(D.d, z, c_prev, as.a.data(), as.c.data() + s * d, as.tc.data(),
                         as.h.data() + s * d);
                if (deep)
                    std::memcpy(alt0.y.data() + std::size_t(position(s, len, k)) * layer0.out() + off,
                                as.h.data() + s * d, sizeof(T) * d);
            }
            off += D.d;
        }
        if (deep) run_layers(self, 1, States::alt, 1);
        head_forward(q, States::alt);  // reads the final states of the alternative run
        drop[t] = base - q.scores()[target];
    }
    head_forward(q, States::base);  // leave q describing the input as given
}

// Calls fn(group, seqs, indices, count) for groups of up to Group::capacity sequences of
// similar length (the batch sorted by decreasing length), spread over `threads` workers.
template <class T, class F>
void parallel_groups(const Model<T>& model, const Batch& batch, int threads, F&& fn,
                     bool keep_input_projection = false) {
    const std::int64_t n = batch.n;
    std::vector<std::int64_t> order(n);
    for (std::int64_t k = 0; k < n; ++k) order[k] = k;
    auto len = [&](std::int64_t k) { return batch.offsets[k + 1] - batch.offsets[k]; };
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return len(a) > len(b); });
    const int cap = Group<T>::capacity;
    const std::int64_t n_groups = (n + cap - 1) / cap;
    const int workers = int(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, n_groups)));
    std::atomic<std::int64_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&]() {
        try {
            Group<T> group(model);
            Seq<T>* seqs[Group<T>::capacity];
            for (std::int64_t gi; (gi = next.fetch_add(1)) < n_groups;) {
                const std::int64_t start = gi * cap;
                const int count = int(std::min<std::int64_t>(cap, n - start));
                const std::int64_t* idx = order.data() + start;
                for (int b = 0; b < count; ++b) {
                    const std::int64_t k = idx[b], s = batch.offsets[k];
                    seqs[b] = &group.seq(b);
                    group.embed(*seqs[b], batch.ids + s, batch.deleted ? batch.deleted + s : nullptr,
                                int(len(k)));
                }
                group.forward(seqs, count, keep_input_projection);
                fn(group, seqs, idx, count);
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            next.store(n_groups);
        }
    };
    if (workers == 1) {
        work();
    } else {
        std::vector<std::thread> pool;
        pool.reserve(workers - 1);
        for (int w = 1; w < workers; ++w) pool.emplace_back(work);
        work();
        for (auto& th : pool) th.join();
    }
    if (error) std::rethrow_exception(error);
}

// Scores of each sequence of the group, and the class each one is explained for.
template <class T>
void write_scores(Group<T>& group, Seq<T>* const* seqs, const std::int64_t* idx, int count,
                  const Model<T>& m, const std::int64_t* targets_in, T* scores,
                  std::int64_t* targets_out, std::int64_t* picked) {
    const int C = m.n_classes();
    for (int b = 0; b < count; ++b) {
        const std::int64_t k = idx[b];
        std::copy(seqs[b]->scores(), seqs[b]->scores() + C, scores + k * C);
        if (picked) {
            picked[b] = group.pick_target(*seqs[b], targets_in ? targets_in[k] : -1);
            targets_out[k] = picked[b];
        }
    }
}

}  // namespace

template <class T>
void forward(const Model<T>& model, const Batch& batch, int threads, T* scores) {
    parallel_groups(model, batch, threads,
                    [&](Group<T>& group, Seq<T>* const* seqs, const std::int64_t* idx, int count) {
                        write_scores(group, seqs, idx, count, model, nullptr, scores, nullptr, nullptr);
                    });
}

template <class T>
void lrp(const Model<T>& model, const Batch& batch, const std::int64_t* targets_in,
         const LrpParams& params, int threads, T* scores, std::int64_t* targets_out,
         T* relevance, T* embedding_relevance, T* rest) {
    const int e = model.embedding_dim;
    parallel_groups(model, batch, threads,
                    [&](Group<T>& group, Seq<T>* const* seqs, const std::int64_t* idx, int count) {
        std::int64_t picked[Group<T>::capacity];
        write_scores(group, seqs, idx, count, model, targets_in, scores, targets_out, picked);
        group.lrp(seqs, count, picked, params);
        for (int b = 0; b < count; ++b) {
            const Seq<T>& q = *seqs[b];
            const std::int64_t start = batch.offsets[idx[b]];
            rest[idx[b]] = q.rest;
            const T* r0 = q.r[0].data();
            for (int t = 0; t < q.len; ++t) {
                T sum = 0;
                for (int i = 0; i < e; ++i) sum += r0[std::size_t(t) * e + i];
                relevance[start + t] = sum;
            }
            if (embedding_relevance)
                std::memcpy(embedding_relevance + start * e, r0, sizeof(T) * std::size_t(q.len) * e);
        }
    });
}

template <class T>
void gradient(const Model<T>& model, const Batch& batch, const std::int64_t* targets_in,
              int threads, T* scores, std::int64_t* targets_out, T* grad, T* sa, T* gi) {
    const int e = model.embedding_dim;
    parallel_groups(model, batch, threads,
                    [&](Group<T>& group, Seq<T>* const* seqs, const std::int64_t* idx, int count) {
        std::int64_t picked[Group<T>::capacity];
        write_scores(group, seqs, idx, count, model, targets_in, scores, targets_out, picked);
        group.gradient(seqs, count, picked);
        for (int b = 0; b < count; ++b) {
            const Seq<T>& q = *seqs[b];
            const std::int64_t start = batch.offsets[idx[b]];
            const T* r0 = q.r[0].data();
            for (int t = 0; t < q.len; ++t) {
                const T* row = r0 + std::size_t(t) * e;
                const T* xt = q.x0.data() + std::size_t(t) * e;
                T s2 = 0, sx = 0;
                for (int i = 0; i < e; ++i) {
                    s2 += row[i] * row[i];
                    sx += row[i] * xt[i];
                }
                sa[start + t] = s2;
                gi[start + t] = sx;
            }
            if (grad) std::memcpy(grad + start * e, r0, sizeof(T) * std::size_t(q.len) * e);
        }
    });
}

template <class T>
void occlusion(const Model<T>& model, const Batch& batch, const std::int64_t* targets_in,
               int threads, T* scores, std::int64_t* targets_out, T* drop) {
    parallel_groups(model, batch, threads,
                    [&](Group<T>& group, Seq<T>* const* seqs, const std::int64_t* idx, int count) {
        std::int64_t picked[Group<T>::capacity];
        write_scores(group, seqs, idx, count, model, targets_in, scores, targets_out, picked);
        for (int b = 0; b < count; ++b) {
            const std::int64_t start = batch.offsets[idx[b]];
            group.occlusion(*seqs[b], picked[b], batch.deleted ? batch.deleted + start : nullptr,
                            drop + start);
        }
    }, true);
}

TEXTLRP_INSTANTIATE_KERNELS(double)
TEXTLRP_INSTANTIATE_KERNELS(float)

}  // namespace TEXTLRP_ISA
}  // namespace textlrp
