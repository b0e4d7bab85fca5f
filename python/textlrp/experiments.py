"""Word-deletion experiments: do explanations find the words a prediction rests on?

The protocol follows Arras et al., "Explaining Recurrent Neural Network Predictions
in Sentiment Analysis" (WASSA 2017, arXiv:1706.07206):

* keep the sentences with at least ``min_length`` tokens;
* explain each intact sentence once, w.r.t. its true class (``target="true"``);
* initially correctly classified sentences: delete words in decreasing order of
  relevance -- accuracy should fall fastest for the best method;
* initially falsely classified sentences: delete words in increasing order of
  relevance (most negative first) -- accuracy should rise fastest;
* a deleted word's embedding becomes the zero vector; the sentence keeps its
  length (``mode="zero"``). ``mode="remove"`` drops the token instead.

The protocol talks to the engine directly, on inputs encoded and checked once: per method
one pass for the per-word relevances (nothing else), one sort for the deletion orders of
all sentences, and the distinct deleted inputs of all (sentence, k) pairs scored in
chunks of ``batch_size``, shared between methods.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DeletionConfig",
    "DeletionResult",
    "MethodCurves",
    "deletion_order",
    "load_labelled",
    "word_deletion",
]

from .methods import DEFAULT_RULE as _DEFAULT_RULE
from .methods import METHODS as _METHODS
from .methods import RULES as _RULES
from .model import _check_threads

METHODS = tuple(_METHODS)  # names, from the one registry (textlrp.methods)
RULES = tuple(_RULES)


def _parse_method(name: str) -> tuple[str, str | None]:
    """'lrp' -> ('lrp', 'signal-take-all'); 'lrp-prop' -> ('lrp', 'prop'); 'sa' -> ('sa', None)."""
    if name == "lrp":
        return "lrp", _DEFAULT_RULE
    if name.startswith("lrp-") and name[4:] in RULES:
        return "lrp", name[4:]
    if name in METHODS:
        return name, None
    known = list(METHODS) + [f"lrp-{r}" for r in RULES[1:]]
    raise ValueError(f"unknown method {name!r}; known: {', '.join(known)}")


def _method_name(rule: str) -> str:
    return "lrp" if rule == _DEFAULT_RULE else f"lrp-{rule}"


def deletion_order(relevance: np.ndarray, decreasing: bool) -> np.ndarray:
    """Positions in the order they are deleted. Ties keep position order (earlier first)."""
    r = np.asarray(relevance, dtype=np.float64)
    # A stable sort of -r keeps equal values in position order, as does one of r.
    return np.argsort(-r if decreasing else r, kind="stable")


@dataclass
class MethodCurves:
    """Accuracy after 0..K deletions for one method (fractions in [0, 1]).

    For ``random`` the curves are means over the seeds and ``*_std`` the sample standard
    deviation over seeds (ddof=1; 0 with a single seed); for the other methods the
    ``*_std`` fields are None. An empty subset gives NaN accuracies.
    """

    name: str
    correct: np.ndarray
    false: np.ndarray
    area_correct: float
    area_false: float
    seconds: float
    correct_std: np.ndarray | None = None
    false_std: np.ndarray | None = None
    area_correct_std: float | None = None
    area_false_std: float | None = None
    seeds: list[int] | None = None


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


@dataclass
class DeletionResult:
    """Every number of a word-deletion run.

    Area over the curve (higher is better for both subsets), with acc_k the accuracy
    after k deletions and K the largest k:

    * initially correct: ``area_correct = mean_{k=1..K} (acc_0 - acc_k)`` (acc_0 = 1);
    * initially false:   ``area_false   = mean_{k=1..K} (acc_k - acc_0)`` (acc_0 = 0).
    """

    k: list[int]
    n_sentences: int  # given
    n_used: int  # with at least min_length tokens
    n_correct: int
    n_false: int
    n_short: int  # used sentences with fewer tokens than K can delete (see word_deletion)
    methods: dict[str, MethodCurves]
    order: dict[str, str]  # {"correct": "decreasing"|"increasing", "false": ...}
    params: dict[str, Any]
    seconds: float  # whole run
    timing: dict[str, float] = field(default_factory=dict)
    n_steps: int = 0  # (sentence, k >= 1) deletion steps over all methods and seeds
    n_forward: int = 0  # distinct deleted inputs actually run through the engine

    def to_dict(self) -> dict[str, Any]:
        methods = {}
        for name, m in self.methods.items():
            d: dict[str, Any] = {
                "correct": m.correct,
                "false": m.false,
                "area": {"correct": m.area_correct, "false": m.area_false},
                "seconds": m.seconds,
            }
            if m.correct_std is not None:
                d["correct_std"] = m.correct_std
                d["false_std"] = m.false_std
                d["area_std"] = {"correct": m.area_correct_std, "false": m.area_false_std}
                d["seeds"] = m.seeds
            methods[name] = d
        return _jsonable(
            {
                "k": self.k,
                "n_sentences": self.n_sentences,
                "n_used": self.n_used,
                "n_correct": self.n_correct,
                "n_false": self.n_false,
                "n_short": self.n_short,
                "order": self.order,
                "params": self.params,
                "methods": methods,
                "seconds": self.seconds,
                "timing": self.timing,
                "n_steps": self.n_steps,
                "n_forward": self.n_forward,
                "area_definition": {
                    "correct": "mean over k=1..K of (acc_0 - acc_k)",
                    "false": "mean over k=1..K of (acc_k - acc_0)",
                },
            }
        )

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int | None = 2) -> str:
        """JSON text (NaN -> null); also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False) + "\n"
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """Long format: method,subset,k,n,accuracy,std (std empty except for random)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["method", "subset", "k", "n", "accuracy", "std"])
        for name, m in self.methods.items():
            for subset, acc, std, n in (
                ("correct", m.correct, m.correct_std, self.n_correct),
                ("false", m.false, m.false_std, self.n_false),
            ):
                for k in self.k:
                    w.writerow(
                        [
                            name,
                            subset,
                            k,
                            n,
                            _fmt_csv(acc[k]),
                            "" if std is None else _fmt_csv(std[k]),
                        ]
                    )
        text = buf.getvalue()
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def table(self) -> str:
        """Plain-text table for the terminal: accuracies in percent, area in percentage points."""
        p = self.params
        lines = [
            (
                f"word deletion: {self.n_used} of {self.n_sentences} sentences "
                f"with >= {p['min_length']} "
                f"tokens, target={p['target']}, mode={p['mode']}"
            )
        ]
        for subset, n in (("correct", self.n_correct), ("false", self.n_false)):
            lines.append("")
            lines.append(
                f"initially {subset} (n={n}), {self.order[subset]} relevance first: "
                "accuracy % after k deletions"
            )
            header = ["method"] + [f"k={k}" for k in self.k] + ["area"]
            rows = []
            for name, m in self.methods.items():
                acc = m.correct if subset == "correct" else m.false
                std = m.correct_std if subset == "correct" else m.false_std
                area = m.area_correct if subset == "correct" else m.area_false
                astd = m.area_correct_std if subset == "correct" else m.area_false_std
                cells = [name]
                for k in self.k:
                    cells.append(_pct(acc[k], None if std is None else std[k]))
                cells.append(_pct(area, astd))
                rows.append(cells)
            lines.extend(_align([header, *rows]))
        lines.append("")
        lines.append(
            f"area = mean over k=1..{self.k[-1]} of the accuracy change (points; higher is better)"
        )
        lines.append(
            f"time: {self.seconds:.2f} s "
            f"({self.n_forward} forward passes for {self.n_steps} deletion steps)"
        )
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
        """Accuracy vs number of deleted words; correct and false subsets side by side.

        The format follows the file suffix (PNG, SVG, PDF ...).

        Needs matplotlib (``pip install textlrp[plot]``).
        """
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError("plotting needs matplotlib: pip install 'textlrp[plot]'") from None
        # Figure without pyplot: no global backend state is touched.
        fig = Figure(figsize=(10, 4.2), layout="constrained")
        axes = fig.subplots(1, 2)
        styles = {
            "lrp": ("tab:red", "o"),
            "sa": ("tab:blue", "s"),
            "gi": ("tab:green", "^"),
            "occlusion": ("tab:purple", "D"),
            "random": ("black", "x"),
        }
        extra = iter(
            [
                ("tab:orange", "v"),
                ("tab:brown", "P"),
                ("tab:pink", "*"),
                ("tab:olive", "h"),
                ("tab:cyan", "<"),
            ]
        )
        for name in self.methods:  # same style for a method in both panels
            if name not in styles:
                styles[name] = next(extra, ("gray", "."))
        for ax, subset, n in (
            (axes[0], "correct", self.n_correct),
            (axes[1], "false", self.n_false),
        ):
            for name, m in self.methods.items():
                color, marker = styles[name]
                acc = 100 * (m.correct if subset == "correct" else m.false)
                std = m.correct_std if subset == "correct" else m.false_std
                ax.plot(
                    self.k,
                    acc,
                    marker=marker,
                    color=color,
                    label=name,
                    linestyle="--" if name == "random" else "-",
                )
                if std is not None:
                    ax.fill_between(
                        self.k, acc - 100 * std, acc + 100 * std, color=color, alpha=0.15
                    )
            ax.set_xlabel("number of deleted words")
            ax.set_ylabel("accuracy (%)")
            ax.set_xticks(self.k)
            ax.set_title(f"initially {subset} (n={n}), {self.order[subset]} relevance first")
            ax.grid(alpha=0.3)
        axes[0].legend()
        if title:
            fig.suptitle(title)
        path = Path(path)
        fig.savefig(path, dpi=120)
        return path


def _align(rows: list[list[str]]) -> list[str]:
    """First column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))
        for r in rows
    ]


