"""Cold start of a one-sentence `textlrp explain` against `python -c "import numpy"`.

    python benchmarks/bench_startup.py [--runs 21] [--text "don't waste your money"]

Both commands run as fresh processes, interleaved (numpy, textlrp, numpy, ...) so that the
load of a shared machine falls on both alike; the medians of wall time and of CPU time
(user + system of the child, from os.wait4) and their ratios are printed. The textlrp
command is `python -m textlrp explain TEXT` with the bundled model, output to a pipe (no
colours), as a user's first call would run it. The issue's target: ratio <= 2.5.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--text", default="don't waste your money")
    args = ap.parse_args()
    numpy_cmd = [sys.executable, "-c", "import numpy"]
    textlrp_cmd = [sys.executable, "-m", "textlrp", "explain", args.text]
    run(numpy_cmd), run(textlrp_cmd)  # warm the page cache; not counted
    times: dict[str, list[tuple[float, float]]] = {"numpy": [], "textlrp": []}
    for _ in range(args.runs):
        times["numpy"].append(run(numpy_cmd))
        times["textlrp"].append(run(textlrp_cmd))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in times.items()}
    print(f"python {sys.version.split()[0]}; {args.runs} interleaved runs each; "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    print("| command | median wall ms | median CPU ms |")
    print("|---|---:|---:|")
    print(f"| python -c \"import numpy\" | {1000 * med['numpy'][0]:.0f} | "
          f"{1000 * med['numpy'][1]:.0f} |")
    print(f"| textlrp explain \"{args.text}\" | {1000 * med['textlrp'][0]:.0f} | "
          f"{1000 * med['textlrp'][1]:.0f} |")
    print(f"| ratio | {med['textlrp'][0] / med['numpy'][0]:.2f}x | "
          f"{med['textlrp'][1] / med['numpy'][1]:.2f}x |")


if __name__ == "__main__":
    main()
