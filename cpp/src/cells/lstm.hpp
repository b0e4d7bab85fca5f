// The LSTM cell (gate rows i, f, g, o): one forward step, one LRP step and one gradient step.
// The time loops that call these live once in passes.cpp; docs/algorithm.md has the maths.
//
//   z = W_ih x + W_hh h_prev + b     i, f, o = sigm(z_i, z_f, z_o)   g = tanh(z_g)
//   c = f * c_prev + i * g           h = o * tanh(c)
#pragma once

#include <cstring>

#include "../detail/mathfn.hpp"
#include "../detail/state.hpp"

namespace textlrp {
namespace TEXTLRP_ISA {
namespace {

template <class T>
struct Lstm {
    static constexpr int G = 4;
    using Dir = Direction<T>;

    static void reserve(DirState<T>& ds, std::size_t len, std::size_t d, bool keep_zx) {
        const std::size_t n = G * d;
        grow(ds.z, len * n);
        grow(ds.a, len * n);
        grow(ds.c, len * d);
        grow(ds.tc, len * d);
        grow(ds.h, len * d);
        if (keep_zx) grow(ds.zx, len * n);
    }

    // The input projection goes straight into z, unless occlusion will reuse it.
    static T* projection(DirState<T>& ds, bool keep_zx) { return keep_zx ? ds.zx.data() : ds.z.data(); }

    // Row that accumulates W_hh h_prev at step s: the full pre-activation, seeded with zx.
    static T* recurrent_row(const Dir& D, DirState<T>& ds, int s, const T* zx, bool) {
        const std::size_t n = G * std::size_t(D.d);
        T* z = ds.z.data() + s * n;
        if (zx != z) std::memcpy(z, zx, sizeof(T) * n);
        return z;
    }
    static const T* recurrent_bias(const Dir&) { return nullptr; }  // the product accumulates

    static void activate(const Dir& D, DirState<T>& ds, int s, const T*) {
        const int d = D.d;
        const std::size_t n = G * std::size_t(d);
        const T* z = ds.z.data() + s * n;
        T* a = ds.a.data() + s * n;
        T* c = ds.c.data() + std::size_t(s) * d;
        T* tc = ds.tc.data() + std::size_t(s) * d;
        T* h = ds.h.data() + std::size_t(s) * d;
        const T* c_prev = s ? c - d : nullptr;
#if defined(TEXTLRP_SIMD)
        // Two passes over the step, a vector at a time: the four gates (independent
        // polynomial chains, which the core overlaps), then the cell and the output.
        using S = Simd<T>;
        using V = typename S::V;
        for (int j = 0; j < d; j += S::W) {
            const bool part = j + S::W > d;
            const auto m = S::mask(part ? d - j : 0);
            auto load = [&](const T* p) { return part ? S::load(p + j, m) : S::load(p + j); };
            auto store = [&](T* p, V v) { part ? S::store(p + j, v, m) : S::store(p + j, v); };
            store(a, vsigmoid<T>(load(z)));
            store(a + d, vsigmoid<T>(load(z + d)));
            store(a + 2 * d, vtanh<T>(load(z + 2 * d)));
            store(a + 3 * d, vsigmoid<T>(load(z + 3 * d)));
        }
        for (int j = 0; j < d; j += S::W) {
            const bool part = j + S::W > d;
            const auto m = S::mask(part ? d - j : 0);
            auto load = [&](const T* p) { return part ? S::load(p + j, m) : S::load(p + j); };
            auto store = [&](T* p, V v) { part ? S::store(p + j, v, m) : S::store(p + j, v); };
            const V ig = load(a) * load(a + 2 * d);
            const V cv = c_prev ? load(a + d) * load(c_prev) + ig : ig;
            const V t = vtanh<T>(cv);
            store(c, cv);
            store(tc, t);
            store(h, load(a + 3 * d) * t);
        }
#else
        sigmoid_inplace(z, a, 2 * d);
        tanh_inplace(z + 2 * d, a + 2 * d, d);
        sigmoid_inplace(z + 3 * d, a + 3 * d, d);
        for (int j = 0; j < d; ++j) {
            const T fc = c_prev ? a[d + j] * c_prev[j] : T(0);
            c[j] = fc + a[j] * a[2 * d + j];
        }
        tanh_inplace(c, tc, d);
        for (int j = 0; j < d; ++j) h[j] = a[3 * d + j] * tc[j];
#endif
    }

    // Makes row r of `to` a copy of row s of `from`: the state a recomputation starts from
    // (the next step reads it as its previous state when it is the row just before).
    static void carry_state(const DirState<T>& from, int s, DirState<T>& to, int r, int d) {
        std::memcpy(to.h.data() + std::size_t(r) * d, from.h.data() + std::size_t(s) * d, sizeof(T) * d);
        std::memcpy(to.c.data() + std::size_t(r) * d, from.c.data() + std::size_t(s) * d, sizeof(T) * d);
    }

