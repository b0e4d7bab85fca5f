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

// y += a * x over n contiguous elements: the one inner loop of every matrix product here.
template <class T>
inline void axpy(int n, T a, const T* __restrict x, T* __restrict y) {
    for (int j = 0; j < n; ++j) y[j] += a * x[j];
}

// Y[S, N] += X[S, K] * M[K, N], all row-major with signed row strides (a negative ldx or
// ldy walks a sequence backwards). Register-blocked: four rows of Y and two vectors of
// columns stay in registers while K is walked, so each row of M is loaded once per four
// rows of X. Every Y[s, j] is summed over k in order, so results do not depend on S.
#if defined(__GNUC__)
// R rows of Y, NV vectors of VB bytes from column j on, accumulated over all K.
template <class T, int R, int NV, int VB>
inline void gemm_block(int K, const T* const* x, const T* M, std::ptrdiff_t ldm, T* const* y, int j) {
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

// y[0..n) += sum_k x[k] * M[k, 0..n): one row of gemm_acc.
template <class T>
inline void vecmat_acc(int K, int n, const T* x, const T* M, T* y) {
    gemm_acc(1, K, n, x, 0, M, n, y, 0);
}

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
    std::vector<T> zx;  // [T, 4d] W_ih x + b
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

// One worker's scratch memory: O(T * width) per sequence, reused across sequences.
template <class T>
class Runner {
public:
    explicit Runner(const Model<T>& m) : m_(m) {
        base_.resize(m.layers.size());
        alt_.resize(m.layers.size());
        for (std::size_t l = 0; l < m.layers.size(); ++l) {
            base_[l].dirs.resize(m.layers[l].dirs.size());
            alt_[l].dirs.resize(m.layers[l].dirs.size());
        }
        head_in_.resize(m.head.size());
        head_y_.resize(m.head.size());
        for (std::size_t k = 0; k < m.head.size(); ++k) {
            head_in_[k].resize(m.head[k].in);
            head_y_[k].resize(m.head[k].out);
        }
    }

    // Embeds ids[0..T) (zeros at deleted positions) and runs all layers and the head.
    void forward(const std::int64_t* ids, const std::uint8_t* deleted, int len) {
        T_ = len;
        const int e = m_.embedding_dim;
        grow(x0_, std::size_t(len) * e);
        for (int t = 0; t < len; ++t) {
            T* row = x0_.data() + std::size_t(t) * e;
            if (deleted && deleted[t])
                std::fill(row, row + e, T(0));
            else
                std::memcpy(row, m_.embedding.data() + std::size_t(ids[t]) * e, sizeof(T) * e);
        }
        run_layers(base_, 0, len);
        head_forward(base_.back());
    }

    const T* scores() const { return head_y_.back().data(); }

    std::int64_t pick_target(std::int64_t requested) const {
        if (requested >= 0) return requested;
        const T* s = scores();
        return std::max_element(s, s + m_.n_classes()) - s;  // first maximum on ties
    }

    T lrp(std::int64_t target, const LrpParams& p, T* relevance, T* emb_rel);
    void gradient(std::int64_t target, T* grad, T* sa, T* gi);
    void occlusion(std::int64_t target, const std::uint8_t* deleted, T* drop);

private:
    const Model<T>& m_;
    int T_ = 0;
    std::vector<T> x0_;                     // [T, e] first-layer input
    std::vector<LayerState<T>> base_;       // states of the intact (or deleted-as-asked) input
    std::vector<LayerState<T>> alt_;        // scratch for occlusion
    std::vector<std::vector<T>> head_in_;   // input of each dense layer
    std::vector<std::vector<T>> head_y_;    // pre-activation of each dense layer
    std::vector<std::vector<T>> r_;         // backward buffers per layer input, [T, in_l]
    std::vector<T> top_;                    // [T, out_last]: what the head sends to the last layer
    std::vector<T> v1_, v2_, v3_, v4_;      // small vectors of the backward passes
    std::vector<T> steps_, steps2_, s2_;    // per-step rows deferred to one matrix product

    const T* layer_input(const std::vector<LayerState<T>>& st, std::size_t l) const {
        return l == 0 ? x0_.data() : st[l - 1].y.data();
    }

    static int position(int s, int len, std::size_t dir) { return dir == 0 ? s : len - 1 - s; }

    // One LSTM step from the input projection zx = W_ih x + b and the previous state.
    static void step(const LstmDirection<T>& D, const T* zx, const T* h_prev, const T* c_prev,
                     T* z, T* a, T* c, T* tc, T* h) {
        const int d = D.d, n = 4 * d;
        std::memcpy(z, zx, sizeof(T) * n);
        if (h_prev) vecmat_acc(d, n, h_prev, D.W_hh_t.data(), z);
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

    // Runs layers [from, L) of state `st` over len steps; layer `from` reads its input
    // from layer_input(st, from).
    void run_layers(std::vector<LayerState<T>>& st, std::size_t from, int len) {
        for (std::size_t l = from; l < m_.layers.size(); ++l) {
            const auto& layer = m_.layers[l];
            auto& ls = st[l];
            const int out = layer.out();
            grow(ls.y, std::size_t(len) * out);
            const T* x = layer_input(st, l);
            int off = 0;
            for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
                const auto& D = layer.dirs[k];
                auto& ds = ls.dirs[k];
                const std::size_t n = 4 * std::size_t(D.d), d = D.d;
                grow(ds.zx, len * n);
                grow(ds.z, len * n);
                grow(ds.a, len * n);
                grow(ds.c, len * d);
                grow(ds.tc, len * d);
                grow(ds.h, len * d);
                project(D, x, len, k, ds.zx.data());
                for (int s = 0; s < len; ++s) {
                    step(D, ds.zx.data() + s * n, s ? ds.h.data() + (s - 1) * d : nullptr,
                         s ? ds.c.data() + (s - 1) * d : nullptr, ds.z.data() + s * n,
                         ds.a.data() + s * n, ds.c.data() + s * d, ds.tc.data() + s * d,
                         ds.h.data() + s * d);
                    std::memcpy(ls.y.data() + std::size_t(position(s, len, k)) * out + off,
                                ds.h.data() + s * d, sizeof(T) * d);
                }
                off += D.d;
            }
        }
    }

    // Features = each last-layer direction's state after its final step.
    void head_forward(const LayerState<T>& top) {
        T* f = head_in_[0].data();
        const auto& layer = m_.layers.back();
        for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
            const int d = layer.dirs[k].d;
            std::memcpy(f, top.dirs[k].h.data() + std::size_t(T_ - 1) * d, sizeof(T) * d);
            f += d;
        }
        for (std::size_t k = 0; k < m_.head.size(); ++k) {
            const auto& L = m_.head[k];
            T* y = head_y_[k].data();
            std::copy(L.b.begin(), L.b.end(), y);
            const T* a = head_in_[k].data();
            for (int i = 0; i < L.in; ++i) axpy(L.out, a[i], L.W_t.data() + std::size_t(i) * L.out, y);
            if (k + 1 < m_.head.size())
                for (int j = 0; j < L.out; ++j) head_in_[k + 1][j] = std::max(y[j], T(0));
        }
    }

    // Allocates and zeroes the per-layer backward buffers and top_, and returns the
    // feature-level vector the head pass fills (top_ is filled by scatter_features).
    void prepare_backward() {
        const std::size_t L = m_.layers.size();
        r_.resize(L);
        for (std::size_t l = 0; l < L; ++l) {
            const std::size_t n = std::size_t(T_) * m_.layers[l].in();
            grow(r_[l], n);
            std::fill(r_[l].begin(), r_[l].begin() + n, T(0));
        }
        const std::size_t n = std::size_t(T_) * m_.layers.back().out();
        grow(top_, n);
        std::fill(top_.begin(), top_.begin() + n, T(0));
    }

    // Puts a feature-level vector onto the last layer's outputs: forward direction at
    // position T-1, backward direction at position 0.
    void scatter_features(const T* f) {
        const auto& layer = m_.layers.back();
        const int out = layer.out();
        int off = 0;
        for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
            const int d = layer.dirs[k].d;
            const int t = position(T_ - 1, T_, k);
            std::memcpy(top_.data() + std::size_t(t) * out + off, f + off, sizeof(T) * d);
            off += d;
        }
    }

    // Buffer holding what reaches layer l's outputs from above.
    T* from_above(std::size_t l) { return l + 1 == m_.layers.size() ? top_.data() : r_[l + 1].data(); }
};

