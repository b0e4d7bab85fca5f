// Elementwise maths: sign for the epsilon rule, exp / sigmoid / tanh without libm calls.
#pragma once
// Included by the per-ISA translation units only (passes.cpp): everything here lives in the
// namespace of the instruction set being compiled.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "simd.hpp"

namespace textlrp {
namespace TEXTLRP_ISA {
namespace {

template <class T>
inline T sign1(T y) {  // sign with sign(0) = +1, as in the epsilon rule
    return y >= T(0) ? T(1) : T(-1);
}

#if defined(TEXTLRP_SIMD)
// exp of each lane, without libm: Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, and a
// Taylor polynomial by Horner's rule in fused multiply-adds; below 2 ulp in double and
// float. Inputs are clamped to the range with normal results; NaN stays NaN.
inline Simd<double>::V vexp(Simd<double>::V x) {
    using S = Simd<double>;
    using V = S::V;
    typedef std::int64_t I __attribute__((vector_size(sizeof(V))));
    const V v = S::min(S::set1(709.0), S::max(S::set1(-708.0), x));
    const V magic = S::set1(6755399441055744.0);  // 1.5 * 2^52: adding it rounds to an integer
    const V t = S::fma(v, S::set1(1.4426950408889634), magic);
    const V k = t - magic;
    V r = S::fma(k, S::set1(-6.93147180369123816490e-01), v);
    r = S::fma(k, S::set1(-1.90821492927058770002e-10), r);
    V p = S::set1(1.0 / 6227020800.0);  // 1/13!
    p = S::fma(p, r, S::set1(1.0 / 479001600.0));
    p = S::fma(p, r, S::set1(1.0 / 39916800.0));
    p = S::fma(p, r, S::set1(1.0 / 3628800.0));
    p = S::fma(p, r, S::set1(1.0 / 362880.0));
    p = S::fma(p, r, S::set1(1.0 / 40320.0));
    p = S::fma(p, r, S::set1(1.0 / 5040.0));
    p = S::fma(p, r, S::set1(1.0 / 720.0));
    p = S::fma(p, r, S::set1(1.0 / 120.0));
    p = S::fma(p, r, S::set1(1.0 / 24.0));
    p = S::fma(p, r, S::set1(1.0 / 6.0));
    p = S::fma(p, r, S::set1(0.5));
    p = S::fma(p, r, S::set1(1.0));
    p = S::fma(p, r, S::set1(1.0));
    const I e = ((I)t - std::int64_t(0x4338000000000000) + 1023) << 52;  // 2^k
    return p * (V)e;
}

inline Simd<float>::V vexp(Simd<float>::V x) {
    using S = Simd<float>;
    using V = S::V;
    typedef std::int32_t I __attribute__((vector_size(sizeof(V))));
    const V v = S::min(S::set1(88.0f), S::max(S::set1(-87.0f), x));
    const V magic = S::set1(12582912.0f);  // 1.5 * 2^23
    const V t = S::fma(v, S::set1(1.44269504f), magic);
    const V k = t - magic;
    V r = S::fma(k, S::set1(-0.693145752f), v);
    r = S::fma(k, S::set1(-1.42860677e-06f), r);
    V p = S::set1(1.0f / 40320.0f);
    p = S::fma(p, r, S::set1(1.0f / 5040.0f));
    p = S::fma(p, r, S::set1(1.0f / 720.0f));
    p = S::fma(p, r, S::set1(1.0f / 120.0f));
    p = S::fma(p, r, S::set1(1.0f / 24.0f));
    p = S::fma(p, r, S::set1(1.0f / 6.0f));
    p = S::fma(p, r, S::set1(0.5f));
    p = S::fma(p, r, S::set1(1.0f));
    p = S::fma(p, r, S::set1(1.0f));
    const I e = ((I)t - std::int32_t(0x4B400000) + 127) << 23;
    return p * (V)e;
}

template <class T>
inline typename Simd<T>::V vsigmoid(typename Simd<T>::V z) {
    return Simd<T>::recip(vexp(-z) + T(1));
}

// tanh(z) = 1 - 2 / (exp(2z) + 1); absolute error ~1 ulp of 1 near 0, which is what the
// products and sums downstream see.
template <class T>
inline typename Simd<T>::V vtanh(typename Simd<T>::V z) {
    return T(1) - T(2) * Simd<T>::recip(vexp(z + z) + T(1));
}

// out[j] = f(in[j]) for j < n, whole vectors then one masked vector.
template <class T, class F>
inline void vmap(const T* in, T* out, int n, F f) {
    using S = Simd<T>;
    int j = 0;
    for (; j + S::W <= n; j += S::W) S::store(out + j, f(S::load(in + j)));
    if (j < n) {
        const auto m = S::mask(n - j);
        S::store(out + j, f(S::load(in + j, m)), m);
    }
}

template <class T>
inline void exp_inplace(T* x, int n) {
    vmap(x, x, n, [](auto v) { return vexp(v); });
}
template <class T>
inline void sigmoid_inplace(const T* z, T* a, int n) {
    vmap(z, a, n, [](auto v) { return vsigmoid<T>(v); });
}
template <class T>
inline void tanh_inplace(const T* z, T* a, int n) {
    vmap(z, a, n, [](auto v) { return vtanh<T>(v); });
}
#else
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

#endif

template <class T>
void grow(std::vector<T>& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
}

}  // namespace
}  // namespace TEXTLRP_ISA
}  // namespace textlrp
