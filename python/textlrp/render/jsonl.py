"""JSON Lines: one object per explanation or prediction, exactly ``to_dict()`` of the
record (the schema in docs/cli.md) plus ``line`` (corpus mode) and ``label``/``label_name``
(when the input has labels)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._writer import Writer, as_list, register

if TYPE_CHECKING:
    from ..explanation import Explanation, Prediction

__all__ = ["JsonWriter", "error_record", "prediction_to_json", "to_json"]


# One encoder for every record (json.dumps with options builds a new one per call).
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode

_orjson: Any
try:  # optional: about 5x faster on a corpus record (its floats are most of the work)
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None


def dumps(record: Mapping[str, Any]) -> str:
    """One record as compact JSON. With orjson installed it writes the record (the same
    values; floats in its shortest form, e.g. 0.00001 where json writes 1e-05); anything
    orjson refuses (a lone surrogate, an int beyond 64 bits) goes through json."""
    if _orjson is not None:
        try:
            return _orjson.dumps(record).decode("utf-8")
        except TypeError:  # orjson.JSONEncodeError
            pass
    return _encode(record)


def _record(item: Any, line: int | None, label: int | None) -> dict[str, Any]:
    record: dict[str, Any] = {} if line is None else {"line": int(line)}
    record.update(item.to_dict())
    if label is not None:
        record["label"] = int(label)
        record["label_name"] = str(item.class_names[label])
    return record


def to_json(exp: Explanation, *, line: int | None = None) -> str:
    """One explanation as one line of JSON (no newline); line adds a "line" field."""
    return dumps(_record(exp, line, None))


def prediction_to_json(pred: Prediction, *, line: int | None = None) -> str:
    """One prediction as one line of JSON (no newline)."""
    return dumps(_record(pred, line, None))


def error_record(line: int | None, text: str | None, error: str) -> str:
    """The JSON line standing in for an input line that could not be processed."""
    return dumps({"line": line, "text": text, "error": str(error)})


@register
class JsonWriter(Writer):
    """JSON Lines, one object per explanation (per class with --all-classes)."""

    name = "json"
    suffixes = (".json", ".jsonl", ".ndjson")
    help = "JSON Lines, one object per text (per class with --all-classes)"

    def explanation(self, exps: Explanation | Sequence[Explanation], *, line: int | None = None,
                    label: int | None = None) -> None:
        for exp in as_list(exps):
            self.out.write(dumps(_record(exp, line, label)) + "\n")

    def prediction(self, pred: Prediction, *, line: int | None = None,
                   label: int | None = None) -> None:
        self.out.write(dumps(_record(pred, line, label)) + "\n")

    def error(self, message: str, *, line: int | None = None, text: str | None = None) -> None:
        self.out.write(error_record(line, text, message) + "\n")
