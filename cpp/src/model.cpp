// Model checks, name parsing and the batch validation shared by all kernels (compiled once).
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

Cell parse_cell(const std::string& name) {
    if (name == "lstm") return Cell::lstm;
    if (name == "gru") return Cell::gru;
    throw std::invalid_argument("unknown cell '" + name + "'; expected one of: lstm, gru");
}

Pooling parse_pooling(const std::string& name) {
    if (name == "last") return Pooling::last;
    if (name == "mean") return Pooling::mean;
    if (name == "max") return Pooling::max;
    if (name == "attention") return Pooling::attention;
    throw std::invalid_argument("unknown pooling '" + name +
                                "'; expected one of: last, mean, max, attention");
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
    if (input_size <= 0) throw std::invalid_argument("the input size must be positive");
    if (vocab_size < 0) throw std::invalid_argument("negative vocabulary size");
    if (!continuous()) {
        if (embedding.size() != std::size_t(vocab_size) * input_size)
            throw std::invalid_argument("embedding size does not match its shape");
        check_finite(embedding, "embedding");
    } else if (!embedding.empty()) {
        throw std::invalid_argument("a continuous-input model has no embedding");
    }
    if (layers.empty()) throw std::invalid_argument("the model needs at least one recurrent layer");
    if (head.empty()) throw std::invalid_argument("the model needs at least one dense layer");
    int in = input_size;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        auto& layer = layers[l];
        const int G = layer.gates();
        if (layer.dirs.empty() || layer.dirs.size() > 2)
            throw std::invalid_argument("recurrent layer " + std::to_string(l) +
                                        " must have 1 or 2 directions");
        for (std::size_t k = 0; k < layer.dirs.size(); ++k) {
            auto& dir = layer.dirs[k];
            const std::string name = std::string(layer.cell == Cell::lstm ? "lstm" : "gru") +
                                     " layer " + std::to_string(l) + " direction " + std::to_string(k);
            if (dir.d <= 0) throw std::invalid_argument(name + ": hidden size must be positive");
            if (dir.in != in)
                throw std::invalid_argument(name + ": W_ih has " + std::to_string(dir.in) +
                                            " columns, expected " + std::to_string(in));
            const std::size_t rows = std::size_t(G) * dir.d;
            if (dir.W_ih.size() != rows * dir.in || dir.W_hh.size() != rows * dir.d ||
                dir.b_ih.size() != rows || dir.b_hh.size() != rows)
                throw std::invalid_argument(name + ": inconsistent W_ih / W_hh / b_ih / b_hh sizes");
            check_finite(dir.W_ih, name + " W_ih");
            check_finite(dir.W_hh, name + " W_hh");
            check_finite(dir.b_ih, name + " b_ih");
            check_finite(dir.b_hh, name + " b_hh");
            dir.b = dir.b_ih;
            if (layer.cell == Cell::lstm)
                for (std::size_t r = 0; r < rows; ++r) dir.b[r] += dir.b_hh[r];
            dir.W_ih_t = transpose(dir.W_ih, int(rows), dir.in);
            dir.W_hh_t = transpose(dir.W_hh, int(rows), dir.d);
        }
        if (layer.dirs.size() == 2 && layer.dirs[0].d != layer.dirs[1].d)
            throw std::invalid_argument("recurrent layer " + std::to_string(l) +
                                        ": both directions must have the same hidden size");
        in = layer.out();
    }
    if (pooling == Pooling::attention) {
        auto& a = attention;
        if (a.size <= 0) throw std::invalid_argument("attention: size must be positive");
        if (a.features != in)
            throw std::invalid_argument("attention: W has " + std::to_string(a.features) +
                                        " columns, expected " + std::to_string(in));
        if (a.W.size() != std::size_t(a.size) * a.features || a.b.size() != std::size_t(a.size) ||
            a.v.size() != std::size_t(a.size))
            throw std::invalid_argument("attention: inconsistent W / b / v sizes");
        check_finite(a.W, "attention W");
        check_finite(a.b, "attention b");
        check_finite(a.v, "attention v");
        a.W_t = transpose(a.W, a.size, a.features);
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
void validate_batch(const Model<T>& model, const Batch<T>& batch, std::int64_t n_tokens,
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
    if (model.continuous()) {
        if (!batch.x && n_tokens > 0) throw std::invalid_argument("a continuous-input model needs input vectors");
        for (std::int64_t i = 0; i < n_tokens * model.input_size; ++i)
            if (!std::isfinite(batch.x[i])) {
                const std::int64_t row = i / model.input_size;
                auto it = std::upper_bound(batch.offsets, batch.offsets + batch.n + 1, row);
                const std::int64_t k = (it - batch.offsets) - 1;
                throw std::invalid_argument("input " + std::to_string(k) + " has NaN or inf at step " +
                                            std::to_string(row - batch.offsets[k]));
            }
    } else if (!batch.ids && n_tokens > 0) {
        throw std::invalid_argument("a token model needs token ids");
    }
    for (std::int64_t i = 0; i < (model.continuous() ? 0 : n_tokens); ++i) {
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
template void validate_batch<double>(const Model<double>&, const Batch<double>&, std::int64_t, const std::int64_t*);
template void validate_batch<float>(const Model<float>&, const Batch<float>&, std::int64_t, const std::int64_t*);

}  // namespace textlrp
