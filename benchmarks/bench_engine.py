"""Speed of the textlrp engine against baselines measured in the same run.

    python benchmarks/bench_engine.py [--n 2000] [--ref-n 200]

The engine table (first): LRP over the SST test set (all 2,210 sentences with their real
lengths when ../shared/data/sst is there) for LSTM and GRU cells x the poolings, float64 and
float32, 1 and 2 threads, in useful FLOP/s and against numpy's matrix product (OpenBLAS dgemm /
sgemm) on the shapes the engine multiplies, timed in a child process of the same run (see
`dgemm_rates`), and against the per-sentence numpy reference.

Useful work (`useful_flops`): 2 FLOPs per multiply-add the algorithm needs, nothing for
padding, elementwise maths or copies. Per recurrent layer and direction with G gate blocks
(LSTM 4, GRU 3), hidden size d, input size `in`, N tokens and n sequences: the input
projections N * G d * in, the recurrent products (N - n) * G d * d (the first step of a
sequence has h_prev = 0), and the LRP backward products through the rows that carry
relevance (signal-take-all: the d rows of g, GRU: of n) to the inputs, N * d * in, and to
h_prev, (N - n) * d * d; plus the head (n * F * C each way) and attention's projection
(N * F * A).

Model: random bidirectional LSTM, e = d = 60, 5 classes, vocabulary 20,000 (the size of the
default SST model).  Sentences: token ids drawn at random, lengths drawn from the SST test set
when ../shared/data/sst is there (else a lognormal fit to it, mean ~19 tokens).

The method table: LRP, gradient x input (GI) and occlusion (OCC: one forward pass per token,
the occluded copies of a sentence in lock step) of textlrp against the baselines below.

Baselines:
- reference: tests/reference.py, the plain per-sentence numpy code (timed on --ref-n sentences,
  rate extrapolated; for OCC, reference.occlusion: one full forward pass per token);
- numpy batched: the same maths vectorised over a padded batch (reference.batch_lrp /
  batch_gradient; sentences sorted by length, batches of 250, to keep padding small; timed on
  --baseline-n sentences, as is torch);
- torch: nn.LSTM bidirectional on packed sequences, batched gradient x input on CPU, in
  float32 (compare with textlrp float32) and float64 (compare with textlrp float64), with
  torch.set_num_threads set to the same thread count.
Numbers are for this machine only; the ratios are the point.
"""

from __future__ import annotations

import os

# numpy baselines on one BLAS thread: OpenBLAS threads spin and collapse on a busy machine,
# and one thread makes the rows comparable with textlrp threads=1 (set before numpy loads)
if __name__ == "__main__":  # not when tests import the torch helpers
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import reference as ref

SST_TEST = ROOT.parent / "shared" / "data" / "sst" / "test.txt"
E_DIM, HIDDEN, CLASSES, VOCAB = 60, 60, 5, 20000


def sentence_lengths(n, rng):
    if SST_TEST.exists():
        lengths = [len(re.findall(r"\(\d+ [^()]+\)", line))
                   for line in SST_TEST.read_text(encoding="utf-8").splitlines() if line.strip()]
        return rng.choice(np.array(lengths), size=n), "SST test set"
    # lognormal fitted to the SST test lengths (log-length mean 2.82, sd 0.54; mean 19.2 tokens)
    lengths = np.clip(np.rint(rng.lognormal(2.82, 0.54, size=n)), 1, 60).astype(int)
    return lengths, "lognormal fit"


def random_model(rng, dtype=np.float64):
    def rand(*shape, scale):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    def direction(n_in):
        return {"W_ih": rand(4 * HIDDEN, n_in, scale=n_in ** -0.5),
                "W_hh": rand(4 * HIDDEN, HIDDEN, scale=HIDDEN ** -0.5),
                "b": rand(4 * HIDDEN, scale=0.1)}

    return {"embedding": rand(VOCAB, E_DIM, scale=0.5),
            "lstm_layers": [[direction(E_DIM), direction(E_DIM)]],
            "head": [{"W": rand(CLASSES, 2 * HIDDEN, scale=0.2), "b": rand(CLASSES, scale=0.1)}]}


# ----------------------------------------------------------------------------- torch baseline

