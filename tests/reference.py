"""Plain-numpy float64 twin of the textlrp engine, written from docs/algorithm.md.

Deliberately naive (the way the Arras et al. reference code is written): loops over time,
vector operations inside, the epsilon rule as one literal dense "message" matrix.  It is the
yardstick the C++ engine is compared against, so clarity beats speed everywhere here.

A model is a ``textlrp.spec.ModelSpec`` (LSTM or GRU layers, pooling last/mean/max/attention,
embedding or continuous inputs, any number of outputs). The old nested-dict format
(``embedding``, ``lstm_layers=[[dict(W_ih, W_hh, b)]]``, ``head=[dict(W, b)]``) is accepted
everywhere too and converted by :func:`spec_from_dict`.

The input ``x`` of one sequence is a list of token ids for a model with an embedding, or a
float array [T, input_size] for a continuous model. ``deleted`` positions have their input
vector replaced by zeros; the sequence keeps its length.

``batch_forward`` / ``batch_lrp`` / ``batch_gradient`` at the end are the LSTM + ``last``
maths vectorised over a padded batch (the numpy baseline of benchmarks/bench_engine.py);
tests compare them with the per-sentence code. They raise NotImplementedError for the other
architectures.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

try:
    from textlrp.spec import Attention, Dense, Direction, ModelSpec, Recurrent
except ImportError:  # the compiled core is missing: spec.py itself needs numpy only
    _path = Path(__file__).resolve().parents[1] / "python" / "textlrp" / "spec.py"
    _module_spec = importlib.util.spec_from_file_location("_textlrp_spec", _path)
    _spec_module = importlib.util.module_from_spec(_module_spec)
    sys.modules["_textlrp_spec"] = _spec_module  # dataclasses look their module up there
    _module_spec.loader.exec_module(_spec_module)
    Attention, Dense, Direction = _spec_module.Attention, _spec_module.Dense, _spec_module.Direction
    ModelSpec, Recurrent = _spec_module.ModelSpec, _spec_module.Recurrent

RULES = ("signal-take-all", "prop", "half", "abs")


# ----------------------------------------------------------------------------- helpers

def sign(y):
    """sign with sign(0) = +1, as the spec asks."""
    return np.where(y >= 0, 1.0, -1.0)


def stab(y, eps):
    return y + eps * sign(y)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def spec_from_dict(model):
    """ModelSpec from the old dict format: embedding [V, e], lstm_layers = list of layers of
    1-2 dict(W_ih, W_hh, b) (b = b_ih + b_hh, so b_hh = 0 here), head = list of dict(W, b)."""
    layers = tuple(
        Recurrent("lstm", tuple(
            Direction(dr["W_ih"], dr["W_hh"], dr["b"], np.zeros_like(np.asarray(dr["b"])))
            for dr in layer))
        for layer in model["lstm_layers"])
    head = tuple(Dense(h["W"], h.get("b")) for h in model["head"])
    return ModelSpec(model["embedding"], layers, head)


def _arrays(spec):
    yield spec.embedding
    for layer in spec.layers:
        for dr in layer.directions:
            yield from (dr.W_ih, dr.W_hh, dr.b_ih, dr.b_hh)
    if spec.attention is not None:
        yield from (spec.attention.W, spec.attention.b, spec.attention.v)
    for dense in spec.head:
        yield from (dense.W, dense.b)


def as_spec(model):
    """The model as a checked float64 ModelSpec (the reference always computes in float64).
    Accepts a ModelSpec or the old dict format. Convert a large model once with this: the
    functions below then use it as it is instead of validating and copying it per call."""
    if isinstance(model, dict):
        model = spec_from_dict(model)
    # what checked(float64) returns (input_size set; frozen, its own read-only float64
    # copies, which nothing can have changed since) is used as it is
    if model.input_size >= 1 and all(
            a is None or (isinstance(a, np.ndarray) and a.dtype == np.float64
                          and a.flags.owndata and not a.flags.writeable)
            for a in _arrays(model)):
        return model
    return model.checked(np.float64)


_f64 = as_spec  # the old name


def inputs(spec, x, deleted=None):
    """The input vectors x_t [T, in] (float64) of one sequence, deleted positions zeroed.

    ``x``: token ids for a model with an embedding; a float array [T, input_size] otherwise.
    """
    if spec.embedding is not None:
        ids = np.asarray(x)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise TypeError("a model with an embedding takes a 1-D sequence of token ids")
        ids = ids.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= spec.vocab_size):
            raise IndexError(f"token id outside [0, {spec.vocab_size})")
        out = spec.embedding[ids].astype(np.float64)
    else:
        arr = np.asarray(x)
        if arr.dtype.kind != "f" or arr.ndim != 2 or arr.shape[1] != spec.input_size:
            raise TypeError(f"a continuous model takes a float array [T, {spec.input_size}], "
                            f"got {arr.dtype} {arr.shape}")
        out = arr.astype(np.float64)  # a copy: the caller's array is never changed
    if out.shape[0] == 0:
        raise ValueError("empty sequence")
    for t in deleted or ():
        out[t] = 0.0
    return out


embed = inputs  # the old name (token models)


def lrp_linear(w, a, b, y, R_y, N, eps, bias_factor):
    """Epsilon rule for y_j = sum_i w[j, i] a_i + b_j, one literal message matrix [out, in].

    R_i = sum_j (w_ji a_i + bias_factor * (b_j + eps*sign(y_j)) / N) / stab(y_j) * R_j
    """
    numer = w * a[None, :] + bias_factor * (b[:, None] + eps * sign(y)[:, None]) / N
    message = numer / stab(y, eps)[:, None] * R_y[:, None]
    return message.sum(axis=0)


def _split_columns(layer, A):
    """[..., out] of a recurrent layer -> one [..., d] copy per direction (forward first)."""
    parts, off = [], 0
    for dr in layer.directions:
        parts.append(A[..., off:off + dr.hidden].copy())
        off += dr.hidden
    return parts


# ----------------------------------------------------------------------------- forward

def run_lstm(x, dr, reverse):
    """One LSTM direction over x [T, in].  Everything is stored by POSITION t.

    h_prev[t] / c_prev[t] are the states the step at position t read (zeros at the first
    processing step: t = 0 forward, t = T-1 backward).
    """
    T = x.shape[0]
    d = dr.hidden
    b = dr.b_ih + dr.b_hh
    keys = ("z", "i", "f", "g", "o", "c", "h", "h_prev", "c_prev")
    st = {k: np.zeros((T, 4 * d if k == "z" else d)) for k in keys}
    h_prev = np.zeros(d)
    c_prev = np.zeros(d)
    order = range(T - 1, -1, -1) if reverse else range(T)
    for t in order:
        z = dr.W_ih @ x[t] + dr.W_hh @ h_prev + b
        i = sigmoid(z[0:d])
        f = sigmoid(z[d:2 * d])
        g = np.tanh(z[2 * d:3 * d])
        o = sigmoid(z[3 * d:4 * d])
        c = f * c_prev + i * g
        h = o * np.tanh(c)
        for k, v in zip(keys, (z, i, f, g, o, c, h, h_prev, c_prev)):
            st[k][t] = v
        h_prev, c_prev = h, c
    return st


def run_gru(x, dr, reverse):
    """One GRU direction over x [T, in] (torch.nn.GRU), stored by position like run_lstm.

    gi = W_ih x + b_ih and gh = W_hh h_prev + b_hh, row blocks r, z, n:
    r = sigm(gi_r + gh_r), z = sigm(gi_z + gh_z), s = gh_n, q = r * s, p = gi_n + q,
    n = tanh(p), h = (1 - z) * n + z * h_prev.
    """
    T = x.shape[0]
    d = dr.hidden
    keys = ("r", "z", "s", "q", "p", "n", "h", "h_prev")
    st = {k: np.zeros((T, d)) for k in keys}
    h_prev = np.zeros(d)
    order = range(T - 1, -1, -1) if reverse else range(T)
    for t in order:
        gi = dr.W_ih @ x[t] + dr.b_ih
        gh = dr.W_hh @ h_prev + dr.b_hh
        r = sigmoid(gi[0:d] + gh[0:d])
        z = sigmoid(gi[d:2 * d] + gh[d:2 * d])
        s = gh[2 * d:3 * d]
        q = r * s
        p = gi[2 * d:3 * d] + q
        n = np.tanh(p)
        h = (1.0 - z) * n + z * h_prev
        for k, v in zip(keys, (r, z, s, q, p, n, h, h_prev)):
            st[k][t] = v
        h_prev = h
    return st


RUN = {"lstm": run_lstm, "gru": run_gru}


def pool(spec, y):
    """Features [F] from the last layer's outputs y [T, F], and what LRP/gradients need."""
    T = y.shape[0]
    P = {}
    if spec.pooling == "last":
        d = spec.layers[-1].hidden
        f = y[T - 1].copy()
        if len(spec.layers[-1].directions) == 2:
            f[d:] = y[0, d:]  # the backward direction ends at the first position
    elif spec.pooling == "mean":
        f = y.sum(axis=0) / T
    elif spec.pooling == "max":
        P["argmax"] = np.argmax(y, axis=0)  # the first position on ties
        f = y.max(axis=0)
    elif spec.pooling == "attention":
        att = spec.attention
        u = np.tanh(y @ att.W.T + att.b)  # [T, A]
        e = u @ att.v  # [T]
        w = np.exp(e - e.max())
        alpha = w / w.sum()
        f = alpha @ y
        P.update(u=u, alpha=alpha)
    else:
        raise ValueError(f"unknown pooling {spec.pooling!r}")
    return f, P