template <class T>
T Runner<T>::lrp(std::int64_t target, const LrpParams& p, T* relevance, T* emb_rel) {
    const T eps = T(p.eps), bf = T(p.bias_factor);
    prepare_backward();

    // Head: epsilon rule layer by layer, starting from the target score alone.
    std::size_t C = m_.n_classes();
    grow(v1_, C);
    std::fill(v1_.begin(), v1_.begin() + C, T(0));
    v1_[target] = scores()[target];
    for (std::size_t k = m_.head.size(); k-- > 0;) {
        const auto& L = m_.head[k];
        const T* y = head_y_[k].data();
        const T* a = head_in_[k].data();
        grow(v2_, L.out);
        grow(v3_, L.in);
        T S = 0;
        for (int j = 0; j < L.out; ++j) {
            const T sj = sign1(y[j]);
            v2_[j] = v1_[j] / (y[j] + eps * sj);
            S += (L.b[j] + eps * sj) * v2_[j];
        }
        S = bf * S / T(L.in);
        std::fill(v3_.begin(), v3_.begin() + L.in, T(0));
        for (int j = 0; j < L.out; ++j) axpy(L.in, v2_[j], L.W.data() + std::size_t(j) * L.in, v3_.data());
        grow(v1_, L.in);
        for (int i = 0; i < L.in; ++i) v1_[i] = a[i] * v3_[i] + S;  // ReLU passes relevance unchanged
    }
    scatter_features(v1_.data());

    T rest = 0;
    const bool gates = p.rule != Rule::signal_take_all;
    for (std::size_t l = m_.layers.size(); l-- > 0;) {
        const auto& layer = m_.layers[l];
        const auto& ls = base_[l];
        const T* above = from_above(l);
        const T* x = layer_input(base_, l);
        T* rx = r_[l].data();
        const int out = layer.out(), in = layer.in();
        int off = 0;
        for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
            const auto& D = layer.dirs[k];
            const auto& ds = ls.dirs[k];
            const int d = D.d, n = 4 * d;
            grow(v1_, d);  // R(c), carried backwards
            grow(v2_, d);  // R(h_prev), carried backwards
            grow(v3_, n);  // coefficients R(z_k) / stab(z_k) per gate row
            grow(v4_, d);
            grow(steps_, std::size_t(T_) * n);
            grow(steps2_, std::size_t(T_) * in);
            grow(s2_, T_);
            T* rc = v1_.data();
            T* rh = v2_.data();
            std::fill(rc, rc + d, T(0));
            std::fill(rh, rh + d, T(0));
            const int rows = gates ? 3 * d : d;
            const int first = gates ? 0 : 2 * d;
            for (int s = T_ - 1; s >= 0; --s) {
                T* coef = steps_.data() + std::size_t(s) * n;
                const int t = position(s, T_, k);
                const T* a = ds.a.data() + std::size_t(s) * n;
                const T* z = ds.z.data() + std::size_t(s) * n;
                const T* c = ds.c.data() + std::size_t(s) * d;
                const T* c_prev = s ? ds.c.data() + std::size_t(s - 1) * d : nullptr;
                const T* h_prev = s ? ds.h.data() + std::size_t(s - 1) * d : nullptr;
                const T* r_out = above + std::size_t(t) * out + off;
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
                for (int j = 0; j < d; ++j) {
                    const T i = a[j], f = a[d + j], g = a[2 * d + j];
                    const T cp = c_prev ? c_prev[j] : T(0);
                    const T fc = f * cp, ig = i * g;
                    const T q = rc[j] / (c[j] + eps * sign1(c[j]));
                    const T r_fc = fc * q + S, r_ig = ig * q + S;
                    T w_fc = 1, w_ig = 1;  // share of the source (c_prev, g)
                    switch (p.rule) {
                        case Rule::signal_take_all: break;
                        case Rule::half: w_fc = w_ig = T(0.5); break;
                        case Rule::prop:
                            w_fc = cp / (f + cp + eps * sign1(f + cp));
                            w_ig = g / (i + g + eps * sign1(i + g));
                            break;
                        case Rule::abs: {
                            const T nf = std::abs(f) + std::abs(cp), ni = std::abs(i) + std::abs(g);
                            w_fc = nf > T(0) ? std::abs(cp) / nf : T(0.5);
                            w_ig = ni > T(0) ? std::abs(g) / ni : T(0.5);
                            break;
                        }
                    }
                    const T r_cp = w_fc * r_fc, r_g = w_ig * r_ig;
                    rc[j] = r_cp;
                    coef[2 * d + j] = r_g / (z[2 * d + j] + eps * sign1(z[2 * d + j]));
                    if (gates) {
                        coef[j] = (r_ig - r_g) / (z[j] + eps * sign1(z[j]));
                        coef[d + j] = (r_fc - r_cp) / (z[d + j] + eps * sign1(z[d + j]));
                    }
                }
                // Gate pre-activations -> x_t and h_prev, epsilon rule, N = in + d. The x_t
                // part does not feed later steps: it is done for all steps at once below.
                T S2 = 0;
                for (int r = first; r < first + rows; ++r)
                    S2 += (D.b[r] + eps * sign1(z[r])) * coef[r];
                S2 = bf * S2 / T(in + d);
                s2_[s] = S2;
                T* tmp = v4_.data();
                std::fill(tmp, tmp + d, T(0));
                if (h_prev) vecmat_acc(rows, d, coef + first, D.W_hh.data() + std::size_t(first) * d, tmp);
                for (int j = 0; j < d; ++j) rh[j] = (h_prev ? h_prev[j] * tmp[j] : T(0)) + S2;
            }
            T* wx = steps2_.data();  // [T, in]: W_ih^T coef per step
            std::fill(wx, wx + std::size_t(T_) * in, T(0));
            gemm_acc(T_, rows, in, steps_.data() + first, n, D.W_ih.data() + std::size_t(first) * in,
                     in, wx, in);
            for (int s = 0; s < T_; ++s) {
                const int t = position(s, T_, k);
                const T* xt = x + std::size_t(t) * in;
                const T* ws = wx + std::size_t(s) * in;
                T* rxt = rx + std::size_t(t) * in;
                for (int i = 0; i < in; ++i) rxt[i] += xt[i] * ws[i] + s2_[s];
            }
            for (int j = 0; j < d; ++j) rest += rh[j] + rc[j];
            off += d;
        }
    }

    const int e = m_.embedding_dim;
    for (int t = 0; t < T_; ++t) {
        const T* row = r_[0].data() + std::size_t(t) * e;
        T sum = 0;
        for (int i = 0; i < e; ++i) sum += row[i];
        relevance[t] = sum;
    }
    if (emb_rel) std::memcpy(emb_rel, r_[0].data(), sizeof(T) * std::size_t(T_) * e);
    return rest;
}