def torch_model(torch, m, dtype):
    """(embedding, nn.LSTM, nn.Linear) from the arrays of a one-layer model."""
    (layer,) = m["lstm_layers"]
    assert len(m["head"]) == 1, "the torch baseline covers one-layer models with a linear head"
    d = layer[0]["W_hh"].shape[1]
    lstm = torch.nn.LSTM(layer[0]["W_ih"].shape[1], d, bidirectional=len(layer) == 2,
                         batch_first=True, dtype=dtype)
    head = torch.nn.Linear(len(layer) * d, m["head"][0]["W"].shape[0],
                           bias=m["head"][0]["b"] is not None, dtype=dtype)
    with torch.no_grad():
        for k, dr in enumerate(layer):
            sfx = "_l0" + ("_reverse" if k else "")
            getattr(lstm, "weight_ih" + sfx).copy_(torch.tensor(np.asarray(dr["W_ih"])))
            getattr(lstm, "weight_hh" + sfx).copy_(torch.tensor(np.asarray(dr["W_hh"])))
            getattr(lstm, "bias_ih" + sfx).copy_(torch.tensor(np.asarray(dr["b"])))
            getattr(lstm, "bias_hh" + sfx).zero_()
        head.weight.copy_(torch.tensor(np.asarray(m["head"][0]["W"])))
        if head.bias is not None:
            head.bias.copy_(torch.tensor(np.asarray(m["head"][0]["b"])))
    emb = torch.tensor(np.asarray(m["embedding"]), dtype=dtype)
    return emb, lstm, head


def torch_gi_batch(torch, tm, batch):
    """Gradient x input w.r.t. the predicted class for a batch, packed sequences."""
    emb, lstm, head = tm
    lengths = torch.tensor([len(s) for s in batch])
    ids = torch.zeros((len(batch), int(lengths.max())), dtype=torch.long)
    for n, s in enumerate(batch):
        ids[n, :len(s)] = torch.tensor(s)
    x = emb[ids].requires_grad_(True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                     enforce_sorted=False)
    _, (h_n, _) = lstm(packed)
    scores = head(torch.cat(list(h_n), dim=1))  # forward final state, backward state at 0
    target = scores.argmax(dim=1, keepdim=True)
    scores.gather(1, target).sum().backward()  # sentences are independent: one backward
    gi = (x.grad * x).sum(dim=2).detach().numpy()
    return [gi[n, :len(s)] for n, s in enumerate(batch)]


# ----------------------------------------------------------------------------- timing

def rate(fn, n_sentences, repeat=1):
    """Sentences per second of the best of ``repeat`` runs (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n_sentences / best


def in_batches(batch, size):
    order = np.argsort([len(s) for s in batch], kind="stable")
    return [[batch[i] for i in order[k:k + size]] for k in range(0, len(batch), size)]


def architectures(rng, batch, n):
    """LSTM and GRU cells x the four poolings at the same sizes (e = d = 60, bidirectional, 5
    classes, attention size 60), float64, one thread: sentences/s and the ratio to LSTM + last.
    The rows are timed interleaved (round robin, best of 3) so that load changes hit all alike."""
    import textlrp

    def rand(*shape, scale):
        return rng.standard_normal(shape) * scale

    emb = rand(VOCAB, E_DIM, scale=0.5)
    models = {}
    for cell, G in (("lstm", 4), ("gru", 3)):
        layer = [{"W_ih": rand(G * HIDDEN, E_DIM, scale=E_DIM ** -0.5),
                  "W_hh": rand(G * HIDDEN, HIDDEN, scale=HIDDEN ** -0.5),
                  "b_ih": rand(G * HIDDEN, scale=0.1), "b_hh": rand(G * HIDDEN, scale=0.1)}
                 for _ in range(2)]
        for pooling in ("last", "mean", "max", "attention"):
            att = None
            if pooling == "attention":
                att = {"W": rand(60, 2 * HIDDEN, scale=0.1), "b": rand(60, scale=0.1),
                       "v": rand(60, scale=0.3)}
            models[cell, pooling] = textlrp.from_arrays(
                emb, [layer], [{"W": rand(CLASSES, 2 * HIDDEN, scale=0.2), "b": None}],
                cell=cell, pooling=pooling, attention=att)
    best = {(key, m): float("inf") for key in models for m in ("lrp", "gi")}
    for _ in range(3):
        for key, model in models.items():
            for method in ("lrp", "gi"):
                t0 = time.perf_counter()
                model.explain_batch(batch, method=method, threads=1, keep_embedding=False)
                best[key, method] = min(best[key, method], time.perf_counter() - t0)
    print()
    print("| cell | pooling | LRP sentences/s | vs LSTM + last | GI sentences/s | vs LSTM + last |")
    print("|---|---|---:|---:|---:|---:|")
    for cell, pooling in models:
        lrp, gi = n / best[(cell, pooling), "lrp"], n / best[(cell, pooling), "gi"]
        lrp0, gi0 = n / best[("lstm", "last"), "lrp"], n / best[("lstm", "last"), "gi"]
        print(f"| {cell} | {pooling} | {lrp:,.0f} | {lrp / lrp0:.2f}x | {gi:,.0f} | {gi / gi0:.2f}x |")


# ----------------------------------------------------------------------------- engine vs dgemm

DGEMM_CHILD = r"""
import json, sys, time
import numpy as np
shapes, dtype = json.loads(sys.argv[1]), np.dtype(sys.argv[2])
try:
    import threadpoolctl
    info = threadpoolctl.threadpool_info()
    kernel = ", ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                       f"x{i.get('num_threads')}" for i in info)
