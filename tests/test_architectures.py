"""Every architecture the engine accepts against PyTorch: LSTM and GRU cells x last / mean /
max / attention pooling x token / continuous inputs, 1-3 layers, uni- and bidirectional, heads
of 1-3 layers, classification and regression, mixed-length batches.

Scores must equal torch's forward of the same modules (1e-12, float64), gradients torch's
autograd (1e-10), relevance must be conserved with bias_factor=1 (1e-10), occlusion must equal
brute-force re-scoring. The numpy reference (tests/reference.py) is compared in
test_engine_reference_architectures.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import textlrp

torch = pytest.importorskip("torch")
nn = torch.nn

CELLS = ("lstm", "gru")
POOLINGS = ("last", "mean", "max", "attention")


class Attention(nn.Module):
    """The layout from_torch reads (that of textlrp.nn.AdditiveAttention)."""

    def __init__(self, features, size):
        super().__init__()
        self.proj = nn.Linear(features, size)
        self.score = nn.Linear(size, 1, bias=False)

    def forward(self, y):  # y [T, F]
        alpha = torch.softmax(self.score(torch.tanh(self.proj(y)))[:, 0], 0)
        return (alpha[:, None] * y).sum(0)


class Net(nn.Module):
    """A torch model of one architecture, run one sequence at a time (x [T, e])."""

    def __init__(self, rng, cell, pooling, continuous, layers, bi, head, e=5, d=4, V=25, C=3):
        super().__init__()
        torch.manual_seed(int(rng.integers(2**31)))
        self.embedding = None if continuous else nn.Embedding(V, e)
        RNN = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = RNN(e, d, num_layers=layers, bidirectional=bi, batch_first=True)
        self.F = d * (2 if bi else 1)
        self.d, self.bi = d, bi
        self.pooling = Attention(self.F, 3) if pooling == "attention" else pooling
        mods, n = [], self.F
        for k in range(head):
            out = C if k == head - 1 else 6
            mods += [nn.Linear(n, out)] + ([nn.ReLU()] if k < head - 1 else [])
            n = out
        self.head = nn.Sequential(*mods)
        for p in self.parameters():  # large enough weights that every path carries signal
            nn.init.normal_(p, 0.0, 0.5)
        self.double()

    def features(self, x):
        y, _ = self.rnn(x[None])
        y = y[0]
        T, d = y.shape[0], self.d
        if isinstance(self.pooling, nn.Module):
            return self.pooling(y)
        if self.pooling == "last":
            return torch.cat([y[T - 1, :d], y[0, d:]]) if self.bi else y[T - 1]
        if self.pooling == "mean":
            return y.mean(0)
        return y.max(0).values

    def forward(self, x):
        return self.head(self.features(x))

    def to_textlrp(self, regression=False, **kw):
        names = None if regression else [f"c{k}" for k in range(self.head[-1].out_features)]
        return textlrp.from_torch(self.embedding, self.rnn, self.head, pooling=self.pooling,
                                  class_names=names, **kw)


def cases():
    """The full grid of cell x pooling x input, each with a seeded draw of the other axes."""
    rng = np.random.default_rng(2024)
    out = []
    for cell, pooling, continuous in itertools.product(CELLS, POOLINGS, (False, True)):
        layers, bi, head = int(rng.integers(1, 4)), bool(rng.integers(2)), int(rng.integers(1, 4))
        out.append(pytest.param(cell, pooling, continuous, layers, bi, head,
                                id=f"{cell}-{pooling}-{'cont' if continuous else 'tok'}-L{layers}"
                                   f"{'bi' if bi else 'uni'}-H{head}"))
    return out


def inputs_for(net, rng, lengths, continuous):
    if continuous:
        return [rng.standard_normal((T, 5)) for T in lengths]
    return [rng.integers(0, 25, T) for T in lengths]


def as_tensor(net, x, continuous):
    if continuous:
        return torch.tensor(x, dtype=torch.float64)
    return net.embedding.weight[torch.as_tensor(x)].detach().clone()


LENGTHS = [1, 2, 3, 9, 17, 33, 60, 5, 1, 12]  # mixed lengths in one batch, 1..60


@pytest.mark.parametrize("cell, pooling, continuous, layers, bi, head", cases())
def test_scores_gradients_occlusion_against_torch(cell, pooling, continuous, layers, bi, head):
    rng = np.random.default_rng(7)
    net = Net(rng, cell, pooling, continuous, layers, bi, head)
    model = net.to_textlrp()
    xs = inputs_for(net, rng, LENGTHS, continuous)
    scores = model.predict(xs)
    exps = model.explain_batch(xs, method="gi")
    occ = model.explain_batch(xs, method="occlusion")
    for x, s, e, o in zip(xs, scores, exps, occ):
        xt = as_tensor(net, x, continuous).requires_grad_(True)
        ts = net(xt)
        np.testing.assert_allclose(s, ts.detach().numpy(), rtol=0, atol=1e-12)
        ts[e.target].backward()
        G = xt.grad.numpy()
        np.testing.assert_allclose(e.embedding_relevance, G, rtol=0, atol=1e-10)
        np.testing.assert_allclose(e.relevance, (G * xt.detach().numpy()).sum(1), rtol=0, atol=1e-10)
        # occlusion: the drop of the target score with x_t = 0 (torch on short inputs, the
        # engine's own forward with deleted= on all, itself checked against torch here)
        T = len(x)
        deleted = model.predict([x] * T, deleted=[[t] for t in range(T)])[:, o.target]
        np.testing.assert_allclose(o.relevance, s[o.target] - deleted, rtol=0, atol=1e-10)
        if T <= 9:
            base = xt.detach().numpy()
            for t in range(T):
                x0 = base.copy()
                x0[t] = 0.0
                assert abs(deleted[t] - net(torch.tensor(x0))[o.target].item()) <= 1e-12


@pytest.mark.parametrize("cell, pooling, continuous, layers, bi, head", cases())
def test_conservation_and_thread_invariance(cell, pooling, continuous, layers, bi, head):
    rng = np.random.default_rng(11)
    net = Net(rng, cell, pooling, continuous, layers, bi, head)
    model = net.to_textlrp()
    xs = inputs_for(net, rng, LENGTHS * 3, continuous)
    exps = model.explain_batch(xs, bias_factor=1.0, threads=1)
    for e in exps:
        total = e.relevance.sum() + e.rest
        score = e.scores[e.target]
        scale = max(1.0, np.abs(e.embedding_relevance).max())
        assert abs(total - score) <= 1e-10 * scale, (total, score)
        assert np.isclose(e.embedding_relevance.sum(1), e.relevance, rtol=0, atol=1e-12).all()
    again = model.explain_batch(xs[::-1], bias_factor=1.0, threads=3)[::-1]
    for a, b in zip(exps, again):
        assert np.array_equal(a.relevance, b.relevance) and a.rest == b.rest
        assert np.array_equal(a.scores, b.scores)


@pytest.mark.parametrize("cell, pooling", list(itertools.product(CELLS, POOLINGS)))
def test_float32_close_to_float64(cell, pooling):
    rng = np.random.default_rng(3)
    net = Net(rng, cell, pooling, False, 2, True, 2)
    m64, m32 = net.to_textlrp(), net.to_textlrp(dtype=np.float32)
    xs = inputs_for(net, rng, LENGTHS, False)
    for a, b in zip(m64.explain_batch(xs), m32.explain_batch(xs)):
        assert b.relevance.dtype == np.float32
        np.testing.assert_allclose(b.scores, a.scores, atol=1e-4)
        np.testing.assert_allclose(b.relevance, a.relevance, atol=1e-3 * max(1, np.abs(a.relevance).max()))


@pytest.mark.parametrize("cell, pooling, continuous", [("gru", "attention", True), ("lstm", "mean", False),
                                                       ("gru", "max", False), ("lstm", "last", True)])
def test_regression(cell, pooling, continuous):
    rng = np.random.default_rng(5)
    net = Net(rng, cell, pooling, continuous, 2, True, 2, C=1)
    model = net.to_textlrp(regression=True)
    assert model.regression and model.n_classes == 1
    xs = inputs_for(net, rng, [4, 11, 1], continuous)
    for x, e in zip(xs, model.explain_batch(xs, bias_factor=1.0)):
        value = net(as_tensor(net, x, continuous)).item()
        assert e.regression and e.target == 0 and e.probabilities is None
        assert abs(e.value - value) <= 1e-12
        assert abs(e.relevance.sum() + e.rest - value) <= 1e-10 * max(1, abs(value))
        d = e.to_dict()
        assert d["regression"] is True and d["probabilities"] is None
    with pytest.raises(ValueError, match="out of range"):
        model.explain(xs[0], target=1)


def test_gru_rejects_product_rules():
    net = Net(np.random.default_rng(0), "gru", "last", False, 1, False, 1)
    model = net.to_textlrp()
    for rule in ("prop", "half", "abs"):
        with pytest.raises(ValueError, match="defined for lstm cells only"):
            model.explain([1, 2, 3], rule=rule)
    with pytest.raises(ValueError, match="rule applies to method .lrp. only"):
        model.explain([1, 2, 3], method="gi", rule="prop")  # refused, not ignored


def test_continuous_input_errors():
    net = Net(np.random.default_rng(0), "gru", "mean", True, 1, False, 1)
    model = net.to_textlrp()
    assert model.continuous and model.vocab is None
    with pytest.raises(ValueError, match=r"shape \(steps, 5\)"):
        model.explain(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="not token ids"):
        model.explain(np.array([1, 2, 3]))
    with pytest.raises(TypeError, match="not a text"):
        model.explain("a text")
    with pytest.raises(ValueError, match="NaN or inf at step 1"):
        model.explain(np.array([[0.0] * 5, [np.nan] * 5]))
    with pytest.raises(ValueError, match="empty input"):
        model.explain(np.zeros((0, 5)))
    with pytest.raises(TypeError, match="wrap a single input in a list"):
        model.explain_batch(np.zeros((3, 5)))
    # a batch given as one [N, T, F] array is N inputs
    assert len(model.explain_batch(np.zeros((2, 3, 5)), method="gi")) == 2


def test_token_model_refuses_floats():
    net = Net(np.random.default_rng(0), "lstm", "max", False, 1, False, 1)
    model = net.to_textlrp()
    with pytest.raises(TypeError, match="not a float array"):
        model.explain(np.zeros((3, 5)))


def test_deleted_zeroes_a_continuous_step():
    rng = np.random.default_rng(1)
    net = Net(rng, "gru", "attention", True, 2, True, 1)
    model = net.to_textlrp()
    x = rng.standard_normal((6, 5))
    x0 = x.copy()
    x0[[1, 4]] = 0.0
    np.testing.assert_array_equal(model.predict([x], deleted=[[1, 4]]), model.predict([x0]))
    occ = model.explain(x, method="occlusion", deleted=[1, 4])
    assert occ.relevance[1] == 0 and occ.relevance[4] == 0


def test_from_arrays_gate_orders_and_bias_forms():
    """Keras layouts (LSTM i, f, c, o; GRU z, r, n) and an LSTM's single b give the same model."""
    rng = np.random.default_rng(9)
    net = Net(rng, "gru", "last", False, 1, False, 1)
    ref = net.to_textlrp()
    spec = ref.spec
    d = spec.layers[0].directions[0]

    def zrn(a):
        r, z, n = np.split(a, 3)
        return np.concatenate([z, r, n])

    keras = textlrp.from_arrays(
        spec.embedding, [[{"W_ih": zrn(d.W_ih), "W_hh": zrn(d.W_hh), "b_ih": zrn(d.b_ih), "b_hh": zrn(d.b_hh)}]],
        [{"W": spec.head[0].W, "b": spec.head[0].b}], cell="gru", gate_order="zrh")
    xs = [[1, 2, 3, 4], [5]]
    np.testing.assert_array_equal(keras.predict(xs), ref.predict(xs))
    with pytest.raises(ValueError, match="GRU needs b_ih and b_hh apart"):
        textlrp.from_arrays(spec.embedding, [[{"W_ih": d.W_ih, "W_hh": d.W_hh, "b": d.b_ih}]],
                            [{"W": spec.head[0].W}], cell="gru")
    with pytest.raises(ValueError, match="permutation of 'rzn'"):
        textlrp.from_arrays(spec.embedding, [[{"W_ih": d.W_ih, "W_hh": d.W_hh, "b_ih": d.b_ih, "b_hh": d.b_hh}]],
                            [{"W": spec.head[0].W}], cell="gru", gate_order="ifgo")
    with pytest.raises(ValueError, match="attention"):
        textlrp.from_arrays(spec.embedding, [[{"W_ih": d.W_ih, "W_hh": d.W_hh, "b_ih": d.b_ih, "b_hh": d.b_hh}]],
                            [{"W": spec.head[0].W}], cell="gru", pooling="attention")