def forward(model, x, deleted=None, return_states=False):
    """Output scores [C] of one sequence (token ids or float array [T, in])."""
    return _forward(as_spec(model), x, deleted, return_states)


def _forward(spec, x, deleted=None, return_states=False):
    xs = inputs(spec, x, deleted)
    inp = xs
    layer_states = []
    for layer in spec.layers:
        states = [RUN[layer.cell](inp, dr, reverse=(k == 1))
                  for k, dr in enumerate(layer.directions)]
        layer_states.append(states)
        inp = np.concatenate([st["h"] for st in states], axis=1)
    features, P = pool(spec, inp)
    # head: keep every layer's input and pre-activation
    a = features
    head_in, head_pre = [], []
    for n, dense in enumerate(spec.head):
        z = dense.W @ a + (0.0 if dense.b is None else dense.b)
        head_in.append(a)
        head_pre.append(z)
        a = np.maximum(z, 0.0) if n < len(spec.head) - 1 else z
    scores = a
    if not return_states:
        return scores
    return scores, {"x": xs, "layers": layer_states, "outputs": inp, "features": features,
                    "pool": P, "head_in": head_in, "head_pre": head_pre, "spec": spec}


def predict(model, x, deleted=None):
    return int(np.argmax(forward(model, x, deleted)))  # argmax: first index on ties


