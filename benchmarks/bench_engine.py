"""Speed of the textlrp engine against baselines measured in the same run.

    python benchmarks/bench_engine.py [--n 2000] [--ref-n 200]

Model: random bidirectional LSTM, e = d = 60, 5 classes, vocabulary 20,000 (the size of the
default SST model).  Sentences: token ids drawn at random, lengths drawn from the SST test set
when ../shared/data/sst is there (else a lognormal fit to it, mean ~19 tokens).

Baselines:
- reference: tests/reference.py, the plain per-sentence numpy code (timed on --ref-n sentences,
  rate extrapolated);
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
    args = ap.parse_args(argv)

    import textlrp
    import textlrp._core

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
            for what, method in (("LRP", "lrp"), ("GI", "gi")):
                add(what, "textlrp", dtype, t, rate(
                    lambda model=model, method=method, t=t: model.explain_batch(
                        batch, method=method, threads=t), args.n, repeat=2))

    spec = ref.as_spec(m)  # validated once, not per call
    sub = batch[:args.ref_n]
    impl = f"numpy per sentence (reference; {len(sub)} sentences, extrapolated)"
    add("LRP", impl, "float64", 1, rate(lambda: [ref.lrp(spec, s) for s in sub], len(sub)))
    add("GI", impl, "float64", 1, rate(lambda: [ref.gradient(spec, s) for s in sub], len(sub)))

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
