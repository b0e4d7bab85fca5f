"""Terminal output: words on a coloured background (truecolor or xterm-256), or plain text
with the numbers in it when there are no colours.

Plain text writes every word with its relevance, ``word(+0.18)``, and an unknown word (one
the model maps to its unknown token) as ``word[?](+0.18)``; numbers have two decimals. With
colours an unknown word is underlined and ``values`` adds the same ``(+0.18)``, dimmed,
after the coloured word. Every token and name passes through ``printable`` first.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from . import _palette as pal
from ._writer import (
    Writer,
    WriterOptions,
    as_list,
    fmt,
    method_text,
    number_format,
    printable,
    register,
)

if TYPE_CHECKING:
    from ..explanation import Explanation, Prediction

__all__ = ["AnsiWriter", "detect_color", "detect_theme", "prediction_to_ansi",
           "terminal_palette", "to_ansi"]

RESET = "\x1b[0m"
BOLD = "\x1b[1m"
DIM = "\x1b[2m"
UNDERLINE = "\x1b[4m"
UNKNOWN_MARK = "[?]"
_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_BAR_WIDTH = 24
_EIGHTHS = " ▏▎▍▌▋▊▉█"


def terminal_palette(env: Mapping[str, str] | None = None) -> str:
    """"truecolor" when COLORTERM announces it (truecolor, 24bit), else "256"."""
    env = os.environ if env is None else env
    return "truecolor" if env.get("COLORTERM", "").lower() in ("truecolor", "24bit") else "256"


def detect_color(stream: TextIO | None = None, env: Mapping[str, str] | None = None) -> str:
    """"truecolor", "256" or "none" for writing to stream (default sys.stdout).

    "none" when NO_COLOR is set (https://no-color.org), TERM is dumb or the stream is
    not a terminal; "truecolor" when COLORTERM says so; "256" otherwise.
    """
    env = os.environ if env is None else env
    stream = sys.stdout if stream is None else stream
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return "none"
    isatty = getattr(stream, "isatty", None)
    try:
        tty = bool(isatty and isatty())
    except (ValueError, OSError):  # closed or detached stream
        tty = False
    return terminal_palette(env) if tty else "none"


def detect_theme(env: Mapping[str, str] | None = None) -> str:
    """"dark" when COLORFGBG (set by some terminals) names a dark background, else "light".

    The light theme is safe on any background: every coloured word carries its own
    contrasting text colour; the dark theme merely looks calmer on dark terminals.
    """
    env = os.environ if env is None else env
    parts = env.get("COLORFGBG", "").split(";")
    try:
        bg = int(parts[-1])
    except ValueError:
        return "light"
    return "dark" if bg in (0, 1, 2, 3, 4, 5, 6, 8) else "light"


def sgr(v: float, color: str, theme: str) -> str:
    """Escape sequence for scaled relevance v: its background and a contrasting text colour
    ("" for v == 0)."""
    if color == "truecolor":
        bg = pal.ramp_color(v, theme)
        if bg is None:
            return ""
        fg = pal.text_color(bg)
        return "\x1b[48;2;{};{};{}m\x1b[38;2;{};{};{}m".format(*bg, *fg)
    index = pal.xterm_color(v, theme)
    if index is None:
        return ""
    fg_index = 16 if pal.text_color(pal.xterm_rgb(index)) == pal.BLACK else 231
    return f"\x1b[48;5;{index}m\x1b[38;5;{fg_index}m"


def _wrap(words: Sequence[str], width: int | None, indent: int, sep: str = " ") -> str:
    """Join words with sep, starting a new line (indented) before a word that would pass width."""
    if width is None:
        return sep.join(words)
    sep_len = len(_ESCAPE.sub("", sep))
    lines: list[list[str]] = [[]]
    used = indent
    for word in words:
        n = len(_ESCAPE.sub("", word))
        if lines[-1] and used + sep_len + n > width:
            lines.append([])
            used = indent
        used += n + (sep_len if lines[-1] else 0)
        lines[-1].append(word)
    return ("\n" + " " * indent).join(sep.join(line) for line in lines)


@register
class AnsiWriter(Writer):
    """Text for a terminal: coloured words (or plain text with numbers), a summary line per
    text and a colour key at the end."""

    name = "ansi"
    suffixes = (".txt",)
    help = "terminal text (colours on a terminal, plain text with numbers elsewhere)"

    def __init__(self, out: TextIO, options: WriterOptions | None = None) -> None:
        super().__init__(out, options)
        o = self.options
        self.plain = o.color == "none"
        self.bold, self.dim, self.reset = ("", "", "") if self.plain else (BOLD, DIM, RESET)
        self.scaler = pal.Scaler(o.scale)
        self.any_oov = False
        self.any_explained = False

    # ----------------------------------------------------------------- pieces

    def tokens(self, exp: Explanation, full: float, indent: int = 0) -> str:
        o = self.options
        relevance = np.asarray(exp.relevance, dtype=np.float64).ravel()
        shade = pal.scaled(relevance, full)
        oov = np.asarray(exp.oov, dtype=bool).ravel()
        spec = number_format(relevance)
        words: list[str] = []
        for k, token in enumerate(exp.display):
            token = printable(token)
            unknown = bool(oov[k]) if k < oov.size else False
            number = f"({fmt(relevance[k], spec)})"
            if self.plain:
                words.append(f"{token}{UNKNOWN_MARK if unknown else ''}{number}")
                continue
            style = (UNDERLINE if unknown else "") + sgr(float(shade[k]), o.color, o.theme)
            word = f"{style}{token}{RESET}" if style else token
            words.append(word + (f"{DIM}{number}{RESET}" if o.values else ""))
        return _wrap(words, o.width, indent)

    def predicted(self, exp: Any, label: int | None) -> list[str]:
        b, d, r = self.bold, self.dim, self.reset
        p = exp.prediction
        scores = np.asarray(exp.scores, dtype=np.float64)
        probs = np.asarray(exp.probabilities, dtype=np.float64)
        parts = [(f"{d}predicted{r} {b}{printable(exp.prediction_name)}{r} "
                  f"(score {fmt(scores[p])}, p {fmt(probs[p])})")]
        if label is not None:
            verdict = "correct" if label == p else "wrong"
            parts.append(f"{d}label{r} {printable(exp.class_names[label])} ({verdict})")
        return parts

    def summary(self, exp: Explanation, label: int | None) -> str:
        b, d, r = self.bold, self.dim, self.reset
        scores = np.asarray(exp.scores, dtype=np.float64)
        probs = np.asarray(exp.probabilities, dtype=np.float64)
        t = exp.target
        parts = self.predicted(exp, label)
        parts.append(f"{d}explained{r} {b}{printable(exp.target_name)}{r}"
                     + ("" if t == exp.prediction
                        else f" (score {fmt(scores[t])}, p {fmt(probs[t])})"))
        parts.append(printable(method_text(exp)))
        if self.options.values or self.plain:
            spec = number_format(exp.relevance)
            total = float(np.sum(np.asarray(exp.relevance, dtype=np.float64)))
            rest = getattr(exp, "rest", None)
            parts.append(f"sum {fmt(total, spec)}" + (f", rest {fmt(rest, spec)}" if rest else ""))
        return _wrap(parts, self.options.width, 2, sep=f"  {d}·{r}  ")

    def legend(self) -> str:
        o = self.options
        if self.plain:
            text = "(numbers: relevance for the explained class; + for, - against)"
            return text + (f"  {UNKNOWN_MARK}: not in the vocabulary" if self.any_oov else "")
        n = len(pal.XTERM[o.theme][1])
        steps = [-k / n for k in range(n, 0, -1)] + [k / n for k in range(1, n + 1)]
        bar = "".join(f"{sgr(v, o.color, o.theme)} {RESET}" for v in steps)
        parts = [f"{DIM}against{RESET} {bar} {DIM}for the explained class{RESET}"]
        if self.any_oov:
            parts.append(f"{UNDERLINE}underlined{RESET}{DIM}: not in the vocabulary{RESET}")
        parts.append(f"{DIM}{self.scaler.describe()}{RESET}")
        return _wrap(parts, o.width, 0, sep="   ")

    # ----------------------------------------------------------------- records

    def explanation(self, exps: Explanation | Sequence[Explanation], *, line: int | None = None,
                    label: int | None = None) -> None:
        items = as_list(exps)
        self.any_explained = True
        self.any_oov = self.any_oov or any(bool(np.any(e.oov)) for e in items)
        full = self.scaler.full([e.relevance for e in items])
        prefix = "" if line is None else f"#{line} "
        if len(items) == 1:
            text = self.tokens(items[0], full) + "\n" + self.summary(items[0], label)
        else:
            text = self.all_classes(items, full, label)
        self.out.write(prefix + text + "\n" + ("\n" if self.options.lines else ""))

    def all_classes(self, items: Sequence[Explanation], full: float, label: int | None) -> str:
        b, d, r = self.bold, self.dim, self.reset
        first = items[0]
        head = [*self.predicted(first, label), printable(method_text(first))]
        lines = [_wrap(head, self.options.width, 2, sep=f"  {d}·{r}  ")]
        names = [printable(e.target_name) for e in items]
        width = max(len(n) for n in names)
        for exp, name in zip(items, names):
            mark = "*" if exp.target == exp.prediction else " "
            shown = f"{b}{name.ljust(width)}{r}" if mark == "*" else name.ljust(width)
            lines.append(f"{mark} {shown}  {self.tokens(exp, full, indent=width + 4)}")
        return "\n".join(lines)

    def prediction(self, pred: Prediction, *, line: int | None = None,
                   label: int | None = None) -> None:
        prefix = "" if line is None else f"#{line} "
        text = _prediction_text(pred, self, bars=not self.options.lines, label=label)
        self.out.write(prefix + text + "\n")

    def error(self, message: str, *, line: int | None = None, text: str | None = None) -> None:
        where = "" if line is None else f"#{line} "
        gap = "\n" if self.options.lines and self.options.kind == "explain" else ""
        self.out.write(f"{where}error: {printable(str(message))}\n{gap}")

    def end(self) -> None:
        if self.options.kind == "explain" and self.any_explained:
            self.out.write(self.legend() + "\n")


def _bar(p: float, width: int = _BAR_WIDTH) -> str:
    units = round(min(1.0, max(0.0, p)) * width * 8)
    return ("█" * (units // 8) + (_EIGHTHS[units % 8] if units % 8 else "")).ljust(width)


def _prediction_text(pred: Prediction, w: AnsiWriter, *, bars: bool, label: int | None) -> str:
    d, r, b = w.dim, w.reset, w.bold
    head = f"  {d}·{r}  ".join(w.predicted(pred, label))
    if not bars:
        text = printable(pred.text if pred.text is not None else " ".join(pred.display))
        return f"{head}  {d}·{r}  {text}"
    probs = pred.probabilities
    names = [printable(c) for c in pred.class_names]
    width = max(len(c) for c in names)
    rows = [head]
    for k, name in enumerate(names):
        shown = f"{b}{name.ljust(width)}{r}" if k == pred.prediction else name.ljust(width)
        rows.append(f"  {shown}  {_bar(float(probs[k]))} {fmt(probs[k])}")
    return "\n".join(rows)


def _color(color: str | None) -> str:
    return detect_color() if color is None else color


def to_ansi(exp: Explanation | Sequence[Explanation], *, color: str | None = None,
            values: bool = False, theme: str | None = None, legend: bool = True,
            width: int | None = None, scale: str | float = "sentence") -> str:
    """One text's explanation(s) for a terminal: the words, a summary line and (legend=True)
    the colour key; no final newline. Several explanations of one text (one per class) give
    the --all-classes block.

    color: None (detect for sys.stdout), "truecolor", "256" or "none" (plain text with numbers).
    theme: None (detect from COLORFGBG), "light" or "dark"; both are readable anywhere.
    """
    import io

    buf = io.StringIO()
    options = WriterOptions(color=_color(color), theme=detect_theme() if theme is None else theme,
                            values=values, width=width, scale=scale)
    w = AnsiWriter(buf, options)
    w.explanation(exp)
    if legend:
        w.end()
    return buf.getvalue().rstrip("\n")


def prediction_to_ansi(pred: Prediction, *, color: str | None = None, bars: bool = True) -> str:
    """The predicted class and a probability bar per class (bars=False: one line)."""
    w = AnsiWriter(sys.stdout, WriterOptions(kind="predict", color=_color(color)))
    return _prediction_text(pred, w, bars=bars, label=None)
