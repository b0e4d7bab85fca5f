"""Engine passes started with ``background=True`` (what explain_corpus and the command
line's predict loop use to overlap the engine with tokenising and writing): the same
arrays, bit for bit, as the direct call; errors raised when the pass is started; a pass
dropped unfinished, waited for twice or from several threads harms nothing."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest
from conftest import random_sentences

import textlrp
from textlrp import _core


def _model(make_random_model, dtype=np.float64):
    rng = np.random.default_rng(7)
    arrays = make_random_model(rng, e=5, layers=((6, True), (4, True)), V=40, C=4)
    return textlrp.from_arrays(arrays["embedding"], arrays["lstm_layers"], arrays["head"],
                               dtype=dtype)


def _batch(n=300, seed=1):
    rng = np.random.default_rng(seed)
    seqs = random_sentences(rng, n, 40, 1, 30)
    ids = np.concatenate(seqs).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64)
    mask = (rng.random(len(ids)) < 0.1).astype(np.uint8)
    targets = rng.integers(-1, 4, size=n).astype(np.int64)
    return ids, offsets, mask, targets


def _calls(core, ids, offsets, mask, targets):
    return {
        "forward": lambda **kw: core.forward(ids, offsets, mask, 2, **kw),
        "lrp": lambda **kw: core.lrp(ids, offsets, mask, targets, 1e-3, 0.5, "abs", 2, True, **kw),
        "gradient": lambda **kw: core.gradient(ids, offsets, mask, targets, 2, True, **kw),
        "occlusion": lambda **kw: core.occlusion(ids, offsets, mask, targets, 2, **kw),
    }


def _same(a, b):
    if isinstance(a, np.ndarray):
        a, b = (a,), (b,)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if x is None:
            assert y is None
        else:
            assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["forward", "lrp", "gradient", "occlusion"])
def test_background_pass_equals_direct_call(make_random_model, dtype, name):
    model = _model(make_random_model, dtype)
    call = _calls(model._core, *_batch())[name]
    pending = call(background=True)
    assert isinstance(pending, _core.Pending)
    first = pending.result()
    assert pending.done()
    _same(first, call())
    _same(pending.result(), first)  # waiting again gives the same arrays


def test_errors_are_raised_when_the_pass_starts(make_random_model):
    model = _model(make_random_model)
    ids, offsets, _, _ = _batch(20)
    with pytest.raises(IndexError, match="out of range"):
        model._core.lrp(ids, offsets, None, np.full(20, 9), 1e-3, 0.0, "signal-take-all", 1,
                        False, background=True)
    bad = ids.copy()
    bad[3] = 40
    with pytest.raises(IndexError):
        model._core.forward(bad, offsets, None, 1, background=True)
    with pytest.raises(ValueError, match="threads"):
        model._core.forward(ids, offsets, None, 0, background=True)


def test_dropped_and_concurrent_passes(make_random_model):
    model = _model(make_random_model)
    ids, offsets, mask, targets = _batch(400)
    want = model._core.lrp(ids, offsets, mask, targets, 1e-3, 0.0, "signal-take-all", 1, False)
    for _ in range(10):  # dropped unfinished: the destructor waits for the thread
        model._core.lrp(ids, offsets, mask, targets, 1e-3, 0.0, "signal-take-all", 2, False,
                        background=True)
    gc.collect()
    # the model object may go away while a pass runs: the pass keeps its weights alive
    other = _model(make_random_model)
    pending = other._core.forward(ids, offsets, None, 2, background=True)
    expected = _model(make_random_model)._core.forward(ids, offsets, None, 1)
    del other
    gc.collect()
    _same(pending.result(), expected)
    # many passes at once, waited for from several threads (one of them twice)
    passes = [model._core.lrp(ids, offsets, mask, targets, 1e-3, 0.0, "signal-take-all", 2,
                              False, background=True) for _ in range(6)]
    results = [None] * 7
    waiters = [threading.Thread(target=lambda k=k: results.__setitem__(k, passes[min(k, 5)].result()))
               for k in range(7)]
    for t in waiters:
        t.start()
    for t in waiters:
        t.join()
    for r in results:
        _same(r, want)


def test_explain_corpus_overlaps_and_matches_explain_batch(make_random_model):
    """explain_corpus runs each batch in the background: results equal explain_batch's, in
    order, whatever the batch size, also with target='all'."""
    model = _model(make_random_model)
    rng = np.random.default_rng(3)
    seqs = random_sentences(rng, 50, 40, 1, 12)
    want = model.explain_batch(seqs, method="gi")
    for batch_size in (1, 7, 64):
        got = list(model.explain_corpus(seqs, batch_size=batch_size, method="gi"))
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a.relevance, b.relevance)
            np.testing.assert_array_equal(a.scores, b.scores)
    every = list(model.explain_corpus(seqs[:9], batch_size=4, target="all"))
    assert [len(x) for x in every] == [4] * 9
    for per_class, s in zip(every, seqs[:9]):
        for c, exp in enumerate(per_class):
            np.testing.assert_array_equal(exp.relevance,
                                          model.explain(s, target=c).relevance)


def test_a_failed_start_still_hands_out_the_previous_batch(make_random_model):
    """The next batch's pass starts while the previous one's results wait to be handed out:
    an error at that start (here the long-occlusion warning raised as an error) comes after
    them, as it would have without the overlap."""
    import warnings

    from textlrp.model import OCCLUSION_WARN_TOKENS

    model = _model(make_random_model)
    got = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="occlusion"):
            for exp in model.explain_corpus([[1, 2, 3], [1] * (OCCLUSION_WARN_TOKENS + 1)],
                                            batch_size=1, method="occlusion"):
                got.append(exp)
    assert len(got) == 1 and list(got[0].ids) == [1, 2, 3]


def test_explain_corpus_runs_one_engine_pass_at_a_time(make_random_model, monkeypatch):
    """`threads` caps the cores: the next batch's pass starts only once the previous one is
    done (while its results are handed out, the next batch is explained)."""
    model = _model(make_random_model)
    core = model._core
    started = []

    class Spy:
        def __getattr__(self, name):
            return getattr(core, name)

        def lrp(self, *args, **kwargs):
            started.append([p.done() for p in started_passes])
            p = core.lrp(*args, **kwargs)
            if kwargs.get("background"):
                started_passes.append(p)
            return p

    started_passes = []
    monkeypatch.setattr(model, "_core", Spy())
    rng = np.random.default_rng(4)
    seqs = random_sentences(rng, 40, 40, 1, 12)
    got = list(model.explain_corpus(seqs, batch_size=5))
    assert len(got) == 40 and len(started) == 8
    assert all(all(flags) for flags in started)  # every earlier pass had finished


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_pass_started_before_fork_is_refused_in_the_child(make_random_model):
    import os

    model = _model(make_random_model)
    ids, offsets, mask, targets = _batch(2000)
    pending = model._core.lrp(ids, offsets, mask, targets, 1e-3, 0.0, "signal-take-all", 1,
                              False, background=True)
    pid = os.fork()
    if pid == 0:  # the child: the pass's thread is not here
        code = 1
        try:
            pending.result()
        except RuntimeError as exc:
            code = 0 if "fork" in str(exc) else 2
        del pending  # must not try to join a thread of the parent
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(pending.result()) == 6  # the parent's pass is unaffected
