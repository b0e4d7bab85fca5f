// What a pass keeps per sequence: the states of each layer and direction, the head's
// activations and the backward buffers. Sized on first use and reused from one sequence to
// the next (O(T * width) per sequence).
#pragma once

#include <cstdint>
#include <vector>

#include "textlrp/model.hpp"

namespace textlrp {
namespace TEXTLRP_ISA {
namespace {

// Per-direction states of one sequence, rows in processing order s (the backward direction
// processes positions T-1 .. 0). Which arrays are used is the cell's business.
template <class T>
struct DirState {
    std::vector<T> zx;  // [T, G*d] W_ih x + b (GRU always; LSTM first layer when occlusion reuses it)
    std::vector<T> z;   // [T, G*d] pre-activations (GRU: only its n rows, p = W_in x + b_in + r * s)
    std::vector<T> a;   // [T, G*d] gate activations
    std::vector<T> c;   // [T, d] LSTM cell state
    std::vector<T> tc;  // [T, d] LSTM tanh(c)
    std::vector<T> zh;  // [T, G*d] GRU W_hh h_prev + b_hh
    std::vector<T> h;   // [T, d]
};

template <class T>
struct LayerState {
    std::vector<T> y;  // [T, out] layer outputs by position (directions concatenated)
    std::vector<DirState<T>> dirs;
};

// Which state set of a Seq a pass runs on: the input as given, or a variant (occlusion).
enum class States { base, alt };

template <class T>
struct Seq {
    int len = 0;
    std::vector<T> x0;                    // [T, input_size] first-layer input
    std::vector<LayerState<T>> base;      // states of the input as given
    std::vector<LayerState<T>> alt;       // states of an occluded variant (occlusion)
    std::vector<std::vector<T>> head_in;  // input of each dense layer (head_in[0]: pooled features)
    std::vector<std::vector<T>> head_y;   // pre-activation of each dense layer
    std::vector<T> u, alpha;              // attention: tanh(W y_t + b) [T, A], weights [T]
    std::vector<int> argmax;              // max pooling: position of each feature's maximum
    std::vector<std::vector<T>> r;        // backward buffers per layer input, [T, in_l]
    std::vector<T> top;                   // [T, out_last]: what the pooling sends to the last layer
    std::vector<T> carry_c, carry_h;      // per-direction carries of the backward passes
    std::vector<T> tmp, work;             // per-step scratch rows
    std::vector<T> steps, wx, s2;         // per-step rows deferred to one matrix product
    std::vector<T> zeros;                 // [widest d], stands for the zero initial states
    std::vector<T> totals;                // LRP: relevance total at each stage (stage_count())
    T S = 0;                              // a per-step scalar a cell passes from step to finish
    T rest = 0;

    const T* scores() const { return head_y.back().data(); }
    std::vector<LayerState<T>>& states(States which) { return which == States::alt ? alt : base; }
};

}  // namespace
}  // namespace TEXTLRP_ISA
}  // namespace textlrp
