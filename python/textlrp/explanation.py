"""The record of one explained sequence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Explanation:
    """Relevance of each token of one sequence for one target class.

    ``relevance[t]`` is the score of token ``t`` under ``method``: for LRP the relevance
    that reaches the word (positive = evidence for ``target``); for "sa" the squared
    gradient norm; for "gi" gradient x input; for "occlusion" the drop of the target
    score when the word's embedding is zeroed; for "random" a seeded uniform draw.
    For a model on continuous inputs, ``tokens`` are the step indices as strings and
    ``embedding_relevance`` is the relevance per step and input feature [T, input_size].
    For a regression model (``regression``), ``target`` is 0, ``value`` the output and
    ``probabilities`` None.
    ``rest`` (LRP only) is what reaches the initial recurrent states: with ``bias_factor=1``,
    ``relevance.sum() + rest == scores[target]`` up to rounding.
    """

    tokens: list[str]
    ids: np.ndarray
    relevance: np.ndarray
    scores: np.ndarray
    class_names: list[str]
    prediction: int
    target: int
    method: str
    oov: np.ndarray
    text: str | None = None
    rest: float | None = None
    embedding_relevance: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)
    regression: bool = False

    @property
    def value(self) -> float:
        """A regression model's output (the explained quantity)."""
        return float(self.scores[0])

    @property
    def probabilities(self) -> np.ndarray | None:
        """Softmax of the scores; None for a regression model."""
        if self.regression:
            return None
        z = self.scores - self.scores.max()
        p = np.exp(z)
        return p / p.sum()

    @property
    def prediction_name(self) -> str:
        return self.class_names[self.prediction]

    @property
    def target_name(self) -> str:
        return self.class_names[self.target]

    def __len__(self) -> int:
        return len(self.tokens)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the schema documented in the README)."""
        return {
            "text": self.text,
            "tokens": list(self.tokens),
            "relevance": [float(r) for r in self.relevance],
            "scores": [float(s) for s in self.scores],
            "probabilities": (None if self.probabilities is None
                              else [float(p) for p in self.probabilities]),
            "regression": self.regression,
            "class_names": [str(c) for c in self.class_names],
            "prediction": int(self.prediction),
            "prediction_name": self.prediction_name,
            "target": int(self.target),
            "target_name": self.target_name,
            "method": self.method,
            "oov": [bool(o) for o in self.oov],
            "rest": None if self.rest is None else float(self.rest),
            "params": dict(self.params),
        }

    def __repr__(self) -> str:
        words = " ".join(f"{tok}({rel:+.3g})" for tok, rel in zip(self.tokens[:12], self.relevance))
        more = " ..." if len(self.tokens) > 12 else ""
        return (
            f"Explanation(method={self.method!r}, prediction={self.prediction_name!r}, "
            f"target={self.target_name!r}, tokens=[{words}{more}])"
        )

    def _repr_html_(self) -> str:
        from .render import to_html

        return to_html([self], fragment=True)


@dataclass
class ExplanationError:
    """Stands in for an input of a corpus that could not be explained."""

    index: int
    text: Any
    error: str

    def to_dict(self) -> dict[str, Any]:
        text = self.text if isinstance(self.text, str) else repr(self.text)
        return {"index": self.index, "text": text, "error": self.error}
