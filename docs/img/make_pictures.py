"""Render the pictures of the docs: the CLI in truecolor and 256-colour terminals (light and
dark), and the HTML report in a light and a dark browser.

    python docs/img/make_pictures.py [--model PATH]     (needs chromium and pillow)

The CLI runs for real (--color always; COLORTERM=truecolor for 24-bit colours, unset for the
xterm-256 steps); its ANSI output is turned into HTML (a small SGR interpreter below, with
the standard xterm-256 palette), framed as a terminal window and photographed with headless
Chromium at 1200x900, then cropped and palette-reduced to keep each PNG small. The report is
photographed as it is, with prefers-color-scheme forced to dark for the dark picture.
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
COLUMNS = 110  # terminal width of the pictures

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


def cli_in_terminal(args: list[str], env: dict, columns: int) -> str:
    """The CLI's output on a pseudo-terminal `columns` wide (so it colours and wraps as it
    would for a person)."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([sys.executable, "-m", "textlrp", *args], stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    if proc.wait() != 0:
        raise RuntimeError(f"textlrp {' '.join(args)} failed: {b''.join(chunks)[-500:]!r}")
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def dev_rows(n: int) -> list[tuple[int, str]]:
    """A few SST dev sentences (label, text as a person writes it), else fixed examples."""
    if not SST_DEV.exists():
        return [(4, "A gripping , beautifully acted film that never loses its nerve ."),
                (2, "The plot is thin and the jokes fall flat , but the cast is charming ."),
                (0, "An overlong , tedious mess ( really ) ."),
                (1, "It 's not a great movie , but it is n't a bad one either .")][:n]
    from textlrp.sst import load_sentences
    from textlrp.tokenize import display_token

    out = []
    for tokens, label in load_sentences(SST_DEV):
        if 8 <= len(tokens) <= 22:
            out.append((label, " ".join(display_token(t) for t in tokens)))
        if len(out) == n:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model file (default: the bundled model)")
    args = ap.parse_args()
    model = ["--model", args.model] if args.model else []
    env = dict(os.environ)
    env.pop("NO_COLOR", None)

    sentence = "A gripping , beautifully acted film ( though the ending is a letdown ) ."
    short = 'Not "bad" at all .'
    mixed = "The plot is thin and the jokes fall flat , but the cast is charming ."
    tmp = Path(tempfile.mkdtemp(prefix="textlrp-pictures-"))
    # truecolor where COLORTERM announces it, else the xterm-256 steps
    for palette, colorterm in (("truecolor", "truecolor"), ("256", "")):
        for theme in ("light", "dark"):
            run_env = {**env, "COLORTERM": colorterm, "COLORFGBG": "0;15" if theme == "light"
                       else "15;0", "TERM": "xterm-256color"}
            blocks = [
                (f"textlrp explain {shlex.quote(sentence)}",
                 cli_in_terminal(["explain", *model, sentence], run_env, COLUMNS)),
                (f"textlrp explain --values {shlex.quote(short)}",
                 cli_in_terminal(["explain", *model, "--values", short], run_env, COLUMNS)),
                (f"textlrp explain --all-classes {shlex.quote(mixed)}",
                 cli_in_terminal(["explain", *model, "--all-classes", mixed], run_env, COLUMNS)),
            ]
            page = tmp / f"terminal-{palette}-{theme}.html"
            page.write_text(terminal_page(blocks, theme, COLUMNS), encoding="utf-8")
            png = HERE / f"terminal-{palette}-{theme}.png"
            screenshot(page, png, 1200, 900)
            finish(png)

    corpus = tmp / "dev.tsv"
    corpus.write_text("label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in dev_rows(40)),
                      encoding="utf-8")
    report = tmp / "report.html"
    cli(["explain", *model, "--input", str(corpus), "--column", "text", "--label-column", "label",
         "--output", str(report), "--quiet", "--title", "SST-5 dev sentences, explained with LRP"],
        env)
    for theme in ("light", "dark"):
        png = HERE / f"report-{theme}.png"
        screenshot(report, png, 1200, 900, dark=theme == "dark")
        finish(png)
    # --all-classes: the prediction once, a row per class; --values ticks the numbers box
    few = tmp / "few.txt"
    few.write_text("".join(f"{text}\n" for _, text in dev_rows(40)[8:11]), encoding="utf-8")
    report = tmp / "all-classes.html"
    cli(["explain", *model, "--input", str(few), "--all-classes", "--values", "--output",
         str(report), "--quiet", "--title", "Every class of three SST-5 dev sentences"], env)
    png = HERE / "report-all-classes.png"
    screenshot(report, png, 1200, 900)
    finish(png)


if __name__ == "__main__":
    main()
