// Product rules: how the relevance of gate * source is split between the two factors
// (docs/algorithm.md, "Backwards through the network"). Each rule is a policy type chosen
// once per call; share() is the source's share w, the gate gets the rest.
#pragma once

#include <cmath>

#include "detail/mathfn.hpp"
#include "textlrp/model.hpp"

namespace textlrp {
namespace TEXTLRP_ISA {
namespace {

struct SignalTakeAll {
    static constexpr bool gates = false;  // gates receive nothing: their rows are skipped
    template <class T>
    static T share(T, T, T) { return T(1); }
#if defined(TEXTLRP_SIMD)
    template <class T>
    static typename Simd<T>::V vshare(typename Simd<T>::V, typename Simd<T>::V, typename Simd<T>::V) {
        return Simd<T>::set1(T(1));
    }
#endif
};

struct Half {
    static constexpr bool gates = true;
    template <class T>
    static T share(T, T, T) { return T(0.5); }
#if defined(TEXTLRP_SIMD)
    template <class T>
    static typename Simd<T>::V vshare(typename Simd<T>::V, typename Simd<T>::V, typename Simd<T>::V) {
        return Simd<T>::set1(T(0.5));
    }
#endif
};

struct Prop {
    static constexpr bool gates = true;
    template <class T>
    static T share(T gate, T src, T eps) { return src / (gate + src + eps * sign1(gate + src)); }
#if defined(TEXTLRP_SIMD)
    template <class T, class V = typename Simd<T>::V>
    static V vshare(V gate, V src, V eps) { return vdiv<T>(src, gate + src + eps * sign1v<T>(gate + src)); }
#endif
};

struct Abs {
    static constexpr bool gates = true;
    template <class T>
    static T share(T gate, T src, T) {
        const T n = std::abs(gate) + std::abs(src);
        return n > T(0) ? std::abs(src) / n : T(0.5);
    }
#if defined(TEXTLRP_SIMD)
    template <class T, class V = typename Simd<T>::V>
    static V vshare(V gate, V src, V) {
        const V n = vabs<T>(gate) + vabs<T>(src);
        return n > Simd<T>::set1(T(0)) ? vdiv<T>(vabs<T>(src), n) : Simd<T>::set1(T(0.5));
    }
#endif
};

// Calls fn(RulePolicy{}) for the rule chosen at run time.
template <class F>
void with_rule(Rule rule, F&& fn) {
    switch (rule) {
        case Rule::signal_take_all: return fn(SignalTakeAll{});
        case Rule::half: return fn(Half{});
        case Rule::prop: return fn(Prop{});
        case Rule::abs: return fn(Abs{});
    }
}

}  // namespace
}  // namespace TEXTLRP_ISA
}  // namespace textlrp
