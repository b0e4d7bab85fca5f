"""Memory and speed of `textlrp explain --input` (the streaming corpus path of the CLI).

    python benchmarks/bench_stream.py [--lines 20000 200000] [--model PATH] [--threads N]

Input: synthetic sentences, words drawn from the model's vocabulary, lengths drawn from the
SST test set when ../shared/data/sst is there (else a lognormal fit to it, mean ~19 tokens).
Each run is a fresh subprocess: `python -m textlrp explain --input F --output F.jsonl --quiet`
(LRP, JSON Lines); its peak RSS comes from os.wait4 (ru_maxrss of that child alone).

Baselines in the same run:
- load-all: a script that reads every line into a list, calls
  model.explain_batch(..., keep_embedding=False) on all of them and then writes the same
  JSON Lines -- what one writes without streaming. Its peak RSS grows with the input; the
  CLI's should not.
- explain_batch: the load-all script's time inside model.explain_batch alone (tokenising and
  the engine, no reading or writing); CLI rate / this rate shows what the CLI layer costs.
Model: --model, else the bundled default, else a random model of the same size
(vocabulary 20,000, embedding 60, bidirectional LSTM 60, 5 classes).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SST_TEST = ROOT.parent / "shared" / "data" / "sst" / "test.txt"

LOAD_ALL = r"""
import sys, time, textlrp
from textlrp import render
path, out, model_path, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
model = textlrp.load_model(model_path)
with open(path, encoding="utf-8") as f:
    texts = [line.rstrip("\n") for line in f]
t0 = time.perf_counter()
exps = model.explain_batch(texts, threads=threads, keep_embedding=False)
engine = time.perf_counter() - t0
with open(out, "w", encoding="utf-8") as f:
    for k, exp in enumerate(exps, 1):
        f.write(render.to_json(exp, line=k) + "\n")
