"""The HTML report: one self-contained page (inline CSS and script, no network) that draws
its records from a compact JSON block, with a search box, sorting and filtering by class,
confidence and label, summary counts and a toggle for the numbers.

Size: each text is one line of JSON (short keys, numbers rounded to what the page shows),
about 400 bytes for an SST sentence, so 10,000 texts make a 4 MB page. The page draws
200 records at a time as the reader scrolls, so it opens fast whatever its length.

Escaping: titles go through ``html.escape``; the JSON block has every ``<`` written as
``\\u003c`` (so no ``</script>`` or ``<!--`` can end it), U+2028/2029 and lone surrogates
escaped; the script puts strings into the page as text (``textContent``), each token and
name in its own ``<bdi>`` (isolated: a bidi override in one cannot reorder the others).
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _palette as pal
from ._writer import Writer, WriterOptions, as_list, register

if TYPE_CHECKING:
    from ..explanation import Explanation, Prediction

__all__ = ["HtmlWriter", "to_html"]

STEPS = 16  # colour steps per side; a weak but non-zero value gets step 1
_UNSAFE = re.compile("[<>&\u2028\u2029\ud800-\udfff]")
# C0/C1 controls cannot drive a browser, but they are invisible or break lines: show U+FFFD.
# Format characters (bidi controls, joiners) stay: emoji and RTL text need them, and the
# page isolates every token.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _js_safe(s: str) -> str:
    """JSON text made safe inside <script>: no '<', '>', '&', U+2028/2029 or lone surrogates."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", s)


def _json(v: Any) -> str:
    return _js_safe(json.dumps(v, ensure_ascii=False, allow_nan=False, separators=(",", ":")))


def _clean(s: str) -> str:
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", s.replace("\t", " ").replace("\n", " "))


def _num(v: float, decimals: int) -> str:
    if not math.isfinite(v):
        return "null"
    s = f"{v:.{decimals}f}".rstrip("0").rstrip(".")
    if s in ("", "0", "-0"):
        # A tiny value keeps its sign (and so its colour): two digits in exponent form.
        return "0" if v == 0 else f"{v:.1e}"
    return s


def _nums(values: Any, decimals: int) -> str:
    return "[" + ",".join(_num(float(v), decimals) for v in values) + "]"


def _decimals(rows: Sequence[Any]) -> int:
    """Enough decimals for three significant digits of the largest |relevance| (at least the
    two the page shows)."""
    m = pal.largest(rows)
    return 2 if m <= 0 else max(2, 2 - math.floor(math.log10(m)))


@lru_cache(maxsize=1)
def _assets() -> tuple[str, str]:
    here = resources.files(__package__)
    css = here.joinpath("report.css").read_text(encoding="utf-8")
    js = here.joinpath("report.js").read_text(encoding="utf-8")
    return css + _step_css(), js


def _step_css() -> str:
    rules: dict[str, list[str]] = {"light": [], "dark": []}
    for theme, out in rules.items():
        for k in range(1, STEPS + 1):
            for sign, name in ((1, "p"), (-1, "n")):
                bg = pal.ramp_color(sign * k / STEPS, theme)
                assert bg is not None
                out.append(f".tlrp .{name}{k}{{background:{pal.css(bg)};"
                           f"color:{pal.css(pal.text_color(bg))}}}")
    return ("\n" + "\n".join(rules["light"]) + "\n@media (prefers-color-scheme:dark){\n"
            + "\n".join(rules["dark"]) + "\n}\n")


