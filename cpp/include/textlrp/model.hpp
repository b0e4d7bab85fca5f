// The model the engine runs: inputs (embedding rows or continuous vectors) -> stacked
// recurrent layers (LSTM or GRU, 1 or 2 directions) -> pooling over the last layer's
// outputs -> dense head. Pure C++17, no Python: the bindings fill these structs and call
// finalize(). python/textlrp/spec.py mirrors them one to one; docs/algorithm.md is the
// algorithm of record.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace textlrp {

// How the relevance of a product gate * source is split between its factors (LSTM cells).
enum class Rule { signal_take_all, prop, half, abs };
// The recurrent cell; gate row blocks in PyTorch's order: LSTM i, f, g, o; GRU r, z, n.
enum class Cell { lstm, gru };
// Which of the last layer's outputs the head reads.
enum class Pooling { last, mean, max, attention };

// Each throws std::invalid_argument naming the accepted values.
Rule parse_rule(const std::string& name);
Cell parse_cell(const std::string& name);
Pooling parse_pooling(const std::string& name);

constexpr int gate_count(Cell cell) { return cell == Cell::lstm ? 4 : 3; }

template <class T>
struct Direction {
    int in = 0;              // input size
    int d = 0;               // hidden size
    std::vector<T> W_ih;     // [G*d, in]
    std::vector<T> W_hh;     // [G*d, d]
    std::vector<T> b_ih;     // [G*d]
    std::vector<T> b_hh;     // [G*d]
    // Built by finalize():
    std::vector<T> b;        // [G*d] bias added with the input projection: LSTM b_ih + b_hh
                             // (only the sum matters), GRU b_ih (b_hn sits inside r * (...))
    // Transposed copies: the forward pass accumulates rows of these with contiguous
    // axpys, which vectorise without reassociating sums (no -ffast-math needed).
    std::vector<T> W_ih_t;   // [in, G*d]
    std::vector<T> W_hh_t;   // [d, G*d]
};

template <class T>
struct Recurrent {
    Cell cell = Cell::lstm;
    std::vector<Direction<T>> dirs;  // 1 = forward, 2 = forward + backward
    int gates() const { return gate_count(cell); }
    int in() const { return dirs.front().in; }
    int out() const {
        int n = 0;
        for (const auto& dir : dirs) n += dir.d;
        return n;
    }
};

template <class T>
struct Dense {
    int in = 0;
    int out = 0;
    std::vector<T> W;    // [out, in]
    std::vector<T> W_t;  // [in, out]
    std::vector<T> b;    // [out]; zeros for a layer without bias
};

// e_t = v . tanh(W y_t + b), alpha = softmax_t(e), context = sum_t alpha_t y_t.
template <class T>
struct Attention {
    int size = 0;        // A
    int features = 0;    // F
    std::vector<T> W;    // [A, F]
    std::vector<T> W_t;  // [F, A]
    std::vector<T> b;    // [A]
    std::vector<T> v;    // [A]
};

template <class T>
struct Model {
    int vocab_size = 0;        // 0: continuous inputs (no embedding)
    int input_size = 0;        // embedding width, or the width of a continuous input vector
    std::vector<T> embedding;  // [vocab_size, input_size]; empty for continuous inputs
    std::vector<Recurrent<T>> layers;
    Pooling pooling = Pooling::last;
    Attention<T> attention;    // used when pooling == attention
    std::vector<Dense<T>> head;

    bool continuous() const { return vocab_size == 0; }
    int n_classes() const { return head.back().out; }
    int n_features() const { return layers.back().out(); }
    // Stages of the layer-by-layer relevance totals of LRP, top down: the explained score,
    // each head layer's input (last layer first), the last recurrent layer's outputs after
    // pooling, then per recurrent layer (top first) and direction: its outputs, what reached
    // its initial state, its inputs.
    int stage_count() const {
        int n = 2 + int(head.size());
        for (const auto& layer : layers) n += 3 * int(layer.dirs.size());
        return n;
    }
    bool has(Cell cell) const {
        for (const auto& layer : layers)
            if (layer.cell == cell) return true;
        return false;
    }

    // Checks that all shapes chain and all values are finite, then builds the derived
    // arrays. Throws std::invalid_argument naming the offending array.
    void finalize();
};

// A batch of variable-length sequences, sequence k = rows offsets[k] .. offsets[k+1].
// Token models read ids; continuous models read x ([offsets[n], input_size] row-major).
template <class T>
struct Batch {
    const std::int64_t* ids = nullptr;
    const T* x = nullptr;
    const std::int64_t* offsets = nullptr;  // [n + 1]
    std::int64_t n = 0;
    const std::uint8_t* deleted = nullptr;  // [offsets[n]], nonzero = input zeroed; may be null
};

}  // namespace textlrp
