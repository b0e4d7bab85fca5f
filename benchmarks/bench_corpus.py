"""Lines per second and peak memory of `textlrp explain|predict --input FILE > out.jsonl`.

    python benchmarks/bench_corpus.py [--lines 10000 100000] [--threads N]

Input: the sentences of the SST (train, dev and test of ../shared/data/sst, the PTB trees
flattened to their words, as users would type them), drawn with replacement in a seeded
random order to the requested number of lines. Each run is a fresh process,
`python -m textlrp COMMAND --input F --quiet` with stdout redirected to a file, the bundled
model; wall time from the parent, CPU time (user + system) and peak RSS of that child alone
from os.wait4. The machine is shared: the load average before each run is printed with it,
and CPU ms per line is the figure that load disturbs least. The issue's target: explain at
least 10,000 lines/s with flat memory, predict faster still.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SST = ROOT.parent / "shared" / "data" / "sst"


def sst_sentences() -> list[str]:
    sentences = []
    for split in ("train", "dev", "test"):
        path = SST / f"{split}.txt"
        if not path.exists():
            raise SystemExit(f"needs the SST at {SST} (textlrp data sst --dest {SST})")
        for line in path.read_text(encoding="utf-8").splitlines():
            words = re.findall(r"\(\d+ ([^()]+)\)", line)
            if words:
                sentences.append(" ".join(words))
    return sentences


def run(cmd: list[str], out: Path) -> tuple[float, float, float]:
    """Wall s, CPU s and peak RSS MiB of one child writing its stdout to out."""
    with open(out, "wb") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, nargs="+", default=[10000, 100000])
    ap.add_argument("--threads", type=int, default=None, help="--threads of the commands")
    args = ap.parse_args()
    sentences = sst_sentences()
    rng = random.Random(0)
    tmp = Path(tempfile.mkdtemp(prefix="textlrp-corpus-"))
    try:
        import orjson  # noqa: F401
        encoder = "orjson"
    except ImportError:
        encoder = "json"
    print(f"python {sys.version.split()[0]}; {os.cpu_count()} cores; JSON encoder {encoder}; "
          f"{len(sentences)} SST sentences drawn with replacement")
    print("| command | lines | lines/s | CPU ms/line | CPU/wall | peak RSS MiB | load before |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n in args.lines:
        corpus = tmp / f"corpus-{n}.txt"
        corpus.write_text("".join(rng.choice(sentences) + "\n" for _ in range(n)),
                          encoding="utf-8")
        for command in ("explain", "predict"):
            cmd = [sys.executable, "-m", "textlrp", command, "--input", str(corpus), "--quiet"]
            if args.threads is not None:
                cmd += ["--threads", str(args.threads)]
            out = tmp / "out.jsonl"
            load = os.getloadavg()[0]
            wall, cpu, rss = run(cmd, out)
            with open(out, "rb") as f:
                written = sum(1 for _ in f)
            if written != n:
                raise SystemExit(f"{command}: {written} records for {n} lines")
            print(f"| {command} | {n:,} | {n / wall:,.0f} | {1000 * cpu / n:.3f} | "
                  f"{cpu / wall:.2f} | {rss:.0f} | {load:.1f} |", flush=True)
            out.unlink()
        corpus.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
