"""Shared test helpers: random models as plain arrays (the structure of the contract).

Other test modules can use the ``make_random_model`` fixture, or import the function
(``from conftest import make_random_model``) in hypothesis tests, where fixtures are awkward.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # lets tests import tests/reference.py in any import mode
    sys.path.insert(0, str(TESTS_DIR))


def make_random_model(rng, e=4, layers=((5, True),), head=((None, True),), V=30, C=3,
                      dtype=np.float64, scale=0.5):
    """Random model arrays in the contract's structure (gate rows i, f, g, o).

    layers: sequence of (d, bidirectional) per stacked LSTM layer, bottom first.
    head:   sequence of (out_features, bias) per dense layer; the last out_features must be
            None or C (it is always C).
    scale:  standard deviation of the weights; 0.5 keeps gates away from saturation for small
            sizes, so every path carries signal.
    Returns dict(embedding, lstm_layers, head) of C-contiguous arrays of ``dtype``.
    """
    def rand(*shape):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    model = {"embedding": rand(V, e), "lstm_layers": [], "head": []}
    n_in = e
    for d, bidirectional in layers:
        layer = [{"W_ih": rand(4 * d, n_in), "W_hh": rand(4 * d, d), "b": rand(4 * d)}
                 for _ in range(2 if bidirectional else 1)]
        model["lstm_layers"].append(layer)
        n_in = d * len(layer)
    if not head:
        raise ValueError("head needs at least one layer")
    for n, (out, bias) in enumerate(head):
        last = n == len(head) - 1
        if last and out not in (None, C):
            raise ValueError(f"last head layer must have C={C} outputs, got {out}")
        out = C if last else out
        model["head"].append({"W": rand(out, n_in), "b": rand(out) if bias else None})
        n_in = out
    return model


def random_sentences(rng, n, V, min_len=1, max_len=20):
    return [rng.integers(0, V, size=int(rng.integers(min_len, max_len + 1))).tolist()
            for _ in range(n)]


@pytest.fixture(scope="session", name="make_random_model")
def make_random_model_fixture():
    """The model builder itself (session scope: a function, no state)."""
    return make_random_model


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
