// The only pybind11 code: converts and checks arrays, releases the GIL around kernels,
// maps C++ errors to Python ones (std::invalid_argument -> ValueError,
// std::out_of_range -> IndexError). Everything is validated here, before any kernel runs,
// so bad input raises instead of crashing the interpreter.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <climits>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "textlrp/engine.hpp"
#include "textlrp/model.hpp"

#if defined(_WIN32)
#include <process.h>
static long process_id() { return long(_getpid()); }
#else
#include <unistd.h>
static long process_id() { return long(getpid()); }
#endif

namespace py = pybind11;
using namespace textlrp;

namespace {

template <class T>
using farray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// Copies a real-valued array of the expected rank into a vector; returns its shape.
template <class T>
std::vector<py::ssize_t> take(const py::handle& obj, int ndim, const std::string& name,
                              std::vector<T>& out) {
    py::array raw = py::array::ensure(obj);
    if (!raw) throw py::type_error(name + " must be an array of numbers");
    const char kind = raw.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u')
        throw py::type_error(name + " must hold real numbers, got dtype " +
                             std::string(py::str(raw.dtype())));
    if (raw.ndim() != ndim)
        throw std::invalid_argument(name + " must have " + std::to_string(ndim) +
                                    " dimensions, got " + std::to_string(raw.ndim()));
    farray<T> a = farray<T>::ensure(raw);
    out.assign(a.data(), a.data() + a.size());
    return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// Copies an integer array. A private copy means a caller mutating its array from another
// thread while the GIL is released cannot invalidate the checks done here.
std::vector<std::int64_t> take_ints(const py::handle& obj, const std::string& name) {
    py::array raw = py::array::ensure(obj);
    if (!raw) throw py::type_error(name + " must be an integer array");
    const char kind = raw.dtype().kind();
    if (kind != 'i' && kind != 'u')
        throw py::type_error(name + " must be an integer array, got dtype " +
                             std::string(py::str(raw.dtype())));
    if (raw.ndim() != 1) throw std::invalid_argument(name + " must be one-dimensional");
    auto a = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(raw);
    return std::vector<std::int64_t>(a.data(), a.data() + a.size());
}

template <class T>
Model<T> build_model(const py::handle& embedding, int input_size, const py::list& layers,
                     const std::string& pooling, const py::handle& attention, const py::list& head) {
    Model<T> m;
    if (embedding.is_none()) {
        m.vocab_size = 0;
        m.input_size = input_size;
    } else {
        auto shape = take<T>(embedding, 2, "embedding", m.embedding);
        if (shape[0] < 1 || shape[1] < 1 || shape[0] > INT_MAX || shape[1] > INT_MAX)
            throw std::invalid_argument("embedding must have between 1 and 2^31 - 1 rows and columns");
        m.vocab_size = int(shape[0]);
        m.input_size = int(shape[1]);
        if (input_size != 0 && input_size != m.input_size)
            throw std::invalid_argument("input_size differs from the embedding width");
    }
    for (std::size_t l = 0; l < layers.size(); ++l) {
        Recurrent<T> layer;
        const py::tuple spec = layers[l].cast<py::tuple>();
        if (spec.size() != 2) throw std::invalid_argument("recurrent layer: expected (cell, directions)");
        layer.cell = parse_cell(spec[0].cast<std::string>());
        const int G = layer.gates();
        const py::list dirs = spec[1].cast<py::list>();
        for (std::size_t k = 0; k < dirs.size(); ++k) {
            const std::string name = spec[0].cast<std::string>() + " layer " + std::to_string(l) +
                                     " direction " + std::to_string(k);
            const py::tuple parts = dirs[k].cast<py::tuple>();
            if (parts.size() != 4) throw std::invalid_argument(name + ": expected (W_ih, W_hh, b_ih, b_hh)");
            Direction<T> dir;
            auto s_ih = take<T>(parts[0], 2, name + " W_ih", dir.W_ih);
            auto s_hh = take<T>(parts[1], 2, name + " W_hh", dir.W_hh);
            auto s_bi = take<T>(parts[2], 1, name + " b_ih", dir.b_ih);
            auto s_bh = take<T>(parts[3], 1, name + " b_hh", dir.b_hh);
            if (s_ih[0] % G != 0 || s_ih[0] == 0 || s_ih[0] > INT_MAX || s_ih[1] > INT_MAX)
                throw std::invalid_argument(name + " W_ih: rows must be " + std::to_string(G) +
                                            " * hidden size, got " + std::to_string(s_ih[0]));
            dir.d = int(s_ih[0] / G);
            dir.in = int(s_ih[1]);
            if (s_hh[0] != G * py::ssize_t(dir.d) || s_hh[1] != dir.d)
                throw std::invalid_argument(name + " W_hh: expected shape (" + std::to_string(G * dir.d) +
                                            ", " + std::to_string(dir.d) + "), got (" +
                                            std::to_string(s_hh[0]) + ", " + std::to_string(s_hh[1]) + ")");
            if (s_bi[0] != G * py::ssize_t(dir.d) || s_bh[0] != G * py::ssize_t(dir.d))
                throw std::invalid_argument(name + " b_ih / b_hh: expected " + std::to_string(G * dir.d) +
                                            " values each");
            layer.dirs.push_back(std::move(dir));
        }
        m.layers.push_back(std::move(layer));
    }
    m.pooling = parse_pooling(pooling);
    if (m.pooling == Pooling::attention) {
        if (attention.is_none()) throw std::invalid_argument("attention pooling needs (W, b, v)");
        const py::tuple parts = attention.cast<py::tuple>();
        if (parts.size() != 3) throw std::invalid_argument("attention: expected (W, b, v)");
        auto s_w = take<T>(parts[0], 2, "attention W", m.attention.W);
        take<T>(parts[1], 1, "attention b", m.attention.b);
        take<T>(parts[2], 1, "attention v", m.attention.v);
        if (s_w[0] > INT_MAX || s_w[1] > INT_MAX) throw std::invalid_argument("attention W is too large");
        m.attention.size = int(s_w[0]);
        m.attention.features = int(s_w[1]);
    } else if (!attention.is_none()) {
        throw std::invalid_argument("attention weights given for pooling '" + pooling + "'");
    }
    for (std::size_t k = 0; k < head.size(); ++k) {
        const std::string name = "head layer " + std::to_string(k);
        const py::tuple parts = head[k].cast<py::tuple>();
        if (parts.size() != 2) throw std::invalid_argument(name + ": expected (W, b or None)");
        Dense<T> dense;
        auto s_w = take<T>(parts[0], 2, name + " W", dense.W);
        if (s_w[0] > INT_MAX || s_w[1] > INT_MAX) throw std::invalid_argument(name + " W is too large");
        dense.out = int(s_w[0]);
        dense.in = int(s_w[1]);
        if (parts[1].is_none()) {
            dense.b.assign(dense.out, T(0));
        } else {
            auto s_b = take<T>(parts[1], 1, name + " b", dense.b);
            if (s_b[0] != dense.out)
                throw std::invalid_argument(name + " b: expected " + std::to_string(dense.out) +
                                            " values, got " + std::to_string(s_b[0]));
        }
        m.head.push_back(std::move(dense));
    }
    m.finalize();
    return m;
}

// A validated private copy of a batch: token ids, or input vectors for continuous models.
template <class T>
struct BatchData {
    std::vector<std::int64_t> ids, offsets, targets;
    std::vector<T> x;
    std::vector<std::uint8_t> deleted;
    bool has_targets = false;
    Batch<T> batch() const {
        Batch<T> b;
        b.ids = ids.empty() ? nullptr : ids.data();
        b.x = x.empty() ? nullptr : x.data();
        b.offsets = offsets.data();
        b.n = std::int64_t(offsets.size()) - 1;
        b.deleted = deleted.empty() ? nullptr : deleted.data();
        return b;
    }
    const std::int64_t* target_ptr() const { return has_targets ? targets.data() : nullptr; }
    std::int64_t n() const { return std::int64_t(offsets.size()) - 1; }
    std::int64_t n_tokens() const { return offsets.back(); }
};

void check_threads(int threads) {
    if (threads < 1) throw std::invalid_argument("threads must be >= 1, got " + std::to_string(threads));
}

template <class T>
BatchData<T> take_batch(const Model<T>& m, const py::handle& inputs, const py::handle& offsets,
                        const py::handle& deleted, const py::handle& targets) {
    BatchData<T> d;
    d.offsets = take_ints(offsets, "offsets");
    if (d.offsets.empty()) throw std::invalid_argument("offsets must have at least one entry");
    // Bounds before differences: no signed overflow whatever the caller passes.
    if (d.offsets[0] != 0) throw std::invalid_argument("offsets must start at 0");
    for (std::size_t k = 0; k + 1 < d.offsets.size(); ++k) {
        if (d.offsets[k + 1] < d.offsets[k])
            throw std::invalid_argument("offsets must not decrease");
        if (d.offsets[k + 1] - d.offsets[k] > INT_MAX)
            throw std::invalid_argument("sequence " + std::to_string(k) + " is too long");
    }
    std::int64_t rows = 0;
    if (m.continuous()) {
        py::array raw = py::array::ensure(inputs);
        if (!raw) throw py::type_error("inputs of a continuous model must be a float array");
        const char kind = raw.dtype().kind();
        if (kind != 'f' && kind != 'i' && kind != 'u')
            throw py::type_error("inputs must hold real numbers, got dtype " + std::string(py::str(raw.dtype())));
        if (raw.ndim() != 2 || raw.shape(1) != m.input_size)
            throw std::invalid_argument("inputs must have shape (steps, " + std::to_string(m.input_size) + ")");
        auto a = farray<T>::ensure(raw);
        d.x.assign(a.data(), a.data() + a.size());
        rows = raw.shape(0);
    } else {
        d.ids = take_ints(inputs, "ids");
        rows = std::int64_t(d.ids.size());
    }
    if (d.offsets.back() != rows)
        throw std::invalid_argument("offsets must end at the number of input rows");
    if (!deleted.is_none()) {
        py::array raw = py::array::ensure(deleted);
        if (!raw || raw.ndim() != 1 || raw.size() != rows)
            throw std::invalid_argument("deleted must be a 1-D mask with one entry per input row");
        auto a = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>::ensure(raw);
        d.deleted.assign(a.data(), a.data() + a.size());
    }
    if (!targets.is_none()) {
        d.targets = take_ints(targets, "targets");
        if (std::int64_t(d.targets.size()) != d.n())
            throw std::invalid_argument("targets must have one entry per sequence");
        d.has_targets = true;
    }
    validate_batch(m, d.batch(), d.n_tokens(), d.target_ptr());
    return d;
}

template <class T>
py::array_t<T> empty(std::vector<py::ssize_t> shape) {
    return py::array_t<T>(shape);
}

// The [n_tokens, e] embedding-level output, or (None, nullptr) when the caller skips it.
template <class T>
std::pair<py::object, T*> input_rows(bool keep, const BatchData<T>& d, int e) {
    if (!keep) return {py::none(), nullptr};
    auto a = empty<T>({d.n_tokens(), py::ssize_t(e)});
    T* ptr = a.mutable_data();
    return {std::move(a), ptr};
}


// A pass ready to run: the arrays it returns and the kernel that fills them. The kernel
// reads only private copies of the inputs and the immutable model, and writes only into
// arrays nothing else can reach yet, so it runs without the GIL.
struct Job {
    py::object outputs;
    std::function<void()> kernel;
};

// A pass running on a thread of its own while Python goes on (``background=True``):
// explain_corpus tokenises the next batch and writes the previous one meanwhile. The
// thread never takes the GIL, so the engine is not held up by Python code and Python is
// not interrupted to hand the GIL over. ``result()`` waits (without the GIL) and returns
// what the pass returns when called directly, or raises its error.
class Pending {
public:
    Pending(py::object model, Job job)
        : model_(std::move(model)), outputs_(std::move(job.outputs)), pid_(process_id()) {
        thread_ = std::make_unique<std::thread>([this, kernel = std::move(job.kernel)]() {
            try {
                kernel();
            } catch (...) {
                error_ = std::current_exception();
            }
            done_.store(true);
        });
    }
    Pending(const Pending&) = delete;
    Pending& operator=(const Pending&) = delete;
    ~Pending() {
        // Python destroys it with the GIL held. Never leave the thread running into freed
        // arrays: wait for it, letting other Python threads run meanwhile.
        if (forked()) {
            (void)thread_.release();  // the thread is not in this process: nothing to join
            return;
        }
        py::gil_scoped_release release;
        join();
    }

    py::object result() {
        // A child of fork() has no copy of the thread: its arrays would be half written.
        if (forked()) throw std::runtime_error("this engine pass was started before fork(); "
                                               "start it again in this process");
        {
            py::gil_scoped_release release;
            join();
        }
        if (error_) std::rethrow_exception(error_);
        return outputs_;
    }
    bool done() const { return done_.load(); }

private:
    bool forked() const { return process_id() != pid_; }
    void join() {
        std::lock_guard<std::mutex> lock(join_mutex_);  // result() may be called from two threads
        if (thread_->joinable()) thread_->join();
    }

    py::object model_;  // keeps the weights the kernel reads alive
    py::object outputs_;
    std::exception_ptr error_;
    std::atomic<bool> done_{false};
    std::mutex join_mutex_;
    long pid_;
    std::unique_ptr<std::thread> thread_;
};

py::object run(py::object self, Job job, bool background) {
    if (background) return py::cast(std::make_unique<Pending>(std::move(self), std::move(job)));
    {
        py::gil_scoped_release release;
        job.kernel();
    }
    return job.outputs;
}

template <class T>
void register_model(py::module_& mod, const char* name) {
    using M = Model<T>;
    py::class_<M>(mod, name, "A validated, immutable copy of a model's weights (gate rows: LSTM i, f, g, o; GRU r, z, n).")
        .def(py::init(&build_model<T>), py::arg("embedding"), py::arg("input_size"), py::arg("layers"),
             py::arg("pooling"), py::arg("attention"), py::arg("head"))
        .def_readonly("vocab_size", &M::vocab_size)
        .def_readonly("input_size", &M::input_size)
        .def_property_readonly("n_classes", &M::n_classes)
        .def_property_readonly("n_features", &M::n_features)
        .def_property_readonly("stage_count", &M::stage_count)
        .def(
            "forward",
            [](py::object self, py::handle inputs, py::handle offsets, py::handle deleted, int threads,
               bool background) {
                const M& m = self.cast<const M&>();
                check_threads(threads);
                auto d = std::make_shared<BatchData<T>>(take_batch(m, inputs, offsets, deleted, py::none()));
                auto scores = empty<T>({d->n(), m.n_classes()});
                T* s = scores.mutable_data();
                return run(self, {scores, [&m, d, threads, s]() { forward(m, d->batch(), threads, s); }},
                           background);
            },
            py::arg("inputs"), py::arg("offsets"), py::arg("deleted") = py::none(), py::arg("threads") = 1,
            py::kw_only(), py::arg("background") = false)
        .def(
            "lrp",
            [](py::object self, py::handle inputs, py::handle offsets, py::handle deleted, py::handle targets,
               double eps, double bias_factor, const std::string& rule, int threads, bool keep_embedding,
               bool background) {
                const M& m = self.cast<const M&>();
                check_threads(threads);
                // eps = 0 would divide by exactly-zero pre-activations (a deleted word in a
                // model without biases); a tiny eps such as 1e-12 gives the plain z-rule.
                if (!std::isfinite(eps) || eps <= 0)
                    throw std::invalid_argument("eps must be finite and > 0 (use e.g. 1e-12 for the "
                                                "plain z-rule), got " + std::to_string(eps));
                if (!std::isfinite(bias_factor))
                    throw std::invalid_argument("bias_factor must be finite");
                LrpParams p;
                p.eps = eps;
                p.bias_factor = bias_factor;
                p.rule = parse_rule(rule);
                if (p.rule != Rule::signal_take_all && m.has(Cell::gru))
                    throw std::invalid_argument("rule '" + rule + "' is defined for LSTM cells only; "
                                                "models with GRU layers take signal-take-all");
                auto d = std::make_shared<BatchData<T>>(take_batch(m, inputs, offsets, deleted, targets));
                auto scores = empty<T>({d->n(), m.n_classes()});
                auto tout = empty<std::int64_t>({d->n()});
                auto rel = empty<T>({d->n_tokens()});
                auto rest = empty<T>({d->n()});
                auto [emb, emb_ptr] = input_rows<T>(keep_embedding, *d, m.input_size);
                auto totals = empty<T>({d->n(), py::ssize_t(m.stage_count())});
                T *s = scores.mutable_data(), *r = rel.mutable_data(), *re = rest.mutable_data();
                T *tot = totals.mutable_data(), *e = emb_ptr;
                std::int64_t* to = tout.mutable_data();
                return run(self,
                           {py::make_tuple(scores, tout, rel, emb, rest, totals),
                            [&m, d, p, threads, s, to, r, e, re, tot]() {
                                lrp(m, d->batch(), d->target_ptr(), p, threads, s, to, r, e, re, tot);
                            }},
                           background);
            },
            py::arg("inputs"), py::arg("offsets"), py::arg("deleted") = py::none(),
            py::arg("targets") = py::none(), py::arg("eps") = 1e-3, py::arg("bias_factor") = 0.0,
            py::arg("rule") = "signal-take-all", py::arg("threads") = 1, py::arg("keep_embedding") = true,
            py::kw_only(), py::arg("background") = false)
        .def(
            "gradient",
            [](py::object self, py::handle inputs, py::handle offsets, py::handle deleted, py::handle targets,
               int threads, bool keep_embedding, bool background) {
                const M& m = self.cast<const M&>();
                check_threads(threads);
                auto d = std::make_shared<BatchData<T>>(take_batch(m, inputs, offsets, deleted, targets));
                auto scores = empty<T>({d->n(), m.n_classes()});
                auto tout = empty<std::int64_t>({d->n()});
                auto sa = empty<T>({d->n_tokens()});
                auto gi = empty<T>({d->n_tokens()});
                auto [grad, grad_ptr] = input_rows<T>(keep_embedding, *d, m.input_size);
                T *s = scores.mutable_data(), *psa = sa.mutable_data(), *pgi = gi.mutable_data();
                T* g = grad_ptr;
                std::int64_t* to = tout.mutable_data();
                return run(self,
                           {py::make_tuple(scores, tout, grad, sa, gi),
                            [&m, d, threads, s, to, g, psa, pgi]() {
                                gradient(m, d->batch(), d->target_ptr(), threads, s, to, g, psa, pgi);
                            }},
                           background);
            },
            py::arg("inputs"), py::arg("offsets"), py::arg("deleted") = py::none(),
            py::arg("targets") = py::none(), py::arg("threads") = 1, py::arg("keep_embedding") = true,
            py::kw_only(), py::arg("background") = false)
        .def(
            "occlusion",
            [](py::object self, py::handle inputs, py::handle offsets, py::handle deleted, py::handle targets,
               int threads, bool background) {
                const M& m = self.cast<const M&>();
                check_threads(threads);
                auto d = std::make_shared<BatchData<T>>(take_batch(m, inputs, offsets, deleted, targets));
                auto scores = empty<T>({d->n(), m.n_classes()});
                auto tout = empty<std::int64_t>({d->n()});
                auto drop = empty<T>({d->n_tokens()});
                T *s = scores.mutable_data(), *dr = drop.mutable_data();
                std::int64_t* to = tout.mutable_data();
                return run(self,
                           {py::make_tuple(scores, tout, drop),
                            [&m, d, threads, s, to, dr]() { occlusion(m, d->batch(), d->target_ptr(), threads, s, to, dr); }},
                           background);
            },
            py::arg("inputs"), py::arg("offsets"), py::arg("deleted") = py::none(),
            py::arg("targets") = py::none(), py::arg("threads") = 1, py::kw_only(),
            py::arg("background") = false);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "textlrp's compiled engine: recurrent (LSTM, GRU) forward, LRP and gradients over batches";
    register_model<double>(m, "ModelF64");
    register_model<float>(m, "ModelF32");
    m.attr("RULES") = py::make_tuple("signal-take-all", "prop", "half", "abs");
    m.attr("CELLS") = py::make_tuple("lstm", "gru");
    m.attr("POOLINGS") = py::make_tuple("last", "mean", "max", "attention");
    py::class_<Pending>(m, "Pending", "An engine pass started with background=True.")
        .def("result", &Pending::result, "Wait for the pass (without the GIL); its return value, or its error.")
        .def("done", &Pending::done, "Whether the pass has finished.");
    m.def("isa", &isa_name, "Instruction set the kernels use on this CPU (set TEXTLRP_ISA to force one).");
}
