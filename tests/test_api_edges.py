"""The edges of the Python API (issue 9): every class at once, encoded inputs, the overflow
flag, corpus streams from files, argument checks (also on empty batches), huge ids, deleted
positions, method parameters, long occlusions, concurrent calls and the bindings' offsets
check. Every test builds a small random model: no data files needed."""

from __future__ import annotations

import io
import threading
import warnings

import numpy as np
import pytest

import textlrp
from textlrp import Encoding, ExplanationError
from textlrp.model import OCCLUSION_WARN_TOKENS

WORDS = ["<unk>", "the", "film", "is", "great", "bad", "not", "fun", "boring", ",", "."]
CLASSES = ["neg", "neutral", "pos"]


def random_model(seed=0, scale=0.6, class_names=CLASSES, e=4, d=3):
    rng = np.random.default_rng(seed)

    def direction():
        return {"W_ih": rng.normal(0, scale, (4 * d, e)), "W_hh": rng.normal(0, scale, (4 * d, d)),
                "b": rng.normal(0, 0.2, 4 * d)}
    C = len(class_names)
    return textlrp.from_arrays(
        rng.normal(0, 1, (len(WORDS), e)), [[direction(), direction()]],
        [{"W": rng.normal(0, 1, (C, 2 * d)), "b": rng.normal(0, 0.2, C)}],
        vocab=WORDS, class_names=class_names, unk_token="<unk>", lowercase=True)


@pytest.fixture(scope="module")
def model():
    return random_model()


TEXTS = ["the film is great", "not fun , boring .", "bad", "the film is not bad ."]


def same(a, b):
    np.testing.assert_array_equal(a.relevance, b.relevance)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert (a.target, a.rest, a.tokens, a.text) == (b.target, b.rest, b.tokens, b.text)


# --------------------------------------------------------------------------- target="all"


@pytest.mark.parametrize("method", ["lrp", "gi", "occlusion", "random"])
def test_target_all_gives_every_class_per_input(model, method):
    got = model.explain_batch(TEXTS, method=method, target="all")
    assert len(got) == len(TEXTS)
    for text, per_class in zip(TEXTS, got):
        assert isinstance(per_class, list) and [e.target for e in per_class] == [0, 1, 2]
        for c, exp in enumerate(per_class):
            same(exp, model.explain(text, method=method, target=c))
    single = model.explain(TEXTS[0], method=method, target="all")
    assert [e.target for e in single] == [0, 1, 2]
    same(single[2], got[0][2])


def test_target_all_encodes_each_input_once(model, monkeypatch):
    calls = []
    real = textlrp.Model.tokenize

    def counting(self, text):
        calls.append(text)
        return real(self, text)
    monkeypatch.setattr(textlrp.Model, "tokenize", counting)
    model.explain_batch(TEXTS, target="all")
    assert sorted(calls) == sorted(TEXTS)
    calls.clear()
    results = list(model.explain_corpus(iter(TEXTS), batch_size=3, target="all"))
    assert sorted(calls) == sorted(TEXTS)
    assert [len(r) for r in results] == [3] * 4 and results[1][0].text == TEXTS[1]


def test_target_all_with_deleted_positions(model):
    got = model.explain_batch(TEXTS[:2], target="all", deleted=[[0], None])
    for c in range(3):
        same(got[0][c], model.explain(TEXTS[0], target=c, deleted=[0]))
        same(got[1][c], model.explain(TEXTS[1], target=c))


def test_a_class_named_all_is_selected_by_index():
    m = random_model(class_names=["all", "some"])
    assert len(m.explain("the film", target="all")) == 2  # "all" means every class
    assert m.explain("the film", target=0).target_name == "all"


# --------------------------------------------------------------------------- encoded inputs


