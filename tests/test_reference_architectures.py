"""The yardstick for the new architectures, checked on its own (no compiled engine needed):
tests/reference.py with LSTM and GRU cells, last/mean/max/attention pooling, token and
continuous inputs, 1-3 stacked layers, uni- and bidirectional, heads of 1-3 layers,
classification and regression, against conservation, finite differences and torch."""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import reference as ref
from conftest import make_random_model, make_random_spec, random_inputs, random_sentences

ROOT = Path(__file__).resolve().parents[1]
CELLS = ("lstm", "gru")
POOLINGS = ("last", "mean", "max", "attention")
INPUTS = ("tokens", "continuous")
GRID = list(itertools.product(CELLS, POOLINGS, INPUTS))
GRID_IDS = [f"{c}-{p}-{i}" for c, p, i in GRID]


def max_abs(a):
    return max(1.0, float(np.max(np.abs(a))))


def seeded(*key):
    """A generator seeded by the test case's name: the same draws in every run and order."""
    return np.random.default_rng(zlib.crc32("/".join(map(str, key)).encode()))


def sample_specs(cell, pooling, inputs, n_layers=(1, 2, 3)):
    """One random architecture per layer count: directions, sizes, head depth (1-3 layers,
    with and without biases) and outputs (C = 1 is regression) drawn from the case's seed."""
    rng = seeded(cell, pooling, inputs)
    specs = []
    for nl in n_layers:
        layers = [(int(rng.integers(2, 6)), bool(rng.integers(0, 2))) for _ in range(nl)]
        depth = int(rng.integers(1, 4))
        head = [(int(rng.integers(3, 7)), bool(rng.integers(0, 2))) for _ in range(depth - 1)]
        head.append((None, bool(rng.integers(0, 2))))
        C = int(rng.choice([1, 2, 4]))
        spec = make_random_spec(rng, cell=cell, layers=layers, pooling=pooling,
                                attention_size=int(rng.integers(1, 5)),
                                continuous=inputs == "continuous", e=int(rng.integers(1, 5)),
                                V=20, head=head, C=C)
        specs.append((rng, spec))
    return specs


def as_continuous(spec):
    """The same model reading the embedded vectors directly (for perturbing inputs)."""
    if spec.embedding is None:
        return spec
    return replace(spec, embedding=None, input_size=int(spec.embedding.shape[1])).checked()


# ----------------------------------------------------------------------------- conservation

