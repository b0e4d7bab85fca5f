"""Speed of textlrp.tokenize against the nltk reference it reproduces, in the same run.

    python benchmarks/bench_tokenize.py [--repeat 5]

Input: the SST test and dev sentences (3,311) as a user would type them (tests/detok.py:
"do n't" -> "don't", "-LRB-" -> "(", no space before punctuation), from ../shared/data/sst.
Both tokenizers are checked to agree on every sentence first. Rates are best of --repeat
passes over all sentences (alternating between the two), one sentence per call; nltk is
imported before timing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from detok import SST_DIR, detokenize, sst_sentences


def rates(fns, texts: list[str], repeat: int) -> list[float]:
    """Sentences/s of each function, best of ``repeat`` passes; the passes alternate between
    the functions so that a change in the machine's load hits them alike."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            for text in texts:
                fn(text)
            best[k] = min(best[k], time.perf_counter() - start)
    return [len(texts) / b for b in best]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="passes per tokenizer (best counts)")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    from textlrp.tokenize import tokenize, tokenize_reference

    sentences = sst_sentences(("test", "dev"))
    if sentences is None:
        sys.exit(f"SST data not found at {SST_DIR}")
    texts = [detokenize(tokens) for tokens in sentences]
    differ = sum(tokenize(t) != tokenize_reference(t) for t in texts)  # also imports nltk
    if differ:
        sys.exit(f"the tokenizers disagree on {differ} of {len(texts)} sentences")

    ref, fast = rates([tokenize_reference, tokenize], texts, args.repeat)
    print(f"{len(texts)} SST test+dev sentences (detokenised), best of {args.repeat}")
    print(f"  nltk reference (tokenize_reference) {ref:>10,.0f} sentences/s")
    print(f"  textlrp.tokenize                    {fast:>10,.0f} sentences/s")
    print(f"  ratio                               {fast / ref:>10.1f}x")


if __name__ == "__main__":
    main()
