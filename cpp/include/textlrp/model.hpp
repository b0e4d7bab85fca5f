// The model the engine runs: embedding -> stacked (bi)LSTM -> dense head.
// Pure C++17, no Python: the bindings fill these structs and call finalize().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace textlrp {

// How the relevance of a product gate * source is split between its factors.
enum class Rule { signal_take_all, prop, half, abs };

Rule parse_rule(const std::string& name);  // throws std::invalid_argument

template <class T>
struct LstmDirection {
    int in = 0;             // input size
    int d = 0;              // hidden size
    std::vector<T> W_ih;    // [4d, in], gate rows i, f, g, o
    std::vector<T> W_hh;    // [4d, d]
    std::vector<T> b;       // [4d] (b_ih + b_hh)
    // Transposed copies: the forward pass accumulates rows of these with contiguous
    // axpys, which vectorise without reassociating sums (no -ffast-math needed).
    std::vector<T> W_ih_t;  // [in, 4d]
    std::vector<T> W_hh_t;  // [d, 4d]
};

template <class T>
struct LstmLayer {
    std::vector<LstmDirection<T>> dirs;  // 1 = forward, 2 = forward + backward
    int in() const { return dirs.front().in; }
    int out() const {
        int n = 0;
        for (const auto& dir : dirs) n += dir.d;
        return n;
    }
};

template <class T>
struct DenseLayer {
    int in = 0;
    int out = 0;
    std::vector<T> W;    // [out, in]
    std::vector<T> W_t;  // [in, out]
    std::vector<T> b;    // [out]; zeros for a layer without bias
};

template <class T>
struct Model {
    int vocab_size = 0;
    int embedding_dim = 0;
    std::vector<T> embedding;  // [vocab_size, embedding_dim]
    std::vector<LstmLayer<T>> layers;
    std::vector<DenseLayer<T>> head;

    int n_classes() const { return head.back().out; }
    int n_features() const { return layers.back().out(); }

    // Checks that all shapes chain and all values are finite, then builds the
    // transposed copies. Throws std::invalid_argument naming the offending array.
    void finalize();
};

// A batch of variable-length token sequences, sequence k = ids[offsets[k] .. offsets[k+1]).
struct Batch {
    const std::int64_t* ids = nullptr;
    const std::int64_t* offsets = nullptr;  // [n + 1]
    std::int64_t n = 0;
    const std::uint8_t* deleted = nullptr;  // [offsets[n]], nonzero = embedding replaced by zeros; may be null
};

}  // namespace textlrp
