"""The writer interface and the one registry of output formats.

A format is a Writer subclass in its own module of this package, decorated with
``@register``; the package imports every public module, so a new format is a new file.
The command line takes its ``--format`` choices and the formats of ``--output`` suffixes
from ``WRITERS``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, ClassVar, TextIO, TypeVar

import numpy as np

from ._palette import check_scale, check_theme

if TYPE_CHECKING:
    from ..explanation import Explanation, Prediction

KINDS = ("explain", "predict")
COLORS = ("truecolor", "256", "none")


@dataclasses.dataclass(frozen=True)
class WriterOptions:
    """What a writer needs to know before the first record.

    kind: "explain" or "predict", the records that will follow (a TSV header differs).
    class_names: the model's classes. lines / labels: records carry input line numbers /
    gold labels (corpus mode). color, theme, width: terminal output ("none" = plain text;
    width wraps between words). values: numbers beside the words (in HTML: shown at first).
    scale: "sentence", "report" or a positive number (see _palette.Scaler).
    title, subtitle: of an HTML report. log: where messages go that have no place in the
    format (TSV error lines); None drops them.
    """

    kind: str = "explain"
    class_names: tuple[str, ...] = ()
    lines: bool = False
    labels: bool = False
    color: str = "none"
    theme: str = "light"
    values: bool = False
    width: int | None = None
    scale: str | float = "sentence"
    title: str | None = None
    subtitle: str | None = None
    log: TextIO | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; use 'explain' or 'predict'")
        if self.color not in COLORS:
            raise ValueError(f"unknown color {self.color!r}; use 'truecolor', '256' or 'none'")
        check_theme(self.theme)
        object.__setattr__(self, "scale", check_scale(self.scale))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))


class Writer:
    """Writes the records of one output, in order, as they come.

    ``begin()``, then any mix of ``explanation()``, ``prediction()`` and ``error()`` (one call
    per input text), then ``end()``. Subclasses set ``name`` (the ``--format`` value),
    ``suffixes`` (file suffixes that select the format) and ``help`` (one line).
    """

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]] = ()
    help: ClassVar[str] = ""

    def __init__(self, out: TextIO, options: WriterOptions | None = None) -> None:
        self.out = out
        self.options = options if options is not None else WriterOptions()

    def begin(self) -> None:
        """Start the output (a header, the top of a page)."""

    def explanation(self, exps: Explanation | Sequence[Explanation], *, line: int | None = None,
                    label: int | None = None) -> None:
        """One text's explanations: one, or one per class (--all-classes)."""
        raise NotImplementedError

    def prediction(self, pred: Prediction, *, line: int | None = None,
                   label: int | None = None) -> None:
        """One text's class probabilities."""
        raise NotImplementedError

    def error(self, message: str, *, line: int | None = None, text: str | None = None) -> None:
        """An input that could not be processed, in its place."""
        raise NotImplementedError

    def end(self) -> None:
        """Finish the output (a legend, the end of a page)."""


W = TypeVar("W", bound=type[Writer])
WRITERS: dict[str, type[Writer]] = {}


def register(cls: W) -> W:
    """Class decorator: make a Writer a format of the command line."""
    name = getattr(cls, "name", None)
    if not name or name in WRITERS:
        raise ValueError(f"a writer needs a unique name, got {name!r}")
    taken = {s for w in WRITERS.values() for s in w.suffixes}
    clash = taken.intersection(cls.suffixes)
    if clash or any(not s.startswith(".") or s != s.lower() for s in cls.suffixes):
        raise ValueError(f"writer {name!r}: suffixes must be new, lowercase and start with "
                         f"'.', got {cls.suffixes!r}")
    WRITERS[name] = cls
    return cls


def format_names() -> list[str]:
    return sorted(WRITERS)


def suffix_formats() -> dict[str, str]:
    """{suffix: format name} for every registered suffix."""
    return {s: w.name for w in WRITERS.values() for s in w.suffixes}


def format_for_path(path: str) -> str:
    """The format a file name's suffix selects; ValueError for an unknown or missing suffix."""
    suffix = PurePath(path).suffix.lower()
    by_suffix = suffix_formats()
    if suffix in by_suffix:
        return by_suffix[suffix]
    known = ", ".join(sorted(by_suffix))
    what = f"suffix {suffix!r}" if suffix else "no suffix"
    raise ValueError(f"cannot tell the output format from {path!r} ({what}; known: {known}); "
                     f"give --format ({', '.join(format_names())})")


def make_writer(name: str, out: TextIO, options: WriterOptions | None = None) -> Writer:
    try:
        cls = WRITERS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; use one of {', '.join(format_names())}") \
            from None
    return cls(out, options)


def as_list(exps: Any) -> list[Explanation]:
    """One explanation or a sequence of them, as a non-empty list."""
    items = list(exps) if isinstance(exps, (list, tuple)) else [exps]
    if not items:
        raise ValueError("explanation() needs at least one Explanation")
    return items


# --------------------------------------------------------------------------- numbers and text


def number_format(values: Any) -> str:
    """The format of one text's relevance numbers: two decimals (``+0.53``), the same in
    every text, unless all of them would round to zero or are huge; then ``+5.30e-04``."""
    a = np.asarray(values, dtype=np.float64).ravel()
    a = a[np.isfinite(a)]
    m = float(np.max(np.abs(a))) if a.size else 0.0
    return "+.2e" if m >= 1e5 or 0 < m < 0.005 else "+.2f"


def fmt(v: float, spec: str = ".2f") -> str:
    v = float(v)
    return format(v, spec) if math.isfinite(v) else str(v)


def printable(s: str) -> str:
    """s with every character that is not printable (controls, bidi overrides) replaced by
    U+FFFD, so that text from files cannot drive a terminal."""
    return "".join(ch if ch.isprintable() else "\N{REPLACEMENT CHARACTER}" for ch in s)


def method_text(exp: Explanation) -> str:
    params = dict(getattr(exp, "params", None) or {})
    if exp.method == "lrp":
        shown = [str(params["rule"]) if "rule" in params else "",
                 f"eps {float(params['eps']):g}" if "eps" in params else "",
                 f"bias_factor {float(params['bias_factor']):g}" if "bias_factor" in params else ""]
        return "lrp (" + ", ".join(s for s in shown if s) + ")" if any(shown) else "lrp"
    if exp.method == "random" and "seed" in params:
        return f"random (seed {params['seed']})"
    return str(exp.method)