@pytest.mark.parametrize(("cell", "pooling", "inputs"), GRID, ids=GRID_IDS)
def test_conservation(cell, pooling, inputs):
    for rng, spec in sample_specs(cell, pooling, inputs):
        C = spec.n_outputs
        for T in (1, int(rng.integers(2, 16)), 60):
            x = random_inputs(rng, spec, T)
            deleted = sorted(set(rng.integers(0, T, size=T // 4).tolist()))
            for dl in (None, deleted):
                scores = ref.forward(spec, x, deleted=dl)
                assert scores.shape == (C,)
                for target in {None, int(rng.integers(0, C))}:
                    t = int(np.argmax(scores)) if target is None else target
                    for eps in (1e-3, 0.1):
                        word, inp, rest = ref.lrp(spec, x, target=target, eps=eps,
                                                  bias_factor=1.0, deleted=dl)
                        assert inp.shape == (T, spec.input_size)
                        np.testing.assert_allclose(word, inp.sum(axis=1), rtol=1e-14, atol=0)
                        assert abs(word.sum() + rest - scores[t]) <= 1e-10 * max_abs(word), \
                            (spec.describe(), T, dl, target, eps)
                # without the bias shares a deleted (zero) input gets nothing
                _, inp, _ = ref.lrp(spec, x, target=target, bias_factor=0.0, deleted=dl)
                assert not inp[dl or []].any()


def test_bias_factor_zero_keeps_the_bias_share_out():
    """With bias_factor 0 the relevance does not sum to the score in general (the biases
    and stabilisers absorb some): a check that the conservation above is not vacuous."""
    rng = np.random.default_rng(7)
    for cell in CELLS:
        spec = make_random_spec(rng, cell=cell, layers=[(4, True)], pooling="attention")
        x = random_inputs(rng, spec, 9)
        word, _, rest = ref.lrp(spec, x, target=0, bias_factor=0.0)
        assert abs(word.sum() + rest - ref.forward(spec, x)[0]) > 1e-6


# ----------------------------------------------------------------------------- gradients

def finite_differences(spec, x, target, h=1e-6):
    """Central differences of s_target w.r.t. every input coordinate."""
    cont = as_continuous(spec)
    xs = ref.inputs(spec, x)
    G = np.zeros_like(xs)
    for t, k in np.ndindex(*xs.shape):
        xp, xm = xs.copy(), xs.copy()
        xp[t, k] += h
        xm[t, k] -= h
        G[t, k] = (ref.forward(cont, xp)[target] - ref.forward(cont, xm)[target]) / (2 * h)
    return G


@pytest.mark.parametrize(("cell", "pooling", "inputs"), GRID, ids=GRID_IDS)
def test_gradient_matches_finite_differences(cell, pooling, inputs):
    largest = 0.0
    for rng, spec in sample_specs(cell, pooling, inputs):
        x = random_inputs(rng, spec, int(rng.integers(1, 6)))
        # a token model and its continuous twin compute the same function of x
        np.testing.assert_array_equal(ref.forward(spec, x),
                                      ref.forward(as_continuous(spec), ref.inputs(spec, x)))
        for target in range(spec.n_outputs):
            G = ref.gradient(spec, x, target=target)
            # h = 1e-6: truncation ~h^2 |f'''| ~ 1e-12, rounding ~1e-16 |s| / h ~ 1e-10
            np.testing.assert_allclose(G, finite_differences(spec, x, target), rtol=0,
                                       atol=1e-8 * max_abs(G))
            largest = max(largest, float(np.abs(G).max()))
    assert largest > 1e-6  # the comparison is not between zeros (a dead ReLU head can be)


def test_sa_gi_occlusion_definitions_continuous():
    rng = np.random.default_rng(8)
    spec = make_random_spec(rng, cell="gru", layers=[(3, True)], pooling="max", continuous=True,
                            e=3, C=1)
    x = rng.standard_normal((6, 3))
    x0 = x.copy()
    G = ref.gradient(spec, x, deleted=[2])
    np.testing.assert_allclose(ref.sa(spec, x, deleted=[2]), (G ** 2).sum(axis=1), rtol=1e-15)
    x_del = x.copy()
    x_del[2] = 0.0
    np.testing.assert_allclose(ref.gi(spec, x, deleted=[2]), (G * x_del).sum(axis=1),
                               rtol=1e-15)
    occ = ref.occlusion(spec, x, deleted=[2])
    s = ref.forward(spec, x_del)[0]
    assert occ[2] == 0.0
    for t in (0, 1, 3, 4, 5):
        x_occ = x_del.copy()
        x_occ[t] = 0.0  # occlusion zeroes the whole input vector of the step
        assert occ[t] == pytest.approx(s - ref.forward(spec, x_occ)[0], abs=1e-15)
    np.testing.assert_array_equal(x, x0)  # the caller's array is never changed


# ----------------------------------------------------------------------------- torch

@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: extra threads only cost on a busy machine
    yield torch
    torch.set_num_threads(threads)


def torch_model(torch, spec):
    """The spec as torch modules (nn.LSTM / nn.GRU per layer, textlrp.nn.AdditiveAttention,
    nn.Linear head), float64; returns run(x [T, in] tensor) -> scores [C]."""
    from textlrp.nn import AdditiveAttention

    def t(a):
        return torch.tensor(np.asarray(a, dtype=np.float64))

    rnns = []
    with torch.no_grad():
        for layer in spec.layers:
            dr0 = layer.directions[0]
            cls = torch.nn.LSTM if layer.cell == "lstm" else torch.nn.GRU
            rnn = cls(dr0.W_ih.shape[1], dr0.hidden, bidirectional=len(layer.directions) == 2,
                      batch_first=True, dtype=torch.float64)
            for k, dr in enumerate(layer.directions):
                sfx = "_l0" + ("_reverse" if k else "")
                for name, value in (("weight_ih", dr.W_ih), ("weight_hh", dr.W_hh),
                                    ("bias_ih", dr.b_ih), ("bias_hh", dr.b_hh)):
                    getattr(rnn, name + sfx).copy_(t(value))
            rnns.append(rnn)
        att = None
        if spec.pooling == "attention":
            att = AdditiveAttention(spec.n_features, spec.attention.W.shape[0]).double()
            att.proj.weight.copy_(t(spec.attention.W))
            att.proj.bias.copy_(t(spec.attention.b))
            att.score.weight[0].copy_(t(spec.attention.v))
        head = []
        for dense in spec.head:
            lin = torch.nn.Linear(dense.W.shape[1], dense.W.shape[0], bias=dense.b is not None,
                                  dtype=torch.float64)
            lin.weight.copy_(t(dense.W))
            if dense.b is not None:
                lin.bias.copy_(t(dense.b))
            head.append(lin)

    def run(x):
        h = x[None]  # [batch 1, T, in]
        for rnn in rnns:
            h, _ = rnn(h)
        y = h[0]
        if spec.pooling == "last":
            d = spec.layers[-1].hidden
            f = y[-1] if len(spec.layers[-1].directions) == 1 else torch.cat([y[-1, :d],
                                                                              y[0, d:]])
        elif spec.pooling == "mean":
            f = y.mean(dim=0)
        elif spec.pooling == "max":
            f = y.max(dim=0).values
        else:
            f = att(h)[0][0]
        for n, lin in enumerate(head):
            f = lin(f)
            if n < len(head) - 1:
                f = torch.relu(f)
        return f

    return run


@pytest.mark.parametrize(("cell", "pooling", "inputs"), GRID, ids=GRID_IDS)
def test_matches_torch(torch, cell, pooling, inputs):
    for rng, spec in sample_specs(cell, pooling, inputs):
        run = torch_model(torch, spec)
        for T in (1, int(rng.integers(2, 13)), 60):
            x = random_inputs(rng, spec, T)
            xs = torch.tensor(ref.inputs(spec, x), requires_grad=True)
            scores_t = run(xs)
            s = ref.forward(spec, x)
            np.testing.assert_allclose(s, scores_t.detach().numpy(), rtol=0,
                                       atol=1e-12 * max_abs(s))
            target = int(rng.integers(0, spec.n_outputs))
            scores_t[target].backward()
            G_t = xs.grad.numpy()
            G = ref.gradient(spec, x, target=target)
            np.testing.assert_allclose(G, G_t, rtol=0, atol=1e-10 * max_abs(G))
            gi_t = (G_t * xs.detach().numpy()).sum(axis=1)
            gi = ref.gi(spec, x, target=target)
            np.testing.assert_allclose(gi, gi_t, rtol=0, atol=1e-10 * max_abs(gi))


def test_mixed_cells_match_torch_and_conserve(torch):
    """The spec allows a different cell per layer; the reference follows."""
    rng = np.random.default_rng(9)
    spec = make_random_spec(rng, cell=("gru", "lstm", "gru"),
                            layers=[(3, True), (4, False), (2, True)], pooling="attention",
                            head=[(5, True), (None, False)], C=3)
    run = torch_model(torch, spec)
    for T in (1, 7, 30):
        ids = rng.integers(0, spec.vocab_size, size=T).tolist()
        xs = torch.tensor(ref.inputs(spec, ids), requires_grad=True)
        scores_t = run(xs)
        scores_t[1].backward()
        np.testing.assert_allclose(ref.forward(spec, ids), scores_t.detach().numpy(), rtol=0,
                                   atol=1e-12)
        G = ref.gradient(spec, ids, target=1)
        np.testing.assert_allclose(G, xs.grad.numpy(), rtol=0, atol=1e-10 * max_abs(G))
        word, _, rest = ref.lrp(spec, ids, target=1, bias_factor=1.0)
        assert abs(word.sum() + rest - ref.forward(spec, ids)[1]) <= 1e-10 * max_abs(word)


# ----------------------------------------------------------------------------- small cases

def test_gru_one_unit_one_step_by_hand():
    """One GRU unit, one input, one step, the four LRP steps of docs/algorithm.md written out
    (h_prev = 0, so only the bias/stabiliser shares reach the rest)."""
    W_ih = np.array([[0.3], [-0.2], [0.7]])
    W_hh = np.array([[0.1], [0.5], [-0.6]])
    b_ih = np.array([0.05, -0.1, 0.2])
    b_hh = np.array([0.02, 0.03, -0.3])
    spec = ref.ModelSpec(np.array([[1.5]]), (ref.Recurrent("gru", (ref.Direction(
        W_ih, W_hh, b_ih, b_hh),)),), (ref.Dense(np.array([[2.0]])),)).checked()
    eps, bf = 1e-3, 0.5
    x = 1.5
    r = ref.sigmoid(0.3 * x + 0.05 + 0.02)
    z = ref.sigmoid(-0.2 * x - 0.1 + 0.03)
    s = -0.3  # W_hn h_prev + b_hn with h_prev = 0
    q = r * s
    p = 0.7 * x + 0.2 + q
    n = np.tanh(p)
    h = (1 - z) * n
    score = 2.0 * h

    def st(y):
        return y + eps * (1.0 if y >= 0 else -1.0)

    def sg(y):
        return 1.0 if y >= 0 else -1.0

    R_h = (2.0 * h + bf * eps * sg(score)) / st(score) * score  # head, N = 1
    S1 = bf / 2 * eps * sg(h) / st(h) * R_h
    R_n = h / st(h) * R_h + S1
    R_b = 0.0 / st(h) * R_h + S1  # b = z * h_prev = 0
    coef = R_n / st(p)
    S3 = bf / 2 * (0.2 + eps * sg(p)) * coef
    R_x = 0.7 * x * coef + S3
    R_s = q * coef + S3
    S4 = bf / 1 * (-0.3 + eps * sg(s)) * (R_s / st(s))
    rest = R_b + 0.0 + S4  # W_hn h_prev = 0
    word, _emb, got_rest = ref.lrp(spec, [0], eps=eps, bias_factor=bf)
    np.testing.assert_allclose(ref.forward(spec, [0]), [score], rtol=1e-15)
    np.testing.assert_allclose(word, [R_x], rtol=1e-13)
    assert got_rest == pytest.approx(rest, rel=1e-13)


def test_attention_with_uniform_weights_is_mean_pooling():
    """v = 0 makes alpha = 1/T exactly: attention must then give mean pooling's scores,
    relevance and gradient (the docs define mean as attention with alpha_t = 1/T)."""
    rng = np.random.default_rng(10)
    for cell in CELLS:
        att = make_random_spec(rng, cell=cell, layers=[(3, True), (4, True)],
                               pooling="attention", attention_size=3, continuous=True, e=2)
        att = replace(att, attention=replace(att.attention, v=np.zeros(3))).checked()
        mean = replace(att, pooling="mean", attention=None).checked()
        for T in (1, 5, 17):
            x = rng.standard_normal((T, 2))
            np.testing.assert_allclose(ref.forward(att, x), ref.forward(mean, x), rtol=1e-14)
            for kw in ({"bias_factor": 1.0}, {"bias_factor": 0.0, "eps": 0.05}):
                for a, b in zip(ref.lrp(att, x, target=1, **kw), ref.lrp(mean, x, target=1, **kw)):
                    np.testing.assert_allclose(a, b, rtol=0, atol=1e-13 * max_abs(b))
            np.testing.assert_allclose(ref.gradient(att, x, target=2),
                                       ref.gradient(mean, x, target=2), rtol=0, atol=1e-14)


def test_max_pooling_sends_each_feature_to_its_argmax():
    """A feature's relevance (and gradient) lands only at its argmax position; the first
    position wins a tie."""
    rng = np.random.default_rng(11)
    spec = make_random_spec(rng, cell="gru", layers=[(2, False)], pooling="max",
                            continuous=True, e=2, head=[(None, False)], C=2)
    x = rng.standard_normal((8, 2))
    _, S = ref.forward(spec, x, return_states=True)
    R_y = ref.lrp_pool(spec, S["outputs"], S["features"], S["pool"], np.array([3.0, -2.0]),
                       1e-3, 1.0)
    for i, R in enumerate([3.0, -2.0]):
        col = np.zeros(8)
        col[np.argmax(S["outputs"][:, i])] = R
        np.testing.assert_array_equal(R_y[:, i], col)
    y = np.array([[1.0, 0.0], [1.0, 2.0], [0.5, 2.0]])  # ties: first position
    f, P = ref.pool(spec, y)
    np.testing.assert_array_equal(P["argmax"], [0, 1])
    np.testing.assert_array_equal(ref.grad_pool(spec, y, f, P, np.array([1.0, 1.0])),
                                  [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])


# ----------------------------------------------------------------------------- bad input

def test_gru_rejects_other_product_rules():
    rng = np.random.default_rng(12)
    spec = make_random_spec(rng, cell=("lstm", "gru"), layers=[(3, False), (3, False)])
    for rule in ("prop", "half", "abs"):
        with pytest.raises(ValueError, match="not defined for GRU"):
            ref.lrp(spec, [1, 2], rule=rule)
    lstm = make_random_spec(rng, cell="lstm", layers=[(3, True)])
    for rule in ref.RULES:  # the LSTM variants stay
        ref.lrp(lstm, [1, 2], rule=rule)


def test_input_kinds_are_checked():
    rng = np.random.default_rng(13)
    tok = make_random_spec(rng, cell="gru", V=10)
    cont = make_random_spec(rng, cell="gru", continuous=True, e=3, C=1)
    with pytest.raises(TypeError, match="token ids"):
        ref.forward(tok, np.zeros((4, 4)))
    with pytest.raises(TypeError, match="token ids"):
        ref.forward(tok, [0.5, 1.0])
    with pytest.raises(IndexError):
        ref.forward(tok, [3, 10])
    with pytest.raises(TypeError, match="float array"):
        ref.forward(cont, [1, 2, 3])
    with pytest.raises(TypeError, match="float array"):
        ref.forward(cont, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="empty"):
        ref.forward(cont, np.zeros((0, 3)))
    with pytest.raises(IndexError, match="target"):
        ref.lrp(cont, np.zeros((2, 3)), target=1)  # regression: only output 0


def test_batched_twin_covers_lstm_last_tokens_only():
    rng = np.random.default_rng(14)
    for kw in ({"cell": "gru"}, {"pooling": "mean"}, {"continuous": True}):
        spec = make_random_spec(rng, **kw)
        for fn in (ref.batch_forward, ref.batch_lrp, ref.batch_gradient):
            with pytest.raises(NotImplementedError):
                fn(spec, [[1, 2, 3]])
    spec = make_random_spec(rng, cell="lstm", layers=[(3, True), (2, True)])
    batch = random_sentences(rng, 4, spec.vocab_size, 1, 9)
    words, rest, _scores = ref.batch_lrp(spec, batch, bias_factor=1.0)
    for n, ids in enumerate(batch):
        w, _, r = ref.lrp(spec, ids, bias_factor=1.0)
        np.testing.assert_allclose(words[n], w, rtol=0, atol=1e-12 * max_abs(w))
        assert abs(rest[n] - r) <= 1e-12 * max_abs(w)


# ----------------------------------------------------------------------------- old numbers

# The last commit whose tests/reference.py is the LSTM-only reference (nested dicts) that the
# engine was validated against before the model specification existed.
OLD_REFERENCE_COMMIT = "046d7ec0347b20695b0758ea66ebc46b83123667"


@pytest.fixture(scope="module")
def old_ref(tmp_path_factory):
    try:
        src = subprocess.run(["git", "show", f"{OLD_REFERENCE_COMMIT}:tests/reference.py"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"the old reference is not in this checkout's history ({exc})")
    path = tmp_path_factory.mktemp("old") / "reference_old.py"
    path.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("reference_old", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["reference_old"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("reference_old", None)


def test_lstm_numbers_did_not_change(old_ref):
    rng = np.random.default_rng(15)
    archs = [{"layers": [(5, False)], "head": [(None, True)]},
             {"layers": [(4, True)], "head": [(6, True), (None, False)]},
             {"layers": [(5, True), (3, False), (4, True)],
              "head": [(6, True), (7, False), (None, True)]}]

    def same(new, old, what):
        np.testing.assert_allclose(new, old, rtol=0, atol=1e-14 * max_abs(old), err_msg=what)

    for arch in archs:
        m = make_random_model(rng, e=4, V=20, C=3, **arch)
        spec = ref.spec_from_dict(m)
        for ids in random_sentences(rng, 3, 20, 1, 25):
            dl = sorted(set(rng.integers(0, len(ids), size=len(ids) // 3).tolist()))
            for model in (m, spec):  # the dict and the converted spec give the same numbers
                same(ref.forward(model, ids, dl), old_ref.forward(m, ids, dl), "forward")
                for rule, bf, eps in itertools.product(ref.RULES, (0.0, 1.0), (1e-3, 0.1)):
                    new = ref.lrp(model, ids, target=1, eps=eps, bias_factor=bf, rule=rule,
                                  deleted=dl)
                    old = old_ref.lrp(m, ids, target=1, eps=eps, bias_factor=bf, rule=rule,
                                      deleted=dl)
                    for a, b in zip(new, old):
                        same(a, b, f"lrp {rule} {bf} {eps}")
                for fn in ("gradient", "sa", "gi", "occlusion"):
                    same(getattr(ref, fn)(model, ids, deleted=dl),
                         getattr(old_ref, fn)(m, ids, deleted=dl), fn)
        batch = random_sentences(rng, 5, 20, 1, 12)
        new, old = ref.batch_lrp(m, batch, rule="abs"), old_ref.batch_lrp(m, batch, rule="abs")
        for a, b in zip(new[0] + [new[1], new[2]], old[0] + [old[1], old[2]]):
            same(a, b, "batch_lrp")
        new, old = ref.batch_gradient(m, batch), old_ref.batch_gradient(m, batch)
        for a, b in zip(new[0] + new[1], old[0] + old[1]):
            same(a, b, "batch_gradient")
