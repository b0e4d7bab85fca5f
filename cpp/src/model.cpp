// Model checks and the batch validation shared by all kernels (compiled once).
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "textlrp/engine.hpp"

namespace textlrp {

Rule parse_rule(const std::string& name) {
    if (name == "signal-take-all") return Rule::signal_take_all;
    if (name == "prop") return Rule::prop;
    if (name == "half") return Rule::half;
    if (name == "abs") return Rule::abs;
    throw std::invalid_argument("unknown rule '" + name +
                                "'; expected one of: signal-take-all, prop, half, abs");
}

namespace {

template <class T>
void check_finite(const std::vector<T>& v, const std::string& name) {
    for (const T x : v)
        if (!std::isfinite(x)) throw std::invalid_argument(name + " contains NaN or inf");
}

template <class T>
std::vector<T> transpose(const std::vector<T>& a, int rows, int cols) {
    std::vector<T> t(a.size());
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) t[std::size_t(c) * rows + r] = a[std::size_t(r) * cols + c];
    return t;
}

}  // namespace

template <class T>
void Model<T>::finalize() {
    if (vocab_size <= 0 || embedding_dim <= 0)
        throw std::invalid_argument("embedding must have at least one row and one column");
    if (embedding.size() != std::size_t(vocab_size) * embedding_dim)
        throw std::invalid_argument("embedding size does not match its shape");
    check_finite(embedding, "embedding");
    if (layers.empty()) throw std::invalid_argument("the model needs at least one LSTM layer");
    if (head.empty()) throw std::invalid_argument("the model needs at least one dense layer");
    int in = embedding_dim;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        auto& layer = layers[l];
        if (layer.dirs.empty() || layer.dirs.size() > 2)
            throw std::invalid_argument("LSTM layer " + std::to_string(l) +
                                        " must have 1 or 2 directions");
        for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
            auto& dir = layer.dirs[k];
            const std::string name = "lstm layer " + std::to_string(l) + " direction " +
                                     std::to_string(k);
            if (dir.d <= 0) throw std::invalid_argument(name + ": hidden size must be positive");
            if (dir.in != in)
                throw std::invalid_argument(name + ": W_ih has " + std::to_string(dir.in) +
                                            " columns, expected " + std::to_string(in));
            if (dir.W_ih.size() != std::size_t(4) * dir.d * dir.in ||
                dir.W_hh.size() != std::size_t(4) * dir.d * dir.d ||
                dir.b.size() != std::size_t(4) * dir.d)
                throw std::invalid_argument(name + ": inconsistent W_ih / W_hh / b sizes");
            check_finite(dir.W_ih, name + " W_ih");
            check_finite(dir.W_hh, name + " W_hh");
            check_finite(dir.b, name + " b");
            dir.W_ih_t = transpose(dir.W_ih, 4 * dir.d, dir.in);
            dir.W_hh_t = transpose(dir.W_hh, 4 * dir.d, dir.d);
        }
        in = layer.out();
    }
    for (std::size_t k = 0; k < head.size(); ++k) {
        auto& dense = head[k];
        const std::string name = "head layer " + std::to_string(k);
        if (dense.in != in)
            throw std::invalid_argument(name + ": W has " + std::to_string(dense.in) +
                                        " columns, expected " + std::to_string(in));
        if (dense.out <= 0) throw std::invalid_argument(name + ": no output units");
        if (dense.W.size() != std::size_t(dense.out) * dense.in || dense.b.size() != std::size_t(dense.out))
            throw std::invalid_argument(name + ": inconsistent W / b sizes");
        check_finite(dense.W, name + " W");
        check_finite(dense.b, name + " b");
        dense.W_t = transpose(dense.W, dense.out, dense.in);
        in = dense.out;
    }
}

template <class T>
void validate_batch(const Model<T>& model, const Batch& batch, std::int64_t n_tokens,
                    const std::int64_t* targets_in) {
    if (batch.n < 0) throw std::invalid_argument("negative number of sequences");
    if (batch.offsets[0] != 0) throw std::invalid_argument("offsets must start at 0");
    if (batch.offsets[batch.n] != n_tokens)
        throw std::invalid_argument("offsets must end at the number of tokens");
    for (std::int64_t k = 0; k < batch.n; ++k) {
        const std::int64_t len = batch.offsets[k + 1] - batch.offsets[k];
        if (len <= 0)
            throw std::invalid_argument("sequence " + std::to_string(k) +
                                        " is empty: there is nothing to explain");
    }
    for (std::int64_t i = 0; i < n_tokens; ++i) {
        const std::int64_t id = batch.ids[i];
        if (id < 0 || id >= model.vocab_size) {
            auto it = std::upper_bound(batch.offsets, batch.offsets + batch.n + 1, i);
            const std::int64_t k = (it - batch.offsets) - 1;
            throw std::out_of_range("token id " + std::to_string(id) + " at position " +
                                    std::to_string(i - batch.offsets[k]) + " of sequence " +
                                    std::to_string(k) + " is out of range [0, " +
                                    std::to_string(model.vocab_size) + ")");
        }
    }
    if (targets_in) {
        for (std::int64_t k = 0; k < batch.n; ++k)
            if (targets_in[k] < -1 || targets_in[k] >= model.n_classes())
                throw std::out_of_range("target " + std::to_string(targets_in[k]) +
                                        " of sequence " + std::to_string(k) +
                                        " is out of range: the model has " +
                                        std::to_string(model.n_classes()) + " classes");
    }
}


template struct Model<double>;
template struct Model<float>;
template void validate_batch<double>(const Model<double>&, const Batch&, std::int64_t, const std::int64_t*);
template void validate_batch<float>(const Model<float>&, const Batch&, std::int64_t, const std::int64_t*);

}  // namespace textlrp