except ImportError:
    kernel = "threadpoolctl not installed"
rng = np.random.default_rng(0)
out = {"kernel": kernel, "rates": {}}
c0 = time.process_time()
t0 = time.perf_counter()
for m, k, n in shapes:
    a = rng.random((m, k)).astype(dtype)
    b = rng.random((k, n)).astype(dtype)
    c = np.empty((m, n), dtype)
    reps = max(1, int(2e8 / (2 * m * k * n)))
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            np.matmul(a, b, out=c)
        best = min(best, (time.perf_counter() - t) / reps)
    out["rates"][f"{m}x{k}x{n}"] = 2 * m * k * n / best
out["cpu_share"] = (time.process_time() - c0) / (time.perf_counter() - t0)
print(json.dumps(out))
"""


def dgemm_rates(shapes, dtype, threads):
    """FLOP/s of numpy's matmul (OpenBLAS dgemm / sgemm) on each [m, k] x [k, n] of ``shapes``,
    best of 5, in a child process with ``threads`` BLAS threads. OPENBLAS_CORETYPE and
    OPENBLAS_L2_SIZE are removed for that process only (set on some machines for old
    OpenBLAS builds, they slow a current one); the kernel it then runs is reported."""
    import json
    import subprocess

    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, "-c", DGEMM_CHILD, json.dumps(shapes), dtype],
                          env=env, capture_output=True, text=True, check=True, timeout=600)
    return json.loads(proc.stdout)


def useful_flops(model, lengths, method="lrp"):
    """FLOPs (2 per multiply-add) of the products the algorithm needs (module docstring)."""
    spec = model.spec
    N, n = int(np.sum(lengths)), len(lengths)
    macs = 0
    for layer in spec.layers:
        for dr in layer.directions:
            Gd, d_in = np.asarray(dr.W_ih).shape
            d = np.asarray(dr.W_hh).shape[1]
            macs += N * Gd * d_in + (N - n) * Gd * d  # forward
            if method == "lrp":  # signal-take-all: one block of d rows carries relevance
                macs += N * d * d_in + (N - n) * d * d
            else:  # gradient: all G blocks
                macs += N * Gd * d_in + (N - n) * Gd * d
    if spec.attention is not None:
        A, F = np.asarray(spec.attention.W).shape
        macs += N * F * A
    for dense in spec.head:
        macs += 2 * n * np.asarray(dense.W).size
    return 2 * macs


def sst_test_lengths(rng):
    """Lengths of all SST test sentences in file order, else 2,210 from the lognormal fit."""
    if SST_TEST.exists():
        lines = SST_TEST.read_text(encoding="utf-8").splitlines()
        return (np.array([len(re.findall(r"\(\d+ [^()]+\)", line)) for line in lines if line.strip()]),
                "the SST test set")
    return sentence_lengths(2210, rng)[0], "a lognormal fit to the SST test lengths"


def engine_table(rng, ref_n, rounds=3):
    """Prints the engine table: rates against dgemm/sgemm and the per-sentence reference."""
    import textlrp

    lengths, source = sst_test_lengths(rng)
    batch = [rng.integers(0, VOCAB, size=int(T)).tolist() for T in lengths]

    def rand(*shape, scale):
        return rng.standard_normal(shape) * scale

    emb = rand(VOCAB, E_DIM, scale=0.5)
    configs = {}
    for cell, G in (("lstm", 4), ("gru", 3)):
        layer = [{"W_ih": rand(G * HIDDEN, E_DIM, scale=E_DIM ** -0.5),
                  "W_hh": rand(G * HIDDEN, HIDDEN, scale=HIDDEN ** -0.5),
                  "b_ih": rand(G * HIDDEN, scale=0.1), "b_hh": rand(G * HIDDEN, scale=0.1)}
                 for _ in range(2)]
        head = [{"W": rand(CLASSES, 2 * HIDDEN, scale=0.2), "b": rand(CLASSES, scale=0.1)}]
        for pooling in ("last", "mean", "max", "attention"):
            att = None
            if pooling == "attention":
                att = {"W": rand(60, 2 * HIDDEN, scale=0.1), "b": rand(60, scale=0.1),
                       "v": rand(60, scale=0.3)}
            for dtype in ("float64", "float32"):
                model = textlrp.from_arrays(emb, [layer], head, cell=cell, pooling=pooling,
                                            attention=att, dtype=np.dtype(dtype))
                # the engine call itself (what explain_batch spends besides building
                # Explanation objects): token ids packed once
                ids, offsets, mask = model._pack([model.encode(x)[1] for x in batch], None)
                targets = model._targets(None, len(batch))
                configs[cell, pooling, dtype] = (model, ids, offsets, mask, targets)
    cores = os.cpu_count() or 1
    thread_counts = sorted({1, min(2, cores)})
    # the shapes the engine multiplies (LSTM, e = d = 60, groups of 8 sequences of ~19
    # tokens): the group's input projection, the recurrent step, the LRP backward's x and
    # h sides; and the reference shape [4096, 120] x [120, 240]
    G8 = 8 * round(float(np.mean(lengths)))
    shapes = [[4096, 120, 240], [G8, 60, 240], [8, 60, 240], [G8, 60, 60], [8, 60, 60]]
    best = {}
    cpu = {}
    gemm = {}
    for _ in range(rounds):  # interleaved: load changes hit the engine and dgemm alike
        for t in thread_counts:
            for key, (model, ids, offsets, mask, targets) in configs.items():
                t0, c0 = time.perf_counter(), time.process_time()
                model._core.lrp(ids, offsets, mask, targets, 1e-3, 0.0, "signal-take-all", t,
                                False)
                wall, used = time.perf_counter() - t0, time.process_time() - c0
                if wall < best.get((key, t), float("inf")):
                    best[key, t], cpu[key, t] = wall, used
            for dtype in ("float64", "float32"):
                r = dgemm_rates(shapes, dtype, t)
                old = gemm.get((dtype, t))
                if old is None:
                    gemm[dtype, t] = r
                else:
                    for k, v in r["rates"].items():
                        old["rates"][k] = max(old["rates"][k], v)
    n, N = len(lengths), int(np.sum(lengths))
    # the per-sentence reference on the LSTM + last float64 model, every k-th sentence
    sub = batch[::max(1, n // ref_n)][:ref_n]
    spec = ref.as_spec(configs["lstm", "last", "float64"][0].spec)
    ref_rate = rate(lambda: [ref.lrp(spec, s) for s in sub], len(sub), repeat=3)
    print()
    print(f"Engine: LRP (signal-take-all) over {n:,} sentences, {N:,} tokens (lengths of "
          f"{source}), e = d = {HIDDEN}, bidirectional, {CLASSES} classes; best of {rounds} "
          f"interleaved rounds; load average {os.getloadavg()[0]:.1f} on {cores} cores.")
    for dtype in ("float64", "float32"):
        for t in thread_counts:
            g = gemm[dtype, t]
            rates = ", ".join(f"[{k.replace('x', ',', 1).replace('x', ']x[', 1)}] "
                              f"{v / 1e9:.1f}" for k, v in g["rates"].items())
            name = "dgemm" if dtype == "float64" else "sgemm"
            print(f"  numpy {name}, {t} thread(s), GFLOP/s: {rates} ({g['kernel']})")
    print()
    print("| cell | pooling | dtype | threads | wall ms | CPU ms | sentences/s | useful GFLOP/s "
          "| vs gemm [4096,120]x[120,240] | vs gemm [G,60]x[60,240] | per CPU second vs 1-thread "
          "gemm | vs float64 | vs reference |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (cell, pooling, dtype), (model, *_rest) in configs.items():
        flops = useful_flops(model, lengths)
        for t in thread_counts:
            wall = best[(cell, pooling, dtype), t]
            g = gemm[dtype, t]["rates"]
            speed = flops / wall
            vs32 = (f"{best[(cell, pooling, 'float64'), t] / wall:.2f}x"
                    if dtype == "float32" else "-")
            vs_ref = f"{n / wall / ref_rate:.0f}x" if dtype == "float64" else "-"
            # useful FLOPs per CPU second against one gemm thread: what each busy core
            # achieves, which other load does not change much
            per_cpu = flops / cpu[(cell, pooling, dtype), t] / gemm[dtype, 1]["rates"]["4096x120x240"]
            print(f"| {cell} | {pooling} | {dtype} | {t} | {wall * 1e3:.1f} | "
                  f"{cpu[(cell, pooling, dtype), t] * 1e3:.1f} | {n / wall:,.0f} | "
                  f"{speed / 1e9:.1f} | {speed / g['4096x120x240']:.0%} | "
                  f"{speed / g[f'{G8}x60x240']:.0%} | {per_cpu:.0%} | {vs32} | {vs_ref} |")
    print()
    print(f"G = {G8}: a group of 8 sentences of mean length. vs reference: tests/reference.py one "
          f"sentence at a time (LSTM + last, float64, {len(sub)} sentences, best of 3: "
          f"{ref_rate:.0f} sentences/s). A 2-thread row whose CPU time is not about twice its "
          f"wall time did not get two cores (other load). Useful FLOPs per sentence set: "
          + ", ".join(f"{c} {p} {useful_flops(configs[c, p, 'float64'][0], lengths) / 1e9:.2f} G"
                      for c, p in (("lstm", "last"), ("gru", "last"), ("lstm", "attention"))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="sentences (default 2000)")
    ap.add_argument("--ref-n", type=int, default=200,
                    help="sentences for the per-sentence reference (rate extrapolated)")
    ap.add_argument("--baseline-n", type=int, default=1000,
                    help="sentences for the batched numpy and torch baselines (every k-th, so "
                         "the length distribution stays; rate extrapolated)")
    ap.add_argument("--skip-architectures", action="store_true",
                    help="skip the GRU / pooling rows")
    ap.add_argument("--engine-only", action="store_true",
                    help="only the engine table (engine vs dgemm and the reference)")
    args = ap.parse_args(argv)

    import textlrp
    import textlrp._core

    if args.engine_only:
        print(f"textlrp kernels: {textlrp._core.isa()}")
        engine_table(np.random.default_rng(0), args.ref_n)
        return 0

    rng = np.random.default_rng(0)
    lengths, source = sentence_lengths(args.n, rng)
    batch = [rng.integers(0, VOCAB, size=int(T)).tolist() for T in lengths]
    m = random_model(rng)
    model64 = textlrp.from_arrays(m["embedding"], m["lstm_layers"], m["head"])
    model32 = textlrp.from_arrays(m["embedding"], m["lstm_layers"], m["head"], dtype=np.float32)
    cores = os.cpu_count() or 1
    thread_counts = sorted({1, cores})
    print(f"{args.n} sentences, lengths from {source}: mean {np.mean(lengths):.1f}, "
          f"max {np.max(lengths)}; e = d = {HIDDEN}, bidirectional, {CLASSES} classes, "
          f"vocab {VOCAB}; {cores} cores, kernels {textlrp._core.isa()}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)

    rows = []  # (method, implementation, dtype, threads, sentences/s)

    def add(what, impl, dtype, threads, r):
        rows.append((what, impl, dtype, threads, r))
        print(f"  {what:4s} {impl:36s} {dtype} threads={threads}: {r:8.1f} sentences/s",
              flush=True)

    # memory: peak RSS growth while explaining the whole set in one call, first without the
    # [T, e] embedding-level arrays, then with them (run first: RSS is a high-water mark)
    rss = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]
    for keep in (False, True):
        exps = model64.explain_batch(batch, method="lrp", threads=cores, keep_embedding=keep)
        rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        if keep:
            result_mb = sum(e.embedding_relevance.nbytes + e.relevance.nbytes
                            for e in exps) / 2**20
        del exps

    for t in thread_counts:
        for dtype, model in (("float64", model64), ("float32", model32)):
            for what, method in (("LRP", "lrp"), ("GI", "gi"), ("OCC", "occlusion")):
                add(what, "textlrp", dtype, t, rate(
                    lambda model=model, method=method, t=t: model.explain_batch(
                        batch, method=method, threads=t), args.n, repeat=2))

    spec = ref.as_spec(m)  # validated once, not per call
    sub = batch[:args.ref_n]
    impl = f"numpy per sentence (reference; {len(sub)} sentences, extrapolated)"
    add("LRP", impl, "float64", 1, rate(lambda: [ref.lrp(spec, s) for s in sub], len(sub)))
    add("GI", impl, "float64", 1, rate(lambda: [ref.gradient(spec, s) for s in sub], len(sub)))
    add("OCC", impl, "float64", 1, rate(lambda: [ref.occlusion(spec, s) for s in sub], len(sub)))

    base = batch[::max(1, args.n // max(1, args.baseline_n))][:args.baseline_n]
    chunks = in_batches(base, 250)
    label = f"{len(base)} sentences, 250/batch"
    add("LRP", f"numpy batched, padded ({label})", "float64", 1,
        rate(lambda: [ref.batch_lrp(spec, c) for c in chunks], len(base), repeat=2))
    add("GI", f"numpy batched, padded ({label})", "float64", 1,
        rate(lambda: [ref.batch_gradient(spec, c) for c in chunks], len(base), repeat=2))

    try:
        import torch
    except ImportError:
        torch = None
        print("  torch not installed: torch baseline skipped")
    if torch is not None:
        for t in thread_counts:
            torch.set_num_threads(t)
            for name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
                tm = torch_model(torch, m, dtype)
                add("GI", f"torch {torch.__version__.split('+')[0]} batched, packed ({label})",
                    name, t, rate(lambda tm=tm: [torch_gi_batch(torch, tm, c) for c in chunks],
                                  len(base), repeat=2 if t == 1 else 1))

    # ratio = textlrp rate / baseline rate, same method, dtype and thread count; textlrp rows
    # show their speed-up over textlrp with 1 thread
    mine = {(w, d, t): r for w, impl, d, t, r in rows if impl == "textlrp"}
    print()
    print(f"textlrp kernels: {textlrp._core.isa()}")
    print()
    print("| method | implementation | dtype | threads | sentences/s | textlrp speed-up |")
    print("|---|---|---|---:|---:|---:|")
    for what, impl, dtype, t, r in rows:
        if impl == "textlrp":
            ratio = "-" if t == 1 else f"{r / mine[(what, dtype, 1)]:.2f}x over 1 thread"
        else:
            ratio = f"{mine[(what, dtype, t)] / r:.1f}x"
        print(f"| {what} | {impl} | {dtype} | {t} | {r:,.0f} | {ratio} |")
    if not args.skip_architectures:
        architectures(rng, batch, args.n)
    engine_table(np.random.default_rng(1), args.ref_n)
    print()
    print(f"memory: explain_batch(LRP) of {args.n} sentences raised peak RSS by "
          f"{(rss[1] - rss[0]) / 1024:.1f} MB with keep_embedding=False, then by "
          f"{(rss[2] - rss[0]) / 1024:.1f} MB with the embedding relevance kept "
          f"(which holds {result_mb:.1f} MB)")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {cores} cores (other processes distort multi-thread rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
