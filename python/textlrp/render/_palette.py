"""The diverging colour scale shared by every coloured format, and the colour scaling.

Relevance v (scaled to [-1, 1]) is red for the explained class (v > 0) and blue against it
(v < 0). Each side is its own ramp, from a light tint (a weak value) to the strong end of
ColorBrewer's RdBu, so every non-zero value keeps its side: there is no neutral middle band.
Only an exact zero stays uncoloured. The ramps are monotone in lightness in both directions
(tested), in truecolour and in the xterm-256 steps below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Color = tuple[int, int, int]

# weak -> strong, per theme and side. Light: ColorBrewer RdBu without its grey middle.
# Dark: the same hues on a dark ground, weak values close to the background.
RAMPS: dict[str, dict[int, tuple[str, ...]]] = {
    "light": {+1: ("#fddbc7", "#f4a582", "#d6604d", "#b2182b"),
              -1: ("#d1e5f0", "#92c5de", "#4393c3", "#2166ac")},
    "dark": {+1: ("#4a2b2c", "#753231", "#a53a33", "#d0463a"),
             -1: ("#283748", "#2a4a6c", "#2f6397", "#3a7fc4")},
}
# The xterm-256 steps, chosen by hand (weak -> strong): the nearest-colour match of a
# continuous ramp lands on greys for weak values and on magenta (125) near the red end.
XTERM = {
    "light": {+1: (224, 216, 209, 167, 124), -1: (189, 153, 110, 68, 25)},
    "dark": {+1: (52, 88, 124, 160, 196), -1: (17, 24, 25, 32, 39)},
}
THEMES = tuple(RAMPS)
BLACK: Color = (0, 0, 0)  # with white, one of the two always reaches 4.58:1
WHITE: Color = (255, 255, 255)
_CUBE = (0, 95, 135, 175, 215, 255)


def hex_rgb(c: str) -> Color:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


def css(c: Color) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c)


def check_theme(theme: str) -> str:
    if theme not in RAMPS:
        raise ValueError(f"unknown theme {theme!r}; use 'light' or 'dark'")
    return theme


def ramp_color(v: float, theme: str = "light") -> Color | None:
    """Colour of scaled relevance v (clipped to [-1, 1]); None for 0 (and NaN): no colour."""
    if v == 0 or math.isnan(v):
        return None
    anchors = RAMPS[check_theme(theme)][1 if v > 0 else -1]
    pos = min(1.0, abs(v)) * (len(anchors) - 1)
    i = min(int(pos), len(anchors) - 2)
    frac = pos - i
    a, b = hex_rgb(anchors[i]), hex_rgb(anchors[i + 1])
    return tuple(round(x + (y - x) * frac) for x, y in zip(a, b))  # type: ignore[return-value]


def step(v: float, n: int) -> int:
    """Which of n steps per side v in [-1, 1] falls in: 1..n (signed), 0 only for v == 0.

    A weak but non-zero value gets step 1 (the light tint), never 0.
    """
    if v == 0 or math.isnan(v):
        return 0
    k = max(1, min(n, math.ceil(min(1.0, abs(v)) * n)))
    return k if v > 0 else -k


def xterm_color(v: float, theme: str = "light") -> int | None:
    """xterm-256 index for scaled relevance v, None for 0."""
    steps = XTERM[check_theme(theme)]
    k = step(v, len(steps[1]))
    return None if k == 0 else steps[1 if k > 0 else -1][abs(k) - 1]


def xterm_rgb(index: int) -> Color:
    """The RGB an xterm shows for a 256-colour index >= 16."""
    if index >= 232:
        g = 8 + 10 * (index - 232)
        return (g, g, g)
    n = index - 16
    return _CUBE[n // 36], _CUBE[n // 6 % 6], _CUBE[n % 6]


def luminance(c: Color) -> float:
    """WCAG relative luminance."""
    def lin(u: int) -> float:
        s = u / 255.0
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(u) for u in c)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: Color, b: Color) -> float:
    la, lb = luminance(a), luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def text_color(bg: Color) -> Color:
    """Black or white text, whichever has the higher WCAG contrast on bg."""
    return BLACK if contrast(bg, BLACK) >= contrast(bg, WHITE) else WHITE


# --------------------------------------------------------------------------- scaling

SCALE_MODES = ("sentence", "report")


def check_scale(scale: str | float) -> str | float:
    """'sentence', 'report' or a positive finite number (|R| >= it is full colour)."""
    if isinstance(scale, str):
        if scale in SCALE_MODES:
            return scale
        try:
            scale = float(scale)
        except ValueError:
            raise ValueError(f"scale must be 'sentence', 'report' or a positive number, "
                             f"got {scale!r}") from None
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) \
            or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"a fixed scale must be a positive finite number, got {scale!r}")
    return float(scale)


def largest(rows: Sequence[object]) -> float:
    """Largest finite |relevance| over one or more relevance arrays (0 if none)."""
    m = 0.0
    for r in rows:
        a = np.asarray(r, dtype=np.float64).ravel()
        a = a[np.isfinite(a)]
        if a.size:
            m = max(m, float(np.max(np.abs(a))))
    return m


def scaled(relevance: object, full: float) -> np.ndarray:
    """relevance / full, clipped to [-1, 1]; non-finite values and full <= 0 give 0."""
    r = np.asarray(relevance, dtype=np.float64).ravel()
    r = np.where(np.isfinite(r), r, 0.0)
    if not full > 0:
        return np.zeros_like(r)
    return np.clip(r / full, -1.0, 1.0)


class Scaler:
    """The relevance that gets full colour, text by text, for one output.

    sentence: the largest |relevance| of the text (all its rows with --all-classes);
    report: the largest seen so far in the output (a running maximum, since a stream is
    written before its end is known; a report that holds all its data, the HTML one,
    scales exactly instead); a number: that value, fixed.
    """

    def __init__(self, scale: str | float = "sentence") -> None:
        self.scale = check_scale(scale)
        self.running = 0.0

    def full(self, rows: Sequence[object]) -> float:
        m = largest(rows)
        if self.scale == "sentence":
            return m
        if self.scale == "report":
            self.running = max(self.running, m)
            return self.running
        return float(self.scale)  # type: ignore[arg-type]

    def describe(self) -> str:
        """What the legend says about the scale."""
        if self.scale == "sentence":
            return "colour scale: each text's largest |relevance|"
        if self.scale == "report":
            return f"colour scale: running maximum (largest |relevance| {self.running:.2f})"
        return f"colour scale: fixed, |relevance| >= {self.scale:g} is full colour"
