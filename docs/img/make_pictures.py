"""Render the README pictures: the CLI in a light and a dark terminal, and an HTML report.

    python docs/img/make_pictures.py [--model PATH]     (needs chromium and pillow)

The CLI runs for real (truecolor, --color always); its ANSI output is turned into HTML
(a small SGR interpreter below), framed as a terminal window and photographed with
headless chromium, then cropped and palette-reduced to keep each PNG small.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SST_DEV = ROOT.parent / "shared" / "data" / "sst" / "dev.txt"

TERMINALS = {
    "light": {"bg": "#fbfbfa", "fg": "#24292f", "bar": "#e6e6e3", "prompt": "#1a7f37"},
    "dark": {"bg": "#1d2025", "fg": "#d7dae0", "bar": "#2b2f36", "prompt": "#7ee787"},
}
XTERM16 = ["#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
           "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff"]


def xterm(n: int) -> str:
    if n < 16:
        return XTERM16[n]
    if n < 232:
        n -= 16
        levels = (0, 95, 135, 175, 215, 255)
        return f"#{levels[n // 36]:02x}{levels[n // 6 % 6]:02x}{levels[n % 6]:02x}"
    g = 8 + 10 * (n - 232)
    return f"#{g:02x}{g:02x}{g:02x}"


def ansi_to_html(text: str) -> str:
    """HTML spans for text with SGR escapes (the subset textlrp emits, plus 16/256 colours)."""
    out, state = [], {}
    pos = 0
    for m in re.finditer(r"\x1b\[([0-9;]*)m", text):
        out.append(span(text[pos:m.start()], state))
        pos = m.end()
        codes = [int(c) if c else 0 for c in m.group(1).split(";")]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                state = {}
            elif c == 1:
                state["bold"] = True
            elif c == 2:
                state["dim"] = True
            elif c == 4:
                state["underline"] = True
            elif c in (38, 48) and codes[i + 1] == 2:
                state["fg" if c == 38 else "bg"] = "#{:02x}{:02x}{:02x}".format(*codes[i + 2:i + 5])
                i += 4
            elif c in (38, 48) and codes[i + 1] == 5:
                state["fg" if c == 38 else "bg"] = xterm(codes[i + 2])
                i += 2
            i += 1
    out.append(span(text[pos:], state))
    return "".join(out)


def span(s: str, state: dict) -> str:
    if not s:
        return ""
    style = []
    if "fg" in state:
        style.append(f"color:{state['fg']}")
    if "bg" in state:
        style.append(f"background:{state['bg']};border-radius:3px")
    if state.get("bold"):
        style.append("font-weight:700")
    if state.get("dim"):
        style.append("opacity:.62")
    if state.get("underline"):
        style.append("text-decoration:underline;text-underline-offset:3px")
    body = html.escape(s)
    return f'<span style="{";".join(style)}">{body}</span>' if style else body


def terminal_page(blocks: list[tuple[str, str]], theme: str, width_ch: int) -> str:
    t = TERMINALS[theme]
    rows = []
    for cmd, output in blocks:
        rows.append(f'<div><span style="color:{t["prompt"]}">$</span> {html.escape(cmd)}</div>')
        rows.append(f"<div>{ansi_to_html(output.rstrip())}</div><div>&nbsp;</div>")
    dots = "".join(f'<i style="background:{c}"></i>' for c in ("#ff5f57", "#febc2e", "#28c840"))
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><style>
html,body{{margin:0;background:transparent}}
.win{{display:inline-block;margin:18px;border-radius:10px;overflow:hidden;
 box-shadow:0 6px 24px rgba(0,0,0,.28);background:{t['bg']};color:{t['fg']}}}
.bar{{height:30px;background:{t['bar']};display:flex;align-items:center;gap:8px;padding:0 12px}}
.bar i{{display:inline-block;width:12px;height:12px;border-radius:50%}}
pre{{margin:0;padding:14px 18px 4px;font:15px/1.55 "DejaVu Sans Mono",monospace;
 white-space:pre;min-width:{width_ch}ch}}
</style></head><body><div class="win"><div class="bar">{dots}</div><pre>{''.join(rows)}</pre></div>
</body></html>"""


def screenshot(page: Path, png: Path, width: int, height: int, dark: bool = False) -> None:
    cmd = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--default-background-color=00000000", f"--window-size={width},{height}",
           f"--screenshot={png}", page.as_uri()]
    if dark:
        cmd[1:1] = ["--force-dark-mode", "--blink-settings=preferredColorScheme=0"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def finish(png: Path, *, max_kb: int = 300) -> None:
    """Crop to the opaque content and reduce the palette until the file is small."""
    from PIL import Image

    img = Image.open(png).convert("RGBA")
    bbox = img.getchannel("A").getbbox()
    if bbox:
        img = img.crop(bbox)
    img.save(png, optimize=True)
    for colors in (256, 128, 64):
        if png.stat().st_size <= max_kb * 1024:
            break
        img.quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(png, optimize=True)
    print(f"{png.relative_to(ROOT)}: {img.size[0]}x{img.size[1]}, {png.stat().st_size // 1024} KB")


def cli(args: list[str], env: dict) -> str:
    proc = subprocess.run([sys.executable, "-m", "textlrp", *args], capture_output=True, text=True,
                          env=env, check=True)
    return proc.stdout


def dev_sentences(n: int) -> list[str]:
    """A few SST dev sentences (as raw text), else fixed examples."""
    if not SST_DEV.exists():
        return ["A gripping , beautifully acted film that never loses its nerve .",
                "The plot is thin and the jokes fall flat , but the cast is charming .",
                "An overlong , tedious mess .",
                "It 's not a great movie , but it is n't a bad one either ."][:n]
    out = []
    for line in SST_DEV.read_text(encoding="utf-8").splitlines():
        words = re.findall(r"\(\d+ ([^()]+)\)", line)
        if 8 <= len(words) <= 22:
            out.append(" ".join(words))
        if len(out) == n:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model file (default: the bundled model)")
    args = ap.parse_args()
    model = ["--model", args.model] if args.model else []
    env = {**os.environ, "COLORTERM": "truecolor"}
    env.pop("NO_COLOR", None)

    sentence = "A gripping , beautifully acted film , though the ending is a letdown ."
    mixed = "The plot is thin and the jokes fall flat , but the cast is charming ."
    tmp = Path(tempfile.mkdtemp(prefix="textlrp-pictures-"))
    for theme in ("light", "dark"):
        opts = ["--color", "always", "--theme", theme]
        blocks = [
            (f"textlrp explain {shlex.quote(sentence)}", cli(["explain", *model, *opts, sentence], env)),
            (f"textlrp explain --all-classes {shlex.quote(mixed)}",
             cli(["explain", *model, *opts, "--all-classes", mixed], env)),
        ]
        page = tmp / f"terminal-{theme}.html"
        page.write_text(terminal_page(blocks, theme, 112), encoding="utf-8")
        png = HERE / f"terminal-{theme}.png"
        screenshot(page, png, 1180, 700)
        finish(png)

    corpus = tmp / "dev.txt"
    corpus.write_text("\n".join(dev_sentences(7)) + "\n", encoding="utf-8")
    report = tmp / "report.html"
    cli(["explain", *model, "--input", str(corpus), "--output", str(report), "--quiet",
         "--title", "SST-5 dev sentences, explained with LRP"], env)
    for theme in ("light", "dark"):
        png = HERE / f"report-{theme}.png"
        screenshot(report, png, 900, 790, dark=theme == "dark")
        finish(png)


if __name__ == "__main__":
    main()
