// The GRU cell (torch.nn.GRU, gate rows r, z, n): one forward step, one LRP step and one
// gradient step. The time loops that call these live once in passes.cpp.
//
//   r = sigm(W_ir x + b_ir + W_hr h + b_hr)     z = sigm(W_iz x + b_iz + W_hz h + b_hz)
//   s = W_hn h + b_hn                            n = tanh(p),  p = W_in x + b_in + r * s
//   h' = (1 - z) * n + z * h
//
// LRP is signal-take-all (docs/algorithm.md): the gates r, z and 1 - z receive nothing, so
// only the n rows of W_ih and W_hh carry relevance.
#pragma once

#include <cstring>

#include "../detail/mathfn.hpp"
#include "../detail/state.hpp"

namespace textlrp {
namespace TEXTLRP_ISA {
namespace {

template <class T>
struct Gru {
    static constexpr int G = 3;
    using Dir = Direction<T>;

    static void reserve(DirState<T>& ds, std::size_t len, std::size_t d, bool) {
        const std::size_t n = G * d;
        grow(ds.zx, len * n);
        grow(ds.z, len * n);
        grow(ds.a, len * n);
        grow(ds.zh, len * n);
        grow(ds.h, len * d);
    }

    // The input projection stays apart: b_hn sits inside r * (W_hn h + b_hn).
    static T* projection(DirState<T>& ds, bool) { return ds.zx.data(); }

    // Row that receives b_hh + W_hh h_prev at step s: the product starts from b_hh
    // (recurrent_bias), so the row is only seeded when no product follows (h_prev = 0).
    static T* recurrent_row(const Dir& D, DirState<T>& ds, int s, const T*, bool product) {
        const std::size_t n = G * std::size_t(D.d);
        T* zh = ds.zh.data() + s * n;
        if (!product) std::memcpy(zh, D.b_hh.data(), sizeof(T) * n);
        return zh;
    }
    static const T* recurrent_bias(const Dir& D) { return D.b_hh.data(); }

    static void activate(const Dir& D, DirState<T>& ds, int s, const T* zx) {
        const int d = D.d;
        const std::size_t n = G * std::size_t(d);
        const T* zh = ds.zh.data() + s * n;
        T* z = ds.z.data() + s * n;
        T* a = ds.a.data() + s * n;
        T* h = ds.h.data() + std::size_t(s) * d;
        const T* h_prev = s ? h - d : nullptr;
#if defined(TEXTLRP_SIMD)
        // One pass over the step: gates r and z, candidate n, output, a vector at a time.
        using S = Simd<T>;
        using V = typename S::V;
        for (int j = 0; j < d; j += S::W) {
            const bool part = j + S::W > d;
            const auto m = S::mask(part ? d - j : 0);
            auto load = [&](const T* p) { return part ? S::load(p + j, m) : S::load(p + j); };
            auto store = [&](T* p, V v) { part ? S::store(p + j, v, m) : S::store(p + j, v); };
            const V zr = load(zx) + load(zh), zz = load(zx + d) + load(zh + d);
            const V r = vsigmoid<T>(zr), zg = vsigmoid<T>(zz);
            const V p = load(zx + 2 * d) + r * load(zh + 2 * d);
            const V nj = vtanh<T>(p);
            const V hv = h_prev ? (T(1) - zg) * nj + zg * load(h_prev) : (T(1) - zg) * nj + T(0);
            store(z + 2 * d, p);  // the gates' pre-activations are not read again
            store(a, r);
            store(a + d, zg);
            store(a + 2 * d, nj);
            store(h, hv);
        }
#else
        for (int j = 0; j < 2 * d; ++j) z[j] = zx[j] + zh[j];
        sigmoid_inplace(z, a, 2 * d);
        for (int j = 0; j < d; ++j) z[2 * d + j] = zx[2 * d + j] + a[j] * zh[2 * d + j];
        tanh_inplace(z + 2 * d, a + 2 * d, d);
        for (int j = 0; j < d; ++j) {
            const T zg = a[d + j], nj = a[2 * d + j];
            h[j] = (T(1) - zg) * nj + (h_prev ? zg * h_prev[j] : T(0));
        }
#endif
    }

