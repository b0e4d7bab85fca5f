"""Fields of the Explanation returned for each method, and the random baseline."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from conftest import build, make_random_model

import textlrp
from textlrp.methods import METHODS

E, C = 4, 5


@pytest.fixture(scope="module")
def arrays():
    return make_random_model(np.random.default_rng(40), e=E, layers=[(5, True)],
                             head=[(None, True)], V=20, C=C)


@pytest.fixture(scope="module")
def model(arrays):
    return build(arrays, class_names=["a", "b", "c", "d", "e"])


@pytest.mark.parametrize("method", ["lrp", "sa", "gi", "occlusion", "random"])
def test_fields(model, arrays, method):
    ids = [3, 4, 5, 6, 7, 8]
    e = model.explain(ids, method=method)
    scores = ref.forward(arrays, ids)
    assert e.method == method
    assert e.relevance.shape == (6,)
    assert np.all(np.isfinite(e.relevance))
    assert e.scores.shape == (C,)
    np.testing.assert_allclose(e.scores, scores, rtol=0, atol=1e-12)
    assert e.prediction == int(np.argmax(scores))
    assert e.target == e.prediction
    assert e.prediction_name == "abcde"[e.prediction]
    np.testing.assert_allclose(e.probabilities.sum(), 1.0)
    np.testing.assert_array_equal(e.ids, ids)
    assert len(e.tokens) == 6 and e.oov.shape == (6,) and not e.oov.any()
    if method == "lrp":
        assert isinstance(e.rest, float)
        assert e.embedding_relevance.shape == (6, E)
        assert e.params == {"rule": "signal-take-all", "eps": 1e-3, "bias_factor": 0.0}
    else:
        assert e.rest is None
    if method in ("sa", "gi"):
        assert e.embedding_relevance.shape == (6, E)  # the gradient G
    if method in ("occlusion", "random"):
        assert e.embedding_relevance is None
    d = e.to_dict()
    assert d["method"] == method and d["target"] == e.target and len(d["relevance"]) == 6


def test_target_by_name_and_index(model):
    a = model.explain([1, 2, 3], target="c")
    b = model.explain([1, 2, 3], target=2)
    assert a.target == b.target == 2 and a.target_name == "c"
    np.testing.assert_array_equal(a.relevance, b.relevance)
    other = model.explain([1, 2, 3], target=(a.prediction + 1) % C)
    assert other.target != other.prediction
    assert not np.array_equal(other.relevance, a.relevance)


def test_explain_batch_target_forms(model):
    batch = [[1, 2], [3, 4, 5], [6]]
    per = model.explain_batch(batch, target=[0, "b", None])
    assert [e.target for e in per] == [0, 1, per[2].prediction]
    same = model.explain_batch(batch, target="d")
    assert [e.target for e in same] == [3, 3, 3]


def test_random_is_seeded_and_reproducible(model):
    ids = list(range(15))
    a = model.explain(ids, method="random", seed=3)
    b = model.explain(ids, method="random", seed=3)
    c = model.explain(ids, method="random", seed=4)
    np.testing.assert_array_equal(a.relevance, b.relevance)
    assert not np.array_equal(a.relevance, c.relevance)
    assert np.all((a.relevance >= 0) & (a.relevance < 1))
    assert len(set(a.relevance.tolist())) == 15  # a ranking without ties
    # the same sentence gets the same draw wherever it sits in a batch
    batch = model.explain_batch([[1, 2], ids, [5]], method="random", seed=3)
    np.testing.assert_array_equal(batch[1].relevance, a.relevance)
    assert a.params.get("seed") == 3


def test_default_target_is_first_argmax_on_ties():
    """Two identical classes (same head row): the prediction is the first of them."""
    m = make_random_model(np.random.default_rng(41), e=3, layers=[(4, False)],
                          head=[(None, True)], V=10, C=3)
    W = m["head"][0]["W"].copy()
    b = m["head"][0]["b"].copy()
    W[0] = W[2] = 0.0  # classes 0 and 2 score exactly 10, above class 1 (|W[1] h + b[1]| < 10)
    b[0] = b[2] = 10.0
    m["head"] = [{"W": W, "b": b}]
    model = build(m)
    e = model.explain([1, 2, 3])
    assert e.scores[0] == e.scores[2] == 10.0 and e.scores[1] < 10.0
    assert e.prediction == 0 and e.target == 0


def test_explain_corpus_streams_the_same_results(model):
    rng = np.random.default_rng(42)
    batch = [rng.integers(0, 20, size=int(T)).tolist() for T in rng.integers(1, 12, size=11)]
    want = model.explain_batch(batch, method="lrp", rule="half", bias_factor=1.0)
    got = list(model.explain_corpus(iter(batch), batch_size=4, threads=2, method="lrp",
                                    rule="half", bias_factor=1.0))
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a.relevance, b.relevance)
        assert a.rest == b.rest


def test_overflowing_relevance_is_flagged_on_the_input():
    """A crafted LSTM whose cell state settles at c = -f: the prop rule's share
    c_prev / stab(f + c_prev) is then ~ -0.5 / eps at every step, so relevance grows by
    ~1e5 per step backwards and overflows float64 within 100 tokens. The API reports it as
    ``overflow`` on that input's Explanation (no warning: filterwarnings=error would fail)."""
    b = np.array([0.0, 0.0, np.arctanh(-0.5), 0.0])  # i = f = 0.5, g = -0.5: c -> -0.5 = -f
    zero = np.zeros((4, 1))
    model = build({"embedding": np.ones((2, 1)),
                   "lstm_layers": [[{"W_ih": zero, "W_hh": zero, "b": b}]],
                   "head": [{"W": np.ones((1, 1)), "b": None}]})
    batch = [[1] * 5, [1] * 100, [0] * 3]
    kw = {"rule": "prop", "eps": 1e-6, "bias_factor": 1.0}
    exps = model.explain_batch(batch, **kw)
    assert not np.all(np.isfinite(exps[1].relevance)) and exps[1].overflow
    assert exps[1].to_dict()["overflow"] is True and "overflow=True" in repr(exps[1])
    for k in (0, 2):  # the other inputs of the batch are unaffected
        assert np.all(np.isfinite(exps[k].relevance)) and np.isfinite(exps[k].rest)
        assert not exps[k].overflow
        np.testing.assert_array_equal(exps[k].relevance, model.explain(batch[k], **kw).relevance)
    # the signal-take-all default does not divide by f + c_prev: finite on the same input
    assert np.all(np.isfinite(model.explain(batch[1], eps=1e-6, bias_factor=1.0).relevance))


