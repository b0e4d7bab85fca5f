"""The worked example of the README (examples/marker_task.py): on tasks whose right answer is
known, LRP puts the most relevance on the one token (or time step) that decides the class."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("textlrp.nn")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import marker_task


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic and quick on a shared machine
    yield
    torch.set_num_threads(threads)


def test_gru_attention_finds_the_marker_token():
    model = marker_task.train_marker_model(seed=0)
    assert model.spec.pooling == "attention" and model.cells == {"gru"}
    xs, ys = marker_task.make_tokens(np.random.default_rng(1), 300)
    acc, hit = marker_task.marker_hits(model, xs, ys, lambda x: int(np.flatnonzero(x <= 2)[0]))
    assert acc >= 0.95, acc
    assert hit >= 0.95, hit
    # and the relevance is positive for the marker's class, from a text
    e = model.explain("w3 w4 B w5 w6")
    assert e.prediction_name == "B" and int(np.argmax(e.relevance)) == 2


def test_lstm_max_finds_the_spike():
    model = marker_task.train_spike_model(seed=0)
    assert model.continuous and model.spec.pooling == "max"
    xs, ys = marker_task.make_spikes(np.random.default_rng(2), 300)
    acc, hit = marker_task.marker_hits(model, xs, ys, lambda x: int(np.argmax(x[:, 0])))
    assert acc >= 0.95, acc
    assert hit >= 0.95, hit