def test_encoding_is_taken_as_it_is(model, monkeypatch):
    encs = [model.encode(t) for t in TEXTS]
    assert isinstance(encs[0], Encoding) and encs[0].tokens == ["the", "film", "is", "great"]
    want_scores = model.predict(TEXTS)
    want = model.explain_batch(TEXTS)

    def no_tokenising(self, text):
        raise AssertionError("an Encoding was encoded again")
    monkeypatch.setattr(textlrp.Model, "tokenize", no_tokenising)
    np.testing.assert_array_equal(model.predict(encs), want_scores)
    for a, b in zip(model.explain_batch(encs), want):
        np.testing.assert_array_equal(a.relevance, b.relevance)
        assert a.tokens == b.tokens and a.text is None
    assert [r.target for r in model.explain(encs[0], target="all")] == [0, 1, 2]


def test_a_bad_encoding_is_refused(model):
    tokens, ids, oov = model.encode("the film")
    with pytest.raises(IndexError, match="out of range"):
        model.predict([Encoding(tokens, np.array([1, 99]), oov)])
    with pytest.raises(ValueError, match="one token, id and oov flag per position"):
        model.predict([Encoding(tokens[:1], ids, oov)])
    with pytest.raises(TypeError, match="integers"):
        model.predict([Encoding(tokens, ids.astype(float), oov)])
    with pytest.raises(TypeError, match="wrap a single Encoding in a list"):
        model.predict(Encoding(tokens, ids, oov))


# --------------------------------------------------------------------------- explain_corpus


def test_corpus_from_a_file_keeps_lines_as_written(model, tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"the film is great\n  bad  \r\n\n   \nnot fun")
    with open(path, encoding="utf-8", newline="") as f:  # newline="": "\r\n" reaches us
        results = list(model.explain_corpus(f))
    assert [r.text for r in results] == ["the film is great", "  bad  ", "", "   ", "not fun"]
    assert isinstance(results[2], ExplanationError) and isinstance(results[3], ExplanationError)
    # blank lines are recorded even with errors="raise", counted from 1 like file lines
    assert results[2].to_dict() == {"line": 3, "text": "", "error": "empty line"}
    assert results[3].line == 4
    with open(path, encoding="utf-8") as f:
        skipped = list(model.explain_corpus(f, skip_empty=True))
    assert [r.text for r in skipped] == ["the film is great", "  bad  ", "not fun"]


def test_corpus_errors_count_lines_from_one(model):
    lines = ["the film", "bad", str(2**70), "great"]
    ids = [[1, 2], [5], [2**70], [4]]  # a huge id is an IndexError, not an OverflowError
    got = list(model.explain_corpus(iter(ids), errors="record"))
    assert isinstance(got[2], ExplanationError) and got[2].line == 3
    assert "out of range" in got[2].error and got[3].tokens == ["great"]
    assert got[2].to_dict()["text"] == repr([2**70])
    with pytest.raises(IndexError, match="out of range"):
        list(model.explain_corpus(iter(ids)))
    assert len(list(model.explain_corpus(iter(lines), errors="record"))) == 4


def test_corpus_checks_its_arguments_before_reading(model):
    def never():
        raise AssertionError("the stream was read")
        yield

    for kwargs, error in [({"method": "sa", "eps": 0.1}, ValueError),
                          ({"target": 7}, ValueError),
                          ({"bias_factor": 2}, ValueError),
                          ({"target": [0, 1]}, TypeError),
                          ({"window": 3}, TypeError)]:
        with pytest.raises(error):
            next(model.explain_corpus(never(), **kwargs))


# --------------------------------------------------------------------------- argument checks


def test_a_scalar_input_gets_the_right_advice(model):
    with pytest.raises(TypeError, match=r"one-token input is \[123\]") as info:
        model.explain(123)
    assert "wrap a single sequence" not in str(info.value)
    with pytest.raises(TypeError, match="one input"):
        model.explain(1.5)
    with pytest.raises(TypeError, match="wrap a single sequence of ids in a list"):
        model.explain_batch([1, 2, 3])
    with pytest.raises(TypeError, match="pass a list of inputs"):
        model.explain_batch(5)