def test_keep_embedding_false_drops_only_the_embedding_arrays(model):
    batch = [[1, 2, 3], [4, 5]]
    for method in [m for m in METHODS if m not in ("occlusion", "random")]:
        lrp = {"rule": "abs"} if method == "lrp" else {}
        full = model.explain_batch(batch, method=method, **lrp)
        lean = model.explain_batch(batch, method=method, keep_embedding=False, **lrp)
        for a, b in zip(full, lean):
            assert b.embedding_relevance is None
            np.testing.assert_array_equal(a.relevance, b.relevance)
            assert a.rest == b.rest


def test_vocabulary_object_owns_tokens_and_tokenizer_settings():
    """The vocabulary and the tokenizer settings are one object (textlrp.Vocabulary) that the
    model encodes with; a Model can be built from one and exposes the same fields."""
    from textlrp import Vocabulary

    vocab = Vocabulary(["<unk>", "good", "film", "n't"], unk_token="<unk>", lowercase=True)
    assert vocab.tokenize("Good FILM, don't") == ["good", "film", ",", "do", "n't"]
    ids, oov = vocab.lookup(vocab.tokenize("Good FILM, don't"))
    assert ids.tolist() == [1, 2, 0, 0, 3] and oov.tolist() == [False, False, True, True, False]
    assert vocab.decode(np.array([0, 3]))[0] == ["<unk>", "n't"]
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((4, 3))
    layer = [{"W_ih": rng.standard_normal((12, 3)), "W_hh": rng.standard_normal((12, 3)),
              "b": rng.standard_normal(12)}]
    head = [{"W": rng.standard_normal((2, 3)), "b": None}]
    model = textlrp.from_arrays(emb, [layer], head, vocab=vocab)
    assert model.vocabulary is vocab and model.lowercase and model.unk_token == "<unk>"
    assert model.encode("GOOD film").ids.tolist() == [1, 2]
    with pytest.raises(ValueError, match="unk_token 'x' is not in the vocabulary"):
        Vocabulary(["a"], unk_token="x")
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["a", "a"])
    with pytest.raises(ValueError, match="no unknown token"):
        Vocabulary(["a"]).lookup(["b"])