template <class T>
void Runner<T>::gradient(std::int64_t target, T* grad, T* sa, T* gi) {
    prepare_backward();
    // Head: d s_target / d features.
    std::size_t C = m_.n_classes();
    grow(v1_, C);
    std::fill(v1_.begin(), v1_.begin() + C, T(0));
    v1_[target] = T(1);
    for (std::size_t k = m_.head.size(); k-- > 0;) {
        const auto& L = m_.head[k];
        grow(v3_, L.in);
        std::fill(v3_.begin(), v3_.begin() + L.in, T(0));
        for (int j = 0; j < L.out; ++j) axpy(L.in, v1_[j], L.W.data() + std::size_t(j) * L.in, v3_.data());
        grow(v1_, L.in);
        if (k > 0) {
            const T* y_below = head_y_[k - 1].data();
            for (int i = 0; i < L.in; ++i) v1_[i] = y_below[i] > T(0) ? v3_[i] : T(0);
        } else {
            std::copy(v3_.begin(), v3_.begin() + L.in, v1_.begin());
        }
    }
    scatter_features(v1_.data());

    for (std::size_t l = m_.layers.size(); l-- > 0;) {
        const auto& layer = m_.layers[l];
        const auto& ls = base_[l];
        const T* above = from_above(l);
        T* gx = r_[l].data();
        const int out = layer.out(), in = layer.in();
        int off = 0;
        for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
            const auto& D = layer.dirs[k];
            const auto& ds = ls.dirs[k];
            const int d = D.d, n = 4 * d;
            grow(v1_, d);  // dc
            grow(v2_, d);  // dh carried from the next step
            grow(steps_, std::size_t(T_) * n);  // dz of every step
            T* dc = v1_.data();
            T* dh = v2_.data();
            std::fill(dc, dc + d, T(0));
            std::fill(dh, dh + d, T(0));
            for (int s = T_ - 1; s >= 0; --s) {
                const int t = position(s, T_, k);
                T* dz = steps_.data() + std::size_t(s) * n;
                const T* a = ds.a.data() + std::size_t(s) * n;
                const T* tc = ds.tc.data() + std::size_t(s) * d;
                const T* c_prev = s ? ds.c.data() + std::size_t(s - 1) * d : nullptr;
                const T* g_out = above + std::size_t(t) * out + off;
                for (int j = 0; j < d; ++j) {
                    const T i = a[j], f = a[d + j], g = a[2 * d + j], o = a[3 * d + j];
                    const T dhj = g_out[j] + dh[j];
                    const T dcj = dc[j] + dhj * o * (T(1) - tc[j] * tc[j]);
                    dz[j] = dcj * g * i * (T(1) - i);
                    dz[d + j] = c_prev ? dcj * c_prev[j] * f * (T(1) - f) : T(0);
                    dz[2 * d + j] = dcj * i * (T(1) - g * g);
                    dz[3 * d + j] = dhj * tc[j] * o * (T(1) - o);
                    dc[j] = dcj * f;
                }
                std::fill(dh, dh + d, T(0));
                if (s) vecmat_acc(n, d, dz, D.W_hh.data(), dh);
            }
            // d/dx_t for all steps at once (it does not feed the recurrence).
            const std::ptrdiff_t ldy = k == 0 ? in : -std::ptrdiff_t(in);
            gemm_acc(T_, n, in, steps_.data(), n, D.W_ih.data(), in,
                     gx + std::size_t(position(0, T_, k)) * in, ldy);
            off += d;
        }
    }

    const int e = m_.embedding_dim;
    for (int t = 0; t < T_; ++t) {
        const T* row = r_[0].data() + std::size_t(t) * e;
        const T* xt = x0_.data() + std::size_t(t) * e;
        T s2 = 0, sx = 0;
        for (int i = 0; i < e; ++i) {
            s2 += row[i] * row[i];
            sx += row[i] * xt[i];
        }
        sa[t] = s2;
        gi[t] = sx;
    }
    if (grad) std::memcpy(grad, r_[0].data(), sizeof(T) * std::size_t(T_) * e);
}

