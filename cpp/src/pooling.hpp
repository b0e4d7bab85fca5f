// The pooling stage between the last recurrent layer and the dense head: which of the last
// layer's outputs y_t [F] (directions concatenated at each position) become the features,
// and how relevance and gradients go back to them. Runs once per sequence, so the kind is
// a switch, not a policy type.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>

#include "detail/gemm.hpp"
#include "detail/mathfn.hpp"
#include "detail/state.hpp"

namespace textlrp {
namespace TEXTLRP_ISA {
namespace {

template <class T>
struct Pool {
    // f [F] from y [len, F]; keeps what the backward passes need (alpha, u, argmax) in q.
    static void forward(const Model<T>& m, Seq<T>& q, const T* y, int len, T* f) {
        const auto& layer = m.layers.back();
        const int F = layer.out();
        switch (m.pooling) {
            case Pooling::last: {
                // forward direction: its state after the last position; backward: after the first
                int off = 0;
                for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
                    const int d = layer.dirs[k].d;
                    const int t = k == 0 ? len - 1 : 0;
                    std::memcpy(f + off, y + std::size_t(t) * F + off, sizeof(T) * d);
                    off += d;
                }
                break;
            }
            case Pooling::mean:
                std::fill(f, f + F, T(0));
                for (int t = 0; t < len; ++t)
                    for (int i = 0; i < F; ++i) f[i] += y[std::size_t(t) * F + i];
                for (int i = 0; i < F; ++i) f[i] /= T(len);
                break;
            case Pooling::max:
                grow(q.argmax, F);
                for (int i = 0; i < F; ++i) {
                    int best = 0;
                    for (int t = 1; t < len; ++t)
                        if (y[std::size_t(t) * F + i] > y[std::size_t(best) * F + i]) best = t;  // first on ties
                    q.argmax[i] = best;
                    f[i] = y[std::size_t(best) * F + i];
                }
                break;
            case Pooling::attention: {
                const auto& at = m.attention;
                const int A = at.size;
                grow(q.u, std::size_t(len) * A);
                grow(q.wx, std::size_t(len) * A);
                grow(q.alpha, len);
                T* pre = q.wx.data();  // scratch: W y_t + b
                T* u = q.u.data();
                for (int t = 0; t < len; ++t) std::memcpy(pre + std::size_t(t) * A, at.b.data(), sizeof(T) * A);
                gemm_acc(len, F, A, y, F, at.W_t.data(), A, pre, A);
                tanh_inplace(pre, u, len * A);
                T emax = 0;
                for (int t = 0; t < len; ++t) {
                    T e = 0;
                    for (int c = 0; c < A; ++c) e += at.v[c] * u[std::size_t(t) * A + c];
                    q.alpha[t] = e;
                    emax = t ? std::max(emax, e) : e;
                }
                T sum = 0;
                for (int t = 0; t < len; ++t) sum += (q.alpha[t] = std::exp(q.alpha[t] - emax));
                for (int t = 0; t < len; ++t) q.alpha[t] /= sum;
                std::fill(f, f + F, T(0));
                for (int t = 0; t < len; ++t)
                    for (int i = 0; i < F; ++i) f[i] += q.alpha[t] * y[std::size_t(t) * F + i];
                break;
            }
        }
    }

    // Relevance of the features R_f [F] -> top [len, F] (zeroed by the caller).
    static void lrp(const Model<T>& m, Seq<T>& q, const T* y, int len, const T* f, const T* R_f,
                    T eps, T bf, T* top) {
        const auto& layer = m.layers.back();
        const int F = layer.out();
        switch (m.pooling) {
            case Pooling::last:
                scatter_last(m, len, R_f, top);
                break;
            case Pooling::max:
                for (int i = 0; i < F; ++i) top[std::size_t(q.argmax[i]) * F + i] = R_f[i];
                break;
            case Pooling::mean:
            case Pooling::attention: {
                // f_i = sum_t w_t y_ti: epsilon rule per feature over its T terms, no bias, N = T;
                // the weights (1/T, or attention's alpha as a gate) get nothing.
                T* c = q.work.data();
                T* S = c + F;
                for (int i = 0; i < F; ++i) {
                    const T si = sign1(f[i]);
                    c[i] = R_f[i] / (f[i] + eps * si);
                    S[i] = bf * eps * si * c[i] / T(len);
                }
                const bool mean = m.pooling == Pooling::mean;
                for (int t = 0; t < len; ++t) {
                    const T w = mean ? T(1) / T(len) : q.alpha[t];
                    const T* yt = y + std::size_t(t) * F;
                    T* rt = top + std::size_t(t) * F;
                    for (int i = 0; i < F; ++i) rt[i] = w * yt[i] * c[i] + S[i];
                }
                break;
            }
        }
    }

    // d score / d f = g [F] -> d score / d y [len, F] into top (zeroed by the caller).
    static void gradient(const Model<T>& m, Seq<T>& q, const T* y, int len, const T* f, const T* g,
                         T* top) {
        const auto& layer = m.layers.back();
        const int F = layer.out();
        switch (m.pooling) {
            case Pooling::last:
                scatter_last(m, len, g, top);
                break;
            case Pooling::max:
                for (int i = 0; i < F; ++i) top[std::size_t(q.argmax[i]) * F + i] = g[i];
                break;
            case Pooling::mean:
                for (int t = 0; t < len; ++t)
                    for (int i = 0; i < F; ++i) top[std::size_t(t) * F + i] = g[i] / T(len);
                break;
            case Pooling::attention: {
                // dy_t = alpha_t g + alpha_t (g.y_t - g.f) W^T (v * (1 - u_t^2))
                const auto& at = m.attention;
                const int A = at.size;
                grow(q.wx, std::size_t(len) * A);
                T* k = q.wx.data();
                T gf = 0;
                for (int i = 0; i < F; ++i) gf += g[i] * f[i];
                for (int t = 0; t < len; ++t) {
                    const T* yt = y + std::size_t(t) * F;
                    T gy = 0;
                    for (int i = 0; i < F; ++i) gy += g[i] * yt[i];
                    const T kt = q.alpha[t] * (gy - gf);
                    const T* ut = q.u.data() + std::size_t(t) * A;
                    for (int c = 0; c < A; ++c) k[std::size_t(t) * A + c] = kt * at.v[c] * (T(1) - ut[c] * ut[c]);
                    T* rt = top + std::size_t(t) * F;
                    for (int i = 0; i < F; ++i) rt[i] = q.alpha[t] * g[i];
                }
                gemm_acc(len, A, F, k, A, at.W.data(), F, top, F);
                break;
            }
        }
    }

private:
    // A feature-level vector onto the last layer's outputs: forward direction at position
    // T-1, backward direction at position 0.
    static void scatter_last(const Model<T>& m, int len, const T* v, T* top) {
        const auto& layer = m.layers.back();
        const int F = layer.out();
        int off = 0;
        for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
            const int d = layer.dirs[k].d;
            const int t = k == 0 ? len - 1 : 0;
            std::memcpy(top + std::size_t(t) * F + off, v + off, sizeof(T) * d);
            off += d;
        }
    }
};

}  // namespace
}  // namespace TEXTLRP_ISA
}  // namespace textlrp
