"""Occlusion runs the occluded copies of an input in lock step, eight positions at a time
(passes.cpp, Group::occlusion): the drops must not depend on that.

- Each drop equals, to the last bit, the target score minus the engine's own forward pass
  with x_t zeroed (predict with deleted=), which shares nothing with the blocks: every
  position, wherever it falls in its block, with deleted positions shifting the blocks.
  (Bit for bit because occlusion's shortcut, the bias alone as x_t's input projection, is
  what the full pass computes too: b + 0 * W = b exactly.)
- An input gives the same bits alone, inside a batch, and on 1 or 2 threads.
- A long input (300 tokens: 37 blocks) matches the numpy reference to 1e-10.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import reference as ref
from conftest import assert_close, make_random_spec

import textlrp

POOLINGS = ("last", "mean", "max", "attention")
CELLS = ("lstm", "gru", ("gru", "lstm"))


def inputs(rng, spec, T):
    if spec.embedding is None:
        return rng.standard_normal((T, spec.input_size)).astype(spec.dtype)
    return rng.integers(0, spec.vocab_size, T)


def model_for(cell, pooling, continuous, dtype):
    key = repr((cell, pooling, continuous, np.dtype(dtype).name))
    rng = np.random.default_rng(zlib.crc32(key.encode()))  # stable per case
    spec = make_random_spec(rng, cell=cell, layers=((4, True), (3, False)), pooling=pooling,
                            continuous=continuous, dtype=dtype)
    return textlrp.Model(spec), rng


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("continuous", [False, True], ids=["tok", "cont"])
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", CELLS, ids=["lstm", "gru", "gru-lstm"])
def test_drops_equal_rescoring_bit_for_bit(cell, pooling, continuous, dtype):
    model, rng = model_for(cell, pooling, continuous, dtype)
    # lengths around the block size; deleted positions move the later ones across blocks
    for T, deleted in [(1, []), (7, []), (8, []), (9, [0]), (17, [3, 8]), (30, [1, 2, 15])]:
        x = inputs(rng, model.spec, T)
        e = model.explain(x, method="occlusion", deleted=deleted)
        score = model.predict([x], deleted=[deleted])[0, e.target]
        variants = model.predict([x] * T, deleted=[sorted(set(deleted) | {t}) for t in range(T)])
        expected = score - variants[:, e.target]
        expected[deleted] = 0  # already zero: occluding it changes nothing
        assert e.relevance.dtype == dtype
        np.testing.assert_array_equal(e.relevance, expected, err_msg=f"T={T}")


@pytest.mark.parametrize("cell", CELLS, ids=["lstm", "gru", "gru-lstm"])
def test_alone_in_a_batch_and_on_two_threads_bit_for_bit(cell):
    model, rng = model_for(cell, "attention", False, np.float64)
    lengths = [23, 1, 300, 8, 9, 64, 2, 17, 40, 5, 33]  # more than one group of eight inputs
    xs = [inputs(rng, model.spec, T) for T in lengths]
    deleted = [sorted(set(rng.integers(0, T, 2).tolist())) if T > 2 else [] for T in lengths]
    runs = [model.explain_batch(xs, method="occlusion", deleted=deleted, threads=t)
            for t in (1, 2)]
    for k, (x, dl) in enumerate(zip(xs, deleted)):
        alone = model.explain(x, method="occlusion", deleted=dl)
        for run in runs:
            np.testing.assert_array_equal(run[k].relevance, alone.relevance)
            np.testing.assert_array_equal(run[k].scores, alone.scores)


def test_long_input_matches_reference():
    # one model, as the reference takes seconds here (300 forward passes of 300 steps)
    rng = np.random.default_rng(300)
    spec = make_random_spec(rng, cell=("gru", "lstm"), layers=((3, True), (2, False)),
                            pooling="mean")
    model = textlrp.Model(spec)
    x = inputs(rng, spec, 300)
    deleted = [0, 9, 150, 299]
    e = model.explain(x, method="occlusion", deleted=deleted)
    assert_close(e.relevance, ref.occlusion(spec, x, e.target, deleted), what="T=300")
    assert all(e.relevance[t] == 0 for t in deleted)
    assert np.count_nonzero(e.relevance) == 300 - len(deleted)