    // ------------------------------------------------------------------ LRP
    // Gate rows whose pre-activations pass relevance to x and h_prev: g alone under
    // signal-take-all, i, f and g under the other rules (o never receives relevance).
    template <class Rule>
    static int first_row(int d) { return Rule::gates ? 0 : 2 * d; }
    template <class Rule>
    static int row_count(int d) { return Rule::gates ? 3 * d : d; }
    template <class Rule>
    static int h_first(int d) { return first_row<Rule>(d); }
    template <class Rule>
    static int h_rows(int d) { return row_count<Rule>(d); }

    static void lrp_begin(Seq<T>& q, int d) {
        std::fill(q.carry_c.begin(), q.carry_c.begin() + d, T(0));
    }

    // One step backwards. r_out: what h received from above. Writes the x-side coefficient
    // rows into q.steps row s and the x-side stabiliser share into q.s2[s]; returns the
    // h-side coefficient row (the same rows here).
    template <class Rule>
    static const T* lrp_step(const Dir& D, const DirState<T>& ds, int s, const T* r_out, Seq<T>& q,
                             T eps, T bf, int in) {
        const int d = D.d, n = G * d;
        T* rc = q.carry_c.data();
        const T* rh = q.carry_h.data();
        T* coef = q.steps.data() + std::size_t(s) * n;
        const T* a = ds.a.data() + std::size_t(s) * n;
        const T* z = ds.z.data() + std::size_t(s) * n;
        const T* c = ds.c.data() + std::size_t(s) * d;
        const T* cp = s ? c - d : q.zeros.data();
#if defined(TEXTLRP_SIMD)
        using S = Simd<T>;
        using V = typename S::V;
        const V veps = S::set1(eps);
        auto stab = [&](V y) { return y + veps * sign1v<T>(y); };
        // h = o * tanh(c): all of R(h) goes to c. Then c = f * c_prev + i * g: epsilon rule,
        // identity weights counted as dense, N = 2d; its stabiliser share S needs all of
        // R(c) first (a second pass), and is 0 without bias_factor.
        T S1 = 0;
        if (bf != T(0)) {
            V acc = S::set1(T(0));
            for (int j = 0; j < d; j += S::W) {
                const bool part = j + S::W > d;
                const auto m = S::mask(part ? d - j : 0);
                auto load = [&](const T* p) { return part ? S::load(p + j, m) : S::load(p + j); };
                const V r = load(rc) + (load(r_out) + load(rh));
                part ? S::store(rc + j, r, m) : S::store(rc + j, r);
                const V cv = load(c), sj = sign1v<T>(cv);
                acc = acc + vdiv<T>(veps * sj, cv + veps * sj) * r;
            }
            S1 = bf * hsum<T>(acc) / T(2 * d);
        }
        const V vS = S::set1(S1);
        // R(c) -> f * c_prev (to c_prev, through the rule) and i * g (to g and, with gates,
        // to i and f); g's pre-activation and the gates' -> x_t and h_prev, epsilon rule,
        // N = in + d: coefficient rows here, their stabiliser share S2 in q.s2[s].
        V acc2 = S::set1(T(0));
        for (int j = 0; j < d; j += S::W) {
            const bool part = j + S::W > d;
            const auto m = S::mask(part ? d - j : 0);
            auto load = [&](const T* p) { return part ? S::load(p + j, m) : S::load(p + j); };
            auto store = [&](T* p, V v) { part ? S::store(p + j, v, m) : S::store(p + j, v); };
            // lanes past d hold the stabiliser shares: kept out of the sums
            auto keep = [&](V v) { return part ? S::keep(v, m) : v; };
            const V r = bf != T(0) ? load(rc) : load(rc) + (load(r_out) + load(rh));
            const V qj = vdiv<T>(r, stab(load(c)));
            const V f = load(a + d), i = load(a), g = load(a + 2 * d), cpv = load(cp);
            V r_fc = f * cpv * qj, r_ig = i * g * qj;
            if (bf != T(0)) r_fc = r_fc + vS, r_ig = r_ig + vS;
            const V r_cp = Rule::template vshare<T>(f, cpv, veps) * r_fc;
            const V r_g = Rule::template vshare<T>(i, g, veps) * r_ig;
            store(rc, r_cp);
            const V zg = load(z + 2 * d), cg = vdiv<T>(r_g, stab(zg));
            store(coef + 2 * d, cg);
            if (Rule::gates) {
                const V zi = load(z), zf = load(z + d);
                const V ci = vdiv<T>(r_ig - r_g, stab(zi)), cf = vdiv<T>(r_fc - r_cp, stab(zf));
                store(coef, ci);
                store(coef + d, cf);
                if (bf != T(0)) {
                    acc2 = acc2 + keep((load(D.b.data()) + veps * sign1v<T>(zi)) * ci);
                    acc2 = acc2 + keep((load(D.b.data() + d) + veps * sign1v<T>(zf)) * cf);
                }
            }
            if (bf != T(0)) acc2 = acc2 + keep((load(D.b.data() + 2 * d) + veps * sign1v<T>(zg)) * cg);
        }
        q.s2[s] = bf != T(0) ? bf * hsum<T>(acc2) / T(in + d) : T(0);
        return coef + first_row<Rule>(d);
#else
        // h = o * tanh(c): all of R(h) goes to c.
        for (int j = 0; j < d; ++j) rc[j] += r_out[j] + rh[j];
        // c = f * c_prev + i * g: epsilon rule, identity weights counted as dense, N = 2d.
        T S = 0;
        for (int j = 0; j < d; ++j) {
            const T sj = sign1(c[j]);
            S += eps * sj / (c[j] + eps * sj) * rc[j];
        }
        S = bf * S / T(2 * d);
        T* r_fc = q.work.data();
        T* r_ig = r_fc + d;
        for (int j = 0; j < d; ++j) {
            const T qj = rc[j] / (c[j] + eps * sign1(c[j]));
            r_fc[j] = a[d + j] * cp[j] * qj + S;
            r_ig[j] = a[j] * a[2 * d + j] * qj + S;
        }
        for (int j = 0; j < d; ++j) {
            const T r_cp = Rule::share(a[d + j], cp[j], eps) * r_fc[j];
            const T r_g = Rule::share(a[j], a[2 * d + j], eps) * r_ig[j];
            rc[j] = r_cp;
            coef[2 * d + j] = r_g / (z[2 * d + j] + eps * sign1(z[2 * d + j]));
            if (Rule::gates) {
                coef[j] = (r_ig[j] - r_g) / (z[j] + eps * sign1(z[j]));
                coef[d + j] = (r_fc[j] - r_cp) / (z[d + j] + eps * sign1(z[d + j]));
            }
        }
        // Gate pre-activations -> x_t and h_prev, epsilon rule, N = in + d; the x side is
        // deferred (passes.cpp), the h side goes through W_hh now.
        const int first = first_row<Rule>(d), rows = row_count<Rule>(d);
        T S2 = 0;
        for (int r = first; r < first + rows; ++r) S2 += (D.b[r] + eps * sign1(z[r])) * coef[r];
        q.s2[s] = bf * S2 / T(in + d);
        return coef + first;
#endif
    }

