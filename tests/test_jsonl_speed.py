"""The corpus JSON path: the optional orjson encoder and the stdlib one write the same values,
and to_dict's fast paths keep non-finite numbers as null."""

from __future__ import annotations

import json

import numpy as np
import pytest

import textlrp
from textlrp.explanation import _floats, json_ready
from textlrp.render import jsonl


@pytest.fixture(scope="module")
def model() -> textlrp.Model:
    return textlrp.load_model()


def test_same_values_with_and_without_orjson(model, monkeypatch):
    exps = model.explain_batch(["don't waste your money", "a gorgeous , witty film"],
                               keep_embedding=False)
    records = [{"line": 1, **e.to_dict()} for e in exps]
    records.append({"x": [1e-05, 2.5e-7, 1e16, -0.0, 5e-324], "t": "é\u2028\x00"})
    fast = [jsonl.dumps(r) for r in records]
    monkeypatch.setattr(jsonl, "_orjson", None)
    plain = [jsonl.dumps(r) for r in records]
    assert [json.loads(s) for s in fast] == [json.loads(s) for s in plain] == records


def test_lone_surrogate_falls_back_to_json():
    line = jsonl.error_record(3, "bad \udc80 byte", "not valid UTF-8")
    assert json.loads(line) == {"line": 3, "text": "bad \udc80 byte", "error": "not valid UTF-8"}


def test_floats_fast_path_keeps_nonfinite_as_none():
    assert _floats(np.array([1.0, 2.5])) == [1.0, 2.5]
    assert _floats(np.array([1.0, np.nan, np.inf, -np.inf])) == [1.0, None, None, None]
    assert _floats(np.array([1e308, 1e308])) == [1e308, 1e308]  # the sum overflows, no value
    assert _floats(np.array([1, 2], dtype=np.float32)) == [1.0, 2.0]
    assert _floats([3, 4]) == [3.0, 4.0]


def test_json_ready_plain_and_numpy_params():
    assert json_ready({"eps": 0.001, "rule": "x", "n": 2, "b": True, "z": None}) == \
        {"eps": 0.001, "rule": "x", "n": 2, "b": True, "z": None}
    assert json_ready({"eps": float("nan")}) == {"eps": None}
    assert json_ready({"eps": np.float64(0.5), "k": np.int64(3)}) == {"eps": 0.5, "k": 3}
    assert type(json_ready({"k": np.int64(3)})["k"]) is int