@register
class HtmlWriter(Writer):
    """One HTML page for all records (a <div> to embed with fragment=True)."""

    name = "html"
    suffixes = (".html", ".htm")
    help = "one self-contained HTML report (search, sort, filter)"

    def __init__(self, out: Any, options: WriterOptions | None = None, *,
                 fragment: bool = False) -> None:
        super().__init__(out, options)
        self.fragment = fragment

    def begin(self) -> None:
        o = self.options
        css, _ = _assets()
        title = o.title or ("textlrp explanations" if o.kind == "explain" else "textlrp predictions")
        top = f"<h1>{_esc(title)}</h1>" if not self.fragment or o.title else ""
        if o.subtitle:
            top += f'<div class="tlrp-sub">{_esc(o.subtitle)}</div>'
        meta = {"kind": o.kind, "classes": [_clean(c) for c in o.class_names],
                "scale": o.scale, "steps": STEPS, "values": o.values}
        if self.fragment:
            head = f'<div class="tlrp"><style>{css}</style>'
        else:
            head = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    '<meta name="viewport" content="width=device-width,initial-scale=1">'
                    '<meta name="color-scheme" content="light dark">'
                    f"<title>{_esc(title)}</title><style>{css}</style></head>\n"
                    '<body class="tlrp-page"><main class="tlrp">')
        self.out.write(
            head + f'<header class="tlrp-top">{top}</header>'
            '<noscript class="tlrp-fallback"><p>This report is drawn by the small script it '
            "contains: allow JavaScript to see it. (<code>--format json</code> writes the same "
            "records as JSON Lines.)</p></noscript>\n"
            f'<script type="application/json" class="tlrp-meta">{_json(meta)}</script>\n'
            '<script type="application/json" class="tlrp-data">\n')

    def _line(self, fields: list[str]) -> None:
        self.out.write("{" + ",".join(fields) + "}\n")

    def _head(self, item: Any, line: int | None, label: int | None) -> list[str]:
        fields = [f'"n":{"null" if line is None else int(line)}',
                  f'"s":{_json(None if item.text is None else _clean(item.text))}',
                  f'"p":{int(item.prediction)}',
                  f'"q":{_nums(np.asarray(item.probabilities, dtype=np.float64), 3)}']
        if label is not None:
            fields.append(f'"g":{int(label)}')
        return fields

    def _words(self, item: Any) -> list[str]:
        words = [_clean(t) for t in item.display]
        # One string split at spaces is a third smaller than a list, when no token has one.
        joined = all(w and " " not in w for w in words)
        fields = [f'"w":{_json(" ".join(words) if joined else words)}']
        unknown = np.flatnonzero(np.asarray(item.oov, dtype=bool))
        if unknown.size:
            fields.append(f'"u":{json.dumps(unknown.tolist(), separators=(",", ":"))}')
        return fields

    def explanation(self, exps: Explanation | Sequence[Explanation], *, line: int | None = None,
                    label: int | None = None) -> None:
        items = as_list(exps)
        rows = [np.asarray(e.relevance, dtype=np.float64).ravel() for e in items]
        decimals = _decimals(rows)
        fields = self._head(items[0], line, label) + self._words(items[0])
        fields.append('"r":[' + ",".join(f"[{int(e.target)},{_nums(r, decimals)}]"
                                         for e, r in zip(items, rows)) + "]")
        self._line(fields)

    def prediction(self, pred: Prediction, *, line: int | None = None,
                   label: int | None = None) -> None:
        fields = self._head(pred, line, label)
        if pred.text is None:
            fields += self._words(pred)
        self._line(fields)

    def error(self, message: str, *, line: int | None = None, text: str | None = None) -> None:
        self._line([f'"n":{"null" if line is None else int(line)}',
                    f'"s":{_json(None if text is None else _clean(text))}',
                    f'"e":{_json(_clean(str(message)))}'])

    def end(self) -> None:
        _, js = _assets()
        tail = "</div>\n" if self.fragment else "</main></body></html>\n"
        self.out.write(f"</script>\n<script>{js}</script>{tail}")


def to_html(exps: Iterable[Explanation], *, title: str | None = None,
            fragment: bool = False, scale: str | float = "sentence") -> str:
    """A self-contained HTML report of explanations (each one text, one explained class).

    fragment=True gives a <div> with its own <style> and <script> instead of a whole page,
    for embedding (Jupyter output, another page).
    """
    buf = io.StringIO()
    items = list(exps)
    names = items[0].class_names if items else ()
    w = HtmlWriter(buf, WriterOptions(class_names=tuple(names), title=title, scale=scale),
                   fragment=fragment)
    w.begin()
    for exp in items:
        w.explanation(exp)
    w.end()
    return buf.getvalue()
