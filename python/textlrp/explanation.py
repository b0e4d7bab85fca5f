"""The records the API returns: an explained sequence, a prediction, a failed corpus input.

``to_dict()`` of each is the one JSON schema of textlrp (``textlrp explain/predict --format
json`` writes exactly these dicts, plus ``line``): plain Python types only, and every
non-finite number (NaN, inf) becomes ``None`` (JSON ``null``), so ``json.dumps(d,
allow_nan=False)`` always works.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .tokenize import _DISPLAY, display_token

__all__ = ["Explanation", "ExplanationError", "Prediction", "json_ready"]


def _float(v: Any) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None


def _floats(a: Any) -> list[float | None]:
    # Called several times per record of a corpus: a float64 array (the engine's output) is
    # used as it is, and the finiteness check is one plain sum (inf/NaN anywhere, or an
    # overflow, makes it non-finite; then each value is looked at).
    arr = a if type(a) is np.ndarray and a.dtype == np.float64 else np.asarray(a, np.float64)
    values = arr.ravel().tolist()
    if math.isfinite(sum(values)):
        return values
    return [v if math.isfinite(v) else None for v in values]


def _bools(a: Any) -> list[bool]:
    arr = a if type(a) is np.ndarray and a.dtype == np.bool_ else np.asarray(a, dtype=bool)
    return arr.ravel().tolist()  # plain Python bools


_PLAIN = (str, int, bool, type(None))


def json_ready(v: Any) -> Any:
    """v with numpy scalars/arrays as plain Python values and non-finite floats as None."""
    if type(v) is dict and all(type(k) is str and (type(x) in _PLAIN or type(x) is float
                                                    and math.isfinite(x)) for k, x in v.items()):
        return dict(v)  # the method parameters of every corpus record: already plain
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return _float(v)
    if isinstance(v, np.ndarray):
        return [json_ready(x) for x in v.tolist()]
    if isinstance(v, Mapping):
        return {str(k): json_ready(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_ready(x) for x in v]
    if v is None or isinstance(v, str):
        return v
    return str(v)


def _softmax_list(scores: Any) -> list[float]:
    """Softmax as plain floats. In Python for the few classes of a record (numpy's per-call
    overhead was a tenth of a corpus line's time); non-finite scores give NaN, no warning."""
    s = scores.tolist() if type(scores) is np.ndarray else [float(v) for v in scores]
    top = max(s)
    if math.isfinite(top) and math.isfinite(min(s)):
        e = [math.exp(v - top) for v in s]
        total = sum(e)
        return [v / total for v in e]
    with np.errstate(invalid="ignore"):
        a = np.exp(np.asarray(s) - top)
        return (a / np.sum(a)).tolist()


def _softmax(scores: Any) -> np.ndarray:
    return np.array(_softmax_list(scores), dtype=np.float64)


@dataclass(frozen=True)
class StageLayout:
    """Where the engine's LRP stage totals sit (one layout per model, shared by its
    explanations): their names, the number of head layers, directions per recurrent layer."""

    names: tuple[str, ...]
    head_layers: int
    directions: tuple[int, ...]


def _stage_rows(totals: np.ndarray, layout: StageLayout) -> list[dict[str, Any]]:
    """Level rows of the layer-by-layer relevance totals (see Explanation.layers)."""
    t = [float(v) for v in totals]
    rows: list[dict[str, Any]] = []
    initial = 0.0

    def add(stage: str, relevance: float, absorbed: float, reached: float = 0.0,
            directions: list[dict[str, Any]] | None = None) -> None:
        nonlocal initial
        initial += reached
        rows.append({"stage": stage, "relevance": relevance, "absorbed": absorbed,
                     "initial_state": reached, "conserved": relevance + initial,
                     "directions": directions or []})

    add("score", t[0], 0.0)
    prev, i = t[0], 1
    for _ in range(layout.head_layers + 1):  # head layer inputs (top first), then the pooling
        add(layout.names[i], t[i], prev - t[i])
        prev, i = t[i], i + 1
    for l, n_dirs in reversed(list(enumerate(layout.directions))):
        dirs: list[dict[str, Any]] = []
        for k in range(n_dirs):
            out, init, inp = t[i], t[i + 1], t[i + 2]
            dirs.append({"direction": layout.names[i].rsplit(" outputs", 1)[0],
                         "outputs": out, "inputs": inp, "initial_state": init,
                         "absorbed": out - inp - init})
            i += 3
        inputs = sum(d["inputs"] for d in dirs)
        add(f"layer {l} inputs", inputs, prev - inputs - sum(d["initial_state"] for d in dirs),
            sum(d["initial_state"] for d in dirs), dirs)
        prev = inputs
    return rows


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
    ``overflow`` is True when a number of this explanation came out inf or NaN (relevance,
    gradients, rest or scores: the epsilon rule over very long inputs or with a tiny eps,
    or enormous weights); the numbers are then not to be trusted. The API never raises or
    warns for it: this flag is the report (the command line turns such a text into an error
    record).

    ``tokens`` are in the treebank form the vocabulary uses (``-LRB-``, ````` ``` ``);
    ``display`` gives them as a person wrote them (``(``, ``"``).
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
    overflow: bool = False
    stage_totals: np.ndarray | None = field(default=None, repr=False)
    stage_layout: StageLayout | None = field(default=None, repr=False)

    @property
    def layers(self) -> list[dict[str, Any]] | None:
        """LRP only: the relevance total at each stage of the network, top down, computed by
        the engine in the same pass. One row per level: ``stage``, ``relevance`` (the total
        there), ``absorbed`` (taken by biases and stabilisers on the way from the level above;
        0 with ``bias_factor=1`` up to rounding), ``initial_state`` (what reached the initial
        recurrent states at this level), ``conserved`` (relevance + every initial-state share
        so far: equal to the score on every row with ``bias_factor=1``) and, for recurrent
        layers, ``directions`` (per direction: outputs, inputs, initial_state, absorbed)."""
        if self.stage_totals is None or self.stage_layout is None:
            return None
        return _stage_rows(self.stage_totals, self.stage_layout)

    @property
    def value(self) -> float:
        """A regression model's output (the explained quantity)."""
        return float(self.scores[0])

    @property
    def probabilities(self) -> np.ndarray | None:
        """Softmax of the scores; None for a regression model."""
        return None if self.regression else _softmax(self.scores)

    @property
    def prediction_name(self) -> str:
        return self.class_names[self.prediction]

    @property
    def target_name(self) -> str:
        return self.class_names[self.target]

    @property
    def display(self) -> list[str]:
        """The tokens with the treebank escapes undone, for showing to people."""
        return [display_token(str(t)) for t in self.tokens]

    def __len__(self) -> int:
        return len(self.tokens)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, the schema of docs/cli.md (non-finite numbers become None)."""
        tokens = list(map(str, self.tokens))
        return {
            "text": self.text,
            "tokens": tokens,
            "display": [_DISPLAY.get(t, t) for t in tokens],  # display_token, inlined
            "relevance": _floats(self.relevance),
            "scores": _floats(self.scores),
            "probabilities": None if self.regression else _floats(_softmax_list(self.scores)),
            "regression": self.regression,
            "class_names": list(map(str, self.class_names)),
            # a regression model's prediction is its output value
            "prediction": _floats([self.value])[0] if self.regression else int(self.prediction),
            "prediction_name": str(self.prediction_name),
            "target": int(self.target),
            "target_name": str(self.target_name),
            "method": str(self.method),
            "oov": _bools(self.oov),
            "rest": None if self.rest is None else _float(self.rest),
            "params": json_ready(dict(self.params or {})),
            "overflow": bool(self.overflow),
        }

    def __repr__(self) -> str:
        words = " ".join(f"{tok}({rel:+.3g})" for tok, rel in zip(self.tokens[:12], self.relevance))
        more = " ..." if len(self.tokens) > 12 else ""
        flag = ", overflow=True" if self.overflow else ""
        return (
            f"Explanation(method={self.method!r}, prediction={self.prediction_name!r}, "
            f"target={self.target_name!r}{flag}, tokens=[{words}{more}])"
        )

    def _repr_html_(self) -> str:
        from .render import to_html

        return to_html([self], fragment=True)


@dataclass
class Prediction:
    """Class scores of one text, as ``textlrp predict`` reports them."""

    text: str | None
    tokens: list[str]
    oov: np.ndarray
    scores: np.ndarray
    class_names: list[str]

    @property
    def probabilities(self) -> np.ndarray:
        return _softmax(self.scores)

    @property
    def prediction(self) -> int:
        return int(np.argmax(self.scores))

    @property
    def prediction_name(self) -> str:
        return self.class_names[self.prediction]

    @property
    def display(self) -> list[str]:
        """The tokens with the treebank escapes undone, for showing to people."""
        return [display_token(str(t)) for t in self.tokens]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become None)."""
        prediction = self.prediction
        tokens = list(map(str, self.tokens))
        return {
            "text": self.text,
            "tokens": tokens,
            "display": [_DISPLAY.get(t, t) for t in tokens],  # display_token, inlined
            "oov": _bools(self.oov),
            "scores": _floats(self.scores),
            "probabilities": _floats(_softmax_list(self.scores)),
            "class_names": list(map(str, self.class_names)),
            "prediction": prediction,
            "prediction_name": str(self.class_names[prediction]),
        }


@dataclass
class ExplanationError:
    """Stands in for an input of a corpus that could not be explained.

    ``line`` counts the inputs of the stream from 1, as the command line's ``line`` does:
    for ``explain_corpus(open(path))`` it is the line number in the file (blank lines
    count, skipped or not). ``to_dict()`` is the command line's error record."""

    line: int
    text: Any
    error: str

    def to_dict(self) -> dict[str, Any]:
        text = self.text if isinstance(self.text, str) or self.text is None else repr(self.text)
        return {"line": int(self.line), "text": text, "error": str(self.error)}
