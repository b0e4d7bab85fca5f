"""Speed of the word-deletion protocol (textlrp.experiments.word_deletion) vs a naive loop.

    python benchmarks/bench_deletion.py [--model PATH] [--data PATH] [--naive-n 300] [--threads N]

1. The full protocol on the SST test set (default: ../shared/data/sst/test.txt, sentences
   with >= 10 tokens, methods lrp, sa, gi, occlusion, random over 5 seeds, K = 5, zero mode):
   wall time of the batched implementation.
2. Baseline in the same run: the naive way -- per sentence, one ``model.explain`` call, then
   one ``model.predict`` call per deletion step -- on the first --naive-n sentences that pass
   the length filter, against the batched implementation on the same sentences. The two
   must give identical accuracies (checked); the ratio of their times is printed.

Numbers are for this machine only; the ratios are the point.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from textlrp.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
SST_TEST = ROOT.parent / "shared" / "data" / "sst" / "test.txt"


def naive_deletion(model, sentences, labels, *, methods, k, seeds):
    """The protocol written the obvious way: one engine call per sentence and deletion step."""
    out = {}
    y = [model.class_index(lab) for lab in labels]
    pred0 = [int(np.argmax(model.predict([s])[0])) for s in sentences]
    for method in methods:
        curves_c, curves_f = [], []
        for seed in seeds if method == "random" else [0]:
            hits = np.zeros((len(sentences), k + 1), dtype=bool)
            for i, s in enumerate(sentences):
                correct = pred0[i] == y[i]
                params = {"seed": seed} if method == "random" else {}
                rel = model.explain(s, method=method, target=y[i], **params).relevance
                order = np.argsort(-rel if correct else rel, kind="stable")
                hits[i, 0] = correct
                for j in range(1, k + 1):
                    scores = model.predict([s], deleted=[order[:j].tolist()])[0]
                    hits[i, j] = int(np.argmax(scores)) == y[i]
            c = np.array([p == t for p, t in zip(pred0, y)])
            curves_c.append(hits[c].mean(axis=0))
            curves_f.append(hits[~c].mean(axis=0))
        out[method] = (np.mean(curves_c, axis=0), np.mean(curves_f, axis=0))
    return out


def main(argv=None) -> int:
    import textlrp
    from textlrp.experiments import DeletionConfig, load_labelled, word_deletion

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default=None, help="model .npz (default: bundled SST-5 model)")
    ap.add_argument("--data", default=str(SST_TEST))
    ap.add_argument("--naive-n", type=int, default=300, help="sentences for the naive comparison")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=2, help="best of N for the batched runs")
    args = ap.parse_args(argv)

    if not Path(args.data).is_file():
        print(f"no data at {args.data}; pass --data", file=sys.stderr)
        return 1
    model = textlrp.load_model(args.model)
    sentences, labels = load_labelled(args.data, class_names=model.class_names)
    print(f"model: {model!r}")
    print(
        f"data: {args.data} ({len(sentences)} sentences); "
        f"cores: {os.cpu_count()}; threads: {args.threads}; "
        f"load average at start: {os.getloadavg()[0]:.2f}"
    )
    config = DeletionConfig(methods=METHODS, k=5, min_length=10, random_seeds=range(5))
    kw = {"threads": args.threads}

    best = None
    for _ in range(args.repeat):
        res = word_deletion(model, sentences, labels, config, **kw)
        best = res if best is None or res.seconds < best.seconds else best
    assert best is not None
    print(
        f"\nfull protocol, batched: {best.seconds:.2f} s for {best.n_used} sentences "
        f"({best.n_correct} correct, {best.n_false} false), best of {args.repeat}"
    )
    for name, sec in best.timing.items():
        print(f"  {name:24s} {sec:7.2f} s")

    long = [(s, lab) for s, lab in zip(sentences, labels) if len(model.encode(s)[1]) >= 10][
        : args.naive_n
    ]
    sub_s, sub_l = [s for s, _ in long], [lab for _, lab in long]
    t = time.perf_counter()
    naive = naive_deletion(model, sub_s, sub_l, methods=METHODS, k=5, seeds=list(range(5)))
    t_naive = time.perf_counter() - t
    t_batched = min(word_deletion(model, sub_s, sub_l, config, **kw).seconds
                    for _ in range(args.repeat))
    check = word_deletion(model, sub_s, sub_l, config, **kw)
    for m in METHODS:
        np.testing.assert_allclose(check.methods[m].correct, naive[m][0], err_msg=m)
        np.testing.assert_allclose(check.methods[m].false, naive[m][1], err_msg=m)
    print(f"\nsame {len(sub_s)} sentences, all 5 methods (random x5 seeds), identical accuracies:")
    print(f"  naive per-sentence loop: {t_naive:8.2f} s")
    print(f"  batched word_deletion:   {t_batched:8.2f} s")
    print(f"  speed-up:                {t_naive / t_batched:8.1f}x")
    print(f"  naive extrapolated to the full set: ~{t_naive * best.n_used / len(sub_s):.0f} s")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (other jobs slow every number down)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