// Zeroing x_t changes the first layer only from step t on (forward direction) or down to
// t (backward direction): those steps are recomputed from the stored states, and the
// input projections of all other steps are reused. Deeper layers see a changed input
// everywhere and are rerun.
template <class T>
void Runner<T>::occlusion(std::int64_t target, const std::uint8_t* deleted, T* drop) {
    const T base = scores()[target];
    const auto& layer0 = m_.layers[0];
    const bool deep = m_.layers.size() > 1;
    auto& alt0 = alt_[0];
    if (deep) grow(alt0.y, std::size_t(T_) * layer0.out());
    for (std::size_t k = 0; k < layer0.dirs.size(); ++k) {
        const auto& D = layer0.dirs[k];
        auto& as = alt0.dirs[k];
        const std::size_t n = 4 * std::size_t(D.d), d = D.d;
        grow(as.z, n);
        grow(as.a, n);
        grow(as.tc, d);
        grow(as.c, std::size_t(T_) * d);
        grow(as.h, std::size_t(T_) * d);
    }
    for (int t = 0; t < T_; ++t) {
        if (deleted && deleted[t]) {
            drop[t] = T(0);
            continue;
        }
        if (deep) std::copy(base_[0].y.begin(), base_[0].y.begin() + std::size_t(T_) * layer0.out(), alt0.y.begin());
        int off = 0;
        for (std::size_t k = 0; k < layer0.dirs.size(); ++k) {
            const auto& D = layer0.dirs[k];
            const auto& bs = base_[0].dirs[k];
            auto& as = alt0.dirs[k];
            const std::size_t n = 4 * std::size_t(D.d), d = D.d;
            const int s0 = k == 0 ? t : T_ - 1 - t;
            for (int s = s0; s < T_; ++s) {
                const T* h_prev = s == 0 ? nullptr : (s == s0 ? bs.h.data() : as.h.data()) + (s - 1) * d;
                const T* c_prev = s == 0 ? nullptr : (s == s0 ? bs.c.data() : as.c.data()) + (s - 1) * d;
                step(D, s == s0 ? D.b.data() : bs.zx.data() + s * n, h_prev, c_prev, as.z.data(),
                     as.a.data(), as.c.data() + s * d, as.tc.data(), as.h.data() + s * d);
                if (deep)
                    std::memcpy(alt0.y.data() + std::size_t(position(s, T_, k)) * layer0.out() + off,
                                as.h.data() + s * d, sizeof(T) * d);
            }
            off += D.d;
        }
        if (deep) {
            run_layers(alt_, 1, T_);
            head_forward(alt_.back());
        } else {
            // head_forward reads the final states from the direction states it is given.
            LayerState<T>& top = alt_[0];
            head_forward(top);
        }
        drop[t] = base - scores()[target];
    }
    head_forward(base_.back());  // leave the runner describing the input as given
}