@pytest.mark.parametrize("value", [0.0, 0.25, 1.0])
def test_bias_factor_in_the_unit_interval(model, value):
    exp = model.explain("the film", bias_factor=value)
    assert exp.params["bias_factor"] == value


@pytest.mark.parametrize("value, error", [(-0.1, ValueError), (1.5, ValueError),
                                          (2, ValueError), (np.inf, ValueError),
                                          (True, TypeError), ("1", TypeError)])
def test_bias_factor_outside_the_unit_interval_is_refused(model, value, error):
    with pytest.raises(error, match="bias_factor"):
        model.explain("the film", bias_factor=value)


@pytest.mark.parametrize("method", ["sa", "gi", "occlusion", "random"])
@pytest.mark.parametrize("param", [{"eps": 0.1}, {"bias_factor": 1.0}, {"rule": "prop"}])
def test_lrp_parameters_for_other_methods_are_refused(model, method, param):
    with pytest.raises(ValueError, match=f"{next(iter(param))} applies to method 'lrp' only"):
        model.explain("the film", method=method, **param)


@pytest.mark.parametrize("method", ["lrp", "sa", "gi", "occlusion"])
def test_seed_for_other_methods_is_refused(model, method):
    with pytest.raises(ValueError, match="seed applies to method 'random' only"):
        model.explain("the film", method=method, seed=3)


def test_arguments_are_checked_on_empty_batches(model):
    with pytest.raises(ValueError):
        model.explain_batch([], target=99, eps=-1)
    for kwargs, error in [({"target": 99}, ValueError), ({"eps": -1}, ValueError),
                          ({"eps": 0.0}, ValueError), ({"method": "lime"}, ValueError),
                          ({"rule": "z"}, ValueError), ({"threads": 0}, ValueError),
                          ({"target": [0]}, ValueError), ({"deleted": [[0]]}, ValueError),
                          ({"method": "sa", "rule": "prop"}, ValueError),
                          ({"seed": 1.5, "method": "random"}, TypeError)]:
        with pytest.raises(error):
            model.explain_batch([], **kwargs)
    with pytest.raises(ValueError):
        model.predict([], deleted=[[0]])
    assert model.explain_batch([]) == [] and model.explain_batch([], target="all") == []


@pytest.mark.parametrize("ids", [[2**63], [2**64], [-2**63 - 1], [1, 2**100],
                                 np.array([2**63], dtype=np.uint64),
                                 np.array([2**64 - 1], dtype=np.uint64)])
def test_huge_ids_raise_index_error(model, ids):
    with pytest.raises(IndexError, match="out of range") as info:
        model.explain(ids)
    value = int(np.asarray(ids, dtype=object)[-1] if isinstance(ids, list) else ids[-1])
    assert str(value) in str(info.value)  # the id as given, not wrapped around
    with pytest.raises(IndexError, match="out of range"):
        model.predict([ids])


@pytest.mark.parametrize("deleted, error", [
    ([[True], [0]], TypeError),              # bools are not positions
    ([[[0]], [0]], TypeError),               # nested lists
    ([[0.0], None], TypeError),              # floats
    ([np.array([True, False]), None], TypeError),   # a mask
    ([np.array([[0]]), None], TypeError),    # 2-D
    ([0, 1], TypeError),                     # one flat list for the batch
    ("01", TypeError),
    ([[0]], ValueError),                     # one entry for two inputs
    ([[2**70], None], IndexError),           # out of range, however large
    ([[-1], None], IndexError),
    ([np.array([2**63], dtype=np.uint64), None], IndexError),
])
def test_deleted_positions_are_checked(model, deleted, error):
    with pytest.raises(error):
        model.explain_batch(["the film", "bad"], deleted=deleted)
    with pytest.raises(error):
        model.predict(["the film", "bad"], deleted=deleted)


