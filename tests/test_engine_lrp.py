"""The compiled engine's LRP against tests/reference.py (float64, 1e-10 of the largest value)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import reference as ref
from conftest import assert_close, build, lrp_tolerance, make_random_model, random_sentences

ARCHS = {
    "uni1-head1": {"e": 4, "layers": [(5, False)], "head": [(None, True)]},
    "uni1-head1-nobias": {"e": 3, "layers": [(4, False)], "head": [(None, False)]},
    "bi1-head2": {"e": 4, "layers": [(5, True)], "head": [(6, True), (None, False)]},
    "bi2-mixed": {"e": 5, "layers": [(4, True), (3, True)], "head": [(None, True)]},
    "bi-uni-bi": {"e": 3, "layers": [(5, True), (3, False), (4, True)],
                  "head": [(6, True), (7, False), (None, True)]},
    "uni-bi-head3-nobias": {"e": 4, "layers": [(3, False), (6, True)],
                            "head": [(5, False), (4, False), (None, False)]},
}
PARAMS = [  # (eps, bias_factor)
    (1e-3, 0.0), (1e-3, 1.0), (0.1, 0.5), (1e-6, 1.0), (2.0, 0.0),
]


@pytest.fixture(scope="module", params=list(ARCHS))
def arch(request):
    rng = np.random.default_rng(zlib.crc32(request.param.encode()))
    m = make_random_model(rng, V=40, C=4, **ARCHS[request.param])
    return m, build(m)


@pytest.mark.parametrize("rule", ref.RULES)
@pytest.mark.parametrize("eps,bias_factor", PARAMS)
def test_lrp_matches_reference(arch, rule, eps, bias_factor):
    m, model = arch
    rng = np.random.default_rng(7)
    for ids in random_sentences(rng, 3, 40, 1, 12):
        for target in (None, int(rng.integers(0, 4))):
            deleted = (sorted(set(rng.integers(0, len(ids), size=2).tolist()))
                       if len(ids) > 2 else None)
            exp = model.explain(ids, method="lrp", target=target, eps=eps,
                                bias_factor=bias_factor, rule=rule, deleted=deleted)
            scores = ref.forward(m, ids, deleted=deleted)
            word, emb, rest = ref.lrp(m, ids, target=target, eps=eps,
                                      bias_factor=bias_factor, rule=rule, deleted=deleted)
            tol = lrp_tolerance(eps)
            assert_close(exp.scores, scores, what="scores")
            assert exp.prediction == int(np.argmax(scores))
            assert exp.target == (exp.prediction if target is None else target)
            assert_close(exp.embedding_relevance, emb, rel=tol, what=f"{rule} embedding relevance")
            assert_close(exp.relevance, word, rel=tol, what=f"{rule} relevance")
            scale = max(1.0, np.abs(emb).max(), np.abs(word).max())
            assert abs(exp.rest - rest) <= tol * scale, (exp.rest, rest)


@pytest.mark.parametrize("rule", ref.RULES)
def test_conservation_with_bias_factor_one(arch, rule):
    _m, model = arch
    rng = np.random.default_rng(8)
    batch = random_sentences(rng, 6, 40, 1, 25)
    for eps in (1e-3, 0.05):
        exps = model.explain_batch(batch, method="lrp", eps=eps, bias_factor=1.0, rule=rule,
                                   target=[n % 4 for n in range(len(batch))])
        for e in exps:
            total = e.relevance.sum() + e.rest
            scale = max(1.0, np.abs(e.embedding_relevance).max())
            assert abs(total - e.scores[e.target]) <= 1e-10 * scale, (rule, total, e.scores)
            # word relevance is the sum of the embedding-level relevance
            assert_close(e.relevance, e.embedding_relevance.sum(axis=1), rel=1e-13)


def test_lengths_1_to_60_in_one_mixed_batch():
    rng = np.random.default_rng(9)
    m = make_random_model(rng, e=5, layers=[(6, True)], head=[(None, True)], V=50, C=3,
                          scale=0.4)
    model = build(m)
    batch = [rng.integers(0, 50, size=T).tolist() for T in rng.permutation(np.arange(1, 61))]
    deleted = [[0] if len(s) % 3 == 0 else [] for s in batch]
    exps = model.explain_batch(batch, method="lrp", eps=1e-3, bias_factor=1.0, deleted=deleted)
    preds = model.predict(batch, deleted=deleted)
    assert preds.shape == (60, 3)
    for ids, dl, e, p in zip(batch, deleted, exps, preds):
        word, emb, _rest = ref.lrp(m, ids, eps=1e-3, bias_factor=1.0, deleted=dl)
        scores = ref.forward(m, ids, deleted=dl)
        assert_close(p, scores, what="predict")
        assert_close(e.embedding_relevance, emb, what=f"T={len(ids)}")
        assert_close(e.relevance, word, what=f"T={len(ids)}")
        assert len(e.relevance) == len(ids)


def test_explain_batch_equals_explain(arch):
    _m, model = arch
    rng = np.random.default_rng(10)
    batch = random_sentences(rng, 9, 40, 1, 20)
    kw = {"method": "lrp", "eps": 0.01, "bias_factor": 0.3, "rule": "abs"}
    exps = model.explain_batch(batch, target=2, **kw)
    for ids, e in zip(batch, exps):
        one = model.explain(ids, target=2, **kw)
        np.testing.assert_array_equal(e.relevance, one.relevance)
        np.testing.assert_array_equal(e.embedding_relevance, one.embedding_relevance)
        assert e.rest == one.rest


def test_deleted_position_gets_only_bias_and_stabiliser_share():
    """x_t = 0 at a deleted position: with bias_factor 0 nothing can reach it."""
    rng = np.random.default_rng(11)
    m = make_random_model(rng, e=4, layers=[(5, True)], head=[(None, True)], V=20, C=3)
    model = build(m)
    ids = [1, 2, 3, 4, 5]
    e0 = model.explain(ids, deleted=[2], bias_factor=0.0, rule="half")
    np.testing.assert_array_equal(e0.embedding_relevance[2], np.zeros(4))
    e1 = model.explain(ids, deleted=[2], bias_factor=1.0, rule="half")
    assert np.abs(e1.embedding_relevance[2]).max() > 0
    _word, emb, _rest = ref.lrp(m, ids, bias_factor=1.0, rule="half", deleted=[2])
    assert_close(e1.embedding_relevance, emb)
    # deleting = the same as a vocabulary row of zeros
    m_zero = dict(m, embedding=np.concatenate([m["embedding"], np.zeros((1, 4))]))
    e2 = build(m_zero).explain([1, 2, 20, 4, 5], bias_factor=1.0, rule="half")
    assert_close(e2.embedding_relevance, e1.embedding_relevance, rel=1e-13)


def test_gate_order_igfo_is_a_permutation_of_ifgo():
    rng = np.random.default_rng(12)
    m = make_random_model(rng, e=4, layers=[(5, True), (3, False)], head=[(None, True)], V=20, C=3)

    def to_igfo(a):
        i, f, g, o = np.split(np.asarray(a), 4, axis=0)
        return np.ascontiguousarray(np.concatenate([i, g, f, o], axis=0))

    layers_igfo = [[{k: to_igfo(v) for k, v in dr.items()} for dr in layer]
                   for layer in m["lstm_layers"]]
    import textlrp

    a = build(m)
    b = textlrp.from_arrays(m["embedding"], layers_igfo, m["head"], gate_order="igfo")
    for layer_a, layer_b in zip(a.lstm_layers, b.lstm_layers):  # stored in ifgo
        for da, db in zip(layer_a, layer_b):
            for k in ("W_ih", "W_hh", "b"):
                np.testing.assert_array_equal(np.asarray(da[k]), np.asarray(db[k]))
    ids = [3, 1, 4, 1, 5, 9]
    for method in ("lrp", "gi", "occlusion"):
        lrp = {"rule": "prop", "bias_factor": 1.0} if method == "lrp" else {}
        ea = a.explain(ids, method=method, **lrp)
        eb = b.explain(ids, method=method, **lrp)
        np.testing.assert_array_equal(ea.relevance, eb.relevance)
        np.testing.assert_array_equal(ea.scores, eb.scores)


def test_thread_count_does_not_change_results():
    rng = np.random.default_rng(13)
    m = make_random_model(rng, e=6, layers=[(7, True), (5, True)], head=[(8, True), (None, True)],
                          V=60, C=5)
    model = build(m)
    batch = random_sentences(rng, 41, 60, 1, 30)
    deleted = [[len(s) // 2] if n % 4 == 0 else [] for n, s in enumerate(batch)]
    for method, kw in [("lrp", {"rule": "signal-take-all"}), ("lrp", {"rule": "prop",
                       "bias_factor": 1.0}), ("gi", {}), ("sa", {}), ("occlusion", {})]:
        runs = [model.explain_batch(batch, method=method, deleted=deleted, threads=t, **kw)
                for t in (1, 2, 3, 8)]
        for other in runs[1:]:
            for e1, e2 in zip(runs[0], other):
                np.testing.assert_array_equal(e1.relevance, e2.relevance)
                np.testing.assert_array_equal(e1.scores, e2.scores)
                if e1.embedding_relevance is not None:
                    np.testing.assert_array_equal(e1.embedding_relevance, e2.embedding_relevance)
                assert e1.rest == e2.rest
    preds = [model.predict(batch, deleted=deleted, threads=t) for t in (1, 2, 3, 8)]
    for p in preds[1:]:
        np.testing.assert_array_equal(preds[0], p)


@pytest.mark.parametrize("rule", ref.RULES)
def test_float32_model_agrees_with_float64(rule):
    """float32 has unit roundoff u = 2**-24 = 6e-8.  A pre-activation z of O(1) terms carries
    an absolute error of a few u, and the epsilon rule divides by stab(z) >= eps, so near-zero
    units magnify it to ~u / eps relative to the relevance scale: 6e-5 for eps = 1e-3
    (measured over 12 random models: up to 7.5e-5 for signal-take-all, 5.2e-4 for prop, whose
    share src / stab(gate + src) divides once more).  The bound 20 u / eps = 1.2e-3 of the
    largest |relevance| keeps a margin over that, and is still ~100x below the error a wrong
    rule makes (O(0.1)).  Scores and gradients divide by nothing: 100 u = 6e-6."""
    u, eps = 2.0 ** -24, 1e-3
    rng = np.random.default_rng(14)
    m = make_random_model(rng, e=6, layers=[(8, True)], head=[(5, True), (None, True)], V=50, C=4)
    m64, m32 = build(m), build(m, dtype=np.float32)
    assert np.dtype(m32.dtype) == np.float32 and np.dtype(m64.dtype) == np.float64
    batch = random_sentences(rng, 20, 50, 1, 25)
    for method in ("lrp", "gi", "sa"):
        # fixed target: near-ties may make the two dtypes predict different classes
        kw = {"method": method, "target": 1}
        if method == "lrp":
            kw.update(bias_factor=1.0, rule=rule, eps=eps)
        e64, e32 = m64.explain_batch(batch, **kw), m32.explain_batch(batch, **kw)
        tol = 20 * u / eps if method == "lrp" else 100 * u
        for a, b in zip(e64, e32):
            assert_close(b.scores, a.scores, rel=100 * u, what="float32 scores")
            assert_close(b.relevance, a.relevance, rel=tol, what=f"float32 {method}")
            if method == "lrp":
                scale = max(1.0, np.abs(a.relevance).max())
                assert abs(b.rest - a.rest) <= tol * scale


def test_long_sentence():
    rng = np.random.default_rng(15)
    m = make_random_model(rng, e=4, layers=[(5, True), (3, True)], head=[(None, True)], V=30, C=3,
                          scale=0.3)
    ids = rng.integers(0, 30, size=400).tolist()
    e = build(m).explain(ids, bias_factor=1.0, rule="abs", deleted=[0, 199, 399])
    _word, emb, rest = ref.lrp(m, ids, bias_factor=1.0, rule="abs", deleted=[0, 199, 399])
    assert_close(e.embedding_relevance, emb)
    assert abs(e.rest - rest) <= 1e-10 * max(1.0, np.abs(emb).max())


def test_eps_zero_never_returns_nan_silently():
    """With eps = 0 the epsilon rule divides by the bare pre-activation, which is exactly 0 for
    a deleted word at the first step of a model without biases.  Either refuse eps = 0 or
    return finite numbers; NaN relevance must not come out without a word."""
    m = make_random_model(np.random.default_rng(16), e=3, layers=[(4, True)],
                          head=[(None, False)], V=10, C=2)
    for dr in m["lstm_layers"][0]:
        dr["b"][:] = 0.0
    model = build(m)
    try:
        e = model.explain([1, 2, 3], deleted=[0], eps=0.0)
    except ValueError as exc:
        assert "eps" in str(exc)
    else:
        assert np.all(np.isfinite(e.relevance)) and np.isfinite(e.rest)


def test_concurrent_python_threads_share_a_model():
    """The engine releases the GIL: several Python threads explaining with one model at the same
    time get exactly what they get one after the other."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(17)
    m = make_random_model(rng, e=5, layers=[(6, True)], head=[(4, True), (None, True)], V=40, C=3)
    model = build(m)
    batches = [random_sentences(rng, 15, 40, 1, 30) for _ in range(6)]
    methods = ["lrp", "gi", "occlusion", "lrp", "sa", "lrp"]

    def run(k):
        lrp = {"rule": "prop"} if methods[k] == "lrp" else {}
        return model.explain_batch(batches[k], method=methods[k], threads=2, **lrp)

    serial = [run(k) for k in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(pool.map(run, range(6)))
    for s, p in zip(serial, parallel):
        for a, b in zip(s, p):
            np.testing.assert_array_equal(a.relevance, b.relevance)
            np.testing.assert_array_equal(a.scores, b.scores)


@pytest.mark.parametrize("rule", ref.RULES)
def test_same_call_gives_identical_bits(rule):
    """Run-to-run determinism: results must not depend on where the heap puts the engine's
    buffers (the thread-count and batch-composition guarantees rest on this)."""
    m = make_random_model(np.random.default_rng(zlib.crc32(b"uni-bi-head3-nobias")),
                          **ARCHS["uni-bi-head3-nobias"], V=40, C=4)
    model = build(m)
    ids = random_sentences(np.random.default_rng(10), 1, 40, 16, 16)[0]
    rng = np.random.default_rng(0)
    keep = []
    results = set()
    for _ in range(300):
        keep.append(np.empty(int(rng.integers(1, 200))))  # move later allocations around
        e = model.explain_batch([ids], method="lrp", eps=0.01, bias_factor=0.3, rule=rule,
                                target=2, threads=1)[0]
        results.add(e.embedding_relevance.tobytes() + np.float64(e.rest).tobytes())
    assert len(results) == 1, f"{len(results)} different results for one identical call"


@pytest.mark.parametrize("method", ["lrp", "gi", "sa", "occlusion"])
def test_batch_composition_does_not_change_bits(method):
    """A sentence gets bit-identical results alone, in a batch, or in a shuffled batch (the
    engine groups sentences of similar length; the grouping must not leak into the numbers)."""
    rng = np.random.default_rng(18)
    m = make_random_model(rng, e=5, layers=[(7, True), (3, False)], head=[(4, True), (None, True)],
                          V=50, C=3)
    model = build(m)
    batch = random_sentences(rng, 37, 50, 1, 25)
    deleted = [[0] if n % 5 == 0 else [] for n in range(len(batch))]
    kw = {"method": method}
    if method == "lrp":
        kw.update(rule="half", bias_factor=0.5)
    full = model.explain_batch(batch, deleted=deleted, threads=2, **kw)
    perm = rng.permutation(len(batch))
    shuffled = model.explain_batch([batch[k] for k in perm], deleted=[deleted[k] for k in perm],
                                   threads=3, **kw)
    for pos, k in enumerate(perm):
        np.testing.assert_array_equal(shuffled[pos].relevance, full[k].relevance)
        np.testing.assert_array_equal(shuffled[pos].scores, full[k].scores)
    for k in range(0, len(batch), 6):
        alone = model.explain(batch[k], deleted=deleted[k], **kw)
        np.testing.assert_array_equal(alone.relevance, full[k].relevance)
        if method == "lrp":
            assert alone.rest == full[k].rest


@pytest.mark.parametrize("rule", ref.RULES)
def test_realistic_and_odd_sizes(rule):
    """Widths that use every vector path of the kernels: e = d = 60 (whole 64-byte blocks) and
    odd sizes (e = 37, d = 29, 13: vector tails and scalar remainders), more than 8 sentences
    of similar length (full groups of lock-step sequences)."""
    rng = np.random.default_rng(19)
    for e, layers in ((60, [(60, True)]), (37, [(29, True), (13, False)])):
        m = make_random_model(rng, e=e, layers=layers, head=[(11, True), (None, True)], V=100, C=5,
                              scale=0.15)
        model = build(m)
        batch = random_sentences(rng, 11, 100, 8, 14)
        deleted = [[1] if n % 3 == 0 else [] for n in range(len(batch))]
        exps = model.explain_batch(batch, rule=rule, bias_factor=1.0, deleted=deleted, threads=2)
        grads = model.explain_batch(batch, method="sa", deleted=deleted, threads=2)
        for ids, dl, ex, g in zip(batch, deleted, exps, grads):
            word, emb, rest = ref.lrp(m, ids, bias_factor=1.0, rule=rule, deleted=dl)
            assert_close(ex.embedding_relevance, emb, what=f"e={e} {rule}")
            assert_close(ex.relevance, word, what=f"e={e} {rule}")
            assert abs(ex.rest - rest) <= 1e-10 * max(1.0, np.abs(emb).max())
            assert_close(g.embedding_relevance, ref.gradient(m, ids, deleted=dl), what="gradient")
        # float32 takes other vector widths (16 lanes per 64 bytes): same bound as above
        e32 = build(m, dtype=np.float32).explain_batch(batch, rule=rule, bias_factor=1.0,
                                                       deleted=deleted, threads=2, target=0)
        e64 = model.explain_batch(batch, rule=rule, bias_factor=1.0, deleted=deleted, target=0)
        for a32, a64 in zip(e32, e64):
            assert_close(a32.relevance, a64.relevance, rel=20 * 2.0 ** -24 / 1e-3, what="float32")
