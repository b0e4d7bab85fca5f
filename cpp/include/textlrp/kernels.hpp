// Per-instruction-set copies of the kernels of engine.hpp. kernels.cpp is compiled once
// per ISA with TEXTLRP_ISA naming the namespace; dispatch.cpp selects one at run time.
#pragma once

#include "textlrp/engine.hpp"

#define TEXTLRP_DECLARE_KERNELS(ns)                                                              \
    namespace textlrp::ns {                                                                      \
    template <class T>                                                                           \
    void forward(const Model<T>&, const Batch<T>&, int, T*);                                        \
    template <class T>                                                                           \
    void lrp(const Model<T>&, const Batch<T>&, const std::int64_t*, const LrpParams&, int, T*,      \
             std::int64_t*, T*, T*, T*, T*);                                                     \
    template <class T>                                                                           \
    void gradient(const Model<T>&, const Batch<T>&, const std::int64_t*, int, T*, std::int64_t*,    \
                  T*, T*, T*);                                                                   \
    template <class T>                                                                           \
    void occlusion(const Model<T>&, const Batch<T>&, const std::int64_t*, int, T*, std::int64_t*,   \
                   T*);                                                                          \
    }

// Explicit instantiations of the four kernels for one scalar type, in the current namespace.
#define TEXTLRP_INSTANTIATE_KERNELS(T)                                                           \
    template void forward<T>(const Model<T>&, const Batch<T>&, int, T*);                            \
    template void lrp<T>(const Model<T>&, const Batch<T>&, const std::int64_t*, const LrpParams&,   \
                         int, T*, std::int64_t*, T*, T*, T*, T*);                                \
    template void gradient<T>(const Model<T>&, const Batch<T>&, const std::int64_t*, int, T*,       \
                              std::int64_t*, T*, T*, T*);                                        \
    template void occlusion<T>(const Model<T>&, const Batch<T>&, const std::int64_t*, int, T*,      \
                               std::int64_t*, T*);

TEXTLRP_DECLARE_KERNELS(generic)
#if defined(TEXTLRP_HAVE_X86_ISAS)
TEXTLRP_DECLARE_KERNELS(avx2)
TEXTLRP_DECLARE_KERNELS(avx512)
#endif
