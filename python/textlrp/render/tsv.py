"""TSV: one row per token (explain) or per text (predict); tabs, line breaks and
backslashes inside a field are written as ``\\t``, ``\\n``, ``\\r``, ``\\\\``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._writer import Writer, as_list, printable, register

if TYPE_CHECKING:
    from ..explanation import Explanation, Prediction

__all__ = ["TsvWriter", "to_tsv"]


def field(v: Any) -> str:
    # Tabs and line breaks inside a field would break the table.
    return (str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def _row(cells: Sequence[Any]) -> str:
    return "\t".join(field(c) for c in cells) + "\n"


def _token_rows(exp: Explanation, lead: list[Any]) -> str:
    oov = np.asarray(exp.oov, dtype=bool).ravel()
    relevance = np.asarray(exp.relevance, dtype=np.float64).ravel()
    return "".join(_row([*lead, exp.target_name, k, token, shown, repr(float(relevance[k])),
                         int(oov[k])])
                   for k, (token, shown) in enumerate(zip(exp.tokens, exp.display)))


EXPLAIN_COLUMNS = ["target", "position", "token", "display", "relevance", "oov"]


def to_tsv(exp: Explanation, *, line: int | None = None, header: bool = False) -> str:
    """One row per token: [line] target position token display relevance oov (no final
    newline; position counts from 0, as in the Python API)."""
    head = _row((["line"] if line is not None else []) + EXPLAIN_COLUMNS) if header else ""
    return (head + _token_rows(exp, [] if line is None else [line])).rstrip("\n")


@register
class TsvWriter(Writer):
    """Tab-separated values with a header row. An input that failed has no row; its message
    goes to options.log (the CLI's stderr)."""

    name = "tsv"
    suffixes = (".tsv",)
    help = "tab-separated: one row per token (explain) or per text (predict)"

    def _lead(self, line: int | None, label: int | None) -> list[Any]:
        o = self.options
        lead: list[Any] = [line] if o.lines else []
        if o.labels:
            lead.append("" if label is None else o.class_names[label])
        return lead

    def begin(self) -> None:
        o = self.options
        cols = (["line"] if o.lines else []) + (["label"] if o.labels else [])
        if o.kind == "explain":
            cols += EXPLAIN_COLUMNS
        else:
            cols += ["text", "prediction"] + [f"p_{c}" for c in o.class_names]
        self.out.write(_row(cols))

    def explanation(self, exps: Explanation | Sequence[Explanation], *, line: int | None = None,
                    label: int | None = None) -> None:
        lead = self._lead(line, label)
        for exp in as_list(exps):
            self.out.write(_token_rows(exp, lead))

    def prediction(self, pred: Prediction, *, line: int | None = None,
                   label: int | None = None) -> None:
        text = pred.text if pred.text is not None else " ".join(pred.display)
        probs = [repr(float(p)) for p in pred.probabilities]
        self.out.write(_row([*self._lead(line, label), text, pred.prediction_name, *probs]))

    def error(self, message: str, *, line: int | None = None, text: str | None = None) -> None:
        # A table has no place for a message.
        log = self.options.log
        if log is not None:
            where = f"line {line}: " if line is not None else ""
            print(f"textlrp: {where}{printable(str(message))}", file=log)
