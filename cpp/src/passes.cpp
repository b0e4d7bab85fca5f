// The passes: forward, LRP, gradient and occlusion over groups of sequences. The time loops
// are written once here; what happens inside one step is the cell's (cells/lstm.hpp,
// cells/gru.hpp), how a product's relevance is split is the rule's (rules.hpp), and what
// the head reads is the pooling's (pooling.hpp). docs/algorithm.md is the algorithm of
// record; tests/reference.py is a plain-numpy twin that these passes must match to 1e-10
// in float64.
//
// This file is compiled once per instruction set (TEXTLRP_ISA = generic, avx2, avx512),
// each copy in its own namespace; dispatch.cpp picks one at run time, so the installed
// module runs on any CPU of its architecture and uses the widest vectors it has.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cells/gru.hpp"
#include "cells/lstm.hpp"
#include "detail/gemm.hpp"
#include "detail/mathfn.hpp"
#include "detail/parallel.hpp"
#include "detail/state.hpp"
#include "pooling.hpp"
#include "rules.hpp"
#include "textlrp/kernels.hpp"

namespace textlrp {
namespace TEXTLRP_ISA {

namespace {

// Calls fn(CellPolicy{}) for the cell of a layer.
template <class T, class F>
void with_cell(Cell cell, F&& fn) {
    if (cell == Cell::gru) return fn(Gru<T>{});
    return fn(Lstm<T>{});
}

// Runs groups of sequences of similar length in lock step, so that each step's recurrent
// matrix product serves up to eight sequences per pass over the weights. The arithmetic
// done for one sequence does not depend on which others share its group.
template <class T>
class Group {
public:
    static constexpr int capacity = 8;
    using SeqPtr = Seq<T>*;

    explicit Group(const Model<T>& m) : m_(m), seqs_(capacity), variants_(capacity) {
        int inputs = m.input_size;
        for (const auto& layer : m.layers) inputs = std::max(inputs, layer.out());
        zero_row_.assign(inputs, T(0));
        for (auto& q : seqs_) init(q);
        for (auto& q : variants_) init(q);
    }

    Seq<T>& seq(int b) { return seqs_[b]; }