    // R(h_prev) from the h-side product q.tmp = W_hh^T coef.
    static void lrp_finish(const Dir& D, const DirState<T>& ds, int s, Seq<T>& q) {
        const int d = D.d;
        const T* h_prev = s ? ds.h.data() + std::size_t(s - 1) * d : nullptr;
        T* rh = q.carry_h.data();
        const T S2 = q.s2[s];
        if (h_prev)
            for (int j = 0; j < d; ++j) rh[j] = h_prev[j] * q.tmp[j] + S2;
        else
            for (int j = 0; j < d; ++j) rh[j] = T(0) + S2;
    }

    // Relevance left at the initial states after the first step: h_0 and c_0.
    static T rest(const Seq<T>& q, int d) {
        T r = 0;
        for (int j = 0; j < d; ++j) r += q.carry_h[j] + q.carry_c[j];
        return r;
    }

    // ------------------------------------------------------------------ gradient
    static void grad_begin(Seq<T>& q, int d) { std::fill(q.carry_c.begin(), q.carry_c.begin() + d, T(0)); }

    // dz of step s into q.steps row s (x side); returns the h-side row (the same).
    static const T* grad_step(const Dir& D, const DirState<T>& ds, int s, const T* g_out, Seq<T>& q) {
        const int d = D.d, n = G * d;
        T* dc = q.carry_c.data();
        const T* dh = q.carry_h.data();
        T* dz = q.steps.data() + std::size_t(s) * n;
        const T* a = ds.a.data() + std::size_t(s) * n;
        const T* tc = ds.tc.data() + std::size_t(s) * d;
        const T* cp = s ? ds.c.data() + std::size_t(s - 1) * d : q.zeros.data();
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
        return dz;
    }

    static void grad_finish(const Dir& D, const DirState<T>&, int, Seq<T>& q) {
        std::memcpy(q.carry_h.data(), q.tmp.data(), sizeof(T) * D.d);
    }
};

}  // namespace
}  // namespace TEXTLRP_ISA
}  // namespace textlrp