def _target(scores, target):
    if target is None:
        return int(np.argmax(scores))
    target = int(target)
    if not 0 <= target < scores.shape[0]:
        raise IndexError(f"target {target} outside [0, {scores.shape[0]})")
    return target


# ----------------------------------------------------------------------------- LRP

def product_split(gate, src, R_prod, rule, eps):
    """Split R(gate * src) between source and gate; returns (R_src, R_gate)."""
    if rule == "signal-take-all":
        w = np.ones_like(src)
    elif rule == "half":
        w = np.full_like(src, 0.5)
    elif rule == "prop":
        w = src / stab(gate + src, eps)
    elif rule == "abs":
        total = np.abs(gate) + np.abs(src)
        w = np.where(total == 0, 0.5, np.abs(src) / np.where(total == 0, 1.0, total))
    else:
        raise ValueError(f"unknown rule {rule!r}")
    R_src = w * R_prod
    return R_src, R_prod - R_src


def _place_last(spec, T, v):
    """A vector over the features of ``last`` pooling -> [T, F]: the forward part at the last
    position, the backward part at the first."""
    out = np.zeros((T, v.shape[0]))
    d = spec.layers[-1].hidden
    out[T - 1, :d] = v[:d]
    if len(spec.layers[-1].directions) == 2:
        out[0, d:] = v[d:]
    return out


def lrp_pool(spec, y, f, P, R_f, eps, bias_factor):
    """Relevance of the features R_f [F] -> relevance of the last layer's outputs [T, F]."""
    T, F = y.shape
    R_y = np.zeros((T, F))
    if spec.pooling == "last":
        R_y = _place_last(spec, T, R_f)
    elif spec.pooling == "max":
        R_y[P["argmax"], np.arange(F)] = R_f
    else:
        # mean and attention: f_i = sum_t w_t y_{t,i}, the epsilon rule per feature over its
        # T inputs (no bias, N = T); mean has w_t = 1/T, attention's alpha gets nothing.
        w = np.full(T, 1.0 / T) if spec.pooling == "mean" else P["alpha"]
        for i in range(F):
            R_y[:, i] = lrp_linear(w[None, :], y[:, i], np.zeros(1), f[i:i + 1], R_f[i:i + 1],
                                   T, eps, bias_factor)
    return R_y


