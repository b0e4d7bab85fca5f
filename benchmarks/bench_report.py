"""Size of the HTML report of 10,000 SST sentences and the time headless Chromium takes to open it.

    python benchmarks/bench_report.py [--texts 10000] [--runs 3] [--model PATH]

Input: SST sentences (test, then dev, then train; escapes written as a person would, so
`-LRB-` is `(`), with their labels, as a TSV file. The report is written by the console
script: `textlrp explain --input F.tsv --column sentence --label-column label -o F.html`.
Then, --runs times each:
- wall time of `chromium --headless=new --screenshot F.html` (start-up, load, script,
  layout, paint); the same for a report of one text gives the browser's start-up, and the
  difference is the time the report itself costs;
- time from navigation start to drawn, read inside the page: a copy of the page with a
  script after the report's own reports performance.now() and the marker the page sets when
  it has drawn (data-tlrp-ready="1"), read back with --dump-dom.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SST = ROOT.parent / "shared" / "data" / "sst"
PROBE = ('<script>document.body.appendChild(Object.assign(document.createElement("pre"),'
         '{id:"probe",textContent:JSON.stringify({ms:performance.now(),ready:document.'
         'documentElement.getAttribute("data-tlrp-ready")})}));</script></body>')


def sst_rows(n: int) -> list[tuple[int, str]]:
    from textlrp.sst import load_sentences
    from textlrp.tokenize import display_token

    rows: list[tuple[int, str]] = []
    for part in ("test", "dev", "train"):
        for tokens, label in load_sentences(SST / f"{part}.txt"):
            rows.append((label, " ".join(display_token(t) for t in tokens)))
    if len(rows) < n:
        sys.exit(f"only {len(rows)} SST sentences under {SST}")
    return rows[:n]


def write_report(rows: list[tuple[int, str]], tsv: Path, html: Path, model: list[str]) -> float:
    tsv.write_text("label\tsentence\n" + "".join(f"{lab}\t{txt}\n" for lab, txt in rows),
                   encoding="utf-8")
    exe = Path(sys.executable).with_name("textlrp")
    start = time.perf_counter()
    subprocess.run([str(exe), "explain", *model, "--input", str(tsv), "--column", "sentence",
                    "--label-column", "label", "--output", str(html), "--quiet"], check=True)
    return time.perf_counter() - start


def chromium(page: Path, browser: str, *how: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--window-size=1200,900", *how, page.as_uri()],
                          capture_output=True, text=True, timeout=300, check=True)
    return time.perf_counter() - start, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--texts", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--model", help="model file (default: the bundled model)")
    args = ap.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("needs headless Chromium (apt-get install chromium)")
    model = ["--model", args.model] if args.model else []
    tmp = Path(tempfile.mkdtemp(prefix="textlrp-report-"))
    rows = sst_rows(args.texts)
    big, one = tmp / "report.html", tmp / "one.html"
    seconds = write_report(rows, tmp / "report.tsv", big, model)
    write_report(rows[:1], tmp / "one.tsv", one, model)
    page = big.read_text(encoding="utf-8")
    probe = tmp / "probe.html"
    probe.write_text(page.replace("</body>", PROBE, 1), encoding="utf-8")

    walls: dict[str, list[float]] = {"one text": [], "report": []}
    inside = []
    for _ in range(args.runs):
        for name, path in (("one text", one), ("report", big)):
            walls[name].append(chromium(path, browser, f"--screenshot={tmp / 'shot.png'}")[0])
        _, dom = chromium(probe, browser, "--dump-dom")
        found = re.search(r'<pre id="probe">(.*?)</pre>', dom)
        if not found or json.loads(found.group(1))["ready"] != "1":
            sys.exit("the page did not finish drawing")
        inside.append(json.loads(found.group(1))["ms"] / 1000)

    size = big.stat().st_size
    print(f"texts {args.texts}, written in {seconds:.1f} s by textlrp explain")
    print(f"report size {size / 1e6:.2f} MB ({size / args.texts:.0f} bytes/text), "
          f"gzip {len(gzip.compress(big.read_bytes())) / 1e6:.2f} MB")
    for name, values in walls.items():
        print(f"chromium --screenshot, {name}: median {statistics.median(values):.2f} s "
              f"(runs: {', '.join(f'{v:.2f}' for v in values)})")
    print(f"navigation start -> drawn, inside the page: median {statistics.median(inside):.2f} s "
          f"(runs: {', '.join(f'{v:.2f}' for v in inside)})")


if __name__ == "__main__":
    main()
