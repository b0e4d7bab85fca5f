"""Property tests over random architectures, lengths and parameters (engine vs reference)."""

from __future__ import annotations

import numpy as np
import reference as ref
from conftest import assert_close, build, lrp_tolerance, make_random_model
from hypothesis import given, settings
from hypothesis import strategies as st

layer_spec = st.tuples(st.integers(1, 6), st.booleans())
head_spec = st.lists(st.tuples(st.integers(1, 6), st.booleans()), min_size=0, max_size=2)


@st.composite
def cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    e = draw(st.integers(1, 6))
    layers = draw(st.lists(layer_spec, min_size=1, max_size=3))
    hidden = draw(head_spec)
    C = draw(st.integers(1, 5))
    head = hidden + [(None, draw(st.booleans()))]
    V = draw(st.integers(1, 30))
    lengths = draw(st.lists(st.integers(1, 40), min_size=1, max_size=4))
    rng = np.random.default_rng(seed)
    m = make_random_model(rng, e=e, layers=layers, head=head, V=V, C=C,
                          scale=draw(st.sampled_from([0.1, 0.5, 1.5])))
    batch = [rng.integers(0, V, size=T).tolist() for T in lengths]
    deleted = [sorted(set(rng.integers(0, T, size=int(rng.integers(0, 3))).tolist()))
               for T in lengths]
    return m, batch, deleted


@settings(max_examples=30, deadline=None, derandomize=True)
@given(case=cases(), rule=st.sampled_from(ref.RULES),
       eps=st.sampled_from([1e-6, 1e-3, 0.1, 1.0]), bias_factor=st.sampled_from([0.0, 0.5, 1.0]),
       target=st.one_of(st.none(), st.integers(0, 4)))
def test_lrp_matches_reference(case, rule, eps, bias_factor, target):
    m, batch, deleted = case
    C = m["head"][-1]["W"].shape[0]
    target = None if target is None else target % C
    model = build(m)
    exps = model.explain_batch(batch, rule=rule, eps=eps, bias_factor=bias_factor,
                               target=target, deleted=deleted, threads=2)
    for ids, dl, e in zip(batch, deleted, exps):
        scores = ref.forward(m, ids, deleted=dl)
        word, emb, rest = ref.lrp(m, ids, target=target, eps=eps,
                                  bias_factor=bias_factor, rule=rule, deleted=dl)
        tol = lrp_tolerance(eps)
        assert_close(e.scores, scores, what="scores")
        assert_close(e.embedding_relevance, emb, rel=tol, what="embedding relevance")
        assert_close(e.relevance, word, rel=tol, what="relevance")
        scale = max(1.0, np.abs(emb).max(), np.abs(word).max())
        assert abs(e.rest - rest) <= tol * scale
        if bias_factor == 1.0:
            assert abs(e.relevance.sum() + e.rest - e.scores[e.target]) <= tol * scale


@settings(max_examples=30, deadline=None, derandomize=True)
@given(case=cases(), target=st.one_of(st.none(), st.integers(0, 4)))
def test_gradients_and_occlusion_match_reference(case, target):
    m, batch, deleted = case
    C = m["head"][-1]["W"].shape[0]
    target = None if target is None else target % C
    model = build(m)
    gi = model.explain_batch(batch, method="gi", target=target, deleted=deleted, threads=2)
    occ = model.explain_batch(batch, method="occlusion", target=target, deleted=deleted)
    preds = model.predict(batch, deleted=deleted)
    for ids, dl, g, o, p in zip(batch, deleted, gi, occ, preds):
        G = ref.gradient(m, ids, target=target, deleted=dl)
        scores = ref.forward(m, ids, deleted=dl)
        assert_close(p, scores, what="predict")
        assert_close(g.embedding_relevance, G, what="gradient")
        assert_close(g.relevance, (G * ref.embed(ref._f64(m), ids, dl)).sum(axis=1), what="gi")
        if len(ids) <= 15:  # the reference needs T forward passes: keep the suite fast
            assert_close(o.relevance, ref.occlusion(m, ids, target=target, deleted=dl),
                         what="occlusion")