template <class T, class F>
void parallel_for(std::int64_t n, int threads, const Model<T>& model, F&& fn) {
    const int workers = int(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, n)));
    std::atomic<std::int64_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&]() {
        try {
            Runner<T> runner(model);
            for (std::int64_t k; (k = next.fetch_add(1)) < n;) fn(runner, k);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            next.store(n);
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

template <class T>
void run_forward(Runner<T>& r, const Batch& b, std::int64_t k) {
    const std::int64_t start = b.offsets[k];
    r.forward(b.ids + start, b.deleted ? b.deleted + start : nullptr, int(b.offsets[k + 1] - start));
}

template <class T>
void write_scores(const Runner<T>& r, const Model<T>& m, std::int64_t k, T* scores) {
    std::copy(r.scores(), r.scores() + m.n_classes(), scores + k * m.n_classes());
}

}  // namespace

template <class T>
void forward(const Model<T>& model, const Batch& batch, int threads, T* scores) {
    parallel_for(batch.n, threads, model, [&](Runner<T>& r, std::int64_t k) {
        run_forward(r, batch, k);
        write_scores(r, model, k, scores);
    });
}

template <class T>
void lrp(const Model<T>& model, const Batch& batch, const std::int64_t* targets_in,
         const LrpParams& params, int threads, T* scores, std::int64_t* targets_out,
         T* relevance, T* embedding_relevance, T* rest) {
    const int e = model.embedding_dim;
    parallel_for(batch.n, threads, model, [&](Runner<T>& r, std::int64_t k) {
        run_forward(r, batch, k);
        write_scores(r, model, k, scores);
        const std::int64_t target = r.pick_target(targets_in ? targets_in[k] : -1);
        targets_out[k] = target;
        const std::int64_t start = batch.offsets[k];
        rest[k] = r.lrp(target, params, relevance + start,
                        embedding_relevance ? embedding_relevance + start * e : nullptr);
    });
}

template <class T>
void gradient(const Model<T>& model, const Batch& batch, const std::int64_t* targets_in,
              int threads, T* scores, std::int64_t* targets_out, T* grad, T* sa, T* gi) {
    const int e = model.embedding_dim;
    parallel_for(batch.n, threads, model, [&](Runner<T>& r, std::int64_t k) {
        run_forward(r, batch, k);
        write_scores(r, model, k, scores);
        const std::int64_t target = r.pick_target(targets_in ? targets_in[k] : -1);
        targets_out[k] = target;
        const std::int64_t start = batch.offsets[k];
        r.gradient(target, grad ? grad + start * e : nullptr, sa + start, gi + start);
    });
}

template <class T>
void occlusion(const Model<T>& model, const Batch& batch, const std::int64_t* targets_in,
               int threads, T* scores, std::int64_t* targets_out, T* drop) {
    parallel_for(batch.n, threads, model, [&](Runner<T>& r, std::int64_t k) {
        run_forward(r, batch, k);
        write_scores(r, model, k, scores);
        const std::int64_t target = r.pick_target(targets_in ? targets_in[k] : -1);
        targets_out[k] = target;
        const std::int64_t start = batch.offsets[k];
        r.occlusion(target, batch.deleted ? batch.deleted + start : nullptr, drop + start);
    });
}
#define TEXTLRP_INSTANTIATE(T)                                                                   \
    template void forward<T>(const Model<T>&, const Batch&, int, T*);                            \
    template void lrp<T>(const Model<T>&, const Batch&, const std::int64_t*, const LrpParams&,   \
                         int, T*, std::int64_t*, T*, T*, T*);                                    \
    template void gradient<T>(const Model<T>&, const Batch&, const std::int64_t*, int, T*,       \
                              std::int64_t*, T*, T*, T*);                                        \
    template void occlusion<T>(const Model<T>&, const Batch&, const std::int64_t*, int, T*,      \
                               std::int64_t*, T*);

TEXTLRP_INSTANTIATE(double)
TEXTLRP_INSTANTIATE(float)

}  // namespace TEXTLRP_ISA
}  // namespace textlrp
