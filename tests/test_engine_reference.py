"""The yardstick is checked first: tests/reference.py against torch, finite differences and
conservation, and its batched twin against its per-sentence code.  No textlrp needed here."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from conftest import make_random_model, random_sentences

ARCHS = {
    "uni": {"layers": [(5, False)], "head": [(None, True)]},
    "bi": {"layers": [(4, True)], "head": [(6, True), (None, False)]},
    "stack3": {"layers": [(5, True), (3, False), (4, True)],
               "head": [(6, True), (7, False), (None, True)]},
}


def max_abs(a):
    return max(1.0, float(np.max(np.abs(a))))


def finite_difference_gradient(model, ids, target, deleted=(), h=1e-6):
    """Central differences of s_target w.r.t. every input coordinate (embedding rows appended
    so one coordinate at a time can move; deleted rows stay zero)."""
    E = np.asarray(model["embedding"], dtype=np.float64)
    x = ref.embed(ref._f64(model), ids, deleted)
    T, e = x.shape

    def score(xx):
        m = dict(model, embedding=np.concatenate([E, xx]))
        return ref.forward(m, list(range(len(E), len(E) + T)))[target]

    G = np.zeros_like(x)
    for t in range(T):
        if t in deleted:
            continue  # a deleted word's input is the constant zero; no gradient to compare
        for k in range(e):
            xp, xm = x.copy(), x.copy()
            xp[t, k] += h
            xm[t, k] -= h
            G[t, k] = (score(xp) - score(xm)) / (2 * h)
    return G


@pytest.mark.parametrize("arch", ARCHS)
def test_reference_gradient_matches_finite_differences(arch):
    rng = np.random.default_rng(1)
    m = make_random_model(rng, e=3, V=15, C=3, **ARCHS[arch])
    ids = [3, 1, 4, 1, 5, 9, 2]
    for target in range(3):
        G = ref.gradient(m, ids, target=target)
        G_fd = finite_difference_gradient(m, ids, target)
        # h = 1e-6: truncation ~h^2 * |f'''| ~ 1e-12, rounding ~1e-16 * |s| / h ~ 1e-10.
        np.testing.assert_allclose(G, G_fd, rtol=0, atol=1e-8 * max_abs(G))
        assert np.abs(G).max() > 1e-6  # the comparison is not between zeros


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("rule", ref.RULES)
@pytest.mark.parametrize("eps", [1e-3, 0.1])
def test_reference_conserves_relevance(arch, rule, eps):
    rng = np.random.default_rng(2)
    m = make_random_model(rng, e=4, V=20, C=4, **ARCHS[arch])
    for ids, deleted in [([7], None), ([1, 2, 3, 4, 5, 6, 7, 8], [2, 5]), ([0, 0, 19], [0])]:
        for target in (None, 1):
            scores = ref.forward(m, ids, deleted=deleted)
            word, emb, rest = ref.lrp(m, ids, target=target, eps=eps, bias_factor=1.0,
                                      rule=rule, deleted=deleted)
            t = int(np.argmax(scores)) if target is None else target
            assert emb.shape == (len(ids), 4)
            np.testing.assert_allclose(word, emb.sum(axis=1), rtol=1e-14, atol=0)
            assert abs(word.sum() + rest - scores[t]) <= 1e-10 * max_abs(word)


def test_reference_signal_take_all_known_small_case():
    """One unit, one step, written out by hand: the relevance that reaches the word."""
    W_ih = np.array([[0.3], [0.2], [0.7], [-0.4]])
    W_hh = np.array([[0.1], [0.5], [-0.6], [0.2]])
    b = np.array([0.05, -0.1, 0.2, 0.0])
    m = {"embedding": np.array([[1.5]]), "lstm_layers": [[{"W_ih": W_ih, "W_hh": W_hh, "b": b}]],
         "head": [{"W": np.array([[2.0]]), "b": None}]}
    eps = 1e-3
    z = W_ih[:, 0] * 1.5 + b
    i, g, o = ref.sigmoid(z[0]), np.tanh(z[2]), ref.sigmoid(z[3])
    c = i * g
    s = 2.0 * o * np.tanh(c)
    # head (bias 0): R(h) = 2h / stab(s) * s; R(c) = R(h); R(ig) = ig / stab(c) * R(c) (c_prev=0);
    # R(z_g) = R(g) = R(ig); R(x) = w x / stab(z_g) * R(z_g), h_prev = 0 gets nothing.
    R_h = 2.0 * o * np.tanh(c) / (s + eps * np.sign(s)) * s
    R_zg = c / (c + eps * np.sign(c)) * R_h
    R_x = 0.7 * 1.5 / (z[2] + eps * np.sign(z[2])) * R_zg
    word, _emb, rest = ref.lrp(m, [0], eps=eps)
    scores = ref.forward(m, [0])
    np.testing.assert_allclose(scores, [s], rtol=1e-15)
    np.testing.assert_allclose(word, [R_x], rtol=1e-14)
    assert rest == 0.0  # bias_factor 0 and zero initial states: nothing to the rest


def test_reference_product_split_rules():
    gate = np.array([0.25, 0.5, 0.0, 0.8])
    src = np.array([0.75, -0.5, 0.0, 0.2])
    R = np.array([1.0, 2.0, 3.0, -4.0])
    eps = 1e-3
    cases = {
        "signal-take-all": np.array([1.0, 1.0, 1.0, 1.0]),
        "half": np.array([0.5, 0.5, 0.5, 0.5]),
        # prop: src / stab(gate + src); gate + src = 0 at index 1 and 2 -> sign(0)=+1
        "prop": np.array([0.75 / 1.001, -0.5 / 0.001, 0.0, 0.2 / 1.001]),
        "abs": np.array([0.75, 0.5, 0.5, 0.2]),
    }
    for rule, w in cases.items():
        R_src, R_gate = ref.product_split(gate, src, R, rule, eps)
        np.testing.assert_allclose(R_src, w * R, rtol=1e-14)
        np.testing.assert_allclose(R_src + R_gate, R, rtol=1e-14)


@pytest.mark.parametrize("arch", ARCHS)
def test_reference_occlusion_is_score_difference(arch):
    rng = np.random.default_rng(3)
    m = make_random_model(rng, e=3, V=12, C=3, **ARCHS[arch])
    ids = [4, 2, 8, 1]
    occ = ref.occlusion(m, ids, target=2, deleted=[1])
    s = ref.forward(m, ids, deleted=[1])[2]
    assert occ[1] == 0.0
    for t in (0, 2, 3):
        assert occ[t] == pytest.approx(s - ref.forward(m, ids, deleted=[1, t])[2], abs=1e-15)


@pytest.mark.parametrize("arch", ARCHS)
def test_reference_matches_torch(arch):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    m = make_random_model(rng, e=4, V=25, C=3, **ARCHS[arch])
    for ids in random_sentences(rng, 5, 25, 1, 15):
        target = int(rng.integers(0, 3))
        s_t, G_t = torch_scores_and_gradient(torch, m, ids, target)
        G, s = ref.gradient(m, ids, target=target), ref.forward(m, ids)
        np.testing.assert_allclose(s, s_t, rtol=0, atol=1e-12 * max_abs(s))
        np.testing.assert_allclose(G, G_t, rtol=0, atol=1e-12 * max_abs(G))


def torch_scores_and_gradient(torch, model, ids, target, deleted=()):
    """Scores and d s_target / d x from an equivalent torch model (float64) built here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: extra threads only cost (badly on a busy machine)
    try:
        return _torch_scores_and_gradient(torch, model, ids, target, deleted)
    finally:
        torch.set_num_threads(threads)


