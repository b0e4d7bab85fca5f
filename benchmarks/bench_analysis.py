"""Memory and speed of `textlrp analyze` against `textlrp explain --input` on the same corpus.

    python benchmarks/bench_analysis.py [--lines 10000 100000] [--model PATH] [--threads N]
                                        [--clusters] [--sample N] [--repeat 3]

Corpus: the SST sentences (train, dev and test: 11,855), shuffled and repeated to the line
count (../shared/data/sst must exist). Each run is a fresh subprocess, `python -m textlrp ...
--quiet`; its peak RSS comes from os.wait4 (ru_maxrss of that child alone):

- analyze: `textlrp analyze -i F --json F.json --no-clusters` -- the streamed word
  statistics, the sample (at most --sample explanations, default 20,000) and the Clever-Hans
  check on it. With --clusters, SpRAy runs too (`-o F.html`, cost on the sample only).
- explain: `textlrp explain -i F -o F.jsonl` (LRP, JSON Lines), the same explanations
  written out one by one.

Lines/s counts every line of the corpus; both commands explain every line once with the
same model and LRP settings. With --repeat the two commands alternate; the table shows the
median time (and the range) and the largest peak RSS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SST = ROOT.parent / "shared" / "data" / "sst"


def corpus(path: Path, lines: int, seed: int = 0) -> None:
    sys.path.insert(0, str(ROOT / "python"))
    from textlrp.sst import load_sentences

    sentences = [" ".join(t) for split in ("train", "dev", "test")
                 for t, _ in load_sentences(SST / f"{split}.txt")]
    rng = np.random.default_rng(seed)
    with path.open("w", encoding="utf-8") as f:
        written = 0
        while written < lines:
            for k in rng.permutation(len(sentences))[: lines - written]:
                f.write(sentences[k] + "\n")
                written += 1


def run(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one subprocess."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err}")
    return seconds, usage.ru_maxrss / 1024  # kB on Linux


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, nargs="+", default=[10000, 100000])
    p.add_argument("--model", help="model file (default: the bundled one)")
    p.add_argument("--threads", type=int, help="--threads of both commands")
    p.add_argument("--clusters", action="store_true", help="run SpRAy in analyze too")
    p.add_argument("--sample", type=int, help="--sample of analyze")
    p.add_argument("--repeat", type=int, default=1, help="runs of each command (alternating)")
    args = p.parse_args()
    if not (SST / "train.txt").is_file():
        print(f"the SST trees are needed at {SST}", file=sys.stderr)
        return 2
    common = (["-m", args.model] if args.model else []) + (
        ["--threads", str(args.threads)] if args.threads else [])
    py = [sys.executable, "-m", "textlrp"]
    print("| lines | analyze s | analyze lines/s | analyze peak RSS MB | explain s | "
          "explain lines/s | explain peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.lines:
            f = Path(tmp) / f"c{n}.txt"
            corpus(f, n)
            analyze = py + ["analyze", "-i", str(f), "--json", str(f) + ".json", "-q"] + common
            analyze += (["-o", str(f) + ".html"] if args.clusters else ["--no-clusters"])
            if args.sample:
                analyze += ["--sample", str(args.sample)]
            explain = py + ["explain", "-i", str(f), "-o", str(f) + ".jsonl", "-q"] + common
            runs: dict[str, list[tuple[float, float]]] = {"analyze": [], "explain": []}
            for _ in range(args.repeat):
                runs["analyze"].append(run(analyze))
                runs["explain"].append(run(explain))
            cells = []
            for name in ("analyze", "explain"):
                times = sorted(t for t, _ in runs[name])
                t = float(np.median(times))
                spread = f" ({times[0]:.1f}-{times[-1]:.1f})" if len(times) > 1 else ""
                cells += [f"{t:.1f}{spread}", f"{n / t:,.0f}",
                          f"{max(m for _, m in runs[name]):.0f}"]
            print(f"| {n:,} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
