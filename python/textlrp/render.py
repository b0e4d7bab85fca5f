"""Show explanations to people and programs: terminal colours, HTML, JSON Lines, TSV.

Colours follow a diverging scale (ColorBrewer RdBu): red marks evidence for the target
class, blue evidence against it, and the intensity is |relevance| divided by the largest
|relevance| in the same explanation, so every sentence uses the full scale.

Everything that reaches HTML goes through ``html.escape(..., quote=True)``; JSON numbers
are plain finite floats (a non-finite value becomes ``null``).
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

if TYPE_CHECKING:
    from textlrp import Explanation

__all__ = [
    "Prediction",
    "ansi_all_classes",
    "ansi_legend",
    "ansi_summary",
    "ansi_tokens",
    "detect_color",
    "detect_theme",
    "error_record",
    "explanation_record",
    "html_error",
    "html_footer",
    "html_header",
    "html_item",
    "html_prediction",
    "prediction_record",
    "prediction_to_ansi",
    "prediction_to_json",
    "prediction_to_tsv",
    "prediction_tsv_header",
    "scaled_relevance",
    "to_ansi",
    "to_html",
    "to_json",
    "to_tsv",
    "tsv_header",
]

# ColorBrewer RdBu (9 classes) from strongest "against" (blue) to strongest "for" (red).
_LIGHT = ("#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
          "#fddbc7", "#f4a582", "#d6604d", "#b2182b")
# The same hues on a dark ground: neutral is a dark grey, the ends stay saturated.
_DARK = ("#3a7fc4", "#2f6397", "#2a4a6c", "#283748", "#24272d",
         "#4a2b2c", "#753231", "#a53a33", "#d0463a")
# Below this share of the sentence's largest |relevance| a word is left uncoloured:
# such pale tints read as noise, and uncoloured text suits any terminal background.
_NEUTRAL_CUTOFF = 0.04
_DARK_TEXT = (0, 0, 0)  # pure black: with white, one of the two always reaches 4.58:1
_LIGHT_TEXT = (255, 255, 255)

Color = tuple[int, int, int]


def _hex(c: str) -> Color:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


def _css(c: Color) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c)


def _scale_color(v: float, anchors: Sequence[str]) -> Color:
    """Colour for v in [-1, 1], linearly interpolated between the anchors."""
    v = min(1.0, max(-1.0, v))
    pos = (v + 1.0) * (len(anchors) - 1) / 2.0
    i = min(int(pos), len(anchors) - 2)
    frac = pos - i
    a, b = _hex(anchors[i]), _hex(anchors[i + 1])
    return tuple(round(x + (y - x) * frac) for x, y in zip(a, b))  # type: ignore[return-value]


def _luminance(c: Color) -> float:
    """WCAG relative luminance."""
    def lin(u: int) -> float:
        s = u / 255.0
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(u) for u in c)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _text_color(bg: Color) -> Color:
    """Dark or light text, whichever has the higher WCAG contrast on bg."""
    lum = _luminance(bg)
    dark = (lum + 0.05) / (_luminance(_DARK_TEXT) + 0.05)
    light = (_luminance(_LIGHT_TEXT) + 0.05) / (lum + 0.05)
    return _DARK_TEXT if dark >= light else _LIGHT_TEXT


def scaled_relevance(relevance: Any) -> np.ndarray:
    """Relevance divided by its largest absolute value (non-finite -> 0), in [-1, 1]."""
    r = np.asarray(relevance, dtype=np.float64).ravel()
    r = np.where(np.isfinite(r), r, 0.0)
    m = float(np.max(np.abs(r))) if r.size else 0.0
    return r / m if m > 0 else np.zeros_like(r)


# --------------------------------------------------------------------------- terminal

_CUBE = (0, 95, 135, 175, 215, 255)


def _xterm256(c: Color) -> tuple[int, Color]:
    """Nearest xterm-256 colour (6x6x6 cube or grey ramp): (index, its rgb)."""
    def nearest(u: int) -> int:
        return min(range(6), key=lambda k: abs(_CUBE[k] - u))
    ri, gi, bi = (nearest(u) for u in c)
    cube = (_CUBE[ri], _CUBE[gi], _CUBE[bi])
    grey_i = min(23, max(0, round((sum(c) / 3 - 8) / 10)))
    grey = (8 + 10 * grey_i,) * 3

    def dist(p: Color) -> int:
        return sum((x - y) ** 2 for x, y in zip(p, c))
    if dist(grey) < dist(cube):  # type: ignore[arg-type]
        return 232 + grey_i, grey  # type: ignore[return-value]
    return 16 + 36 * ri + 6 * gi + bi, cube


def _sgr(bg: Color, color: str) -> str:
    """Escape sequence setting background bg and a contrasting foreground."""
    if color == "truecolor":
        fg = _text_color(bg)
        return "\x1b[48;2;{};{};{}m\x1b[38;2;{};{};{}m".format(*bg, *fg)
    index, approx = _xterm256(bg)
    fg_index = 16 if _text_color(approx) == _DARK_TEXT else 231
    return f"\x1b[48;5;{index}m\x1b[38;5;{fg_index}m"


_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_UNDERLINE = "\x1b[4m"


def _terminal_palette(env: Mapping[str, str]) -> str:
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
    return _terminal_palette(env) if tty else "none"


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


def _check_color(color: str | None) -> str:
    if color is None:
        return detect_color()
    if color not in ("truecolor", "256", "none"):
        raise ValueError(f"unknown color {color!r}; use 'truecolor', '256' or 'none'")
    return color


def _check_theme(theme: str | None) -> Sequence[str]:
    theme = detect_theme() if theme is None else theme
    if theme not in ("light", "dark"):
        raise ValueError(f"unknown theme {theme!r}; use 'light' or 'dark'")
    return _LIGHT if theme == "light" else _DARK


def _decimals(relevance: np.ndarray) -> str:
    """A format giving the largest |relevance| three significant digits, the same for all
    words of a sentence (fixed point, or exponents for very large or very small values)."""
    finite = relevance[np.isfinite(relevance)]
    m = float(np.max(np.abs(finite))) if finite.size else 0.0
    if m == 0.0:
        return "+.2f"
    if m >= 1e5 or m < 1e-6:
        return "+.2e"
    return f"+.{min(8, max(0, 2 - math.floor(math.log10(m))))}f"


def _fmt(v: float, spec: str) -> str:
    return format(v, spec) if math.isfinite(v) else str(v)


def _safe_token(token: str) -> str:
    # Control characters in a token must not drive the terminal.
    return "".join(ch if ch.isprintable() else "\N{REPLACEMENT CHARACTER}" for ch in token)


def ansi_tokens(exp: Explanation, *, color: str | None = None, values: bool = False,
                theme: str | None = None, width: int | None = None, indent: int = 0) -> str:
    """The words on one line, coloured by relevance (or annotated, if color is "none").

    With color "none" every word gets its relevance in parentheses and an out-of-vocabulary
    word a "?" suffix: ``great(+0.52) flibber?(-0.10)``. With colours, out-of-vocabulary
    words are underlined and values=True adds the numbers after the words.
    width: wrap between words so that no line is longer (a terminal would cut words);
    continuation lines start with indent spaces.
    """
    color = _check_color(color)
    relevance = np.asarray(exp.relevance, dtype=np.float64).ravel()
    scaled = scaled_relevance(relevance)
    oov = np.asarray(exp.oov, dtype=bool).ravel()
    spec = _decimals(relevance)
    anchors = _check_theme(theme) if color != "none" else _LIGHT
    words: list[str] = []
    for k, token in enumerate(exp.tokens):
        token = _safe_token(str(token))
        is_oov = bool(oov[k]) if k < oov.size else False
        if color == "none":
            words.append(f"{token}{'?' if is_oov else ''}({_fmt(relevance[k], spec)})")
            continue
        style = _UNDERLINE if is_oov else ""
        if abs(scaled[k]) >= _NEUTRAL_CUTOFF:
            style += _sgr(_scale_color(float(scaled[k]), anchors), color)
        word = f"{style}{token}{_RESET}" if style else token
        if values:
            word += f"{_DIM}{_fmt(relevance[k], spec)}{_RESET}"
        words.append(word)
    return _wrap(words, width, indent)


_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


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


def _method_text(exp: Explanation) -> str:
    params = dict(getattr(exp, "params", None) or {})
    if exp.method == "lrp":
        shown = [str(params["rule"]) if "rule" in params else "",
                 f"eps {_num(params['eps'])}" if "eps" in params else "",
                 f"bias_factor {_num(params['bias_factor'])}" if "bias_factor" in params else ""]
        return "lrp (" + ", ".join(s for s in shown if s) + ")" if any(shown) else "lrp"
    if exp.method == "random" and "seed" in params:
        return f"random (seed {params['seed']})"
    return str(exp.method)


def _num(v: Any) -> str:
    return f"{float(v):g}"


def _predicted(exp: Explanation, color: str) -> str:
    bold, dim, reset = (_BOLD, _DIM, _RESET) if color != "none" else ("", "", "")
    p = exp.prediction
    probs = np.asarray(exp.probabilities, dtype=np.float64)
    return (f"{dim}predicted{reset} {bold}{_safe_token(exp.prediction_name)}{reset} "
            f"(score {float(exp.scores[p]):.3g}, p {probs[p]:.2f})")


def ansi_summary(exp: Explanation, *, color: str | None = None, values: bool = False,
                 width: int | None = None) -> str:
    """Predicted class with score and probability, explained class, method (one line, or
    wrapped at its separators to width)."""
    color = _check_color(color)
    bold, dim, reset = (_BOLD, _DIM, _RESET) if color != "none" else ("", "", "")
    scores = np.asarray(exp.scores, dtype=np.float64)
    probs = np.asarray(exp.probabilities, dtype=np.float64)
    p, t = exp.prediction, exp.target
    parts = [_predicted(exp, color)]
    parts.append(f"{dim}explained{reset} {bold}{_safe_token(exp.target_name)}{reset}"
                 + ("" if t == p else f" (score {scores[t]:.3g}, p {probs[t]:.2f})"))
    parts.append(_method_text(exp))
    if values or color == "none":
        total = float(np.sum(np.asarray(exp.relevance, dtype=np.float64)))
        rest = getattr(exp, "rest", None)
        parts.append(f"sum {total:.4g}" + (f", rest {float(rest):.4g}" if rest else ""))
    return _wrap(parts, width, 2, sep=f"  {dim}·{reset}  ")


def ansi_legend(*, color: str | None = None, oov: bool = False, theme: str | None = None,
                width: int | None = None) -> str:
    """A colour key: blue = against the target, red = for it (and what marks unknown words)."""
    color = _check_color(color)
    if color == "none":
        text = "(numbers: relevance for the explained class; + for, - against)"
        return text + ("  ?: unknown word" if oov else "")
    anchors = _check_theme(theme)
    steps = [-1.0, -0.75, -0.5, -0.25, 0.25, 0.5, 0.75, 1.0]
    bar = "".join(f"{_sgr(_scale_color(v, anchors), color)}  {_RESET}" for v in steps)
    parts = [f"{_DIM}against{_RESET} {bar} {_DIM}for the explained class{_RESET}"]
    if oov:
        parts.append(f"{_UNDERLINE}underlined{_RESET}{_DIM}: unknown word{_RESET}")
    return _wrap(parts, width, 0, sep="   ")


def to_ansi(exp: Explanation, *, color: str | None = None, values: bool = False,
            theme: str | None = None, legend: bool = True, width: int | None = None) -> str:
    """Words coloured by relevance, then a summary line and a colour key (no final newline).

    color: None (detect for sys.stdout), "truecolor", "256" or "none" (plain text with numbers).
    theme: None (detect from COLORFGBG), "light" or "dark"; both are readable anywhere.
    """
    color = _check_color(color)
    lines = [ansi_tokens(exp, color=color, values=values, theme=theme, width=width),
             ansi_summary(exp, color=color, values=values, width=width)]
    if legend:
        lines.append(ansi_legend(color=color, oov=bool(np.any(exp.oov)), theme=theme, width=width))
    return "\n".join(lines)


def ansi_all_classes(exps: Sequence[Explanation], *, color: str | None = None,
                     values: bool = False, theme: str | None = None,
                     width: int | None = None) -> str:
    """Explanations of one text for several targets: a summary, then one line per target.

    Each line is scaled to its own largest |relevance|; the predicted class is marked.
    """
    color = _check_color(color)
    if not exps:
        return ""
    bold, dim, reset = (_BOLD, _DIM, _RESET) if color != "none" else ("", "", "")
    first = exps[0]
    head = [_predicted(first, color), _method_text(first)]
    lines = [_wrap(head, width, 2, sep=f"  {dim}·{reset}  ")]
    width_label = max(len(_safe_token(e.target_name)) for e in exps)
    for exp in exps:
        mark = "*" if exp.target == exp.prediction else " "
        name = _safe_token(exp.target_name).ljust(width_label)
        label = f"{bold}{name}{reset}" if mark == "*" else name
        words = ansi_tokens(exp, color=color, values=values, theme=theme, width=width,
                            indent=width_label + 4)
        lines.append(f"{mark} {label}  {words}")
    return "\n".join(lines)


@dataclasses.dataclass
class Prediction:
    """Class scores for one text, as `textlrp predict` reports them."""

    text: str | None
    tokens: list[str]
    oov: np.ndarray
    scores: np.ndarray
    class_names: list[str]

    @property
    def probabilities(self) -> np.ndarray:
        s = np.asarray(self.scores, dtype=np.float64)
        e = np.exp(s - np.max(s))
        return e / np.sum(e)

    @property
    def prediction(self) -> int:
        return int(np.argmax(self.scores))

    @property
    def prediction_name(self) -> str:
        return self.class_names[self.prediction]


_BAR_WIDTH = 24
_EIGHTHS = " ▏▎▍▌▋▊▉█"


def _bar(p: float, width: int = _BAR_WIDTH) -> str:
    units = round(min(1.0, max(0.0, p)) * width * 8)
    return ("█" * (units // 8) + (_EIGHTHS[units % 8] if units % 8 else "")).ljust(width)


def prediction_to_ansi(pred: Prediction, *, color: str | None = None, bars: bool = True) -> str:
    """The predicted class and a probability bar per class (bars=False: one line)."""
    color = _check_color(color)
    bold, dim, reset = (_BOLD, _DIM, _RESET) if color != "none" else ("", "", "")
    probs = pred.probabilities
    p = pred.prediction
    head = (f"{dim}predicted{reset} {bold}{_safe_token(pred.prediction_name)}{reset} "
            f"(score {float(pred.scores[p]):.3g}, p {probs[p]:.2f})")
    if not bars:
        text = _safe_token(pred.text if pred.text is not None else " ".join(pred.tokens))
        return f"{head}  {dim}·{reset}  {text}"
    width = max(len(c) for c in pred.class_names)
    rows = [head]
    for k, name in enumerate(pred.class_names):
        mark = f"{bold}" if k == p else ""
        rows.append(f"  {mark}{_safe_token(name).ljust(width)}{reset if mark else ''}  "
                    f"{_bar(float(probs[k]))} {probs[k]:.3f}")
    return "\n".join(rows)


# --------------------------------------------------------------------------- JSON / TSV


def _float(v: Any) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None


def _floats(a: Any) -> list[float | None]:
    arr = np.asarray(a, dtype=np.float64).ravel()
    if np.isfinite(arr).all():  # the common case, without a Python loop
        return list(arr.tolist())
    return [_float(v) for v in arr]


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return _float(v)
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if v is None or isinstance(v, str):
        return v
    return str(v)


def _dumps(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def explanation_record(exp: Explanation, *, line: int | None = None) -> dict[str, Any]:
    """The JSON object for one explanation (schema in docs/cli.md)."""
    record: dict[str, Any] = {} if line is None else {"line": int(line)}
    record.update(
        text=exp.text,
        tokens=[str(t) for t in exp.tokens],
        relevance=_floats(exp.relevance),
        scores=_floats(exp.scores),
        probabilities=_floats(exp.probabilities),
        class_names=[str(c) for c in exp.class_names],
        prediction=int(exp.prediction),
        prediction_name=str(exp.prediction_name),
        target=int(exp.target),
        target_name=str(exp.target_name),
        method=str(exp.method),
        oov=[bool(b) for b in np.asarray(exp.oov, dtype=bool).ravel()],
        rest=None if exp.rest is None else _float(exp.rest),
        params=_jsonable(dict(exp.params or {})),
    )
    return record


def to_json(exp: Explanation, *, line: int | None = None) -> str:
    """One explanation as one line of JSON (no newline); line adds a "line" field."""
    return _dumps(explanation_record(exp, line=line))


def prediction_record(pred: Prediction, *, line: int | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {} if line is None else {"line": int(line)}
    record.update(
        text=pred.text,
        tokens=[str(t) for t in pred.tokens],
        oov=[bool(b) for b in np.asarray(pred.oov, dtype=bool).ravel()],
        scores=_floats(pred.scores),
        probabilities=_floats(pred.probabilities),
        class_names=[str(c) for c in pred.class_names],
        prediction=pred.prediction,
        prediction_name=str(pred.prediction_name),
    )
    return record


def prediction_to_json(pred: Prediction, *, line: int | None = None) -> str:
    """One prediction as one line of JSON (no newline)."""
    return _dumps(prediction_record(pred, line=line))


def error_record(line: int | None, text: str | None, error: str) -> str:
    """The JSON line standing in for an input line that could not be processed."""
    return _dumps({"line": line, "text": text, "error": str(error)})


def _tsv_field(v: Any) -> str:
    # Tabs and line breaks inside a field would break the table.
    return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def tsv_header(*, line: bool = False) -> str:
    cols = ["target", "position", "token", "relevance", "oov"]
    return "\t".join((["line"] if line else []) + cols)


def to_tsv(exp: Explanation, *, line: int | None = None, header: bool = False) -> str:
    """One row per word: [line] target position token relevance oov (position from 0)."""
    rows = [tsv_header(line=line is not None)] if header else []
    oov = np.asarray(exp.oov, dtype=bool).ravel()
    relevance = np.asarray(exp.relevance, dtype=np.float64).ravel()
    for k, token in enumerate(exp.tokens):
        cells = ([] if line is None else [line]) + [
            exp.target_name, k, token, repr(float(relevance[k])), int(oov[k])]
        rows.append("\t".join(_tsv_field(c) for c in cells))
    return "\n".join(rows)


def prediction_tsv_header(class_names: Sequence[str], *, line: bool = False) -> str:
    cols = (["line"] if line else []) + ["text", "prediction"] + [f"p_{c}" for c in class_names]
    return "\t".join(_tsv_field(c) for c in cols)


def prediction_to_tsv(pred: Prediction, *, line: int | None = None) -> str:
    text = pred.text if pred.text is not None else " ".join(pred.tokens)
    cells: list[Any] = ([] if line is None else [line]) + [text, pred.prediction_name]
    cells += [repr(float(p)) for p in pred.probabilities]
    return "\t".join(_tsv_field(c) for c in cells)


# --------------------------------------------------------------------------- HTML

_STYLE = """
.tlrp{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:60rem;
 margin:0 auto;padding:1.5rem}