def test_valid_deleted_positions(model):
    a = model.explain_batch(["the film", "bad"], deleted=[(1,), np.array([0], dtype=np.uint8)])
    b = model.explain_batch(["the film", "bad"], deleted=[[1], [0]])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.relevance, y.relevance)


# --------------------------------------------------------------------------- overflow


def test_huge_weights_warn_at_build_and_flag_each_explanation():
    rng = np.random.default_rng(3)
    d, e = 3, 2

    def direction(s):
        return {"W_ih": rng.normal(0, s, (4 * d, e)), "W_hh": rng.normal(0, s, (4 * d, d)),
                "b": np.zeros(4 * d)}
    emb = rng.normal(0, 1, (5, e))
    arrays = ([[direction(1e300), direction(1e300)]], [{"W": rng.normal(0, 1e300, (2, 2 * d)),
                                                         "b": None}])
    with pytest.warns(RuntimeWarning, match="weight of magnitude .* overflow"):
        big = textlrp.from_arrays(emb, *arrays)
    exps = big.explain_batch([[1, 2, 3], [4]], method="sa")
    assert all(e.overflow for e in exps)  # squared gradients overflow: flagged, not hidden
    assert exps[0].to_dict()["overflow"] is True and exps[0].to_dict()["relevance"][0] is None
    with pytest.warns(RuntimeWarning, match="forward pass can overflow float64"):
        textlrp.from_arrays(emb * 1e300, [[direction(1e10)]],
                            [{"W": np.ones((2, d)), "b": None}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ordinary = random_model()  # no warning for ordinary weights
    assert not any(e.overflow for e in ordinary.explain_batch(TEXTS, method="sa"))


# --------------------------------------------------------------------------- occlusion


def test_long_occlusion_warns_with_an_estimate(model):
    long = [1] * (OCCLUSION_WARN_TOKENS + 1)
    with pytest.warns(RuntimeWarning, match=r"O\(T\^2\).*longest has 1001.*expect about \d+ s") as w:
        exp = model.explain(long, method="occlusion")
    assert len(exp.relevance) == OCCLUSION_WARN_TOKENS + 1
    # every entry point names the user's line, however deep the API's calls go
    calls = [lambda: model.explain_batch([long], method="occlusion"),
             lambda: model.explain_batch([long], method="occlusion", target="all"),
             lambda: list(model.explain_corpus([long], method="occlusion"))]
    for call in [None, *calls]:
        if call is not None:
            with pytest.warns(RuntimeWarning) as w:
                call()
        assert [r.filename for r in w] == [__file__]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.explain([1] * OCCLUSION_WARN_TOKENS, method="occlusion")  # at the limit: quiet
        model.explain(long, method="lrp")  # one pass: never warns


# --------------------------------------------------------------------------- threads


def test_concurrent_calls_on_one_model_match_sequential_calls():
    """Several Python threads call explain_batch (and explain_corpus) on one model at the
    same time, started together by a barrier: every result is bit-identical to the same
    call made alone."""
    model = random_model(seed=5)
    rng = np.random.default_rng(11)
    batches = [[rng.integers(1, len(WORDS), size=int(n)).tolist()
                for n in rng.integers(1, 40, size=25)] for _ in range(6)]
    calls = [{"method": "lrp", "rule": "abs"}, {"method": "gi"}, {"method": "occlusion"},
             {"method": "lrp", "target": "all"}, {"method": "sa", "target": 2},
             {"method": "lrp", "bias_factor": 1.0}]

    def run(k):
        return model.explain_batch(batches[k], threads=2, **calls[k])

    def flat(results):
        return [e for r in results for e in (r if isinstance(r, list) else [r])]

    alone = [flat(run(k)) for k in range(len(calls))]
    corpus_alone = flat(model.explain_corpus(iter(batches[0]), batch_size=7, target="all"))
    barrier = threading.Barrier(len(calls) + 1)
    results: dict[int, list] = {}

    def worker(k):
        barrier.wait()
        if k == len(calls):
            results[k] = flat(model.explain_corpus(iter(batches[0]), batch_size=7,
                                                   target="all"))
        else:
            results[k] = flat(run(k))
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(calls) + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == len(calls) + 1
    for k, want in enumerate([*alone, corpus_alone]):
        assert len(results[k]) == len(want)
        for a, b in zip(results[k], want):
            np.testing.assert_array_equal(a.relevance, b.relevance)
            np.testing.assert_array_equal(a.scores, b.scores)


# --------------------------------------------------------------------------- bindings


@pytest.mark.parametrize("offsets, match", [
    ([0, 2**63 - 1, 4], "too long"),
    ([0, 4, 2**63 - 1], "too long"),
    ([0, 2, -2**63], "must not decrease"),
    ([0, -2**63 + 1, 4], "must not decrease"),
    ([2**63 - 1, 4], "start at 0"),
    ([0, 2, 3], "must end at the number of input rows"),
    ([], "at least one entry"),
])
def test_the_bindings_check_offsets_without_overflow(model, offsets, match):
    """take_batch checks order and bounds before it subtracts: no signed overflow (which
    scripts/sanitize.sh would report), a ValueError instead."""
    ids = np.array([1, 2, 3, 4], dtype=np.int64)
    off = np.array(offsets, dtype=np.int64)
    core = model._core
    with pytest.raises(ValueError, match=match):
        core.forward(ids, off, None, 1)
    with pytest.raises(ValueError, match=match):
        core.lrp(ids, off, None, None, 1e-3, 0.0, "signal-take-all", 1, False)
    with pytest.raises(ValueError, match=match):
        core.occlusion(ids, off, None, None, 1)


def test_the_bindings_refuse_wrapped_unsigned_offsets(model):
    ids = np.array([1, 2, 3, 4], dtype=np.int64)
    with pytest.raises(ValueError, match="must not decrease"):
        model._core.forward(ids, np.array([0, 2**64 - 1, 4], dtype=np.uint64), None, 1)
    with pytest.raises((ValueError, IndexError)):
        model._core.forward(np.array([2**63, 1], dtype=np.uint64), np.array([0, 2]), None, 1)


def test_corpus_of_a_stringio_with_crlf(model):
    got = list(model.explain_corpus(io.StringIO("the film\r\nbad\r\n", newline=""),
                                    method="random", seed=4))
    assert [g.text for g in got] == ["the film", "bad"] and got[0].params == {"seed": 4}


def test_continuous_and_regression_models_take_the_new_arguments(make_random_spec):
    """target="all", Encodings and the overflow flag on a continuous-input GRU regression
    model and a continuous LSTM classifier (the spec-built architectures)."""
    rng = np.random.default_rng(8)
    for cell, C in (("gru", 1), ("lstm", 3)):
        spec = make_random_spec(rng, cell=cell, layers=((3, True),), pooling="mean",
                                continuous=True, e=2, C=C)
        model = textlrp.Model(spec)
        xs = [rng.standard_normal((5, 2)), rng.standard_normal((2, 2))]
        per_class = model.explain_batch(xs, target="all", method="gi")
        assert [len(r) for r in per_class] == [C, C] and per_class[0][0].regression == (C == 1)
        encs = [model.encode(x) for x in xs]
        np.testing.assert_array_equal(model.predict(encs), model.predict(xs))
        for a, b in zip(model.explain_batch(encs, target=0), model.explain_batch(xs, target=0)):
            np.testing.assert_array_equal(a.relevance, b.relevance)
            assert not a.overflow
        with pytest.raises(TypeError, match="one input"):
            model.explain(2.0)
        with pytest.raises(ValueError, match=r"shape \(steps, 2\)"):
            model.predict([Encoding(["0"], np.zeros((1, 3)), np.zeros(1, bool))])