    static void carry_state(const DirState<T>& from, int s, DirState<T>& to, int r, int d) {
        std::memcpy(to.h.data() + std::size_t(r) * d, from.h.data() + std::size_t(s) * d, sizeof(T) * d);
    }

    // ------------------------------------------------------------------ LRP
    // x side: the n rows of W_ih (p's inputs); h side: the n rows of W_hh (s's inputs).
    template <class Rule>
    static int first_row(int d) { return 2 * d; }
    template <class Rule>
    static int row_count(int d) { return d; }
    template <class Rule>
    static int h_first(int d) { return 2 * d; }
    template <class Rule>
    static int h_rows(int d) { return d; }

    static void lrp_begin(Seq<T>&, int) {}

    template <class Rule>
    static const T* lrp_step(const Dir& D, const DirState<T>& ds, int s, const T* r_out, Seq<T>& q,
                             T eps, T bf, int in) {
        static_assert(!Rule::gates, "GRU layers take signal-take-all only");
        const int d = D.d, n = G * d;
        const T* rh = q.carry_h.data();
        const T* a = ds.a.data() + std::size_t(s) * n;
        const T* z = ds.z.data() + std::size_t(s) * n;
        const T* zh = ds.zh.data() + std::size_t(s) * n;
        const T* h = ds.h.data() + std::size_t(s) * d;
        const T* hp = s ? h - d : q.zeros.data();
        T* R_h = q.work.data();       // R(h') this step
        T* r_b = R_h + d;             // R(z * h_prev): goes to h_prev unchanged
        T* coef_s = r_b + d;          // R(s) / stab(s): the h-side row
        T* coef_p = q.steps.data() + std::size_t(s) * n + 2 * d;  // R(p) / stab(p): x side
        // h' = (1 - z) * n + z * h_prev: epsilon rule, identity weights counted as dense, N = 2d.
        T S1 = 0;
        for (int j = 0; j < d; ++j) R_h[j] = r_out[j] + rh[j];
        if (bf != T(0)) {  // the stabiliser shares are 0 without bias_factor
            for (int j = 0; j < d; ++j) {
                const T sj = sign1(h[j]);
                S1 += eps * sj / (h[j] + eps * sj) * R_h[j];
            }
            S1 = bf * S1 / T(2 * d);
        }
#if defined(TEXTLRP_SIMD)
        using S = Simd<T>;
        using V = typename S::V;
        const V veps = S::set1(eps);
        auto stab = [&](V y) { return y + veps * sign1v<T>(y); };
        for (int j = 0; j < d; j += S::W) {
            const bool part = j + S::W > d;
            const auto m = S::mask(part ? d - j : 0);
            auto load = [&](const T* p) { return part ? S::load(p + j, m) : S::load(p + j); };
            auto store = [&](T* p, V v) { part ? S::store(p + j, v, m) : S::store(p + j, v); };
            const V qj = vdiv<T>(load(R_h), stab(load(h)));
            const V zg = load(a + d);
            const V r_n = (T(1) - zg) * load(a + 2 * d) * qj + S1;  // n = tanh(p): R(p) = R(n)
            store(r_b, zg * load(hp) * qj + S1);
            store(coef_p, vdiv<T>(r_n, stab(load(z + 2 * d))));
        }
#else
        for (int j = 0; j < d; ++j) {
            const T qj = R_h[j] / (h[j] + eps * sign1(h[j]));
            const T r_n = (T(1) - a[d + j]) * a[2 * d + j] * qj + S1;  // n = tanh(p): R(p) = R(n)
            r_b[j] = a[d + j] * hp[j] * qj + S1;
            coef_p[j] = r_n / (z[2 * d + j] + eps * sign1(z[2 * d + j]));
        }
#endif
        // p = W_in x + b_in + q, q = r * s: epsilon rule, N = in + d; q's share goes to s.
        T S3 = 0;
        if (bf != T(0)) {
            for (int j = 0; j < d; ++j) S3 += (D.b[2 * d + j] + eps * sign1(z[2 * d + j])) * coef_p[j];
            S3 = bf * S3 / T(in + d);
        }
        q.s2[s] = S3;
        // s = W_hn h_prev + b_hn: epsilon rule, N = d.
#if defined(TEXTLRP_SIMD)
        for (int j = 0; j < d; j += S::W) {
            const bool part = j + S::W > d;
            const auto m = S::mask(part ? d - j : 0);
            auto load = [&](const T* p) { return part ? S::load(p + j, m) : S::load(p + j); };
            const V sj = load(zh + 2 * d);
            const V c = vdiv<T>(load(a) * sj * load(coef_p) + S3, stab(sj));
            part ? S::store(coef_s + j, c, m) : S::store(coef_s + j, c);
        }
#else
        for (int j = 0; j < d; ++j) {
            const T sj = zh[2 * d + j];
            const T r_s = a[j] * sj * coef_p[j] + S3;
            coef_s[j] = r_s / (sj + eps * sign1(sj));
        }
#endif
        T S4 = 0;
        if (bf != T(0)) {
            for (int j = 0; j < d; ++j) S4 += (D.b_hh[2 * d + j] + eps * sign1(zh[2 * d + j])) * coef_s[j];
            S4 = bf * S4 / T(d);
        }
        q.S = S4;
        return coef_s;
    }

