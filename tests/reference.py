"""Plain-numpy float64 twin of the textlrp engine, written from the spec LRP_FOR_LSTM.md.

Deliberately naive (the way the Arras et al. reference code is written): loops over time,
vector operations inside, the epsilon rule as one literal dense "message" matrix.  It is the
yardstick the C++ engine is compared against, so clarity beats speed everywhere here.

Model arrays (``model``) are a dict with
    embedding    [V, e]
    lstm_layers  list of layers; layer = list of 1 (forward) or 2 (forward, backward) directions,
                 direction = dict(W_ih=[4d, in], W_hh=[4d, d], b=[4d]), gate rows i, f, g, o
    head         list of dict(W=[out, in], b=[out] or None), ReLU between, last one linear

``batch_lrp`` / ``batch_gradient`` at the end are the same maths vectorised over a padded batch
(the numpy baseline of benchmarks/bench_engine.py); tests compare them with the per-sentence code.
"""

from __future__ import annotations

import numpy as np

RULES = ("signal-take-all", "prop", "half", "abs")


# ----------------------------------------------------------------------------- helpers

def sign(y):
    """sign with sign(0) = +1, as the spec asks."""
    return np.where(y >= 0, 1.0, -1.0)


def stab(y, eps):
    return y + eps * sign(y)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _f64(model):
    """The model arrays as float64 (the reference always computes in float64; never mutated)."""
    def arr(a):
        return None if a is None else np.asarray(a, dtype=np.float64)
    return {
        "embedding": arr(model["embedding"]),
        "lstm_layers": [[{k: arr(v) for k, v in dr.items()} for dr in layer]
                        for layer in model["lstm_layers"]],
        "head": [{"W": arr(h["W"]), "b": arr(h.get("b"))} for h in model["head"]],
    }


def embed(model, ids, deleted=None):
    x = model["embedding"][np.asarray(ids, dtype=np.int64)].astype(np.float64)
    for t in deleted or ():
        x[t] = 0.0
    return x


def lrp_linear(w, a, b, y, R_y, N, eps, bias_factor):
    """Epsilon rule for y_j = sum_i w[j, i] a_i + b_j, one literal message matrix [out, in].

    R_i = sum_j (w_ji a_i + bias_factor * (b_j + eps*sign(y_j)) / N) / stab(y_j) * R_j
    """
    numer = w * a[None, :] + bias_factor * (b[:, None] + eps * sign(y)[:, None]) / N
    message = numer / stab(y, eps)[:, None] * R_y[:, None]
    return message.sum(axis=0)


# ----------------------------------------------------------------------------- forward

def run_direction(x, W_ih, W_hh, b, reverse):
    """One LSTM direction over x [T, in].  Everything is stored by POSITION t.

    h_prev[t] / c_prev[t] are the states the step at position t read (zeros at the first
    processing step: t = 0 forward, t = T-1 backward).
    """
    T = x.shape[0]
    d = W_hh.shape[1]
    keys = ("z", "i", "f", "g", "o", "c", "h", "h_prev", "c_prev")
    st = {k: np.zeros((T, 4 * d if k == "z" else d)) for k in keys}
    h_prev = np.zeros(d)
    c_prev = np.zeros(d)
    order = range(T - 1, -1, -1) if reverse else range(T)
    for t in order:
        z = W_ih @ x[t] + W_hh @ h_prev + b
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


def forward(model, ids, deleted=None, return_states=False):
    """Class scores [C] of one sentence (token ids), deleted positions embedded as zeros."""
    model = _f64(model)
    x = embed(model, ids, deleted)
    if x.shape[0] == 0:
        raise ValueError("empty sequence")
    inp = x
    layer_states = []
    for layer in model["lstm_layers"]:
        states = [run_direction(inp, dr["W_ih"], dr["W_hh"], dr["b"], reverse=(k == 1))
                  for k, dr in enumerate(layer)]
        layer_states.append(states)
        inp = np.concatenate([st["h"] for st in states], axis=1)
    last = layer_states[-1]
    features = last[0]["h"][-1]
    if len(last) == 2:
        features = np.concatenate([features, last[1]["h"][0]])
    # head: keep every layer's input and pre-activation
    a = features
    head_in, head_pre = [], []
    for n, layer in enumerate(model["head"]):
        z = layer["W"] @ a + (0.0 if layer["b"] is None else layer["b"])
        head_in.append(a)
        head_pre.append(z)
        a = np.maximum(z, 0.0) if n < len(model["head"]) - 1 else z
    scores = a
    if not return_states:
        return scores
    return scores, {"x": x, "layers": layer_states, "features": features,
                    "head_in": head_in, "head_pre": head_pre}


