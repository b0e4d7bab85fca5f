"""Gradient baselines (sa, gi), occlusion and forward scores of the engine against the
reference, central finite differences of the engine itself, and an equivalent torch model."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from conftest import assert_close, build, make_random_model, random_sentences
from test_engine_reference import torch_scores_and_gradient

ARCHS = {
    "uni": {"e": 4, "layers": [(5, False)], "head": [(None, False)]},
    "bi": {"e": 4, "layers": [(5, True)], "head": [(6, True), (None, True)]},
    "bi-uni-bi": {"e": 3, "layers": [(4, True), (3, False), (5, True)],
                  "head": [(6, True), (5, False), (None, True)]},
}


def load_bench_engine():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_engine.py"
    spec = importlib.util.spec_from_file_location("bench_engine", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=list(ARCHS))
def arch(request):
    rng = np.random.default_rng(sum(map(ord, request.param)))
    m = make_random_model(rng, V=30, C=3, **ARCHS[request.param])
    return m, build(m)


def test_sa_gi_match_reference_gradient(arch):
    m, model = arch
    rng = np.random.default_rng(20)
    batch = random_sentences(rng, 6, 30, 1, 18)
    deleted = [[0], [], [1], [], [], [0]]
    deleted = [[t for t in dl if t < len(s)] for dl, s in zip(deleted, batch)]
    for target in (None, 2):
        sa = model.explain_batch(batch, method="sa", target=target, deleted=deleted)
        gi = model.explain_batch(batch, method="gi", target=target, deleted=deleted)
        for ids, dl, es, eg in zip(batch, deleted, sa, gi):
            G = ref.gradient(m, ids, target=target, deleted=dl)
            scores = ref.forward(m, ids, deleted=dl)
            x = ref.embed(ref._f64(m), ids, dl)
            assert_close(es.embedding_relevance, G, what="sa gradient")
            assert_close(eg.embedding_relevance, G, what="gi gradient")
            assert_close(es.relevance, (G ** 2).sum(axis=1), what="sa")
            assert_close(eg.relevance, (G * x).sum(axis=1), what="gi")
            assert_close(es.scores, scores)
            assert es.rest is None and eg.rest is None
            for t in dl:
                assert eg.relevance[t] == 0.0  # x_t = 0


def test_occlusion_matches_reference(arch):
    m, model = arch
    rng = np.random.default_rng(21)
    batch = random_sentences(rng, 5, 30, 1, 15)
    deleted = [[0], [], [], [1], []]
    deleted = [[t for t in dl if t < len(s)] for dl, s in zip(deleted, batch)]
    for target in (None, 1):
        exps = model.explain_batch(batch, method="occlusion", target=target, deleted=deleted)
        for ids, dl, e in zip(batch, deleted, exps):
            assert_close(e.relevance, ref.occlusion(m, ids, target=target, deleted=dl))
            assert e.embedding_relevance is None and e.rest is None
            for t in dl:
                assert e.relevance[t] == 0.0


def test_gradient_matches_finite_differences_of_the_engine(arch):
    """Central differences of the engine's own scores: every perturbed input is an extra
    embedding row, so all 2*T*e perturbed sentences go through one predict call."""
    m, model = arch
    E = np.asarray(m["embedding"], dtype=np.float64)
    ids = [5, 0, 29, 7, 7, 13, 2]
    T, e = len(ids), E.shape[1]
    h = 1e-6
    rows, sentences = [], []
    base = list(range(len(E), len(E) + T))  # the sentence's own rows, appended once
    rows.extend(E[ids])
    for t in range(T):
        for k in range(e):
            for sgn in (1, -1):
                x = E[ids[t]].copy()
                x[k] += sgn * h
                s = list(base)
                s[t] = len(E) + len(rows)
                rows.append(x)
                sentences.append(s)
    big = build(dict(m, embedding=np.concatenate([E, np.array(rows)])))
    for target in range(3):
        scores = big.predict(sentences)[:, target]
        G_fd = ((scores[0::2] - scores[1::2]) / (2 * h)).reshape(T, e)
        G = model.explain(ids, method="sa", target=target).embedding_relevance
        # h = 1e-6: truncation ~h^2 |s'''| ~ 1e-12, rounding ~1e-16 |s| / h ~ 1e-10
        assert_close(G, G_fd, rel=1e-8, what=f"finite differences, target {target}")
        assert np.abs(G).max() > 1e-6


def test_scores_and_gradient_match_torch(arch):
    torch = pytest.importorskip("torch")
    m, model = arch
    rng = np.random.default_rng(22)
    for ids in random_sentences(rng, 6, 30, 1, 25):
        target = int(rng.integers(0, 3))
        deleted = [0] if len(ids) > 3 else []
        s_t, G_t = torch_scores_and_gradient(torch, m, ids, target, deleted)
        e = model.explain(ids, method="sa", target=target, deleted=deleted)
        assert_close(e.scores, s_t, what="torch scores")
        assert_close(model.predict([ids], deleted=[deleted])[0], s_t, what="torch predict")
        # at a deleted position both give the gradient at the zero input
        assert_close(e.embedding_relevance, G_t, what="torch gradient")


def test_torch_batched_packed_sequences_agree():
    """The benchmark's torch baseline (packed, batched, bidirectional) computes the same GI."""
    torch = pytest.importorskip("torch")
    bt = load_bench_engine()

    rng = np.random.default_rng(23)
    m = make_random_model(rng, e=4, layers=[(5, True)], head=[(None, True)], V=30, C=3)
    batch = random_sentences(rng, 7, 30, 1, 12)
    gi = bt.torch_gi_batch(torch, bt.torch_model(torch, m, torch.float64), batch)
    model = build(m)
    for ids, g, e in zip(batch, gi, model.explain_batch(batch, method="gi")):
        assert_close(g, e.relevance, what="torch packed GI")