    static void lrp_finish(const Dir& D, const DirState<T>& ds, int s, Seq<T>& q) {
        const int d = D.d;
        const T* h_prev = s ? ds.h.data() + std::size_t(s - 1) * d : nullptr;
        const T* r_b = q.work.data() + d;
        T* rh = q.carry_h.data();
        const T S4 = q.S;
        if (h_prev)
            for (int j = 0; j < d; ++j) rh[j] = h_prev[j] * q.tmp[j] + S4 + r_b[j];
        else
            for (int j = 0; j < d; ++j) rh[j] = T(0) + S4 + r_b[j];
    }

    static T rest(const Seq<T>& q, int d) {
        T r = 0;
        for (int j = 0; j < d; ++j) r += q.carry_h[j];
        return r;
    }

    // ------------------------------------------------------------------ gradient
    static void grad_begin(Seq<T>&, int) {}

    // x side [dz_r, dz_z, dp] into q.steps row s; returns the h side [dz_r, dz_z, ds].
    static const T* grad_step(const Dir& D, const DirState<T>& ds, int s, const T* g_out, Seq<T>& q) {
        const int d = D.d, n = G * d;
        const T* dh = q.carry_h.data();
        T* dx = q.steps.data() + std::size_t(s) * n;
        T* dhrow = q.work.data();          // [3d]
        T* direct = dhrow + 3 * d;         // [d]: dh' * z, straight to h_prev
        const T* a = ds.a.data() + std::size_t(s) * n;
        const T* zh = ds.zh.data() + std::size_t(s) * n;
        const T* hp = s ? ds.h.data() + std::size_t(s - 1) * d : q.zeros.data();
        for (int j = 0; j < d; ++j) {
            const T r = a[j], zg = a[d + j], nj = a[2 * d + j];
            const T dhj = g_out[j] + dh[j];
            const T dp = dhj * (T(1) - zg) * (T(1) - nj * nj);
            const T dzr = dp * zh[2 * d + j] * r * (T(1) - r);
            const T dzz = dhj * (hp[j] - nj) * zg * (T(1) - zg);
            dx[j] = dhrow[j] = dzr;
            dx[d + j] = dhrow[d + j] = dzz;
            dx[2 * d + j] = dp;
            dhrow[2 * d + j] = dp * r;
            direct[j] = dhj * zg;
        }
        return dhrow;
    }

    static void grad_finish(const Dir& D, const DirState<T>&, int, Seq<T>& q) {
        const int d = D.d;
        const T* direct = q.work.data() + 3 * d;
        for (int j = 0; j < d; ++j) q.carry_h[j] = q.tmp[j] + direct[j];
    }
};

}  // namespace
}  // namespace TEXTLRP_ISA
}  // namespace textlrp