def predict(model, ids, deleted=None):
    return int(np.argmax(forward(model, ids, deleted)))  # argmax: first index on ties


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


def _feature_split(layer, R_features, T):
    """Relevance of the feature vector -> R(h) [T, d] per direction of the last layer."""
    R_h = []
    off = 0
    for k, dr in enumerate(layer):
        d = dr["W_hh"].shape[1]
        R = np.zeros((T, d))
        R[T - 1 if k == 0 else 0] = R_features[off:off + d]
        R_h.append(R)
        off += d
    return R_h


def lrp_direction(st, dr, x, R_h, reverse, eps, bias_factor, rule):
    """Relevance backwards through one direction reading x [T, in].

    R_h [T, d] holds everything h received from above (head or upper layer) and accumulates what
    h_prev receives.  Returns (R_x [T, in], rest).
    """
    W_ih, W_hh, b = dr["W_ih"], dr["W_hh"], dr["b"]
    d = W_hh.shape[1]
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


def lrp(model, ids, target=None, eps=1e-3, bias_factor=0.0, rule="signal-take-all",
        deleted=None):
    """LRP of one sentence: (word relevance [T], embedding relevance [T, e], rest)."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}")
    model = _f64(model)
    scores, S = forward(model, ids, deleted, return_states=True)
    if target is None:
        target = int(np.argmax(scores))
    T = S["x"].shape[0]
    # head
    R = np.zeros_like(scores)
    R[target] = scores[target]
    for n in range(len(model["head"]) - 1, -1, -1):
        layer = model["head"][n]
        W = layer["W"]
        b = np.zeros(W.shape[0]) if layer["b"] is None else layer["b"]
        R = lrp_linear(W, S["head_in"][n], b, S["head_pre"][n], R, W.shape[1], eps, bias_factor)
    # LSTM layers, top down
    layers = model["lstm_layers"]
    R_h = _feature_split(layers[-1], R, T)
    rest = 0.0
    for L in range(len(layers) - 1, -1, -1):
        inp = S["x"] if L == 0 else np.concatenate([st["h"] for st in S["layers"][L - 1]], axis=1)
        R_in = np.zeros_like(inp)
        for k, dr in enumerate(layers[L]):
            R_x, r = lrp_direction(S["layers"][L][k], dr, inp, R_h[k], k == 1, eps, bias_factor,
                                   rule)
            R_in += R_x
            rest += r
        if L > 0:  # split R(x_t) back into the lower layer's directions (forward part first)
            R_h = []
            off = 0
            for dr in layers[L - 1]:
                d = dr["W_hh"].shape[1]
                R_h.append(R_in[:, off:off + d].copy())
                off += d
    return R_in.sum(axis=1), R_in, float(rest)


# ----------------------------------------------------------------------------- gradients

def gradient(model, ids, target=None, deleted=None):
    """G [T, e] = d s_target / d x_t, by hand-written backpropagation through time."""
    model = _f64(model)
    scores, S = forward(model, ids, deleted, return_states=True)
    if target is None:
        target = int(np.argmax(scores))
    T = S["x"].shape[0]
    g = np.zeros_like(scores)
    g[target] = 1.0
    head = model["head"]
    for n in range(len(head) - 1, -1, -1):
        g = head[n]["W"].T @ g
        if n > 0:  # through the ReLU of the layer below: derivative 1 where pre-activation > 0
            g = g * (S["head_pre"][n - 1] > 0)
    layers = model["lstm_layers"]
    dh_above = _feature_split(layers[-1], g, T)
    for L in range(len(layers) - 1, -1, -1):
        n_in = layers[L][0]["W_ih"].shape[1]
        dx = np.zeros((T, n_in))
        for k, dr in enumerate(layers[L]):
            st = S["layers"][L][k]
            d = dr["W_hh"].shape[1]
            reverse = k == 1
            dh_next = np.zeros(d)
            dc_next = np.zeros(d)
            for t in (range(T) if reverse else range(T - 1, -1, -1)):
                dh = dh_above[k][t] + dh_next
                i, f, gg, o, c = st["i"][t], st["f"][t], st["g"][t], st["o"][t], st["c"][t]
                tc = np.tanh(c)
                dc = dc_next + dh * o * (1.0 - tc ** 2)
                dz = np.concatenate([
                    dc * gg * i * (1.0 - i),
                    dc * st["c_prev"][t] * f * (1.0 - f),
                    dc * i * (1.0 - gg ** 2),
                    dh * tc * o * (1.0 - o),
                ])
                dx[t] += dr["W_ih"].T @ dz
                dh_next = dr["W_hh"].T @ dz
                dc_next = dc * f
        if L > 0:
            dh_above = []
            off = 0
            for dr in layers[L - 1]:
                d = dr["W_hh"].shape[1]
                dh_above.append(dx[:, off:off + d].copy())
                off += d
    return dx


def sa(model, ids, target=None, deleted=None):
    G = gradient(model, ids, target, deleted)
    return (G ** 2).sum(axis=1)


def gi(model, ids, target=None, deleted=None):
    model = _f64(model)
    G = gradient(model, ids, target, deleted)
    return (G * embed(model, ids, deleted)).sum(axis=1)


def occlusion(model, ids, target=None, deleted=None):
    """s_target(x) - s_target(x with x_t zeroed), one forward pass per position."""
    model = _f64(model)
    deleted = sorted(set(deleted or ()))
    scores = forward(model, ids, deleted)
    if target is None:
        target = int(np.argmax(scores))
    out = np.zeros(len(ids))
    for t in range(len(ids)):
        if t in deleted:
            continue  # already zero: occluding it changes nothing
        out[t] = scores[target] - forward(model, ids, deleted + [t])[target]
    return out


# ----------------------------------------------------------------------------- batched twin

def _pad(model, batch, deleted):
    """Right-padded inputs x [B, Tmax, e] and lengths [B]."""
    lengths = np.array([len(s) for s in batch], dtype=np.int64)
    if (lengths == 0).any():
        raise ValueError("empty sequence")
    E = model["embedding"]
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
    W_ih, W_hh, b = dr["W_ih"], dr["W_hh"], dr["b"]
    d = W_hh.shape[1]
    st = {k: np.zeros((T, B, 4 * d if k == "z" else d))
          for k in ("z", "i", "f", "g", "o", "c", "h", "h_prev", "c_prev")}
    h = np.zeros((B, d))
    c = np.zeros((B, d))
    xW = x @ W_ih.T + b  # [B, T, 4d] input part of every step at once
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
    model = _f64(model)
    x, lengths, mask = _pad(model, batch, deleted)
    inp = x
    layers = []
    for layer in model["lstm_layers"]:
        res = [_batch_direction(inp, mask, dr, k == 1) for k, dr in enumerate(layer)]
        layers.append([r[0] for r in res])
        inp = np.concatenate([r[0]["h"] for r in res], axis=2).transpose(1, 0, 2)  # [B, T, .]
        inp = inp * mask[:, :, None]
    features = np.concatenate([r[1] for r in res], axis=1)  # final states = feature vector
    a = features
    head_in, head_pre = [], []
    for n, hl in enumerate(model["head"]):
        z = a @ hl["W"].T + (0.0 if hl["b"] is None else hl["b"])
        head_in.append(a)
        head_pre.append(z)
        a = np.maximum(z, 0.0) if n < len(model["head"]) - 1 else z
    return a, {"x": x, "lengths": lengths, "mask": mask, "layers": layers,
               "head_in": head_in, "head_pre": head_pre, "model": model}


def _lrp_linear_batch(W, a, b, y, R_y, N, eps, bias_factor):
    """Same epsilon rule, rewritten algebraically for a batch: a [B, in], y/R_y [B, out]."""
    q = R_y / stab(y, eps)
    share = bias_factor * ((b + eps * sign(y)) * q).sum(axis=1, keepdims=True) / N
    return a * (q @ W) + share


def _targets(scores, target):
    if target is None:
        return scores.argmax(axis=1)
    return np.broadcast_to(np.asarray(target, dtype=np.int64), (scores.shape[0],))


def _split_rows(layer, R):
    out, off = [], 0
    for dr in layer:
        d = dr["W_hh"].shape[1]
        out.append(R[..., off:off + d])
        off += d
    return out


def _place_features(layer, R_feat, lengths, T):
    """Feature relevance/gradient [B, F] -> per direction [T, B, d] at the right positions."""
    B = R_feat.shape[0]
    out = []
    for k, part in enumerate(_split_rows(layer, R_feat)):
        R = np.zeros((T, B, part.shape[1]))
        pos = lengths - 1 if k == 0 else np.zeros(B, dtype=np.int64)
        R[pos, np.arange(B)] = part
        out.append(R)
    return out


def batch_lrp(model, batch, target=None, eps=1e-3, bias_factor=0.0, rule="signal-take-all",
              deleted=None):
    """LRP of a whole batch at once: (list of word relevance [T_n], rest [B], scores [B, C])."""
    scores, S = batch_forward(model, batch, deleted)
    model = S["model"]
    lengths, mask = S["lengths"], S["mask"]
    B, T = mask.shape
    tgt = _targets(scores, target)
    R = np.zeros_like(scores)
    R[np.arange(B), tgt] = scores[np.arange(B), tgt]
    for n in range(len(model["head"]) - 1, -1, -1):
        hl = model["head"][n]
        b = np.zeros(hl["W"].shape[0]) if hl["b"] is None else hl["b"]
        R = _lrp_linear_batch(hl["W"], S["head_in"][n], b, S["head_pre"][n], R,
                              hl["W"].shape[1], eps, bias_factor)
    layers = model["lstm_layers"]
    R_h = _place_features(layers[-1], R, lengths, T)
    rest = np.zeros(B)
    for L in range(len(layers) - 1, -1, -1):
        if L == 0:
            inp = S["x"].transpose(1, 0, 2)
        else:
            inp = np.concatenate([st["h"] for st in S["layers"][L - 1]], axis=2)
            inp = inp * mask.T[:, :, None]
        R_in = np.zeros_like(inp)
        for k, dr in enumerate(layers[L]):
            st = S["layers"][L][k]
            reverse = k == 1
            d = dr["W_hh"].shape[1]
            n_in = dr["W_ih"].shape[1]
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
                    W = np.concatenate([dr["W_ih"][rows], dr["W_hh"][rows]], axis=1)
                    R_a += _lrp_linear_batch(W, a, dr["b"][rows], st["z"][t][:, rows], R_z,
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
            R_h = [p.copy() for p in _split_rows(layers[L - 1], R_in)]
    word = R_in.sum(axis=2).T  # [B, T]
    return [word[n, :lengths[n]] for n in range(B)], rest, scores


def batch_gradient(model, batch, target=None, deleted=None):
    """d s_target / d x for a whole batch: (list of G [T_n, e], list of x [T_n, e], scores)."""
    scores, S = batch_forward(model, batch, deleted)
    model = S["model"]
    lengths, mask = S["lengths"], S["mask"]
    B, T = mask.shape
    tgt = _targets(scores, target)
    g = np.zeros_like(scores)
    g[np.arange(B), tgt] = 1.0
    head = model["head"]
    for n in range(len(head) - 1, -1, -1):
        g = g @ head[n]["W"]
        if n > 0:
            g = g * (S["head_pre"][n - 1] > 0)
    layers = model["lstm_layers"]
    dh_above = _place_features(layers[-1], g, lengths, T)
    for L in range(len(layers) - 1, -1, -1):
        n_in = layers[L][0]["W_ih"].shape[1]
        dx = np.zeros((T, B, n_in))
        for k, dr in enumerate(layers[L]):
            st = S["layers"][L][k]
            reverse = k == 1
            d = dr["W_hh"].shape[1]
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
                dx[t] += dz @ dr["W_ih"]
                # padded steps pass the incoming gradient through unchanged (state was frozen)
                dh_next = np.where(m, dz @ dr["W_hh"], dh)
                dc_next = np.where(m, dc * f, dc_next)
        if L > 0:
            dh_above = [p.copy() for p in _split_rows(layers[L - 1], dx)]
    G = dx.transpose(1, 0, 2)
    x = S["x"]
    return ([G[n, :lengths[n]] for n in range(B)], [x[n, :lengths[n]] for n in range(B)], scores)
