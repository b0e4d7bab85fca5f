"""The analysis as one self-contained HTML page: inline CSS, plots as base64 PNG, every text
from the corpus or the model escaped, readable with a light or a dark colour scheme."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["render_report"]

# ColorBrewer RdBu, strongest "against" (blue) to strongest "for" (red): the colours of
# textlrp's other reports. The dark variants keep the hues on a dark ground.
_LIGHT = ("#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
          "#fddbc7", "#f4a582", "#d6604d", "#b2182b")
_DARK = ("#3a7fc4", "#2f6397", "#2a4a6c", "#283748", "#24272d",
         "#4a2b2c", "#753231", "#a53a33", "#d0463a")
# Cluster colours (matplotlib's tab10), shared by the map and the cluster table.
_CLUSTER_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

_CSS = """
:root{color-scheme:light dark}
body{margin:0;background:#fff;color:#15171a;font:15px/1.5 system-ui,-apple-system,"Segoe UI",
 Roboto,sans-serif}
main{max-width:72rem;margin:0 auto;padding:1.5rem}
h1{font-size:1.5rem;margin:0 0 .2rem}h2{font-size:1.2rem;margin:2rem 0 .5rem}
h3{font-size:1rem;margin:1.2rem 0 .3rem}
.sub,.note,figcaption,.muted{color:#5a5f66;font-size:.88rem}
.box{border-radius:.5rem;padding:.8rem 1rem;margin:.8rem 0;border:2px solid}
.warn{border-color:#c62828;background:#fdecea}.ok{border-color:#2e7d32;background:#edf7ee}
.box h2{margin:0 0 .4rem}.alert{color:#c62828}
.flag{margin:.5rem 0}.flag b.w{font-size:1.1rem}
table{border-collapse:collapse;font-size:.86rem;margin:.3rem 0}
th,td{padding:.15rem .55rem;text-align:right;border-bottom:1px solid #e3e5e8;vertical-align:top}
th{font-weight:600;background:#f4f5f7}
td.l,th.l{text-align:left}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(22rem,1fr));gap:1rem}
.cls{border-top:1px solid #d5d8dc;padding-top:.3rem}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(26rem,1fr));gap:1rem}
figure{margin:0}figure img{width:100%;height:auto;background:#fff;border-radius:.4rem;
 border:1px solid #d5d8dc}
.sw{display:inline-block;width:.8rem;height:.8rem;border-radius:.2rem;vertical-align:-.05rem;
 margin-right:.3rem}
.ex{margin:.25rem 0;line-height:1.9}
.t{padding:.05em .18em;border-radius:.22em;white-space:pre-wrap}
.chip{display:inline-block;padding:0 .35rem;margin:0 .2rem .2rem 0;border-radius:.25rem;
 background:#eef0f3}
details{margin:.5rem 0}summary{cursor:pointer;color:#3a3f45}
code{font-size:.9em}
@media (prefers-color-scheme:dark){
 body{background:#15171b;color:#e6e7e9}
 .sub,.note,figcaption,.muted,summary{color:#a7acb3}
 .warn{background:#3a1f1f;border-color:#ef5350}.alert{color:#ff8a80}
 .ok{background:#1d3320;border-color:#66bb6a}
 th{background:#23262c}th,td{border-color:#33373e}.cls{border-color:#3a3e45}
 figure img{border-color:#3a3e45}.chip{background:#2a2e35}
 .t{background:var(--bd)!important;color:var(--fd)!important}
}
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _num(v: float, digits: int = 3) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _hex(c: str) -> tuple[int, int, int]:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


def _mix(v: float, anchors: Sequence[str]) -> tuple[int, int, int]:
    v = min(1.0, max(-1.0, v))
    pos = (v + 1.0) * (len(anchors) - 1) / 2.0
    i = min(int(pos), len(anchors) - 2)
    f = pos - i
    a, b = _hex(anchors[i]), _hex(anchors[i + 1])
    return tuple(round(x + (y - x) * f) for x, y in zip(a, b))  # type: ignore[return-value]


def _text_on(bg: tuple[int, int, int]) -> str:
    # Black or white, whichever contrasts more (WCAG relative luminance).
    def lin(u: int) -> float:
        s = u / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4
    lum = 0.2126 * lin(bg[0]) + 0.7152 * lin(bg[1]) + 0.0722 * lin(bg[2])
    return "#000" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "#fff"


def _css_rgb(c: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c)


def colored_tokens(tokens: Sequence[str], relevance: Sequence[float]) -> str:
    """Words with background colours by relevance, scaled to the sentence's largest |value|."""
    r = np.asarray(relevance, dtype=float)
    top = float(np.max(np.abs(r))) if r.size else 0.0
    out = []
    for tok, v in zip(tokens, r):
        s = v / top if top > 0 else 0.0
        title = f' title="relevance {v:.3g}"'
        if abs(s) < 0.04:
            out.append(f'<span class="t"{title}>{_e(tok)}</span>')
            continue
        light, dark = _mix(s, _LIGHT), _mix(s, _DARK)
        out.append(f'<span class="t"{title} style="background:{_css_rgb(light)};color:'
                   f'{_text_on(light)};--bd:{_css_rgb(dark)};--fd:{_text_on(dark)}">'
                   f'{_e(tok)}</span>')
    return " ".join(out)


# --------------------------------------------------------------------------- plots


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, facecolor="white")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(analysis: Any) -> dict[str, str]:
    sp = analysis.spray
    if sp is None:
        return {}
    try:
        import matplotlib
    except ImportError:
        return {}
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    out = {}
    vals = np.asarray(sp.eigenvalues)
    fig = Figure(figsize=(5.6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    idx = np.arange(1, len(vals) + 1)
    ax.plot(idx, vals, "o-", color="#333333", ms=4, lw=1)
    k = sp.n_clusters
    if 1 <= k < len(vals):
        ax.axvline(k + 0.5, color="#c62828", ls="--", lw=1)
        what = "largest gap" if sp.chosen_by == "eigengap" else "chosen"
        middle = vals[k - 1] + 0.5 * (vals[k] - vals[k - 1])
        ax.annotate(f"{what}: {k} clusters", xy=(k + 0.5, middle),
                    xytext=(8, 0), textcoords="offset points", color="#c62828", fontsize=9,
                    va="center")
    ax.set_xlabel("eigenvalue index")
    ax.set_ylabel("eigenvalue of the normalised Laplacian")
    ax.set_title("Spectrum of the explanation graph", fontsize=10)
    ax.grid(alpha=0.3)
    out["spectrum"] = _png(fig)

    if sp.map2d is not None:
        fig = Figure(figsize=(5.6, 4.6), layout="constrained")
        ax = fig.add_subplot()
        labels = sp.labels[sp.map_index]
        for c in range(sp.n_clusters):
            pts = sp.map2d[labels == c]
            if len(pts):
                ax.scatter(pts[:, 0], pts[:, 1], s=5, alpha=0.7, linewidths=0,
                           color=_CLUSTER_COLORS[c % len(_CLUSTER_COLORS)], label=f"{c + 1}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"t-SNE map of {len(sp.map_index)} explanations, by cluster", fontsize=10)
        if sp.n_clusters <= 20:
            ax.legend(title="cluster", fontsize=8, title_fontsize=8, markerscale=2.5,
                      loc="best", frameon=True)
        out["map"] = _png(fig)
    return out


# --------------------------------------------------------------------------- sections


def _header(a: Any, title: str, subtitle: str | None) -> str:
    s = a.settings
    bits = [f"{a.n:,} explanations of {a.lines:,} lines"]
    if a.skipped:
        bits.append(f"{a.skipped:,} line{'s' if a.skipped != 1 else ''} skipped")
    bits.append(f"each explained for its {s['explained']}")
    bits.append(f"LRP ({s['rule']}, eps {s['eps']:g}, bias_factor {s['bias_factor']:g})")
    sub = f'<div class="sub">{_e(subtitle)}</div>' if subtitle else ""
    return (f"<header><h1>{_e(title)}</h1>{sub}<div class=\"sub\">{_e(' · '.join(bits))}</div>"
            f"</header>")


def _flags(a: Any) -> str:
    s = a.settings
    criteria = (f"A word is flagged when its sentences, apart from it, fall into the classes "
                f"like all the others (association &le; {s['association_max']:g}) while the "
                f"model predicts them differently by at least {s['shift_min']:g} more "
                f"(shift &minus; association). Candidates: the words that decide many "
                f"explanations of a class, carry &ge; {100 * s['share_min']:g}% of a class's "
                f"relevance, or dominate a cluster. See <a href=\"#defs\">definitions</a>.")
    if a.flagged:
        by_word: dict[str, list[dict[str, Any]]] = {}
        for f in a.flagged:  # most relevance share first
            by_word.setdefault(f["word"], []).append(f)
        items = []
        for word, fs in by_word.items():
            parts = "".join(f'<div>&rarr; <b>{_e(f["class"])}</b> <span class="muted">'
                            f'({_via(f)})</span>: {_e(f["reason"])}.</div>' for f in fs)
            items.append(f'<div class="flag"><b class="w">&ldquo;{_e(word)}&rdquo;</b>{parts}'
                         f"</div>")
        n = len(by_word)
        head = (f'<div class="box warn"><h2>Clever-Hans check: {n} suspicious '
                f'word{"s" if n != 1 else ""}</h2>')
        body = "".join(items)
    else:
        head = '<div class="box ok"><h2>Clever-Hans check: nothing flagged</h2>'
        body = ("<div>No word the model decides by is independent of the content of its "
                "sentences.</div>")
    checked = ""
    if a.checked:
        rows = "".join(
            f'<tr><td class="l">{_e(c["word"])}</td><td class="l">{_e(c["class"])}</td>'
            f'<td class="l">{_via(c)}</td>'
            f'<td>{100 * c["share"]:.1f}%</td><td>{c["top"]}</td><td>{c["sentences"]}</td>'
            f'<td>{_opt(c["association"])}</td><td>{_opt(c["prediction_shift"])}</td>'
            f'<td class="l">{_verdict(c)}</td></tr>'
            for c in a.checked)
        judged = {c["judged_by"] for c in a.checked if c["judged_by"]}
        checked = (f"<details><summary>{len(a.checked)} candidate"
                   f"{'s' if len(a.checked) != 1 else ''} checked (judged by "
                   f"{_e(', '.join(sorted(judged)) or '-')})</summary><table><tr>"
                   '<th class="l">word</th><th class="l">class</th><th class="l">via</th>'
                   "<th>share</th><th>top</th><th>sentences</th><th>association</th>"
                   f'<th>shift</th><th class="l">verdict</th></tr>{rows}</table></details>')
    return f'{head}{body}<div class="note">{criteria}</div>{checked}</div>'


def _verdict(r: dict[str, Any]) -> str:
    if r["flagged"]:
        return "flagged"
    return "not judged" if r["prediction_shift"] is None else "cleared"


def _via(r: dict[str, Any]) -> str:
    via = ["class"] if r["decides"] else []
    via += [f"cluster {k['cluster'] + 1}" for k in r["clusters"]]
    return ", ".join(via)


def _opt(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def _word_table(rows: list[dict[str, Any]], caption: str) -> str:
    if not rows:
        return f'<div><h3>{_e(caption)}</h3><div class="muted">none</div></div>'
    body = "".join(
        f'<tr><td class="l">{_e(r["word"])}</td><td>{r["count"]:,}</td><td>{_num(r["mean"])}</td>'
        f'<td>{_num(r["total"])}</td><td>{r["top"]:,}</td><td>{_num(r["score"])}</td></tr>'
        for r in rows)
    return (f'<div><h3>{_e(caption)}</h3><table><tr><th class="l">word</th><th>count</th>'
            f'<th>mean</th><th>total</th><th>top</th><th>score</th></tr>{body}</table></div>')


def _classes(a: Any, tables: dict[str, Any]) -> str:
    s = a.settings
    intro = (f'<h2 id="classes">Words for and against each class</h2><div class="note">'
             f"Ranked by score = total / (count + {s['prior_count']}): the mean relevance, "
             f"shrunk toward 0 for rare words; words seen fewer than {s['min_count']} times "
             f"in a class are left out. <i>top</i>: sentences in which the word was the most "
             f"relevant one.</div>")
    parts = [intro]
    for name, t in tables.items():
        parts.append(f'<section class="cls"><h3>{_e(name)} <span class="muted">· '
                     f'{t["sentences"]:,} explained for it, {t["predicted"]:,} predicted</span>'
                     f'</h3><div class="pair">{_word_table(t["for"], "for")}'
                     f'{_word_table(t["against"], "against")}</div></section>')
    return "".join(parts)


def _spray(a: Any, plots: dict[str, str]) -> str:
    parts = ['<h2 id="spray">Clusters of explanations (SpRAy)</h2>']
    sp = a.spray
    if sp is None:
        why = a.spray_skipped or "clustering was not run"
        return parts[0] + f'<div class="note">{_e(why)}.</div>'
    notes = list(a.notes) + list(sp.notes)
    how = ("read off the largest eigengap" if sp.chosen_by == "eigengap"
           else "given on the command line")
    parts.append(f'<div class="note">{len(sp.labels):,} explanations, each a vector of its '
                 f"relevance over the {len(sp.columns)} most relevant word types (plus one for "
                 f"all others), normalised per sentence; {sp.n_neighbors}-nearest-neighbour "
                 f"graph; {sp.n_clusters} clusters, {how}."
                 + "".join(f"<br>Note: {_e(n)}." for n in notes) + "</div>")
    figs = []
    if "spectrum" in plots:
        figs.append(f'<figure><img alt="eigenvalues of the graph Laplacian" '
                    f'src="data:image/png;base64,{plots["spectrum"]}"><figcaption>The k '
                    f"smallest eigenvalues: k clusters that the graph separates well give k "
                    f"eigenvalues near 0 and then a gap.</figcaption></figure>")
    if "map" in plots:
        figs.append(f'<figure><img alt="t-SNE map of the explanations" '
                    f'src="data:image/png;base64,{plots["map"]}"><figcaption>Explanations '
                    f"that rely on the same words lie close together.</figcaption></figure>")
    if figs:
        parts.append(f'<div class="figs">{"".join(figs)}</div>')
    flagged_clusters = {k["cluster"] for f in a.flagged for k in f["clusters"]}
    rows = []
    for c in a.clusters:
        k = c["cluster"] - 1
        color = _CLUSTER_COLORS[k % len(_CLUSTER_COLORS)]
        classes = ", ".join(f"{_e(n)} {v:,}" for n, v in
                            sorted(c["classes"].items(), key=lambda kv: -kv[1]))
        words = "".join(f'<span class="chip" title="mean normalised relevance {w["mean"]:.3f}, '
                        f'in {100 * w["present"]:.0f}% of its sentences">{_e(w["word"])}</span>'
                        for w in c["words"])
        if c["against"]:
            words += ('<br><span class="muted">against:</span> ' + "".join(
                f'<span class="chip" title="mean normalised relevance {w["mean"]:.3f}, in '
                f'{100 * w["present"]:.0f}% of its sentences">{_e(w["word"])}</span>'
                for w in c["against"]))
        dom = c["dominant"]
        dominant = (f'&ldquo;{_e(dom["word"])}&rdquo; in {100 * dom["fraction"]:.0f}%'
                    if dom["word"] is not None else "–")
        shown = [_example_html(x) for x in c["examples"]]
        examples = "".join(shown[:3])
        if len(shown) > 3:
            examples += (f"<details><summary>{len(shown) - 3} more</summary>"
                         f'{"".join(shown[3:])}</details>')
        if k in flagged_clusters:
            dominant += ' <b class="alert">&#9888; flagged</b>'

        rows.append(f'<tr><td class="l"><span class="sw" style="background:{color}"></span>'
                    f'{c["cluster"]}</td><td>{c["size"]:,}<br><span class="muted">'
                    f'{100 * c["share"]:.1f}%</span></td><td class="l">{classes}</td>'
                    f'<td class="l">{words}</td><td class="l">{dominant}</td></tr>'
                    f'<tr><td></td><td colspan="4" class="l">{examples}</td></tr>')
    parts.append('<table><tr><th class="l">cluster</th><th>size</th><th class="l">predicted '
                 'classes</th><th class="l">characteristic words</th><th class="l">most '
                 'relevant word</th></tr>' + "".join(rows) + "</table>")
    parts.append('<div class="note">Characteristic words: the largest mean normalised relevance '
                 "in the cluster (against: the most negative). Most relevant word: the word "
                 "with the largest |relevance| in most of the cluster's sentences, and how "
                 "often. Examples: the explanations nearest the cluster's centre; red speaks "
                 "for the explained class, blue against it.</div>")
    return "".join(parts)


def _example_html(x: dict[str, Any]) -> str:
    line = f"line {x['line']} · " if x["line"] is not None else ""
    return (f'<div class="ex">{colored_tokens(x["tokens"], x["relevance"])} <span class="muted">'
            f'· {line}predicted {_e(x["prediction"])}, explained {_e(x["target"])}</span></div>')


def _definitions(a: Any) -> str:
    s = a.settings
    sample = a.sample
    samp = (f"a uniform random sample of {len(sample.items):,} of the {sample.seen:,} "
            f"explanations" if sample.sampled else f"all {len(sample.items):,} explanations")
    return (
        '<h2 id="defs">Definitions</h2><div class="note"><p><b>count</b>: occurrences of the '
        "word in sentences explained for the class; <b>mean</b>, <b>total</b>: its LRP "
        "relevance for that class; <b>top</b>: sentences in which it had the largest (positive) "
        "relevance; <b>share</b>: its part of all positive relevance given to the class. "
        "Unknown words count as the model's unknown token.</p>"
        "<p><b>association</b>: total variation distance between the classes of the sentences "
        "that contain the word, judged without it (their labels, or the model's prediction with "
        "the word deleted), and the classes of the sentences that do not; 0 means the word's "
        "sentences are otherwise like any others. <b>shift</b>: the same distance between the "
        "model's predictions for the two groups.</p>"
        f"<p>Clusters and distances use {samp}. Settings: "
        f"<code>{_e(', '.join(f'{k}={v}' for k, v in s.items()))}</code>.</p></div>")


def render_report(analysis: Any, *, title: str | None = None, subtitle: str | None = None) -> str:
    """The whole page."""
    title = title or "textlrp corpus analysis"
    tables = analysis.class_tables()
    plots = _plots(analysis)
    errors = ""
    if analysis.errors:
        rows = "".join(f'<tr><td>{_e(e["line"]) if e["line"] is not None else "–"}</td>'
                       f'<td class="l">{_e(e["error"])}</td></tr>' for e in analysis.errors)
        more = analysis.skipped - len(analysis.errors)
        errors = (f"<details><summary>{analysis.skipped:,} line"
                  f"{'s' if analysis.skipped != 1 else ''} skipped</summary><table><tr>"
                  f'<th>line</th><th class="l">error</th></tr>{rows}</table>'
                  + (f'<div class="muted">and {more:,} more</div>' if more > 0 else "")
                  + "</details>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            '<meta name="color-scheme" content="light dark">'
            f"<title>{_e(title)}</title><style>{_CSS.strip()}</style></head>\n<body><main>"
            + _header(analysis, title, subtitle) + _flags(analysis) + errors
            + _spray(analysis, plots) + _classes(analysis, tables) + _definitions(analysis)
            + '<footer class="muted" style="margin-top:2rem">made with textlrp analyze</footer>'
            "</main></body></html>\n")