def lrp_lstm(st, dr, x, R_h, reverse, eps, bias_factor, rule):
    """Relevance backwards through one LSTM direction reading x [T, in].

    R_h [T, d] holds everything h received from above (head or upper layer) and accumulates what
    h_prev receives.  Returns (R_x [T, in], rest).
    """
    W_ih, W_hh, b = dr.W_ih, dr.W_hh, dr.b_ih + dr.b_hh
    d = dr.hidden
    n_in = W_ih.shape[1]
    T = R_h.shape[0]
    R_x = np.zeros((T, n_in))
    rest = 0.0
    identity2 = np.concatenate([np.eye(d), np.eye(d)], axis=1)  # c = [I I] @ [f*c_prev; i*g]
    zeros_d = np.zeros(d)
    R_c_next = np.zeros(d)  # relevance of c at the current step, passed down from the later step
    order = range(T) if reverse else range(T - 1, -1, -1)  # reverse of processing order
    first = T - 1 if reverse else 0  # first processing step (h_prev = c_prev = 0)
    for t in order:
        # h = o * tanh(c): all of R(h) goes to c, the gate o gets nothing.
        R_c = R_c_next + R_h[t]
        fc = st["f"][t] * st["c_prev"][t]
        ig = st["i"][t] * st["g"][t]
        # c = f*c_prev + i*g: epsilon rule with identity weights, N = 2d, zero bias.
        R_sum = lrp_linear(identity2, np.concatenate([fc, ig]), zeros_d, st["c"][t], R_c,
                           2 * d, eps, bias_factor)
        R_fc, R_ig = R_sum[:d], R_sum[d:]
        R_cprev, R_zf = product_split(st["f"][t], st["c_prev"][t], R_fc, rule, eps)
        R_zg, R_zi = product_split(st["i"][t], st["g"][t], R_ig, rule, eps)
        # gate pre-activations -> x_t and h_prev, epsilon rule over their rows of [W_ih W_hh].
        a = np.concatenate([x[t], st["h_prev"][t]])
        R_a = np.zeros(n_in + d)
        gates = [("g", 2, R_zg)]
        if rule != "signal-take-all":
            gates += [("i", 0, R_zi), ("f", 1, R_zf)]
        for _, k, R_z in gates:
            rows = slice(k * d, (k + 1) * d)
            w = np.concatenate([W_ih[rows], W_hh[rows]], axis=1)
            R_a += lrp_linear(w, a, b[rows], st["z"][t][rows], R_z, n_in + d, eps, bias_factor)
        R_x[t] += R_a[:n_in]
        if t == first:
            rest += R_a[n_in:].sum() + R_cprev.sum()
        else:
            prev = t + 1 if reverse else t - 1
            R_h[prev] += R_a[n_in:]
            R_c_next = R_cprev
    return R_x, rest


def lrp_gru(st, dr, x, R_h, reverse, eps, bias_factor, rule):
    """Relevance backwards through one GRU direction (signal-take-all), like lrp_lstm."""
    if rule != "signal-take-all":
        raise ValueError(f"rule {rule!r} is not defined for GRU layers; use signal-take-all")
    d = dr.hidden
    n_in = dr.W_ih.shape[1]
    W_in, b_in = dr.W_ih[2 * d:3 * d], dr.b_ih[2 * d:3 * d]
    W_hn, b_hn = dr.W_hh[2 * d:3 * d], dr.b_hh[2 * d:3 * d]
    T = R_h.shape[0]
    R_x = np.zeros((T, n_in))
    rest = 0.0
    identity2 = np.concatenate([np.eye(d), np.eye(d)], axis=1)  # h = [I I] @ [(1-z)*n; z*h_prev]
    W_p = np.concatenate([W_in, np.eye(d)], axis=1)  # p = [W_in I] @ [x; q] + b_in
    zeros_d = np.zeros(d)
    order = range(T) if reverse else range(T - 1, -1, -1)
    first = T - 1 if reverse else 0
    for t in order:
        z, n, h_prev = st["z"][t], st["n"][t], st["h_prev"][t]
        # 1. h = (1-z)*n + z*h_prev: epsilon rule, identity weights, N = 2d, no bias;
        #    the gates 1-z and z get nothing.
        R_ab = lrp_linear(identity2, np.concatenate([(1.0 - z) * n, z * h_prev]), zeros_d,
                          st["h"][t], R_h[t], 2 * d, eps, bias_factor)
        R_n, R_hprev = R_ab[:d], R_ab[d:]
        # 2. n = tanh(p): unchanged.  3. p = W_in x + b_in + q, N = in + d; r gets nothing.
        R_xq = lrp_linear(W_p, np.concatenate([x[t], st["q"][t]]), b_in, st["p"][t], R_n,
                          n_in + d, eps, bias_factor)
        R_x[t] += R_xq[:n_in]
        R_s = R_xq[n_in:]
        # 4. s = W_hn h_prev + b_hn, N = d.
        R_hprev = R_hprev + lrp_linear(W_hn, h_prev, b_hn, st["s"][t], R_s, d, eps, bias_factor)
        if t == first:
            rest += R_hprev.sum()
        else:
            R_h[t + 1 if reverse else t - 1] += R_hprev
    return R_x, rest


