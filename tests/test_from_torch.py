"""textlrp.from_torch: scores and gradients equal PyTorch's; unsupported modules are refused."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import textlrp

torch = pytest.importorskip("torch")
nn = torch.nn


def make(num_layers, bidirectional, batch_first, bias, head_kind, dtype, seed=0, V=25, e=6, d=5, C=4):
    torch.manual_seed(seed)
    emb = nn.Embedding(V, e).to(dtype)
    lstm = nn.LSTM(e, d, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first,
                   bias=bias, dropout=0.3 if num_layers > 1 else 0.0).to(dtype)
    n_feat = d * (2 if bidirectional else 1)
    if head_kind == "linear":
        head = nn.Linear(n_feat, C)
    elif head_kind == "linear-nobias":
        head = nn.Linear(n_feat, C, bias=False)
    else:
        head = nn.Sequential(nn.Dropout(0.2), nn.Linear(n_feat, 7), nn.ReLU(), nn.Dropout(0.5),
                             nn.Linear(7, 3, bias=False), nn.ReLU(), nn.Linear(3, C))
    head = head.to(dtype)
    with torch.no_grad():  # larger weights than the default init so every path matters
        for p in list(lstm.parameters()) + list(head.parameters()):
            p.mul_(2.0)
    for m in (emb, lstm, head):
        m.eval()
    return emb, lstm, head


def torch_scores(emb, lstm, head, ids, grad=False):
    x = emb(torch.tensor([ids]))
    x = x.detach().requires_grad_(grad)
    inp = x if lstm.batch_first else x.transpose(0, 1)
    _, (h_n, _) = lstm(inp)
    feats = torch.cat([h_n[-2], h_n[-1]], 1) if lstm.bidirectional else h_n[-1]
    return head(feats)[0], x


ARCHS = [
    (1, True, True, True, "linear"),
    (1, False, False, True, "linear-nobias"),
    (2, True, False, False, "sequential"),
    (3, False, True, True, "sequential"),
    (3, True, True, True, "linear"),
    (2, False, False, False, "linear"),
]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: "-".join(map(str, a)))
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)], ids=["f32", "f64"])
def test_scores_and_gradient_x_input_match_torch(arch, dtype, tol):
    emb, lstm, head = make(*arch, dtype=dtype)
    model = textlrp.from_torch(emb, lstm, head)
    assert model.dtype == (np.float32 if dtype == torch.float32 else np.float64)
    rng = np.random.default_rng(1)
    sentences = [rng.integers(0, 25, size=n).tolist() for n in (1, 2, 7, 13)]
    got = model.predict(sentences)
    for ids, scores in zip(sentences, got):
        expected, _ = torch_scores(emb, lstm, head, ids)
        np.testing.assert_allclose(scores, expected.detach().numpy(), rtol=0, atol=tol)
    # gradient x input for a fixed target, against autograd (float64 model for a clean comparison)
    model64 = textlrp.from_torch(emb, lstm, head, dtype=np.float64)
    for ids in sentences:
        target = 2
        out, x = torch_scores(emb, lstm, head, ids, grad=True)
        (g,) = torch.autograd.grad(out[target], x)
        gi = (g * x).sum(-1)[0].detach().double().numpy()
        exp = model64.explain(ids, method="gi", target=target)
        np.testing.assert_allclose(exp.relevance, gi, rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-12)


def test_vocab_class_names_and_settings_are_kept():
    emb, lstm, head = make(1, True, True, True, "linear", torch.float32, V=4, C=2)
    model = textlrp.from_torch(emb, lstm, head, vocab={"<unk>": 0, "good": 1, "bad": 2, "film": 3},
                               class_names=["neg", "pos"], unk_token="<unk>", lowercase=True, metadata={"k": 1})
    assert model.vocab == ["<unk>", "good", "bad", "film"]
    assert model.class_names == ["neg", "pos"] and model.unk_token == "<unk>" and model.lowercase
    assert model.metadata == {"k": 1}
    _tokens, ids, oov = model.encode(["Good", "FILM", "meh"])
    assert ids.tolist() == [1, 3, 0] and oov.tolist() == [False, False, True]
    default = textlrp.from_torch(emb, lstm, head)
    assert default.metadata["source"] == "textlrp.from_torch"


def test_dtype_override():
    emb, lstm, head = make(1, False, True, True, "linear", torch.float32)
    assert textlrp.from_torch(emb, lstm, head, dtype=np.float64).dtype == np.float64


def test_saved_converted_model_round_trips(tmp_path):
    emb, lstm, head = make(2, True, True, True, "sequential", torch.float32)
    model = textlrp.from_torch(emb, lstm, head)
    model.save(tmp_path / "m.npz")
    loaded = textlrp.load_model(tmp_path / "m.npz", dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict([[1, 2, 3]]), model.predict([[1, 2, 3]]))


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: (nn.Embedding(10, 4, max_norm=1.0), nn.LSTM(4, 3), nn.Linear(3, 2)), ValueError, "max_norm"),
        (lambda: (nn.EmbeddingBag(10, 4), nn.LSTM(4, 3), nn.Linear(3, 2)), TypeError, "EmbeddingBag"),
        (lambda: (nn.Embedding(10, 4), nn.RNN(4, 3), nn.Linear(3, 2)), TypeError, "RNN"),
        (lambda: (nn.Embedding(10, 4), nn.LSTM(4, 3, proj_size=2), nn.Linear(2, 2)), ValueError, "proj_size"),
        (lambda: (nn.Embedding(10, 5), nn.LSTM(4, 3), nn.Linear(3, 2)), ValueError, "input_size is 4"),
        (lambda: (nn.Embedding(10, 4), nn.LSTM(4, 3, bidirectional=True), nn.Linear(3, 2)), ValueError,
         "in_features=3 but receives 6"),
        (lambda: (nn.Embedding(10, 4), nn.LSTM(4, 3), nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))),
         ValueError, r"head\[1\] is Tanh"),
        (lambda: (nn.Embedding(10, 4), nn.LSTM(4, 3), nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))),
         ValueError, "right after another Linear"),
        (lambda: (nn.Embedding(10, 4), nn.LSTM(4, 3), nn.Sequential(nn.Linear(3, 2), nn.ReLU())),
         ValueError, "ends with a ReLU"),
        (lambda: (nn.Embedding(10, 4), nn.LSTM(4, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 2))),
         ValueError, "before the first Linear"),
        (lambda: (nn.Embedding(10, 4), nn.LSTM(4, 3), nn.Sequential(nn.Dropout(0.1))), ValueError, "no nn.Linear"),
        (lambda: (nn.Embedding(10, 4), nn.LSTM(4, 3), nn.Conv1d(3, 2, 1)), TypeError, "Conv1d"),
    ],
)
def test_unsupported_modules_raise(build, error, match):
    with pytest.raises(error, match=match):
        textlrp.from_torch(*build())


class _Attn(nn.Module):  # AdditiveAttention's layout, with or without the pieces it needs
    def __init__(self, features, size, score_bias=False, proj=True):
        super().__init__()
        if proj:
            self.proj = nn.Linear(features, size)
        self.score = nn.Linear(size, 1, bias=score_bias)


@pytest.mark.parametrize(
    "pooling, error, match",
    [
        ("first", ValueError, "pooling must be 'last', 'mean', 'max'"),
        (nn.Linear(3, 3), TypeError, "Linear is not supported"),
        (_Attn(3, 2, proj=False), TypeError, "_Attn is not supported"),
        (_Attn(3, 2, score_bias=True), ValueError, "score must have no bias"),
        (_Attn(5, 2), ValueError, "in_features=5 but the recurrent layers give 3"),
        (17, TypeError, "got int"),
    ],
)
def test_unsupported_pooling_raises(pooling, error, match):
    with pytest.raises(error, match=match):
        textlrp.from_torch(nn.Embedding(10, 4), nn.GRU(4, 3), nn.Linear(3, 2), pooling=pooling)


def test_continuous_model_takes_no_vocab():
    with pytest.raises(ValueError, match="takes no vocabulary"):
        textlrp.from_torch(None, nn.GRU(4, 3), nn.Linear(3, 2), vocab=["a"])


def test_bad_vocab_dict():
    emb, lstm, head = make(1, False, True, True, "linear", torch.float32, V=3)
    with pytest.raises(ValueError, match="no token for ids"):
        textlrp.from_torch(emb, lstm, head, vocab={"a": 0, "b": 1})
    with pytest.raises(ValueError, match="outside"):
        textlrp.from_torch(emb, lstm, head, vocab={"a": 0, "b": 1, "c": 3})


def test_import_textlrp_does_not_import_torch():
    code = "import sys, textlrp, textlrp.io, textlrp.tokenize, textlrp.sst, textlrp.train, textlrp.torch_import\n" \
           "assert 'torch' not in sys.modules, 'torch imported'\n"
    subprocess.run([sys.executable, "-c", code], check=True)