.tlrp h1{font-size:1.35rem;margin:0 0 .25rem}
.tlrp-sub,.tlrp-meta,.tlrp-foot,.tlrp-legend{color:#555;font-size:.85rem}
.tlrp-legend{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem;margin:.5rem 0 1rem}
.tlrp-ramp{display:inline-block;width:10rem;height:.9rem;border-radius:3px;
 box-shadow:inset 0 0 0 1px rgba(128,128,128,.35);background:linear-gradient(to right,__LIGHT_RAMP__)}
.tlrp-item{border-top:1px solid #ddd;padding:.75rem 0}
.tlrp-text{margin:.2rem 0 0;font-size:1.1rem;line-height:2}
.tlrp-tok{padding:.1em .2em;border-radius:.25em;white-space:pre-wrap}
.tlrp-oov{text-decoration:underline dotted;text-underline-offset:.2em}
.tlrp-meta b{color:inherit}
.tlrp-err{color:#b00020}
.tlrp-probs{border-collapse:collapse;font-size:.85rem;margin-top:.3rem}
.tlrp-probs td{padding:0 .5rem 0 0}
.tlrp-pbar{display:inline-block;height:.7rem;background:#888;border-radius:2px}
.tlrp-pred td{font-weight:700}
body.tlrp-page{margin:0;background:#fff;color:#111}
@media (prefers-color-scheme:dark){
 body.tlrp-page{background:#16181c;color:#e8e8e8}
 .tlrp-sub,.tlrp-meta,.tlrp-foot,.tlrp-legend{color:#aaa}
 .tlrp-item{border-color:#333}
 .tlrp-err{color:#ff8a80}
 .tlrp-ramp{background:linear-gradient(to right,__DARK_RAMP__)}
 .tlrp-tok{background:var(--bgd)!important;color:var(--fgd)!important}
}
"""


def _style() -> str:
    return (_STYLE.replace("__LIGHT_RAMP__", ",".join(_LIGHT))
            .replace("__DARK_RAMP__", ",".join(_DARK)).strip())


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _legend_html(oov_note: bool = True) -> str:
    ramp = ('<span>against</span><span class="tlrp-ramp" title="relevance scaled to each '
            'sentence&#x27;s largest absolute value"></span><span>for the explained class</span>')
    parts = [ramp]
    if oov_note:
        parts.append('<span>· <span class="tlrp-oov">dotted</span>: not in the vocabulary'
                     '</span><span>· hover a word for its relevance</span>')
    return '<div class="tlrp-legend">' + "".join(parts) + "</div>"


def html_header(title: str | None = None, *, subtitle: str | None = None,
                fragment: bool = False, legend: bool = True) -> str:
    """Start of a report: a page (or, with fragment=True, a <div> to embed, e.g. in Jupyter)."""
    title = "textlrp explanations" if title is None else title
    top = f'<h1>{_e(title)}</h1>' + (f'<div class="tlrp-sub">{_e(subtitle)}</div>' if subtitle else "")
    body = f'<div class="tlrp"><style>{_style()}</style>' if fragment else (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{_e(title)}</title><style>{_style()}</style></head>\n"
        '<body class="tlrp-page"><main class="tlrp">')
    if not fragment or subtitle:
        body += f"<header>{top}</header>"
    if legend:
        body += _legend_html()
    return body + "\n"


def _token_html(token: str, value: float, scaled: float, is_oov: bool, dec: str) -> str:
    title = f"relevance {_fmt(value, dec)}" + (" · not in the vocabulary" if is_oov else "")
    cls = "tlrp-tok tlrp-oov" if is_oov else "tlrp-tok"
    style = ""
    if abs(scaled) >= _NEUTRAL_CUTOFF:
        light = _scale_color(scaled, _LIGHT)
        dark = _scale_color(scaled, _DARK)
        # Inline light colours work even where the <style> is stripped; the stylesheet
        # switches to the dark pair under prefers-color-scheme: dark.
        style = (f' style="background:{_css(light)};color:{_css(_text_color(light))};'
                 f'--bgd:{_css(dark)};--fgd:{_css(_text_color(dark))}"')
    return f'<span class="{cls}" title="{_e(title)}"{style}>{_e(token)}</span>'


def _meta_html(exp: Explanation, index: int | None, method: bool) -> str:
    probs = np.asarray(exp.probabilities, dtype=np.float64)
    p, t = exp.prediction, exp.target
    bits = [] if index is None else [f"#{int(index)}"]
    bits.append(f"predicted <b>{_e(exp.prediction_name)}</b> (p {probs[p]:.2f})")
    bits.append(f"explained <b>{_e(exp.target_name)}</b>"
                + ("" if t == p else f" (p {probs[t]:.2f})"))
    if method:
        bits.append(_e(_method_text(exp)))
    return '<div class="tlrp-meta">' + " · ".join(bits) + "</div>"


def html_item(exp: Explanation, *, index: int | None = None, method: bool = True) -> str:
    """One explained sentence: a meta line (prediction, target, method) and coloured words.

    method=False leaves the method out of the meta line (a report states it once on top).
    """
    relevance = np.asarray(exp.relevance, dtype=np.float64).ravel()
    scaled = scaled_relevance(relevance)
    oov = np.asarray(exp.oov, dtype=bool).ravel()
    dec = _decimals(relevance)
    words = " ".join(_token_html(str(tok), float(relevance[k]), float(scaled[k]),
                                 bool(oov[k]), dec) for k, tok in enumerate(exp.tokens))
    return (f'<section class="tlrp-item">{_meta_html(exp, index, method)}'
            f'<p class="tlrp-text">{words}</p></section>\n')


def html_error(line: int | None, text: str | None, error: str) -> str:
    """The report entry for an input line that could not be processed."""
    where = "" if line is None else f"#{int(line)} · "
    shown = "" if text is None else f'<p class="tlrp-text">{_e(text)}</p>'
    return (f'<section class="tlrp-item"><div class="tlrp-meta tlrp-err">{where}error: {_e(error)}'
            f"</div>{shown}</section>\n")


def html_prediction(pred: Prediction, *, index: int | None = None) -> str:
    """One predicted text with a probability bar per class."""
    probs = pred.probabilities
    bits = [] if index is None else [f"#{int(index)}"]
    bits.append(f"predicted <b>{_e(pred.prediction_name)}</b> (p {probs[pred.prediction]:.2f})")
    marked = ' class="tlrp-pred"'
    rows = "".join(
        f'<tr{marked if k == pred.prediction else ""}><td>{_e(name)}</td>'
        f'<td><span class="tlrp-pbar" style="width:{100 * float(probs[k]):.1f}px"></span></td>'
        f"<td>{probs[k]:.3f}</td></tr>" for k, name in enumerate(pred.class_names))
    text = pred.text if pred.text is not None else " ".join(pred.tokens)
    return (f'<section class="tlrp-item"><div class="tlrp-meta">{" · ".join(bits)}</div>'
            f'<p class="tlrp-text">{_e(text)}</p><table class="tlrp-probs">{rows}</table></section>\n')


def html_footer(*, count: int | None = None, errors: int = 0, fragment: bool = False) -> str:
    """End of a report; count/errors add a closing line."""
    note = ""
    if count is not None:
        note = f"{count} sentence{'s' if count != 1 else ''}"
        if errors:
            note += f", {errors} line{'s' if errors != 1 else ''} with errors"
        note = f'<footer class="tlrp-foot">{note} · made with textlrp</footer>'
    return note + ("</div>\n" if fragment else "</main></body></html>\n")


def to_html(exps: Iterable[Explanation], *, title: str | None = None, fragment: bool = False) -> str:
    """A self-contained HTML page (inline CSS, colour key, numbers in tooltips).

    fragment=True gives a <div> with its own <style> instead of a whole page, for
    embedding (Jupyter output, another page).
    """
    items = [html_item(exp) for exp in exps]
    return (html_header(title, fragment=fragment) + "".join(items)
            + html_footer(fragment=fragment))
