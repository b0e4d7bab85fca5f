// Run-time choice of the kernel copy for this CPU. TEXTLRP_ISA=generic|avx2|avx512 in the
// environment forces a (supported) copy, for benchmarks and for testing all copies.
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "textlrp/kernels.hpp"

namespace textlrp {
namespace {

enum class Isa { generic, avx2, avx512 };

Isa detect() {
#if defined(TEXTLRP_HAVE_X86_ISAS)
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    Isa best = avx512 ? Isa::avx512 : avx2 ? Isa::avx2 : Isa::generic;
    if (const char* forced = std::getenv("TEXTLRP_ISA")) {
        const std::string f = forced;
        if (f == "generic") return Isa::generic;
        if (f == "avx2" && avx2) return Isa::avx2;
        if (f == "avx512" && avx512) return Isa::avx512;
    }
    return best;
#else
    return Isa::generic;
#endif
}

Isa isa() {
    static const Isa chosen = detect();
    return chosen;
}

}  // namespace

const char* isa_name() {
    switch (isa()) {
        case Isa::avx2: return "avx2";
        case Isa::avx512: return "avx512";
        default: return "generic";
    }
}

#if defined(TEXTLRP_HAVE_X86_ISAS)
#define TEXTLRP_DISPATCH(fn, ...)                                  \
    switch (isa()) {                                               \
        case Isa::avx512: return avx512::fn<T>(__VA_ARGS__);       \
        case Isa::avx2: return avx2::fn<T>(__VA_ARGS__);           \
        default: return generic::fn<T>(__VA_ARGS__);               \
    }
#else
#define TEXTLRP_DISPATCH(fn, ...) return generic::fn<T>(__VA_ARGS__);
#endif

template <class T>
void forward(const Model<T>& m, const Batch<T>& b, int threads, T* scores) {
    TEXTLRP_DISPATCH(forward, m, b, threads, scores)
}

template <class T>
void lrp(const Model<T>& m, const Batch<T>& b, const std::int64_t* targets_in, const LrpParams& p,
         int threads, T* scores, std::int64_t* targets_out, T* relevance, T* emb, T* rest, T* totals) {
    TEXTLRP_DISPATCH(lrp, m, b, targets_in, p, threads, scores, targets_out, relevance, emb, rest, totals)
}

template <class T>
void gradient(const Model<T>& m, const Batch<T>& b, const std::int64_t* targets_in, int threads,
              T* scores, std::int64_t* targets_out, T* grad, T* sa, T* gi) {
    TEXTLRP_DISPATCH(gradient, m, b, targets_in, threads, scores, targets_out, grad, sa, gi)
}

template <class T>
void occlusion(const Model<T>& m, const Batch<T>& b, const std::int64_t* targets_in, int threads,
               T* scores, std::int64_t* targets_out, T* drop) {
    TEXTLRP_DISPATCH(occlusion, m, b, targets_in, threads, scores, targets_out, drop)
}

TEXTLRP_INSTANTIATE_KERNELS(double)
TEXTLRP_INSTANTIATE_KERNELS(float)

}  // namespace textlrp
