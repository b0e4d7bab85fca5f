// Matrix kernels: small register-blocked products, exact IEEE, sums in a fixed order.
#pragma once
// Included by the per-ISA translation units only (passes.cpp): everything here lives in the
// namespace of the instruction set being compiled.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

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

}  // namespace
}  // namespace TEXTLRP_ISA
}  // namespace textlrp
