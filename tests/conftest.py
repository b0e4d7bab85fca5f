"""Shared test helpers: random models, as plain arrays in the old nested-dict structure
(``make_random_model``: LSTM, last pooling, token inputs) or as a ``textlrp.spec.ModelSpec``
of any architecture (``make_random_spec``), and random inputs for them.

Other test modules can use the fixtures, or import the functions
(``from conftest import make_random_model``) in hypothesis tests, where fixtures are awkward.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # lets tests import tests/reference.py in any import mode
    sys.path.insert(0, str(TESTS_DIR))

# The Stanford Sentiment Treebank trees, when present: ../shared/data/sst next to the
# repository (never committed). Tests that need them skip, naming the path they looked at.
SST_DIR = TESTS_DIR.parent.parent / "shared" / "data" / "sst"


def requires_sst(*names: str) -> pytest.MarkDecorator:
    """Skip marker for tests that read SST_DIR/<name>; the reason names every missing path."""
    missing = [str(SST_DIR / name) for name in names if not (SST_DIR / name).is_file()]
    return pytest.mark.skipif(bool(missing), reason=f"SST data not found: {', '.join(missing)}")


def textlrp_script() -> Path:
    """The installed ``textlrp`` console script: next to this interpreter (a venv), else on
    PATH. Skips, naming where it looked, when the package was not installed with scripts."""
    here = Path(sys.executable).parent / "textlrp"
    if here.is_file():
        return here
    found = shutil.which("textlrp")
    if found is None:
        pytest.skip(f"no textlrp console script at {here} or on PATH (pip install the package)")
    return Path(found)


def run_textlrp(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
                input: str | None = None) -> subprocess.CompletedProcess:
    """Run the real console script ``textlrp ARGS`` in a subprocess, as a user would.

    The environment is this one without the variables that change the CLI's behaviour
    (TEXTLRP_MODEL, TEXTLRP_DEBUG, colours), plus ``env``."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("TEXTLRP_MODEL", "TEXTLRP_DEBUG", "NO_COLOR", "COLORTERM")}
    return subprocess.run([str(textlrp_script()), *args], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout, input=input,
                          check=False)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """The CLI's contract for a user mistake: exit 2, one line 'textlrp: error: ...' on
    stderr containing every fragment, no traceback. Returns the line."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("textlrp: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


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


def make_random_spec(rng, cell="lstm", layers=((5, True),), pooling="last", attention_size=4,
                     continuous=False, e=4, V=30, head=((None, True),), C=3, dtype=np.float64,
                     scale=0.5):
    """A random ``textlrp.spec.ModelSpec`` (checked, ``dtype``).

    cell:      "lstm" or "gru", or one of them per layer (a sequence as long as ``layers``).
    layers:    sequence of (d, bidirectional) per stacked recurrent layer, bottom first.
    pooling:   "last", "mean", "max" or "attention" (attention_size A then sizes W [A, F]).
    continuous: no embedding; inputs are float arrays [T, e] (``e`` is input_size then).
    head:      sequence of (out_features, bias) per dense layer; the last out_features must
               be None or C (it is always C; C = 1 is a regression model).
    Both biases of each direction are random (LSTM uses their sum, GRU keeps them apart).
    """
    from reference import Attention, Dense, Direction, ModelSpec, Recurrent

    def rand(*shape):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    cells = [cell] * len(layers) if isinstance(cell, str) else list(cell)
    if len(cells) != len(layers):
        raise ValueError("give one cell for all layers or one per layer")
    rec = []
    n_in = e
    for kind, (d, bidirectional) in zip(cells, layers):
        G = {"lstm": 4, "gru": 3}[kind]
        dirs = tuple(Direction(rand(G * d, n_in), rand(G * d, d), rand(G * d), rand(G * d))
                     for _ in range(2 if bidirectional else 1))
        rec.append(Recurrent(kind, dirs))
        n_in = d * len(dirs)
    att = None
    if pooling == "attention":
        att = Attention(rand(attention_size, n_in), rand(attention_size), rand(attention_size))
    if not head:
        raise ValueError("head needs at least one layer")
    dense = []
    for n, (out, bias) in enumerate(head):
        last = n == len(head) - 1
        if last and out not in (None, C):
            raise ValueError(f"last head layer must have C={C} outputs, got {out}")
        out = C if last else out
        dense.append(Dense(rand(out, n_in), rand(out) if bias else None))
        n_in = out
    spec = ModelSpec(None if continuous else rand(V, e), tuple(rec), tuple(dense),
                     pooling=pooling, attention=att, input_size=e if continuous else 0)
    return spec.checked(dtype)


def random_inputs(rng, spec, T, scale=1.0):
    """One random input of length T for ``spec``: token ids, or floats [T, input_size]."""
    if spec.embedding is not None:
        return rng.integers(0, spec.vocab_size, size=T).tolist()
    return rng.standard_normal((T, spec.input_size)) * scale


def random_sentences(rng, n, V, min_len=1, max_len=20):
    return [rng.integers(0, V, size=int(rng.integers(min_len, max_len + 1))).tolist()
            for _ in range(n)]


@pytest.fixture(scope="session", name="make_random_model")
def make_random_model_fixture():
    """The model builder itself (session scope: a function, no state)."""
    return make_random_model


@pytest.fixture(scope="session", name="make_random_spec")
def make_random_spec_fixture():
    return make_random_spec


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def build(model, **kwargs):
    """textlrp.Model from make_random_model arrays (import is lazy: reference-only tests run
    without the compiled engine)."""
    import textlrp

    return textlrp.from_arrays(model["embedding"], model["lstm_layers"], model["head"], **kwargs)


U64 = 2.0 ** -53  # float64 unit roundoff


def lrp_tolerance(eps):
    """Relative tolerance for float64 LRP: 1e-10, or 20 u / eps when eps is tiny.

    Every epsilon rule divides by stab(z), |stab(z)| >= eps, so a pre-activation near 0 turns
    its few-ulp rounding error (which depends on the summation order each implementation
    picks) into a relative error of ~u / eps of the largest relevance: 1e-13 at eps = 1e-3, but
    1e-10 at eps = 1e-6 (measured up to 1.3e-10 over 400 random models with the prop rule).
    """
    return max(1e-10, 20 * U64 / eps)


def assert_close(actual, expected, rel=1e-10, what=""):
    """|actual - expected| <= rel * max(1, max|expected|) elementwise.

    Relevances are scaled by 1/stab(z) at every epsilon-rule step, so a few units can carry
    very large values (the prop rule especially); the error of any implementation scales with
    the largest value, which is why the tolerance is relative to it and not per element.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    err = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    assert err <= rel * scale, f"{what}: max error {err:.3g} > {rel:.1g} * {scale:.3g}"