LRP = {"lstm": lrp_lstm, "gru": lrp_gru}


def lrp(model, x, target=None, eps=1e-3, bias_factor=0.0, rule="signal-take-all",
        deleted=None, return_stages=False):
    """LRP of one sequence: (relevance per position [T], input relevance [T, in], rest), and
    with ``return_stages`` the relevance total at each stage as a 4th element, in the engine's
    order: score, each head layer's input (top first), the pooled last-layer outputs, then per
    recurrent layer (top first) and direction: outputs, initial state, inputs."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}")
    spec = as_spec(model)
    if rule != "signal-take-all" and any(layer.cell == "gru" for layer in spec.layers):
        raise ValueError(f"rule {rule!r} is not defined for GRU layers; use signal-take-all")
    scores, S = _forward(spec, x, deleted, return_states=True)
    target = _target(scores, target)
    # head
    R = np.zeros_like(scores)
    R[target] = scores[target]
    stages = [scores[target]]
    for n in range(len(spec.head) - 1, -1, -1):
        dense = spec.head[n]
        b = np.zeros(dense.W.shape[0]) if dense.b is None else dense.b
        R = lrp_linear(dense.W, S["head_in"][n], b, S["head_pre"][n], R, dense.W.shape[1], eps,
                       bias_factor)
        stages.append(R.sum())
    # pooling, then the recurrent layers top down
    R_y = lrp_pool(spec, S["outputs"], S["features"], S["pool"], R, eps, bias_factor)
    stages.append(R_y.sum())
    R_h = _split_columns(spec.layers[-1], R_y)
    rest = 0.0
    for L in range(len(spec.layers) - 1, -1, -1):
        layer = spec.layers[L]
        inp = S["x"] if L == 0 else np.concatenate([st["h"] for st in S["layers"][L - 1]], axis=1)
        R_in = np.zeros_like(inp)
        for k, dr in enumerate(layer.directions):
            outputs = R_h[k].sum()  # before the pass adds what h_prev receives
            R_x, r = LRP[layer.cell](S["layers"][L][k], dr, inp, R_h[k], k == 1, eps,
                                     bias_factor, rule)
            R_in += R_x
            rest += r
            stages += [outputs, r, R_x.sum()]
        if L > 0:  # split R(x_t) back into the lower layer's directions (forward part first)
            R_h = _split_columns(spec.layers[L - 1], R_in)
    if return_stages:
        return R_in.sum(axis=1), R_in, float(rest), np.array(stages, dtype=np.float64)
    return R_in.sum(axis=1), R_in, float(rest)


# ----------------------------------------------------------------------------- gradients

def grad_pool(spec, y, f, P, g):
    """d score / d y [T, F] from g = d score / d features [F], through the pooling."""
    T, F = y.shape
    dy = np.zeros((T, F))
    if spec.pooling == "last":
        dy = _place_last(spec, T, g)
    elif spec.pooling == "mean":
        dy[:] = g / T
    elif spec.pooling == "max":
        dy[P["argmax"], np.arange(F)] = g
    else:  # attention, through alpha too
        att = spec.attention
        alpha, u = P["alpha"], P["u"]
        for t in range(T):
            de = alpha[t] * (g @ y[t] - g @ f)  # d score / d e_t (softmax Jacobian)
            dy[t] = alpha[t] * g + att.W.T @ (de * att.v * (1.0 - u[t] ** 2))
    return dy


def grad_lstm(st, dr, dh_above, reverse):
    """d score / d x [T, in] through one LSTM direction; dh_above [T, d] from above."""
    T, d = dh_above.shape
    dx = np.zeros((T, dr.W_ih.shape[1]))
    dh_next = np.zeros(d)
    dc_next = np.zeros(d)
    for t in (range(T) if reverse else range(T - 1, -1, -1)):
        dh = dh_above[t] + dh_next
        i, f, gg, o, c = st["i"][t], st["f"][t], st["g"][t], st["o"][t], st["c"][t]
        tc = np.tanh(c)
        dc = dc_next + dh * o * (1.0 - tc ** 2)
        dz = np.concatenate([
            dc * gg * i * (1.0 - i),
            dc * st["c_prev"][t] * f * (1.0 - f),
            dc * i * (1.0 - gg ** 2),
            dh * tc * o * (1.0 - o),
        ])
        dx[t] += dr.W_ih.T @ dz
        dh_next = dr.W_hh.T @ dz
        dc_next = dc * f
    return dx


def grad_gru(st, dr, dh_above, reverse):
    """d score / d x [T, in] through one GRU direction; dh_above [T, d] from above."""
    T, d = dh_above.shape
    dx = np.zeros((T, dr.W_ih.shape[1]))
    dh_next = np.zeros(d)
    for t in (range(T) if reverse else range(T - 1, -1, -1)):
        dh = dh_above[t] + dh_next
        r, z, n, s, h_prev = st["r"][t], st["z"][t], st["n"][t], st["s"][t], st["h_prev"][t]
        dp = dh * (1.0 - z) * (1.0 - n ** 2)  # d / d p, p = gi_n + r * s
        dr_pre = dp * s * r * (1.0 - r)
        dz_pre = dh * (h_prev - n) * z * (1.0 - z)
        d_gi = np.concatenate([dr_pre, dz_pre, dp])  # d / d (W_ih x + b_ih)
        d_gh = np.concatenate([dr_pre, dz_pre, dp * r])  # d / d (W_hh h_prev + b_hh)
        dx[t] += dr.W_ih.T @ d_gi
        dh_next = dr.W_hh.T @ d_gh + dh * z
    return dx


GRAD = {"lstm": grad_lstm, "gru": grad_gru}


def gradient(model, x, target=None, deleted=None):
    """G [T, in] = d s_target / d x_t, by hand-written backpropagation through time."""
    return _gradient(as_spec(model), x, target, deleted)


def _gradient(spec, x, target, deleted):
    scores, S = _forward(spec, x, deleted, return_states=True)
    target = _target(scores, target)
    g = np.zeros_like(scores)
    g[target] = 1.0
    for n in range(len(spec.head) - 1, -1, -1):
        g = spec.head[n].W.T @ g
        if n > 0:  # through the ReLU of the layer below: derivative 1 where pre-activation > 0
            g = g * (S["head_pre"][n - 1] > 0)
    dy = grad_pool(spec, S["outputs"], S["features"], S["pool"], g)
    dh_above = _split_columns(spec.layers[-1], dy)
    for L in range(len(spec.layers) - 1, -1, -1):
        layer = spec.layers[L]
        dx = sum(GRAD[layer.cell](S["layers"][L][k], dr, dh_above[k], k == 1)
                 for k, dr in enumerate(layer.directions))
        if L > 0:
            dh_above = _split_columns(spec.layers[L - 1], dx)
    return dx


def sa(model, x, target=None, deleted=None):
    G = gradient(model, x, target, deleted)
    return (G ** 2).sum(axis=1)


def gi(model, x, target=None, deleted=None):
    spec = as_spec(model)
    G = _gradient(spec, x, target, deleted)
    return (G * inputs(spec, x, deleted)).sum(axis=1)


def occlusion(model, x, target=None, deleted=None):
    """s_target(x) - s_target(x with x_t zeroed), one forward pass per position."""
    spec = as_spec(model)
    deleted = sorted(set(deleted or ()))
    scores = _forward(spec, x, deleted)
    target = _target(scores, target)
    T = inputs(spec, x).shape[0]
    out = np.zeros(T)
    for t in range(T):
        if t in deleted:
            continue  # already zero: occluding it changes nothing
        out[t] = scores[target] - _forward(spec, x, deleted + [t])[target]
    return out


# ----------------------------------------------------------------------------- batched twin
# LSTM layers with ``last`` pooling and token inputs only (the benchmark's model); the
# per-sentence functions above cover everything else.

def _batch_spec(model):
    spec = as_spec(model)
    if (spec.embedding is None or spec.pooling != "last"
            or any(layer.cell != "lstm" for layer in spec.layers)):
        raise NotImplementedError("the batched twin covers token inputs, LSTM layers and "
                                  "'last' pooling only; use the per-sentence functions")
    return spec


def _pad(spec, batch, deleted):
    """Right-padded inputs x [B, Tmax, e] and lengths [B]."""
    lengths = np.array([len(s) for s in batch], dtype=np.int64)
    if (lengths == 0).any():
        raise ValueError("empty sequence")
    E = spec.embedding
    Tmax = int(lengths.max())
    ids = np.zeros((len(batch), Tmax), dtype=np.int64)
    for n, s in enumerate(batch):
        ids[n, :len(s)] = s
    x = E[ids]
    mask = np.arange(Tmax)[None, :] < lengths[:, None]  # [B, Tmax]
    x = x * mask[:, :, None]
    for n, dl in enumerate(deleted or [()] * len(batch)):
        for t in dl or ():
            x[n, t] = 0.0
    return x, lengths, mask


def _batch_direction(x, mask, dr, reverse):
    """One direction over the padded batch; padded steps keep the state (zeros for backward)."""
    B, T, _ = x.shape
    W_hh = dr.W_hh
    d = dr.hidden
    st = {k: np.zeros((T, B, 4 * d if k == "z" else d))
          for k in ("z", "i", "f", "g", "o", "c", "h", "h_prev", "c_prev")}
    h = np.zeros((B, d))
    c = np.zeros((B, d))
    xW = x @ dr.W_ih.T + (dr.b_ih + dr.b_hh)  # [B, T, 4d] input part of every step at once
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        z = xW[:, t] + h @ W_hh.T
        i = sigmoid(z[:, :d])
        f = sigmoid(z[:, d:2 * d])
        g = np.tanh(z[:, 2 * d:3 * d])
        o = sigmoid(z[:, 3 * d:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        m = mask[:, t, None]
        for k, v in zip(("z", "i", "f", "g", "o", "h_prev", "c_prev"), (z, i, f, g, o, h, c)):
            st[k][t] = v
        c = np.where(m, c_new, c)
        h = np.where(m, h_new, h)
        st["c"][t] = c
        st["h"][t] = h
    return st, h


def batch_forward(model, batch, deleted=None):
    spec = _batch_spec(model)
    x, lengths, mask = _pad(spec, batch, deleted)
    inp = x
    layers = []
    for layer in spec.layers:
        res = [_batch_direction(inp, mask, dr, k == 1) for k, dr in enumerate(layer.directions)]
        layers.append([r[0] for r in res])
        inp = np.concatenate([r[0]["h"] for r in res], axis=2).transpose(1, 0, 2)  # [B, T, .]
        inp = inp * mask[:, :, None]
    features = np.concatenate([r[1] for r in res], axis=1)  # final states = feature vector
    a = features
    head_in, head_pre = [], []
    for n, dense in enumerate(spec.head):
        z = a @ dense.W.T + (0.0 if dense.b is None else dense.b)
        head_in.append(a)
        head_pre.append(z)
        a = np.maximum(z, 0.0) if n < len(spec.head) - 1 else z
    return a, {"x": x, "lengths": lengths, "mask": mask, "layers": layers,
               "head_in": head_in, "head_pre": head_pre, "spec": spec}


def _lrp_linear_batch(W, a, b, y, R_y, N, eps, bias_factor):
    """Same epsilon rule, rewritten algebraically for a batch: a [B, in], y/R_y [B, out]."""
    q = R_y / stab(y, eps)
    share = bias_factor * ((b + eps * sign(y)) * q).sum(axis=1, keepdims=True) / N
    return a * (q @ W) + share


def _targets(scores, target):
    if target is None:
        return scores.argmax(axis=1)
    return np.broadcast_to(np.asarray(target, dtype=np.int64), (scores.shape[0],))


def _place_features(layer, R_feat, lengths, T):
    """Feature relevance/gradient [B, F] -> per direction [T, B, d] at the right positions."""
    B = R_feat.shape[0]
    out = []
    for k, part in enumerate(_split_columns(layer, R_feat)):
        R = np.zeros((T, B, part.shape[1]))
        pos = lengths - 1 if k == 0 else np.zeros(B, dtype=np.int64)
        R[pos, np.arange(B)] = part
        out.append(R)
    return out


def batch_lrp(model, batch, target=None, eps=1e-3, bias_factor=0.0, rule="signal-take-all",
              deleted=None):
    """LRP of a whole batch at once: (list of word relevance [T_n], rest [B], scores [B, C])."""
    scores, S = batch_forward(model, batch, deleted)
    spec = S["spec"]
    lengths, mask = S["lengths"], S["mask"]
    B, T = mask.shape
    tgt = _targets(scores, target)
    R = np.zeros_like(scores)
    R[np.arange(B), tgt] = scores[np.arange(B), tgt]
    for n in range(len(spec.head) - 1, -1, -1):
        dense = spec.head[n]
        b = np.zeros(dense.W.shape[0]) if dense.b is None else dense.b
        R = _lrp_linear_batch(dense.W, S["head_in"][n], b, S["head_pre"][n], R,
                              dense.W.shape[1], eps, bias_factor)
    layers = spec.layers
    R_h = _place_features(layers[-1], R, lengths, T)
    rest = np.zeros(B)
    for L in range(len(layers) - 1, -1, -1):
        if L == 0:
            inp = S["x"].transpose(1, 0, 2)
        else:
            inp = np.concatenate([st["h"] for st in S["layers"][L - 1]], axis=2)
            inp = inp * mask.T[:, :, None]
        R_in = np.zeros_like(inp)
        for k, dr in enumerate(layers[L].directions):
            st = S["layers"][L][k]
            reverse = k == 1
            d = dr.hidden
            n_in = dr.W_ih.shape[1]
            b_all = dr.b_ih + dr.b_hh
            first = lengths - 1 if reverse else np.zeros(B, dtype=np.int64)
            R_c_next = np.zeros((B, d))
            for t in (range(T) if reverse else range(T - 1, -1, -1)):
                m = mask[:, t, None]
                R_c = np.where(m, R_c_next + R_h[k][t], 0.0)
                c = st["c"][t]
                fc = st["f"][t] * st["c_prev"][t]
                ig = st["i"][t] * st["g"][t]
                den = stab(c, eps)
                q = R_c / den
                share = bias_factor * (eps * sign(c) * q).sum(axis=1, keepdims=True) / (2 * d)
                R_fc = fc * q + share
                R_ig = ig * q + share
                R_cprev, R_zf = product_split(st["f"][t], st["c_prev"][t], R_fc, rule, eps)
                R_zg, R_zi = product_split(st["i"][t], st["g"][t], R_ig, rule, eps)
                a = np.concatenate([inp[t], st["h_prev"][t]], axis=1)
                R_a = np.zeros((B, n_in + d))
                gates = [(2, R_zg)] + ([(0, R_zi), (1, R_zf)] if rule != "signal-take-all" else [])
                for gk, R_z in gates:
                    rows = slice(gk * d, (gk + 1) * d)
                    W = np.concatenate([dr.W_ih[rows], dr.W_hh[rows]], axis=1)
                    R_a += _lrp_linear_batch(W, a, b_all[rows], st["z"][t][:, rows], R_z,
                                             n_in + d, eps, bias_factor)
                R_a *= m
                R_cprev = R_cprev * m
                R_in[t] += R_a[:, :n_in]
                at_first = (first == t)[:, None]
                rest += np.where(at_first, R_a[:, n_in:].sum(axis=1, keepdims=True)
                                 + R_cprev.sum(axis=1, keepdims=True), 0.0)[:, 0]
                prev = t + 1 if reverse else t - 1
                if 0 <= prev < T:
                    R_h[k][prev] = R_h[k][prev] + np.where(at_first, 0.0, R_a[:, n_in:])
                R_c_next = np.where(at_first, 0.0, R_cprev)
        if L > 0:
            R_h = _split_columns(layers[L - 1], R_in)
    word = R_in.sum(axis=2).T  # [B, T]
    return [word[n, :lengths[n]] for n in range(B)], rest, scores


def batch_gradient(model, batch, target=None, deleted=None):
    """d s_target / d x for a whole batch: (list of G [T_n, e], list of x [T_n, e], scores)."""
    scores, S = batch_forward(model, batch, deleted)
    spec = S["spec"]
    lengths, mask = S["lengths"], S["mask"]
    B, T = mask.shape
    tgt = _targets(scores, target)
    g = np.zeros_like(scores)
    g[np.arange(B), tgt] = 1.0
    head = spec.head
    for n in range(len(head) - 1, -1, -1):
        g = g @ head[n].W
        if n > 0:
            g = g * (S["head_pre"][n - 1] > 0)
    layers = spec.layers
    dh_above = _place_features(layers[-1], g, lengths, T)
    for L in range(len(layers) - 1, -1, -1):
        n_in = layers[L].directions[0].W_ih.shape[1]
        dx = np.zeros((T, B, n_in))
        for k, dr in enumerate(layers[L].directions):
            st = S["layers"][L][k]
            reverse = k == 1
            d = dr.hidden
            dh_next = np.zeros((B, d))
            dc_next = np.zeros((B, d))
            for t in (range(T) if reverse else range(T - 1, -1, -1)):
                m = mask[:, t, None]
                dh = dh_above[k][t] + dh_next
                i, f, gg, o = st["i"][t], st["f"][t], st["g"][t], st["o"][t]
                tc = np.tanh(st["c"][t])
                dc = dc_next + dh * o * (1.0 - tc ** 2)
                dz = np.concatenate([dc * gg * i * (1.0 - i),
                                     dc * st["c_prev"][t] * f * (1.0 - f),
                                     dc * i * (1.0 - gg ** 2),
                                     dh * tc * o * (1.0 - o)], axis=1) * m
                dx[t] += dz @ dr.W_ih
                # padded steps pass the incoming gradient through unchanged (state was frozen)
                dh_next = np.where(m, dz @ dr.W_hh, dh)
                dc_next = np.where(m, dc * f, dc_next)
        if L > 0:
            dh_above = _split_columns(layers[L - 1], dx)
    G = dx.transpose(1, 0, 2)
    x = S["x"]
    return ([G[n, :lengths[n]] for n in range(B)], [x[n, :lengths[n]] for n in range(B)], scores)
