// The scheduler: a batch sorted by decreasing length, cut into groups of up to
// Group::capacity sequences of similar length, spread over `threads` workers. Each worker
// owns one Group (its workspaces); what a sequence computes does not depend on which
// worker or group it lands in, so results are bit-identical for any thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "textlrp/model.hpp"

namespace textlrp {
namespace TEXTLRP_ISA {
namespace {

// Calls fn(group, seqs, indices, count) per group, after group.forward(seqs, count, keep).
template <class Group, class T, class F>
void parallel_groups(const Model<T>& model, const Batch<T>& batch, int threads, F&& fn,
                     bool keep_input_projection = false) {
    const std::int64_t n = batch.n;
    std::vector<std::int64_t> order(n);
    for (std::int64_t k = 0; k < n; ++k) order[k] = k;
    auto len = [&](std::int64_t k) { return batch.offsets[k + 1] - batch.offsets[k]; };
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return len(a) > len(b); });
    const int cap = Group::capacity;
    const std::int64_t n_groups = (n + cap - 1) / cap;
    const int workers = int(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, n_groups)));
    std::atomic<std::int64_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&]() {
        try {
            Group group(model);
            typename Group::SeqPtr seqs[Group::capacity];
            for (std::int64_t gi; (gi = next.fetch_add(1)) < n_groups;) {
                const std::int64_t start = gi * cap;
                const int count = int(std::min<std::int64_t>(cap, n - start));
                const std::int64_t* idx = order.data() + start;
                for (int b = 0; b < count; ++b) {
                    seqs[b] = &group.seq(b);
                    group.load(*seqs[b], batch, idx[b]);
                }
                group.forward(seqs, count, keep_input_projection);
                fn(group, seqs, idx, count);
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            next.store(n_groups);
        }
    };
    if (workers == 1) {
        work();
    } else {
        std::vector<std::thread> pool;
        pool.reserve(workers - 1);
        for (int w = 1; w < workers; ++w) pool.emplace_back(work);
        work();
        for (auto& th : pool) th.join();
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace
}  // namespace TEXTLRP_ISA
}  // namespace textlrp