    // The first-layer input of sequence k: embedding rows or input vectors, zeros at deleted
    // positions.
    void load(Seq<T>& q, const Batch<T>& batch, std::int64_t k) const {
        const std::int64_t start = batch.offsets[k];
        const int len = int(batch.offsets[k + 1] - start);
        const int e = m_.input_size;
        q.len = len;
        grow(q.x0, std::size_t(len) * e);
        for (int t = 0; t < len; ++t) {
            T* row = q.x0.data() + std::size_t(t) * e;
            if (batch.deleted && batch.deleted[start + t])
                std::fill(row, row + e, T(0));
            else if (m_.continuous())
                std::memcpy(row, batch.x + std::size_t(start + t) * e, sizeof(T) * e);
            else
                std::memcpy(row, m_.embedding.data() + std::size_t(batch.ids[start + t]) * e, sizeof(T) * e);
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
    std::vector<Seq<T>> variants_;  // occlusion: the occluded copies of one sequence in lock step
    const T* xs_[capacity];
    T* ys_[capacity];
    bool keep_zx_ = false;  // keep the first layer's input projection apart (occlusion reuses it)

    // Shapes the per-sequence buffers that do not depend on the length.
    void init(Seq<T>& q) const {
        int widest = 0;
        for (const auto& layer : m_.layers)
            for (const auto& dir : layer.dirs) widest = std::max(widest, dir.d);
        q.base.resize(m_.layers.size());
        q.alt.resize(m_.layers.size());
        for (std::size_t l = 0; l < m_.layers.size(); ++l) {
            q.base[l].dirs.resize(m_.layers[l].dirs.size());
            q.alt[l].dirs.resize(m_.layers[l].dirs.size());
        }
        q.head_in.resize(m_.head.size());
        q.head_y.resize(m_.head.size());
        for (std::size_t k = 0; k < m_.head.size(); ++k) {
            q.head_in[k].resize(m_.head[k].in);
            q.head_y[k].resize(m_.head[k].out);
        }
        q.zeros.assign(widest, T(0));
        q.work.resize(std::max(5 * widest, 2 * m_.n_features()));
        q.tmp.resize(widest);
        q.carry_h.resize(widest);
        q.carry_c.resize(widest);
    }

    static const T* layer_input(Seq<T>& q, States which, std::size_t l) {
        return l == 0 ? q.x0.data() : q.states(which)[l - 1].y.data();
    }

    static int position(int s, int len, std::size_t dir) { return dir == 0 ? s : len - 1 - s; }

    // Number of sequences of g (sorted by decreasing length) still running at step s.
    static int active(Seq<T>* const* g, int G, int s) {
        int n = 0;
        while (n < G && g[n]->len > s) ++n;
        return n;
    }

    bool keep_zx(States which, std::size_t l) const { return keep_zx_ && which == States::base && l == 0; }

    // Row pointers of the group's products over all steps of all sequences.
    std::vector<const T*> xrows_;
    std::vector<T*> yrows_;
    std::vector<T> zero_row_;  // bias of the products that start from zero

    void clear_rows() {
        xrows_.clear();
        yrows_.clear();
    }
    // Rows of sequence q for one direction: X row of step s at position(s) of x (ldx per
    // position), Y row of step s at y + s * ldy.
    void add_rows(const T* x, std::size_t ldx, T* y, std::size_t ldy, int len, std::size_t dir) {
        for (int s = 0; s < len; ++s) {
            xrows_.push_back(x + std::size_t(position(s, len, dir)) * ldx);
            yrows_.push_back(y + std::size_t(s) * ldy);
        }
    }
    // The same with the position on the Y side (X rows in step order).
    void add_rows_by_position(const T* x, std::size_t ldx, T* y, std::size_t ldy, int len,
                              std::size_t dir) {
        for (int s = 0; s < len; ++s) {
            xrows_.push_back(x + std::size_t(s) * ldx);
            yrows_.push_back(y + std::size_t(position(s, len, dir)) * ldy);
        }
    }
    // Y rows (+)= X rows * M over all rows gathered.
    void multiply_rows(int K, int N, const T* M, std::ptrdiff_t ldm, const T* bias) {
        gemm_ptr(int(xrows_.size()), K, N, xrows_.data(), M, ldm, yrows_.data(), bias);
    }

    // Runs layers [from, L) of the chosen states of every sequence of g.
    void run_layers(Seq<T>* const* g, int G, States which, std::size_t from) {
        for (std::size_t l = from; l < m_.layers.size(); ++l) {
            with_cell<T>(m_.layers[l].cell, [&](auto cell) {
                using C = decltype(cell);
                const auto& layer = m_.layers[l];
                const bool keep = keep_zx(which, l);
                for (int b = 0; b < G; ++b) {
                    Seq<T>& q = *g[b];
                    grow(q.states(which)[l].y, std::size_t(q.len) * layer.out());
                }
                // Input projections of all steps of the whole group: one matrix product per
                // direction (the backward direction reads its input backwards).
                for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
                    const auto& D = layer.dirs[k];
                    clear_rows();
                    for (int b = 0; b < G; ++b) {
                        Seq<T>& q = *g[b];
                        auto& ds = q.states(which)[l].dirs[k];
                        C::reserve(ds, q.len, D.d, keep);
                        add_rows(layer_input(q, which, l), D.in, C::projection(ds, keep),
                                 std::size_t(C::G) * D.d, q.len, k);
                    }
                    multiply_rows(D.in, C::G * D.d, D.W_ih_t.data(), C::G * D.d, D.b.data());
                }
                int off = 0;
                for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
                    run_direction<C>(g, G, which, l, k, off, keep);
                    off += layer.dirs[k].d;
                }
            });
        }
    }

    template <class C>
    void run_direction(Seq<T>* const* g, int G, States which, std::size_t l, std::size_t k, int off,
                       bool keep) {
        const auto& layer = m_.layers[l];
        const auto& D = layer.dirs[k];
        const int out = layer.out();
        const std::size_t n = C::G * std::size_t(D.d), d = D.d;
        for (int s = 0; s < g[0]->len; ++s) {
            const int na = active(g, G, s);
            for (int b = 0; b < na; ++b) {
                auto& ds = g[b]->states(which)[l].dirs[k];
                xs_[b] = ds.h.data() + (s - 1) * d;
                ys_[b] = C::recurrent_row(D, ds, s, C::projection(ds, keep) + s * n, s > 0);
            }
            if (s > 0) gemm_ptr(na, D.d, int(n), xs_, D.W_hh_t.data(), n, ys_, C::recurrent_bias(D));
            for (int b = 0; b < na; ++b) {
                Seq<T>& q = *g[b];
                auto& ls = q.states(which)[l];
                auto& ds = ls.dirs[k];
                C::activate(D, ds, s, C::projection(ds, keep) + s * n);
                std::memcpy(ls.y.data() + std::size_t(position(s, q.len, k)) * out + off,
                            ds.h.data() + s * d, sizeof(T) * d);
            }
        }
    }