print(engine)
"""


def sentence_lengths(n: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    if SST_TEST.exists():
        lengths = [len(re.findall(r"\(\d+ [^()]+\)", line))
                   for line in SST_TEST.read_text(encoding="utf-8").splitlines() if line.strip()]
        return rng.choice(np.array(lengths), size=n), "SST test set"
    return np.clip(np.rint(rng.lognormal(2.82, 0.54, size=n)), 1, 60).astype(int), "lognormal fit"


def make_model(path: Path) -> str:
    import textlrp

    rng = np.random.default_rng(0)
    V, e, d, C = 20000, 60, 60, 5

    def direction() -> dict:
        return {"W_ih": rng.normal(0, e ** -0.5, (4 * d, e)), "W_hh": rng.normal(0, d ** -0.5, (4 * d, d)),
                "b": rng.normal(0, 0.1, 4 * d)}
    vocab = ["<unk>"] + [f"w{k}" for k in range(1, V)]
    model = textlrp.from_arrays(rng.normal(0, 0.5, (V, e)), [[direction(), direction()]],
                                [{"W": rng.normal(0, 0.2, (C, 2 * d)), "b": None}],
                                vocab=vocab, unk_token="<unk>", metadata={"name": "random benchmark model"})
    model.save(path)
    return "random (vocabulary 20000, embedding 60, BiLSTM 60, 5 classes)"


def write_corpus(path: Path, n: int, vocab: list[str], rng: np.random.Generator) -> float:
    lengths, _ = sentence_lengths(n, rng)
    words = np.array(vocab)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(" ".join(words[rng.integers(0, len(words), size=int(length))]) + "\n" for length in lengths)
    return float(np.mean(lengths))


def run(cmd: list[str]) -> tuple[float, float, float, str]:
    """Wall time (s), CPU time (s), peak RSS (MiB) and stdout of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, out


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, nargs="+", default=[20000, 200000])
    ap.add_argument("--model", help="model file (default: bundled, else a random one)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--no-baseline", action="store_true", help="skip the load-all baseline")
    args = ap.parse_args()

    import textlrp

    tmp = Path(tempfile.mkdtemp(prefix="textlrp-bench-"))
    if args.model:
        model_path, label = args.model, args.model
    else:
        from textlrp.io import default_model_path

        try:
            model_path, label = str(default_model_path()), "bundled default"
        except FileNotFoundError:
            model_path = str(tmp / "random.npz")
            label = make_model(Path(model_path))
    model = textlrp.load_model(model_path)
    vocab = [w for w in model.vocab if w != model.unk_token]
    rng = np.random.default_rng(1)
    from textlrp import _core

    print(f"model: {label}; threads {args.threads}; batch size {args.batch_size}; "
          f"kernels {_core.isa()}; python {sys.version.split()[0]}")

    rows = []
    for n in args.lines:
        corpus = tmp / f"corpus-{n}.txt"
        mean_len = write_corpus(corpus, n, vocab, rng)
        size_mb = corpus.stat().st_size / 2**20
        out = tmp / f"out-{n}.jsonl"
        cmd = [sys.executable, "-m", "textlrp", "explain", "--input", str(corpus), "--output", str(out),
               "--quiet", "--model", model_path, "--threads", str(args.threads),
               "--batch-size", str(args.batch_size)]
        wall, cpu, rss, _ = run(cmd)
        assert count_lines(out) == n
        out_mb = out.stat().st_size / 2**20
        rows.append((n, "textlrp explain --input (stream)", wall, cpu, rss, None))
        print(f"  {n} lines (mean length {mean_len:.1f}, {size_mb:.1f} MiB in, {out_mb:.0f} MiB out): "
              f"stream {n / wall:.0f} lines/s, {1000 * cpu / n:.2f} CPU ms/line, peak RSS {rss:.0f} MiB",
              flush=True)
        if not args.no_baseline:
            out2 = tmp / f"out-{n}-loadall.jsonl"
            wall2, cpu2, rss2, printed = run([sys.executable, "-c", LOAD_ALL, str(corpus), str(out2),
                                        model_path, str(args.threads)])
            engine = float(printed.strip().splitlines()[-1])
            assert count_lines(out2) == n
            rows.append((n, "load-all script (baseline)", wall2, cpu2, rss2, n / engine))
            print(f"  {n} lines: load-all {n / wall2:.0f} lines/s (explain_batch alone {n / engine:.0f}/s), "
                  f"{1000 * cpu2 / n:.2f} CPU ms/line, peak RSS {rss2:.0f} MiB", flush=True)
            out2.unlink()
        out.unlink()
        corpus.unlink()

    print()
    print(f"| {'lines':>7} | {'command':<34} | {'lines/s':>8} | {'CPU ms/line':>11} | {'peak RSS MiB':>12} "
          f"| {'explain_batch lines/s':>21} |")
    print(f"|{'-' * 9}|{'-' * 36}|{'-' * 10}|{'-' * 13}|{'-' * 14}|{'-' * 23}|")
    for n, what, wall, cpu, rss, engine_rate in rows:
        eng = f"{engine_rate:.0f}" if engine_rate else ""
        print(f"| {n:>7} | {what:<34} | {n / wall:>8.0f} | {1000 * cpu / n:>11.2f} | {rss:>12.0f} | {eng:>21} |")
    stream = {n: (wall, rss) for n, what, wall, _, rss, _ in rows if "stream" in what}
    base = {n: (wall, rss, e) for n, what, wall, _, rss, e in rows if "baseline" in what}
    if len(stream) >= 2:
        lo, hi = min(stream), max(stream)
        print(f"\npeak RSS {hi} vs {lo} lines: stream x{stream[hi][1] / stream[lo][1]:.2f}"
              + (f", load-all x{base[hi][1] / base[lo][1]:.2f}" if lo in base and hi in base else ""))
    for n in stream:
        if n in base:
            print(f"{n} lines: stream peak RSS = {stream[n][1] / base[n][1]:.2f} x load-all; "
                  f"stream rate = {(n / stream[n][0]) / base[n][2]:.2f} x explain_batch alone")


if __name__ == "__main__":
    main()
