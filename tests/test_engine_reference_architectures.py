"""The C++ engine against tests/reference.py (the numpy twin of docs/algorithm.md) on every
architecture it accepts: LSTM and GRU x last / mean / max / attention x token / continuous
inputs x 1-3 layers x uni / bi x heads of 1-3 layers (C = 1 included: regression) x lengths
1..60, in mixed-length batches with deleted positions. float64, 1e-10 relative to the largest
value (see conftest.assert_close)."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
import reference as ref
from conftest import assert_close, lrp_tolerance, make_random_spec

import textlrp
from textlrp.methods import RULES

CELLS = ("lstm", "gru", ("gru", "lstm", "gru"))
POOLINGS = ("last", "mean", "max", "attention")


def grid():
    rng = np.random.default_rng(77)
    out = []
    for cell, pooling, continuous in itertools.product(CELLS, POOLINGS, (False, True)):
        n_layers = 3 if isinstance(cell, tuple) else int(rng.integers(1, 4))
        layers = tuple((int(rng.integers(2, 7)), bool(rng.integers(2))) for _ in range(n_layers))
        n_head = int(rng.integers(1, 4))
        head = tuple((int(rng.integers(2, 6)), bool(rng.integers(2))) for _ in range(n_head - 1))
        C = int(rng.choice([1, 2, 4]))
        head = head + ((None, bool(rng.integers(2))),)
        name = "-".join(cell) if isinstance(cell, tuple) else cell
        out.append(pytest.param({"cell": cell, "layers": layers, "pooling": pooling, "continuous": continuous,
                                     "head": head, "C": C, "e": int(rng.integers(2, 6))},
                                id=f"{name}-{pooling}-{'cont' if continuous else 'tok'}-L{n_layers}-H{n_head}-C{C}"))
    return out


def batch(rng, spec, lengths):
    if spec.embedding is None:
        return [rng.standard_normal((T, spec.input_size)) for T in lengths]
    return [rng.integers(0, spec.vocab_size, T) for T in lengths]


LENGTHS = (1, 60, 7, 2, 23, 1, 14, 3)


@pytest.mark.parametrize("kw", grid())
def test_engine_matches_reference(kw):
    rng = np.random.default_rng(zlib.crc32(repr(sorted(kw.items())).encode()))  # stable per case
    spec = make_random_spec(rng, **kw)
    model = textlrp.Model(spec)
    xs = batch(rng, spec, LENGTHS)
    deleted = [sorted(set(rng.integers(0, len(x), int(rng.integers(0, 3))).tolist())) if len(x) > 1
               else [] for x in xs]
    assert_close(model.predict(xs, deleted=deleted),
                 np.stack([ref.forward(spec, x, d) for x, d in zip(xs, deleted)]), what="scores")
    rules = RULES if "gru" not in str(kw["cell"]) else ("signal-take-all",)
    for rule, bf, eps in itertools.product(rules, (0.0, 1.0), (1e-3, 0.1)):
        exps = model.explain_batch(xs, rule=rule, bias_factor=bf, eps=eps, deleted=deleted)
        for x, d, e in zip(xs, deleted, exps):
            R, R_in, rest = ref.lrp(spec, x, e.target, eps=eps, bias_factor=bf, rule=rule, deleted=d)
            tol = lrp_tolerance(eps)
            what = f"{rule} bf={bf} eps={eps} T={len(x)}"
            assert_close(e.embedding_relevance, R_in, rel=tol, what=what)
            assert_close(e.relevance, R, rel=tol, what=what)
            assert abs(e.rest - rest) <= tol * max(1.0, np.abs(R_in).max(), abs(rest)), what
    for e, x, d in zip(model.explain_batch(xs, method="gi", deleted=deleted), xs, deleted):
        assert_close(e.embedding_relevance, ref.gradient(spec, x, e.target, d), what="gradient")
        assert_close(e.relevance, ref.gi(spec, x, e.target, d), what="gi")
    for e, x, d in zip(model.explain_batch(xs, method="sa", deleted=deleted), xs, deleted):
        assert_close(e.relevance, ref.sa(spec, x, e.target, d), what="sa")
    for e, x, d in zip(model.explain_batch(xs, method="occlusion", deleted=deleted), xs, deleted):
        assert_close(e.relevance, ref.occlusion(spec, x, e.target, d), what="occlusion")


@pytest.mark.parametrize("cell", ("lstm", "gru"))
@pytest.mark.parametrize("pooling", POOLINGS)
def test_all_lengths_1_to_60(cell, pooling):
    """Every length 1..60 in one batch (groups of eight run in lock step: every mix of lengths
    inside a group is exercised)."""
    rng = np.random.default_rng(5)
    spec = make_random_spec(rng, cell=cell, layers=((4, True), (3, False)), pooling=pooling)
    model = textlrp.Model(spec)
    xs = batch(rng, spec, range(1, 61))
    for x, e in zip(xs, model.explain_batch(xs, bias_factor=1.0)):
        R, R_in, rest = ref.lrp(spec, x, e.target, bias_factor=1.0)
        assert_close(e.relevance, R, what=f"T={len(x)}")
        assert abs(e.rest - rest) <= 1e-10 * max(1.0, np.abs(R_in).max())


@pytest.mark.parametrize("cell", ("lstm", "gru"))
@pytest.mark.parametrize("layers", [((5, False),), ((4, True),), ((4, True), (3, False)),
                                    ((3, False), (4, True), (2, True))],
                         ids=["1uni", "1bi", "2", "3"])
@pytest.mark.parametrize("pooling", ("last", "attention"))
def test_layer_totals(cell, layers, pooling):
    """exp.layers: the engine's stage totals equal the reference's stage by stage, and with
    bias_factor=1 every level conserves the score (relevance + initial states so far)."""
    rng = np.random.default_rng(len(layers) * 10 + len(cell))
    spec = make_random_spec(rng, cell=cell, layers=layers, pooling=pooling,
                            head=((5, True), (None, True)))
    model = textlrp.Model(spec)
    xs = batch(rng, spec, (1, 9, 30))
    for bf in (1.0, 0.0):
        for x, e in zip(xs, model.explain_batch(xs, bias_factor=bf)):
            *_, stages = ref.lrp(spec, x, e.target, bias_factor=bf, return_stages=True)
            assert_close(e.stage_totals, stages, what=f"stage totals bf={bf}")
            rows = e.layers
            assert rows[0]["stage"] == "score" and rows[0]["relevance"] == e.scores[e.target]
            assert len(rows) == 1 + 2 + 1 + len(layers)  # score, 2 head inputs, pooling, layers
            scale = max(1.0, np.abs(e.embedding_relevance).max())
            assert abs(rows[-1]["relevance"] - e.relevance.sum()) <= 1e-10 * scale
            assert abs(sum(r["initial_state"] for r in rows) - e.rest) <= 1e-10 * scale
            if bf == 1.0:
                for r in rows:
                    assert abs(r["conserved"] - e.scores[e.target]) <= 1e-10 * scale, r
                    assert abs(r["absorbed"]) <= 1e-10 * scale, r
                    for d in r["directions"]:
                        assert abs(d["absorbed"]) <= 1e-10 * scale, d
            else:  # without the bias share, what the biases took is visible and non-zero
                assert any(abs(r["absorbed"]) > 1e-6 for r in rows)
    assert model.explain(xs[0], method="gi").layers is None


def test_registries_agree():
    """One registry per kind: the reference implements exactly the registered rules, the
    engine knows the same rules and cells, and the method registry covers the API."""
    from textlrp import _core
    from textlrp.methods import METHODS
    from textlrp.spec import CELLS, POOLINGS

    assert tuple(ref.RULES) == tuple(RULES) == tuple(_core.RULES)
    assert tuple(CELLS) == tuple(_core.CELLS) and tuple(POOLINGS) == tuple(_core.POOLINGS)
    assert set(METHODS) == {"lrp", "sa", "gi", "occlusion", "random"}
    for name, method in METHODS.items():
        assert method.doc and set(method.params) <= {"eps", "bias_factor", "rule", "seed"}, name