def _torch_scores_and_gradient(torch, model, ids, target, deleted):
    x = np.asarray(model["embedding"], dtype=np.float64)[ids]
    x[list(deleted)] = 0.0
    x = torch.tensor(x, requires_grad=True)
    inp = x[:, None, :]  # [T, batch=1, e]
    with torch.no_grad():
        lstms = []
        for layer in model["lstm_layers"]:
            d = layer[0]["W_hh"].shape[1]
            lstm = torch.nn.LSTM(layer[0]["W_ih"].shape[1], d, bidirectional=len(layer) == 2,
                                 dtype=torch.float64)
            for k, dr in enumerate(layer):
                sfx = "_l0" + ("_reverse" if k else "")
                getattr(lstm, "weight_ih" + sfx).copy_(torch.tensor(dr["W_ih"]))
                getattr(lstm, "weight_hh" + sfx).copy_(torch.tensor(dr["W_hh"]))
                getattr(lstm, "bias_ih" + sfx).copy_(torch.tensor(dr["b"]))
                getattr(lstm, "bias_hh" + sfx).zero_()
            lstms.append((lstm, d, len(layer)))
    for lstm, d, ndir in lstms:
        inp, _ = lstm(inp)
    feats = inp[-1, 0, :d]
    if ndir == 2:
        feats = torch.cat([feats, inp[0, 0, d:]])
    a = feats
    for n, hl in enumerate(model["head"]):
        a = a @ torch.tensor(np.asarray(hl["W"], dtype=np.float64)).T
        if hl.get("b") is not None:
            a = a + torch.tensor(np.asarray(hl["b"], dtype=np.float64))
        if n < len(model["head"]) - 1:
            a = torch.relu(a)
    a[target].backward()
    return a.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("rule", ref.RULES)
def test_batched_twin_matches_per_sentence(arch, rule):
    rng = np.random.default_rng(5)
    m = make_random_model(rng, e=4, V=20, C=3, **ARCHS[arch])
    batch = random_sentences(rng, 7, 20, 1, 13)
    deleted = [[0], [], [1, 2], [], [0], [], []]
    deleted = [[t for t in dl if t < len(s)] for dl, s in zip(deleted, batch)]
    kw = {"eps": 0.01, "bias_factor": 0.5, "rule": rule}
    words, rest, scores = ref.batch_lrp(m, batch, deleted=deleted, target=2, **kw)
    Gs, xs, _scores_g = ref.batch_gradient(m, batch, deleted=deleted)
    for n, ids in enumerate(batch):
        w, _, r = ref.lrp(m, ids, target=2, deleted=deleted[n], **kw)
        s = ref.forward(m, ids, deleted=deleted[n])
        tol = 1e-12 * max_abs(w)
        np.testing.assert_allclose(words[n], w, rtol=0, atol=tol)
        assert abs(rest[n] - r) <= tol
        np.testing.assert_allclose(scores[n], s, rtol=0, atol=1e-13)
        G = ref.gradient(m, ids, deleted=deleted[n])
        np.testing.assert_allclose(Gs[n], G, rtol=0, atol=1e-13 * max_abs(G))
        np.testing.assert_allclose(xs[n], ref.embed(ref._f64(m), ids, deleted[n]), rtol=0, atol=0)
