// Matrix kernels: register-tiled products, exact IEEE, sums in a fixed order.
#pragma once
// Included by the per-ISA translation units only (passes.cpp): everything here lives in the
// namespace of the instruction set being compiled.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "simd.hpp"

namespace textlrp {
namespace TEXTLRP_ISA {
namespace {

// Y[s] += X[s] * M for S rows given by pointers (rows of different sequences, or of
// different steps), M [K, N] row-major with leading dimension ldm. With `bias`, Y[s] =
// bias + X[s] * M instead (Y is only written).
//
// Every Y[s, j] is y + x[s,0] m[0,j] + x[s,1] m[1,j] + ... in this order, one fused
// multiply-add (or a multiply and an add, without FMA) per k: the same arithmetic whatever
// S, the row's place among the S rows, or the column's place in a tile. So results do not
// depend on how sequences are grouped, i.e. on the thread count or the batch.
//
// Tiling: a panel of NV*W columns (W lanes a vector) is walked for all rows, R rows at a
// time, with R x NV accumulators in registers over all of K; the panel of M (K x NV*W)
// stays in L1 while the row blocks pass over it, so M is read from L2 once per call.
#if defined(TEXTLRP_SIMD)
#if defined(__clang__)
#define TEXTLRP_UNROLL _Pragma("unroll")
#else
#define TEXTLRP_UNROLL _Pragma("GCC unroll 16")
#endif
#if defined(__AVX512F__)
constexpr int kRows = 8;  // 32 vector registers: 8 x 3 accumulators, 3 panel vectors
#else
constexpr int kRows = 4;  // 16 vector registers: 4 x 3 accumulators, 3 panel vectors
#endif
constexpr int kVecs = 3;

template <class T, int R, int NV, bool Tail>
inline void gemm_tile(int K, const T* const* x, const T* m, std::ptrdiff_t ldm, T* const* y, int j,
                      typename Simd<T>::Mask tail, const T* bias) {
    using S = Simd<T>;
    using V = typename S::V;
    constexpr int W = S::W;
    // Every loop over r and v is unrolled so that the accumulators live in registers (GCC
    // kept them on the stack in some instantiations otherwise).
    V acc[R][NV];
    TEXTLRP_UNROLL
    for (int r = 0; r < R; ++r) {
        const T* init = (bias ? bias : y[r]) + j;
        TEXTLRP_UNROLL
        for (int v = 0; v < NV; ++v)
            acc[r][v] = Tail && v == NV - 1 ? S::load(init + v * W, tail) : S::load(init + v * W);
    }
    const T* mk = m + j;
    for (int k = 0; k < K; ++k, mk += ldm) {
        V mv[NV];
        TEXTLRP_UNROLL
        for (int v = 0; v < NV; ++v) mv[v] = Tail && v == NV - 1 ? S::load(mk + v * W, tail) : S::load(mk + v * W);
        TEXTLRP_UNROLL
        for (int r = 0; r < R; ++r) {
            const V xr = S::set1(x[r][k]);
            TEXTLRP_UNROLL
            for (int v = 0; v < NV; ++v) acc[r][v] = S::fma(xr, mv[v], acc[r][v]);
        }
    }
    TEXTLRP_UNROLL
    for (int r = 0; r < R; ++r) {
        TEXTLRP_UNROLL
        for (int v = 0; v < NV; ++v) {
            if (Tail && v == NV - 1)
                S::store(y[r] + j + v * W, acc[r][v], tail);
            else
                S::store(y[r] + j + v * W, acc[r][v]);
        }
    }
}

// All S rows of one panel: blocks of R rows, then the remainder in halving blocks.
template <class T, int R, int NV, bool Tail>
inline void gemm_panel(int S, int K, const T* const* x, const T* m, std::ptrdiff_t ldm, T* const* y,
                       int j, typename Simd<T>::Mask tail, const T* bias) {
    int s = 0;
    for (; s + R <= S; s += R) gemm_tile<T, R, NV, Tail>(K, x + s, m, ldm, y + s, j, tail, bias);
    if constexpr (R > 1)
        if (s < S) gemm_panel<T, R / 2, NV, Tail>(S - s, K, x + s, m, ldm, y + s, j, tail, bias);
}

template <class T>
void gemm_ptr(int S, int K, int N, const T* const* X, const T* M, std::ptrdiff_t ldm, T* const* Y,
              const T* bias = nullptr) {
    using Sd = Simd<T>;
    constexpr int W = Sd::W, NR = kVecs * W;
    int j = 0;
    for (; j + NR <= N; j += NR) gemm_panel<T, kRows, kVecs, false>(S, K, X, M, ldm, Y, j, Sd::mask(0), bias);
    const int rest = N - j;
    if (rest == 0) return;
    const int full = rest / W, part = rest % W;
    const typename Sd::Mask tail = Sd::mask(part);
    // rest < 3 W columns: one to three vectors, the last one partial when part > 0
    if (part == 0) {
        if (full == 1) gemm_panel<T, kRows, 1, false>(S, K, X, M, ldm, Y, j, tail, bias);
        else gemm_panel<T, kRows, 2, false>(S, K, X, M, ldm, Y, j, tail, bias);
    } else {
        if (full == 0) gemm_panel<T, kRows, 1, true>(S, K, X, M, ldm, Y, j, tail, bias);
        else if (full == 1) gemm_panel<T, kRows, 2, true>(S, K, X, M, ldm, Y, j, tail, bias);
        else gemm_panel<T, kRows, 3, true>(S, K, X, M, ldm, Y, j, tail, bias);
    }
}
#else
template <class T>
void gemm_ptr(int S, int K, int N, const T* const* X, const T* M, std::ptrdiff_t ldm, T* const* Y,
              const T* bias = nullptr) {
    for (int s = 0; s < S; ++s)
        for (int j = 0; j < N; ++j) {
            T acc = bias ? bias[j] : Y[s][j];
            for (int k = 0; k < K; ++k) acc += X[s][k] * M[k * ldm + j];
            Y[s][j] = acc;
        }
}
#endif

// Y[S, N] += X[S, K] * M[K, N], rows with signed strides (a negative ldx or ldy walks a
// sequence backwards); the same arithmetic as gemm_ptr.
template <class T>
void gemm_acc(int S, int K, int N, const T* X, std::ptrdiff_t ldx, const T* M, std::ptrdiff_t ldm,
              T* Y, std::ptrdiff_t ldy) {
    constexpr int chunk = 64;
    const T* x[chunk];
    T* y[chunk];
    for (int s0 = 0; s0 < S; s0 += chunk) {
        const int n = std::min(chunk, S - s0);
        for (int r = 0; r < n; ++r) x[r] = X + (s0 + r) * ldx, y[r] = Y + (s0 + r) * ldy;
        gemm_ptr(n, K, N, x, M, ldm, y);
    }
}

}  // namespace
}  // namespace TEXTLRP_ISA
}  // namespace textlrp
