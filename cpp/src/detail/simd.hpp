// Explicit vectors of the instruction set being compiled: Simd<T> has W lanes of T, full
// and masked (first n lanes) loads and stores, and fma. Fused multiply-adds exist only
// here, as explicit instructions (the build forbids the compiler to fuse on its own), so
// every lane computes the same thing whatever its position: a value does not depend on
// the buffer's alignment, on which rows share a block, or on whether it falls in a tail.
#pragma once
// Included by the per-ISA translation units only (passes.cpp): everything here lives in the
// namespace of the instruction set being compiled.
#include <cstddef>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace textlrp {
namespace TEXTLRP_ISA {
namespace {

template <class T>
struct Simd;

#if defined(__AVX512F__)
#define TEXTLRP_SIMD 1
template <>
struct Simd<double> {
    using V = __m512d;
    using Mask = __mmask8;
    static constexpr int W = 8;
    static constexpr bool fused = true;
    static constexpr bool fast_recip = true;
    static Mask mask(int n) { return Mask((1u << n) - 1u); }
    static V load(const double* p) { return _mm512_loadu_pd(p); }
    static V load(const double* p, Mask m) { return _mm512_maskz_loadu_pd(m, p); }
    static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
    static void store(double* p, V v, Mask m) { _mm512_mask_storeu_pd(p, m, v); }
    static V set1(double x) { return _mm512_set1_pd(x); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    static V keep(V v, Mask m) { return _mm512_maskz_mov_pd(m, v); }  // zeros outside m
    static V min(V a, V b) { return _mm512_min_pd(a, b); }
    static V max(V a, V b) { return _mm512_max_pd(a, b); }
    // 1 / b: a 14-bit estimate and two Newton steps (about 1 ulp; a division takes 16
    // cycles a vector here, this 5 instructions)
    static V recip(V b) {
        const V one = set1(1.0);
        V y = _mm512_rcp14_pd(b);
        y = fma(y, _mm512_fnmadd_pd(b, y, one), y);
        return fma(y, _mm512_fnmadd_pd(b, y, one), y);
    }
};
template <>
struct Simd<float> {
    using V = __m512;
    using Mask = __mmask16;
    static constexpr int W = 16;
    static constexpr bool fused = true;
    static constexpr bool fast_recip = true;
    static Mask mask(int n) { return Mask((1u << n) - 1u); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static V load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static void store(float* p, V v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
    static V set1(float x) { return _mm512_set1_ps(x); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V keep(V v, Mask m) { return _mm512_maskz_mov_ps(m, v); }
    static V min(V a, V b) { return _mm512_min_ps(a, b); }
    static V max(V a, V b) { return _mm512_max_ps(a, b); }
    static V recip(V b) {  // 14-bit estimate, one Newton step
        const V y = _mm512_rcp14_ps(b);
        return fma(y, _mm512_fnmadd_ps(b, y, set1(1.0f)), y);
    }
};
#elif defined(__AVX2__) && defined(__FMA__)
#define TEXTLRP_SIMD 1
template <>
struct Simd<double> {
    using V = __m256d;
    using Mask = __m256i;
    static constexpr int W = 4;
    static constexpr bool fused = true;
    static constexpr bool fast_recip = false;
    static Mask mask(int n) { return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3)); }
    static V load(const double* p) { return _mm256_loadu_pd(p); }
    static V load(const double* p, Mask m) { return _mm256_maskload_pd(p, m); }
    static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
    static void store(double* p, V v, Mask m) { _mm256_maskstore_pd(p, m, v); }
    static V set1(double x) { return _mm256_set1_pd(x); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V keep(V v, Mask m) { return _mm256_and_pd(v, _mm256_castsi256_pd(m)); }
    static V min(V a, V b) { return _mm256_min_pd(a, b); }
    static V max(V a, V b) { return _mm256_max_pd(a, b); }
    static V recip(V b) { return set1(1.0) / b; }
};
template <>
struct Simd<float> {
    using V = __m256;
    using Mask = __m256i;
    static constexpr int W = 8;
    static constexpr bool fused = true;
    static constexpr bool fast_recip = false;
    static Mask mask(int n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static V load(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static void store(float* p, V v, Mask m) { _mm256_maskstore_ps(p, m, v); }
    static V set1(float x) { return _mm256_set1_ps(x); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V keep(V v, Mask m) { return _mm256_and_ps(v, _mm256_castsi256_ps(m)); }
    static V min(V a, V b) { return _mm256_min_ps(a, b); }
    static V max(V a, V b) { return _mm256_max_ps(a, b); }
    static V recip(V b) { return set1(1.0f) / b; }
};
#elif defined(__GNUC__)
#define TEXTLRP_SIMD 1
// Baseline (SSE2 on x86-64): 16-byte vectors, a multiply then an add (no fusion anywhere,
// so lanes and scalars agree); masked access goes through a zeroed copy.
template <class T>
struct SimdGeneric {
    typedef T V __attribute__((vector_size(16), aligned(sizeof(T)), may_alias));
    using Mask = int;
    static constexpr int W = 16 / int(sizeof(T));
    static constexpr bool fused = false;
    static constexpr bool fast_recip = false;
    static Mask mask(int n) { return n; }
    static V load(const T* p) { return *(const V*)p; }
    static V load(const T* p, Mask n) {
        V v = {};
        std::memcpy(&v, p, sizeof(T) * n);
        return v;
    }
    static void store(T* p, V v) { *(V*)p = v; }
    static void store(T* p, V v, Mask n) { std::memcpy(p, &v, sizeof(T) * n); }
    static V set1(T x) { return V{} + x; }
    static V fma(V a, V b, V c) { return a * b + c; }
    static V keep(V v, Mask n) { return load((const T*)&v, n); }
    static V min(V a, V b) { return a < b ? a : b; }
    static V max(V a, V b) { return a > b ? a : b; }
    static V recip(V b) { return set1(T(1)) / b; }
};
template <>
struct Simd<double> : SimdGeneric<double> {};
template <>
struct Simd<float> : SimdGeneric<float> {};
#endif

#if defined(TEXTLRP_SIMD)
// Helpers written with operators (GCC/Clang vector extensions): no fusion happens in them.
template <class T>
inline typename Simd<T>::V sign1v(typename Simd<T>::V y) {  // sign with sign(0) = +1
    using S = Simd<T>;
    return y >= S::set1(T(0)) ? S::set1(T(1)) : S::set1(T(-1));
}

template <class T>
inline typename Simd<T>::V vabs(typename Simd<T>::V y) {
    using S = Simd<T>;
    return y < S::set1(T(0)) ? -y : y;
}

// a / b. On AVX-512 a reciprocal estimate refined by Newton steps and one correction of
// the quotient (q + (a - b q) / b, the remainder exact by FMA): within about half an ulp,
// where a division instruction costs 16 cycles a vector; every lane the same way.
template <class T>
inline typename Simd<T>::V vdiv(typename Simd<T>::V a, typename Simd<T>::V b) {
    using S = Simd<T>;
    if constexpr (S::fast_recip) {
        const auto y = S::recip(b);
        const auto q = a * y;
        return S::fma(S::fma(-b, q, a), y, q);
    } else {
        return a / b;
    }
}

// Sum of the lanes, in lane order.
template <class T>
inline T hsum(typename Simd<T>::V v) {
    T lanes[Simd<T>::W];
    std::memcpy(lanes, &v, sizeof lanes);
    T s = 0;
    for (int i = 0; i < Simd<T>::W; ++i) s += lanes[i];
    return s;
}

// acc += a[0 .. n) lane-wise: whole vectors, then one masked vector (zeros elsewhere).
template <class T>
inline void vacc(typename Simd<T>::V& acc, const T* a, int n) {
    using S = Simd<T>;
    int j = 0;
    for (; j + S::W <= n; j += S::W) acc = acc + S::load(a + j);
    if (j < n) acc = acc + S::load(a + j, S::mask(n - j));
}
#endif

// Sum of a[0 .. n): lane-wise over vectors, then the lanes in order (a fixed order).
template <class T>
inline T vsum(const T* a, std::size_t n) {
#if defined(TEXTLRP_SIMD)
    auto acc = Simd<T>::set1(T(0));
    vacc<T>(acc, a, int(n));
    return hsum<T>(acc);
#else
    T s = 0;
    for (std::size_t i = 0; i < n; ++i) s += a[i];
    return s;
#endif
}

}  // namespace
}  // namespace TEXTLRP_ISA
}  // namespace textlrp
