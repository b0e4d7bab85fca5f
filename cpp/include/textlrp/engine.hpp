// Batched kernels. Every function processes the sequences of a Batch independently,
// spread over `threads` worker threads; each sequence is computed by the same code
// whatever the thread count, so results are bit-identical for any `threads`.
//
// targets_in[k] = -1 selects the predicted class (argmax, first on ties); the class
// actually used is written to targets_out[k]. Inputs must have been validated
// (validate_batch): the kernels do not check ranges.
#pragma once

#include <cstdint>

#include "textlrp/model.hpp"

namespace textlrp {

struct LrpParams {
    double eps = 1e-3;
    double bias_factor = 0.0;
    Rule rule = Rule::signal_take_all;
};

// Throws std::invalid_argument / std::out_of_range describing the first problem found.
template <class T>
void validate_batch(const Model<T>& model, const Batch<T>& batch, std::int64_t n_tokens,
                    const std::int64_t* targets_in);

// Name of the instruction set the kernels run with on this CPU (generic, avx2, avx512).
const char* isa_name();

template <class T>
void forward(const Model<T>& model, const Batch<T>& batch, int threads, T* scores);

// relevance [n_tokens]; input_relevance [n_tokens, input_size] (may be null); rest [n]:
// what reaches the initial states of all directions of all layers; totals [n,
// model.stage_count()] (may be null): the relevance total at each stage (Model::stage_count).
template <class T>
void lrp(const Model<T>& model, const Batch<T>& batch, const std::int64_t* targets_in,
         const LrpParams& params, int threads, T* scores, std::int64_t* targets_out,
         T* relevance, T* input_relevance, T* rest, T* totals);

// grad [n_tokens, e] = d s_target / d x_t (may be null); sa = ||grad_t||^2; gi = grad_t . x_t.
template <class T>
void gradient(const Model<T>& model, const Batch<T>& batch, const std::int64_t* targets_in,
              int threads, T* scores, std::int64_t* targets_out, T* grad, T* sa, T* gi);

// drop [n_tokens] = s_target(x) - s_target(x with x_t zeroed); 0 at deleted positions.
template <class T>
void occlusion(const Model<T>& model, const Batch<T>& batch, const std::int64_t* targets_in,
               int threads, T* scores, std::int64_t* targets_out, T* drop);

}  // namespace textlrp