    // Pooling over the last layer's outputs, then the dense head.
    void head_forward(Seq<T>& q, States which) {
        Pool<T>::forward(m_, q, q.states(which).back().y.data(), q.len, q.head_in[0].data());
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

    // Buffer holding what reaches layer l's outputs from above.
    T* from_above(Seq<T>& q, std::size_t l) {
        return l + 1 == m_.layers.size() ? q.top.data() : q.r[l + 1].data();
    }

    // Per-direction buffers of a backward pass over layer l.
    void prepare_direction(Seq<T>& q, int G, int d, int in) {
        grow(q.steps, std::size_t(q.len) * G * d);
        grow(q.wx, std::size_t(q.len) * in);
        grow(q.s2, q.len);
        std::fill(q.carry_h.begin(), q.carry_h.begin() + d, T(0));
    }

    static T sum(const T* a, std::size_t n) { return vsum(a, n); }

    // First of the three totals (outputs, initial state, inputs) of layer l, direction k.
    int stage(std::size_t l, std::size_t k) const {
        int n = 2 + int(m_.head.size());
        for (std::size_t u = m_.layers.size(); --u > l;) n += 3 * int(m_.layers[u].dirs.size());
        return n + 3 * int(k);
    }

    void head_lrp(Seq<T>& q, std::int64_t target, T eps, T bf);
    void head_gradient(Seq<T>& q, std::int64_t target);
    template <class C, class R>
    void lrp_direction(Seq<T>* const* g, int G, std::size_t l, std::size_t k, int off, T eps, T bf);
    template <class C>
    void grad_direction(Seq<T>* const* g, int G, std::size_t l, std::size_t k, int off);
    template <class C>
    void occlude_direction(Seq<T>& q, Seq<T>* const* block, const int* where, int nv,
                           std::size_t k, int off);
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
    q.totals.assign(m_.stage_count(), T(0));
    T* total = q.totals.data();
    *total++ = rel[target];
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
        *total++ = sum(rel.data(), L.in);
    }
    Pool<T>::lrp(m_, q, q.base.back().y.data(), q.len, q.head_in[0].data(), rel.data(), eps, bf,
                 q.top.data());
    *total = sum(q.top.data(), std::size_t(q.len) * m_.layers.back().out());
}

template <class T>
void Group<T>::lrp(Seq<T>* const* g, int G, const std::int64_t* targets, const LrpParams& p) {
    const T eps = T(p.eps), bf = T(p.bias_factor);
    for (int b = 0; b < G; ++b) {
        prepare_backward(*g[b]);
        head_lrp(*g[b], targets[b], eps, bf);
    }
    for (std::size_t l = m_.layers.size(); l-- > 0;) {
        const auto& layer = m_.layers[l];
        int off = 0;
        for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
            if (layer.cell == Cell::gru)  // GRU layers take signal-take-all only (checked on entry)
                lrp_direction<Gru<T>, SignalTakeAll>(g, G, l, k, off, eps, bf);
            else
                with_rule(p.rule, [&](auto rule) {
                    lrp_direction<Lstm<T>, decltype(rule)>(g, G, l, k, off, eps, bf);
                });
            off += layer.dirs[k].d;
        }
    }
}

template <class T>
template <class C, class R>
void Group<T>::lrp_direction(Seq<T>* const* g, int G, std::size_t l, std::size_t k, int off, T eps,
                             T bf) {
    const auto& layer = m_.layers[l];
    const auto& D = layer.dirs[k];
    const int out = layer.out(), in = layer.in(), d = D.d, n = C::G * d;
    const int st = stage(l, k);
    for (int b = 0; b < G; ++b) {
        Seq<T>& q = *g[b];
        prepare_direction(q, C::G, d, in);
        C::lrp_begin(q, d);
        const T* above = from_above(q, l);
        T out_total = 0;
        for (int t = 0; t < q.len; ++t) out_total += sum(above + std::size_t(t) * out + off, d);
        q.totals[st] = out_total;
    }
    const int hf = C::template h_first<R>(d), hr = C::template h_rows<R>(d);
    for (int s = g[0]->len - 1; s >= 0; --s) {
        const int na = active(g, G, s);
        for (int b = 0; b < na; ++b) {
            Seq<T>& q = *g[b];
            const T* r_out = from_above(q, l) + std::size_t(position(s, q.len, k)) * out + off;
            xs_[b] = C::template lrp_step<R>(D, q.base[l].dirs[k], s, r_out, q, eps, bf, in);
            std::fill(q.tmp.begin(), q.tmp.begin() + d, T(0));
            ys_[b] = q.tmp.data();
        }
        // The h side now (it feeds the next step back); the x side for all steps below.
        if (s > 0) gemm_ptr(na, hr, d, xs_, D.W_hh.data() + std::size_t(hf) * d, d, ys_);
        for (int b = 0; b < na; ++b) C::lrp_finish(D, g[b]->base[l].dirs[k], s, *g[b]);
    }
    const int first = C::template first_row<R>(d), rows = C::template row_count<R>(d);
    // wx [T, in] = W_ih^T coef per step, for all steps of the group in one product
    clear_rows();
    for (int b = 0; b < G; ++b) {
        Seq<T>& q = *g[b];
        add_rows_by_position(q.steps.data() + first, n, q.wx.data(), in, q.len, 0);
    }
    multiply_rows(rows, in, D.W_ih.data() + std::size_t(first) * in, in, zero_row_.data());
    for (int b = 0; b < G; ++b) {
        Seq<T>& q = *g[b];
        T* wx = q.wx.data();
        const T* x = layer_input(q, States::base, l);
        T* rx = q.r[l].data();
        T in_total = 0;
#if defined(TEXTLRP_SIMD)
        using S = Simd<T>;
        auto acc = S::set1(T(0));
#endif
        for (int s = 0; s < q.len; ++s) {
            const int t = position(s, q.len, k);
            const T* xt = x + std::size_t(t) * in;
            const T* ws = wx + std::size_t(s) * in;
            T* rxt = rx + std::size_t(t) * in;
            const T s2 = q.s2[s];
#if defined(TEXTLRP_SIMD)
            // R(x_t) += x_t * (W_ih^T coef) + S2, and its total, a vector at a time
            const auto vs2 = S::set1(s2);
            for (int i = 0; i < in; i += S::W) {
                const bool part = i + S::W > in;
                const auto m = S::mask(part ? in - i : 0);
                auto load = [&](const T* p) { return part ? S::load(p + i, m) : S::load(p + i); };
                const auto r = load(xt) * load(ws) + vs2;
                acc = acc + (part ? S::keep(r, m) : r);  // lanes past `in` hold S2
                part ? S::store(rxt + i, load(rxt) + r, m) : S::store(rxt + i, load(rxt) + r);
            }
#else
            for (int i = 0; i < in; ++i) {
                const T r = xt[i] * ws[i] + s2;
                rxt[i] += r;
                in_total += r;
            }
#endif
        }
#if defined(TEXTLRP_SIMD)
        in_total = hsum<T>(acc);
#endif
        const T initial = C::rest(q, d);
        q.rest += initial;
        q.totals[st + 1] = initial;
        q.totals[st + 2] = in_total;
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
    Pool<T>::gradient(m_, q, q.base.back().y.data(), q.len, q.head_in[0].data(), grad.data(),
                      q.top.data());
}

template <class T>
void Group<T>::gradient(Seq<T>* const* g, int G, const std::int64_t* targets) {
    for (int b = 0; b < G; ++b) {
        prepare_backward(*g[b]);
        head_gradient(*g[b], targets[b]);
    }
    for (std::size_t l = m_.layers.size(); l-- > 0;) {
        const auto& layer = m_.layers[l];
        int off = 0;
        for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
            with_cell<T>(layer.cell, [&](auto cell) { grad_direction<decltype(cell)>(g, G, l, k, off); });
            off += layer.dirs[k].d;
        }
    }
}

template <class T>
template <class C>
void Group<T>::grad_direction(Seq<T>* const* g, int G, std::size_t l, std::size_t k, int off) {
    const auto& layer = m_.layers[l];
    const auto& D = layer.dirs[k];
    const int out = layer.out(), in = layer.in(), d = D.d, n = C::G * d;
    for (int b = 0; b < G; ++b) {
        prepare_direction(*g[b], C::G, d, in);
        C::grad_begin(*g[b], d);
    }
    for (int s = g[0]->len - 1; s >= 0; --s) {
        const int na = active(g, G, s);
        for (int b = 0; b < na; ++b) {
            Seq<T>& q = *g[b];
            const T* g_out = from_above(q, l) + std::size_t(position(s, q.len, k)) * out + off;
            xs_[b] = C::grad_step(D, q.base[l].dirs[k], s, g_out, q);
            std::fill(q.tmp.begin(), q.tmp.begin() + d, T(0));
            ys_[b] = q.tmp.data();
        }
        if (s > 0) gemm_ptr(na, n, d, xs_, D.W_hh.data(), d, ys_);
        for (int b = 0; b < na; ++b) C::grad_finish(D, g[b]->base[l].dirs[k], s, *g[b]);
    }
    // d/dx_t for all steps of the group at once (it does not feed the recurrence).
    clear_rows();
    for (int b = 0; b < G; ++b) add_rows_by_position(g[b]->steps.data(), n, g[b]->r[l].data(), in, g[b]->len, k);
    multiply_rows(n, in, D.W_ih.data(), in, nullptr);
}

// Zeroing x_t changes the first layer only from step t on (forward direction) or down to
// t (backward direction): those steps are recomputed from the stored states, and the
// input projections of all other steps are reused. Deeper layers see a changed input
// everywhere and are rerun; the pooling reads all positions again.
//
// One variant per position, each a sequence of its own (variants_, alt states): the
// variants of up to `capacity` consecutive positions run in lock step, so that each
// recurrent step is one matrix product over all of them instead of a matrix-vector product
// per variant (blocks of 4 measured slower, of 16 no faster, of 32 slower on long inputs,
// and memory grows with the block). A variant's arithmetic is the same whichever others
// share its block (gemm_ptr), so the drops do not depend on the blocks. A block holds
// `capacity` variants of O(T * width) each, never all T of them: memory stays linear in T
// for inputs of thousands of tokens.
template <class T>
void Group<T>::occlusion(Seq<T>& q, std::int64_t target, const std::uint8_t* deleted, T* drop) {
    const T base = q.scores()[target];
    const int len = q.len;
    const auto& layer0 = m_.layers[0];
    const std::size_t width = std::size_t(len) * layer0.out();
    SeqPtr block[capacity];
    int where[capacity];  // the position each variant of the block occludes
    for (int t = 0; t < len;) {
        int nv = 0;
        for (; t < len && nv < capacity; ++t) {
            if (deleted && deleted[t]) {
                drop[t] = T(0);  // already zero: occluding it changes nothing
                continue;
            }
            Seq<T>& v = variants_[nv];
            v.len = len;
            grow(v.alt[0].y, width);
            std::copy(q.base[0].y.begin(), q.base[0].y.begin() + width, v.alt[0].y.begin());
            block[nv] = &v;
            where[nv++] = t;
        }
        if (nv == 0) break;
        int off = 0;
        for (std::size_t k = 0; k < layer0.dirs.size(); ++k) {
            with_cell<T>(layer0.cell, [&](auto cell) {
                occlude_direction<decltype(cell)>(q, block, where, nv, k, off);
            });
            off += layer0.dirs[k].d;
        }
        if (m_.layers.size() > 1) run_layers(block, nv, States::alt, 1);  // all of length len
        for (int v = 0; v < nv; ++v) {
            head_forward(*block[v], States::alt);
            drop[where[v]] = base - block[v]->scores()[target];
        }
    }
}

// The first layer's direction k of the block's variants: variant v restarts at step s0 from
// the base state at s0 - 1, with the bias alone as input projection at s0 (x_t = 0) and the
// base run's projections after it (keep_input_projection). Step s multiplies the variants
// that have started by then. Nothing reads a variant's first-layer states but the next
// step, so each keeps two rows (the previous step's in row 0, the current one in row 1)
// and writes its outputs to y as they come: O(T * out) per variant, not O(T * G * d).
template <class T>
template <class C>
void Group<T>::occlude_direction(Seq<T>& q, Seq<T>* const* block, const int* where, int nv,
                                 std::size_t k, int off) {
    const auto& layer0 = m_.layers[0];
    const auto& D = layer0.dirs[k];
    const auto& bs = q.base[0].dirs[k];
    const int len = q.len, d = D.d, out = layer0.out();
    const std::size_t n = C::G * std::size_t(d);
    int s0[capacity];
    int first = len;
    for (int v = 0; v < nv; ++v) {
        s0[v] = k == 0 ? where[v] : len - 1 - where[v];
        first = std::min(first, s0[v]);
        auto& as = block[v]->alt[0].dirs[k];
        C::reserve(as, 2, d, false);
        if (s0[v] > 0) C::carry_state(bs, s0[v] - 1, as, 0, d);
    }
    const T* zx_base = C::projection(q.base[0].dirs[k], true);
    SeqPtr live[capacity];  // the variants that have started by step s
    const T* zx[capacity];
    for (int s = first; s < len; ++s) {
        const int row = s > 0 ? 1 : 0;  // 0 only for a first step without a previous state
        int na = 0;
        for (int v = 0; v < nv; ++v) {
            if (s0[v] > s) continue;  // not started: the base run holds its states
            auto& as = block[v]->alt[0].dirs[k];
            zx[na] = s == s0[v] ? D.b.data() : zx_base + s * n;  // x_t = 0: the bias alone
            xs_[na] = as.h.data();  // row 0: the previous step's h (unused at s = 0)
            ys_[na] = C::recurrent_row(D, as, row, zx[na], s > 0);
            live[na++] = block[v];
        }
        if (s > 0) gemm_ptr(na, d, int(n), xs_, D.W_hh_t.data(), n, ys_, C::recurrent_bias(D));
        for (int b = 0; b < na; ++b) {
            auto& alt0 = live[b]->alt[0];
            auto& as = alt0.dirs[k];
            C::activate(D, as, row, zx[b]);
            std::memcpy(alt0.y.data() + std::size_t(position(s, len, k)) * out + off,
                        as.h.data() + std::size_t(row) * d, sizeof(T) * d);
            if (row == 1) C::carry_state(as, 1, as, 0, d);  // the previous state of step s + 1
        }
    }
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
void forward(const Model<T>& model, const Batch<T>& batch, int threads, T* scores) {
    parallel_groups<Group<T>>(model, batch, threads,
                              [&](Group<T>& group, Seq<T>* const* seqs, const std::int64_t* idx, int count) {
                                  write_scores(group, seqs, idx, count, model, nullptr, scores, nullptr, nullptr);
                              });
}

template <class T>
void lrp(const Model<T>& model, const Batch<T>& batch, const std::int64_t* targets_in,
         const LrpParams& params, int threads, T* scores, std::int64_t* targets_out,
         T* relevance, T* input_relevance, T* rest, T* totals) {
    const int e = model.input_size;
    const int S = model.stage_count();
    parallel_groups<Group<T>>(model, batch, threads,
                              [&](Group<T>& group, Seq<T>* const* seqs, const std::int64_t* idx, int count) {
        std::int64_t picked[Group<T>::capacity];
        write_scores(group, seqs, idx, count, model, targets_in, scores, targets_out, picked);
        group.lrp(seqs, count, picked, params);
        for (int b = 0; b < count; ++b) {
            const Seq<T>& q = *seqs[b];
            const std::int64_t start = batch.offsets[idx[b]];
            rest[idx[b]] = q.rest;
            const T* r0 = q.r[0].data();
            for (int t = 0; t < q.len; ++t) relevance[start + t] = vsum(r0 + std::size_t(t) * e, e);
            if (input_relevance)
                std::memcpy(input_relevance + start * e, r0, sizeof(T) * std::size_t(q.len) * e);
            if (totals) std::copy(q.totals.begin(), q.totals.begin() + S, totals + idx[b] * S);
        }
    });
}

template <class T>
void gradient(const Model<T>& model, const Batch<T>& batch, const std::int64_t* targets_in,
              int threads, T* scores, std::int64_t* targets_out, T* grad, T* sa, T* gi) {
    const int e = model.input_size;
    parallel_groups<Group<T>>(model, batch, threads,
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
void occlusion(const Model<T>& model, const Batch<T>& batch, const std::int64_t* targets_in,
               int threads, T* scores, std::int64_t* targets_out, T* drop) {
    parallel_groups<Group<T>>(model, batch, threads,
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