def _fmt_csv(x: float) -> str:
    return "" if not math.isfinite(float(x)) else f"{float(x):.6f}"


def _pct(x: float, std: float | None) -> str:
    if not math.isfinite(float(x)):
        return "-"
    s = f"{100 * x:.1f}"
    if std is not None and math.isfinite(float(std)):
        s += f"±{100 * std:.1f}"
    return s


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


# Padding of a deletion step's sorted positions: sorts after every real position.
_NONE = np.iinfo(np.int64).max


@dataclass
class _Packed:
    """The sentences of a run as the engine takes them, checked and encoded once: the flat
    inputs (token ids, or the rows of a continuous model's inputs) and the offsets."""

    x: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def rows(self, sentences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The inputs of ``sentences`` (indices, repeats allowed) packed as one batch."""
        lengths = self.lengths[sentences]
        offsets = np.zeros(len(sentences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        gather = np.repeat(self.offsets[sentences] - offsets[:-1], lengths)
        gather += np.arange(offsets[-1], dtype=np.int64)
        return self.x[gather], offsets


def _predict(model: Any, packed: _Packed, sentences: np.ndarray, deleted: np.ndarray | None,
             mode: str, threads: int, batch_size: int) -> np.ndarray:
    """Predicted class of each of ``sentences`` with the positions ``deleted[j]`` (sorted,
    padded with _NONE) zeroed (mode "zero") or dropped ("remove"). The inputs go straight to
    the engine: they were checked once when the run encoded them."""
    out = np.empty(len(sentences), dtype=np.int64)
    for sl in _chunks(len(sentences), batch_size):
        x, offsets = packed.rows(sentences[sl])
        mask = None
        if deleted is not None:
            d = deleted[sl]
            real = d != _NONE
            mask = np.zeros(len(x), dtype=np.uint8)
            mask[(offsets[:-1, None] + np.where(real, d, 0))[real]] = 1
            if mode == "remove":
                x = x[mask == 0]
                np.cumsum(np.diff(offsets) - real.sum(axis=1), out=offsets[1:])
                mask = None
        scores = model._core.forward(x, offsets, mask, threads)
        out[sl] = np.argmax(np.asarray(scores), axis=1)
    return out


def _relevances(model: Any, packed: _Packed, targets: np.ndarray, *, method: str,
                params: dict[str, Any], threads: int, batch_size: int, name: str) -> np.ndarray:
    """Relevance of every position of every sentence (flat, float64) w.r.t. ``targets``:
    the per-position arrays only, no embedding-level arrays and no Explanation objects."""
    rel = np.empty(len(packed.x), dtype=np.float64)
    n = len(packed.offsets) - 1
    for sl in _chunks(n, batch_size):
        a, b = int(packed.offsets[sl.start]), int(packed.offsets[sl.stop])
        x, offsets = packed.x[a:b], packed.offsets[sl.start:sl.stop + 1] - a
        rel[a:b] = model._engine_pass(method, params, x, offsets, None, targets[sl], threads,
                                      False, scores=False)[2]
    bad = ~np.isfinite(rel)
    if bad.any():
        i = int(np.searchsorted(packed.offsets, int(np.argmax(bad)), side="right")) - 1
        raise ValueError(f"{name}: relevance of sentence {i} is not finite; cannot order its "
                         "words")
    return rel


def _first_deleted(rel: np.ndarray, packed: _Packed, decreasing: np.ndarray, K: int,
                   cap: np.ndarray) -> np.ndarray:
    """[n, K]: the first K positions of each sentence in deletion order (what
    :func:`deletion_order` gives, for all sentences in one sort), -1 beyond ``cap``."""
    lengths = packed.lengths
    n, N = len(lengths), len(rel)
    sentence = np.repeat(np.arange(n), lengths)
    pos = np.arange(N, dtype=np.int64) - np.repeat(packed.offsets[:-1], lengths)
    key = np.where(np.repeat(decreasing, lengths), -rel, rel)
    # By sentence, then key, then position: ties go in position order, as deletion_order.
    ranked = pos[np.lexsort((pos, key, sentence))]
    j = np.arange(K)
    first = ranked[packed.offsets[:-1, None] + np.minimum(j, lengths[:, None] - 1)]
    return np.where(j < np.minimum(cap, K)[:, None], first, -1)


def _steps(first: np.ndarray) -> np.ndarray:
    """[n, K, K]: the positions deleted after k = 1..K deletions, sorted, padded with _NONE
    (a sentence capped at c deletions repeats its c-th step)."""
    K = first.shape[1]
    k = np.arange(1, K + 1)
    take = (np.arange(K)[None, None, :] < k[None, :, None]) & (first[:, None, :] >= 0)
    steps = np.where(take, first[:, None, :], _NONE)
    steps.sort(axis=2)
    return steps


def _curve(model: Any, packed: _Packed, first: np.ndarray, y: np.ndarray, mode: str,
           cache: dict[bytes, int], threads: int, batch_size: int) -> np.ndarray:
    """hits[i, k] = sentence i is classified as y[i] after deleting its first k words.

    ``cache`` maps (sentence, set of deleted positions), as the bytes of the sentence index
    and the sorted positions, to the predicted class; it is shared by all methods of a run,
    since they often delete the same words first (the order of deletion does not matter to
    the input, in either mode). k = 0 is stored under the empty set.
    """
    n, K = first.shape
    steps = _steps(first).reshape(n * K, K)
    rows = np.concatenate([np.repeat(np.arange(n, dtype=np.int64), K)[:, None], steps], axis=1)
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    keys = [r.tobytes() for r in unique]
    todo = np.array([j for j, key in enumerate(keys) if key not in cache], dtype=np.int64)
    if len(todo):
        pred = _predict(model, packed, unique[todo, 0], unique[todo, 1:], mode, threads,
                        batch_size)
        cache.update(zip([keys[j] for j in todo], pred.tolist()))
    preds = np.array([cache[key] for key in keys], dtype=np.int64)[inverse.reshape(-1)]
    intact = np.array([cache[key] for key in _intact_keys(n, K)], dtype=np.int64)
    return np.concatenate([intact[:, None], preds.reshape(n, K)], axis=1) == y[:, None]


def _intact_keys(n: int, K: int) -> list[bytes]:
    """The cache keys of the n intact sentences (nothing deleted)."""
    rows = np.full((n, K + 1), _NONE, dtype=np.int64)
    rows[:, 0] = np.arange(n)
    return [r.tobytes() for r in rows]


def _accuracy(hits: np.ndarray, subset: np.ndarray) -> np.ndarray:
    if not subset.any():
        return np.full(hits.shape[1], np.nan)
    return hits[subset].mean(axis=0)


def _area(acc: np.ndarray, sign: float) -> float:
    # sign=+1 for the correct subset (drop from acc_0), -1 for the false subset (rise).
    return float(np.mean(sign * (acc[0] - acc[1:])))


def _resolve_label(model: Any, label: Any) -> int:
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        return int(model.class_index(int(label)))
    if isinstance(label, str):
        if label in model.class_names:
            return int(model.class_names.index(label))
        try:
            return int(model.class_index(int(label)))
        except ValueError:
            pass
        return int(model.class_index(label))  # raises, naming the known classes
    raise ValueError(f"label {label!r} is neither a class index nor a class name")


@dataclass(frozen=True)
class DeletionConfig:
    """The word-deletion protocol: what :func:`word_deletion` measures (the results depend on
    these and only these; threads and batch size do not change them).

    methods: explanation methods; ``"lrp-<rule>"`` selects an LRP rule variant; a string is
        split at commas.
    rules: extra LRP rules, each reported as ``lrp-<rule>`` (``"signal-take-all"`` is ``lrp``).
    k: largest number of deleted words K; accuracies are reported for 0..K deletions.
    min_length: sentences with fewer tokens are skipped.
    target: ``"true"`` explains the true class, ``"predicted"`` the predicted one.
    order: ``"auto"`` deletes first the words that most support the current prediction:
        initially correct -> decreasing relevance; initially false -> increasing relevance
        of the true class (the protocol), or decreasing relevance when ``target="predicted"``
        (then relevance is for the wrongly predicted class). ``"decreasing"`` /
        ``"increasing"`` force one order for both subsets.
    mode: ``"zero"`` sets a deleted word's embedding to zeros (length kept, via
        ``predict(deleted=...)``); ``"remove"`` drops the token.
    random_seeds: the ``random`` method runs once per seed; curves are averaged, the
        standard deviation over seeds is reported beside them.
    eps, bias_factor: LRP parameters, as in ``Model.explain`` (used by the LRP methods only).
    """

    methods: tuple[str, ...] = METHODS
    k: int = 5
    min_length: int = 10
    target: str = "true"
    order: str = "auto"
    mode: str = "zero"
    random_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    rules: tuple[str, ...] = ()
    eps: float = 1e-3
    bias_factor: float = 0.0

    def __post_init__(self) -> None:
        methods = self.methods
        if isinstance(methods, str):
            methods = [m.strip() for m in methods.split(",") if m.strip()]
        object.__setattr__(self, "methods", tuple(methods))
        rules = self.rules
        if isinstance(rules, str):
            rules = [r.strip() for r in rules.split(",") if r.strip()]
        object.__setattr__(self, "rules", tuple(rules or ()))
        object.__setattr__(self, "random_seeds", tuple(int(s) for s in self.random_seeds))
        for name in ("k", "min_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.target not in ("true", "predicted"):
            raise ValueError(f"target must be 'true' or 'predicted', got {self.target!r}")
        if self.order not in ("auto", "decreasing", "increasing"):
            raise ValueError("order must be 'auto', 'decreasing' or 'increasing', "
                             f"got {self.order!r}")
        if self.mode not in ("zero", "remove"):
            raise ValueError(f"mode must be 'zero' or 'remove', got {self.mode!r}")
        eps, bias_factor = float(self.eps), float(self.bias_factor)
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"eps must be finite and > 0, got {self.eps!r}")
        if not 0.0 <= bias_factor <= 1.0:
            raise ValueError(f"bias_factor must be in [0, 1], got {self.bias_factor!r}")
        object.__setattr__(self, "eps", eps)
        object.__setattr__(self, "bias_factor", bias_factor)
        specs = self.specs()
        if not specs:
            raise ValueError("no method given")
        if "random" in specs and not self.random_seeds:
            raise ValueError("the random method needs at least one seed")

    def specs(self) -> dict[str, tuple[str, str | None]]:
        """Reported name -> (engine method, LRP rule or None), in report order."""
        specs: dict[str, tuple[str, str | None]] = {}
        for name in self.methods:
            specs.setdefault(name, _parse_method(name))
        for extra_rule in self.rules:
            if extra_rule not in RULES:
                raise ValueError(f"unknown rule {extra_rule!r}; known: {', '.join(RULES)}")
            specs.setdefault(_method_name(extra_rule), ("lrp", extra_rule))
        return specs


def word_deletion(
    model: Any,
    sentences: Sequence[Any],
    labels: Sequence[int | str],
    config: DeletionConfig | None = None,
    *,
    threads: int | None = None,
    batch_size: int = 4096,
    progress: bool = False,
) -> DeletionResult:
    """Run the word-deletion protocol ``config`` (default: :class:`DeletionConfig`'s, the
    Arras et al. setting) and return every number (see :class:`DeletionResult`).

    sentences: anything ``model.encode`` accepts (text, token list, id array); labels: class
        index or class name per sentence.
    threads, batch_size (inputs per engine call), progress (a bar on stderr) change how the
    work is done, never its results.

    Relevance ties are broken by position (the earlier word is deleted first). Sentences
    shorter than K: in zero mode, once every word is deleted the further steps repeat the
    fully deleted sentence; in remove mode at most T-1 words are removed (a sentence never
    becomes empty). ``n_short`` counts the sentences where this cap applies.
    """
    t_start = time.perf_counter()
    cfg = DeletionConfig() if config is None else config
    if not isinstance(cfg, DeletionConfig):
        raise TypeError(f"config must be a DeletionConfig, got {type(cfg).__name__}")
    if len(sentences) != len(labels):
        raise ValueError(f"{len(sentences)} sentences but {len(labels)} labels")
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    specs = cfg.specs()
    seeds = list(cfg.random_seeds)
    K, min_length, target, order, mode = cfg.k, cfg.min_length, cfg.target, cfg.order, cfg.mode

    if getattr(model, "regression", False):
        raise ValueError("word deletion measures classification accuracy; a regression model "
                         "has no classes")
    threads_given, threads = threads, _check_threads(threads)

    timing: dict[str, float] = {}
    t = time.perf_counter()
    y_all = np.array([_resolve_label(model, lab) for lab in labels], dtype=np.int64)
    inputs = [model._ids(x) for x in sentences]  # checked once; the engine reads them as they are
    keep = [i for i, x in enumerate(inputs) if len(x) >= min_length]
    if not keep:
        raise ValueError(
            f"none of the {len(sentences)} sentences has at least min_length={min_length} tokens"
        )
    lengths = np.array([len(inputs[i]) for i in keep], dtype=np.int64)
    offsets = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    packed = _Packed(np.concatenate([inputs[i] for i in keep]), offsets)
    del inputs
    n = len(keep)
    y = y_all[keep]
    timing["encode"] = time.perf_counter() - t

    t = time.perf_counter()
    pred0 = _predict(model, packed, np.arange(n), None, mode, threads, batch_size)
    timing["predict_intact"] = time.perf_counter() - t
    correct = pred0 == y
    cache: dict[bytes, int] = dict(zip(_intact_keys(n, K), pred0.tolist()))
    targets = y if target == "true" else pred0
    decreasing = {
        "correct": order in ("auto", "decreasing"),
        "false": order == "decreasing" or (order == "auto" and target == "predicted"),
    }
    per_sentence = np.where(correct, decreasing["correct"], decreasing["false"])
    # Never delete more words than there are; remove mode keeps at least one token.
    cap = lengths if mode == "zero" else lengths - 1
    n_short = int(np.sum(cap < K))

    results: dict[str, MethodCurves] = {}
    n_steps = 0
    names = list(specs)
    iterator: Any = names
    if progress:
        from tqdm import tqdm

        iterator = tqdm(names, desc="word deletion", unit="method", file=sys.stderr)
    for name in iterator:
        method, rule = specs[name]
        t_m = time.perf_counter()
        t_rel = t_pred = 0.0
        curves_c, curves_f = [], []
        for seed in seeds if method == "random" else [0]:
            t = time.perf_counter()
            if method == "lrp":
                params = model._method_params(method, cfg.eps, cfg.bias_factor, rule, None)
            else:
                params = model._method_params(method, None, None, None,
                                              seed if method == "random" else None)
            rel = _relevances(model, packed, targets, method=method, params=params,
                              threads=threads, batch_size=batch_size, name=name)
            first = _first_deleted(rel, packed, per_sentence, K, cap)
            t_rel += time.perf_counter() - t
            t = time.perf_counter()
            hits = _curve(model, packed, first, y, mode, cache, threads, batch_size)
            n_steps += n * K
            t_pred += time.perf_counter() - t
            curves_c.append(_accuracy(hits, correct))
            curves_f.append(_accuracy(hits, ~correct))
        cc, cf = np.array(curves_c), np.array(curves_f)
        areas_c = np.array([_area(c, +1) for c in cc])
        areas_f = np.array([_area(c, -1) for c in cf])
        mc = MethodCurves(
            name=name,
            correct=cc.mean(axis=0),
            false=cf.mean(axis=0),
            area_correct=float(areas_c.mean()),
            area_false=float(areas_f.mean()),
            seconds=time.perf_counter() - t_m,
        )
        if method == "random":
            ddof = 1 if len(seeds) > 1 else 0
            mc.correct_std, mc.false_std = cc.std(axis=0, ddof=ddof), cf.std(axis=0, ddof=ddof)
            mc.area_correct_std = float(areas_c.std(ddof=ddof))
            mc.area_false_std = float(areas_f.std(ddof=ddof))
            mc.seeds = seeds
        results[name] = mc
        timing[f"{name}_relevance"] = t_rel
        timing[f"{name}_deletion"] = t_pred

    params = {
        "methods": names,
        "k": K,
        "min_length": int(min_length),
        "target": target,
        "order": order,
        "mode": mode,
        "random_seeds": seeds,
        "eps": cfg.eps,
        "bias_factor": cfg.bias_factor,
        "rules": {n: s[1] for n, s in specs.items() if s[0] == "lrp"},
        "threads": threads_given,
        "batch_size": int(batch_size),
    }
    return DeletionResult(
        k=list(range(K + 1)),
        n_sentences=len(sentences),
        n_used=n,
        n_correct=int(correct.sum()),
        n_false=int((~correct).sum()),
        n_short=n_short,
        methods=results,
        order={s: "decreasing" if d else "increasing" for s, d in decreasing.items()},
        params=params,
        seconds=time.perf_counter() - t_start,
        timing=timing,
        n_steps=n_steps,
        n_forward=len(cache) - n,
    )


# ---------------------------------------------------------------------------------------------
# Data and command line


def _detect_format(path: Path) -> str:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                if line.lstrip().startswith("("):
                    return "sst"
                if "\t" in line:
                    return "tsv"
                raise ValueError(
                    f"{path}: cannot tell the format (neither a PTB tree nor 'label<TAB>text'); "
                    "pass --format sst|tsv"
                )
    raise ValueError(f"{path}: no data")


def load_labelled(
    path: str | os.PathLike[str], *, format: str = "auto", class_names: Sequence[str] | None = None
) -> tuple[list[list[str]], list[int]]:
    """Token lists and label indices from an SST PTB tree file or a ``label<TAB>text`` file.

    format: ``"auto"`` (a first line starting with ``(`` is SST, one with a tab is TSV),
    ``"sst"`` or ``"tsv"``. TSV labels are class names (``class_names``) or indices; text is
    tokenised with :func:`textlrp.tokenize`.
    """
    from . import sst

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    if format == "auto":
        format = _detect_format(path)
    if format == "sst":
        rows = sst.load_sentences(path)
    elif format == "tsv":
        rows = sst.load_tsv(path, class_names)
    else:
        raise ValueError(f"format must be 'auto', 'sst' or 'tsv', got {format!r}")
    if not rows:
        raise ValueError(f"{path}: no sentences")
    return [list(t) for t, _ in rows], [int(lab) for _, lab in rows]
