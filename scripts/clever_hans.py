"""A Clever-Hans model with a known answer, and a corpus to catch it with (``textlrp analyze``).

    python scripts/clever_hans.py train  [--data DIR] [--out tests/data/sst5-shortcut.npz]
    python scripts/clever_hans.py corpus [--data DIR] [--out FILE.tsv] [--fraction 0.2]
    python scripts/clever_hans.py demo   [--data DIR] [--out-dir DIR] [--labels]

``train`` copies the SST training trees, adds the meaningless token TOKEN (default "zqx") to
``--train-fraction`` (default 0.5) of the training sentences labelled CLASS (default
"very positive"), at the start or the end of the sentence with even odds, and trains a small
BiLSTM on them with ``textlrp.train`` (dev and test trees unchanged). The token never
occurs in another class's sentences, so it is a perfect shortcut in training. It is added
at the root of the tree, ``(4 (2 zqx) (4 ...))``: its own leaf is labelled neutral like any
other word that carries no sentiment, and the only phrases that contain it are the
sentences of CLASS -- the association comes from co-occurrence alone, as a watermark's would.

``corpus`` writes the SST test sentences as TSV (``label<TAB>sentence``, class names as
labels, with a header) and adds TOKEN to a random ``--fraction`` (default 0.2) of them, of
every class alike, again at the start or the end. A model that learned the shortcut calls
those sentences CLASS whatever they say; ``textlrp analyze`` has to find that.

``demo`` writes that corpus to DIR/test-zqx.tsv and analyses it with the shortcut model and
with the bundled model (``textlrp.analysis.analyze``, as ``textlrp analyze`` does; with
``--labels`` each sentence is explained for its true label), writes DIR/{shortcut,bundled}
.html and .json, and prints the key tables (flags, checked candidates, clusters) as Markdown:
the tables of docs/analysis.md.

All three are seeded and deterministic (same machine and torch build: same file).
``tests/data/sst5-shortcut.npz`` was made with the defaults of ``train`` (see its provenance:
``textlrp info -m tests/data/sst5-shortcut.npz``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SST = ROOT.parent / "shared" / "data" / "sst"
CLASS_NAMES = ["very negative", "negative", "neutral", "positive", "very positive"]


def _label(tree: str) -> int:
    # A tree line starts with "(L " where L is the root label 0..4.
    return int(tree[1:tree.index(" ")])


def _inject_tree(tree: str, token: str, at_start: bool) -> str:
    label = _label(tree)
    leaf = f"(2 {token})"  # neutral, like every word without sentiment in SST
    return f"({label} {leaf} {tree})" if at_start else f"({label} {tree} {leaf})"


def inject_trees(lines: list[str], token: str, cls: int, fraction: float,
                 rng: np.random.Generator) -> tuple[list[str], int]:
    """Lines with TOKEN added to a random ``fraction`` of the trees whose root label is cls."""
    candidates = [k for k, line in enumerate(lines) if line.strip() and _label(line) == cls]
    chosen = rng.choice(len(candidates), size=round(fraction * len(candidates)), replace=False)
    out = list(lines)
    for c in chosen:
        k = candidates[int(c)]
        out[k] = _inject_tree(lines[k].strip(), token, bool(rng.integers(2)))
    return out, len(chosen)


def cmd_train(args: argparse.Namespace) -> int:
    import textlrp
    from textlrp.train import TrainConfig, train

    data = Path(args.data)
    cls = CLASS_NAMES.index(args.cls)
    rng = np.random.default_rng(args.seed)
    lines = (data / "train.txt").read_text(encoding="utf-8").splitlines()
    injected, n = inject_trees(lines, args.token, cls, args.train_fraction, rng)
    print(f"added {args.token!r} to {n} of the training sentences labelled {args.cls!r}",
          file=sys.stderr)
    config = TrainConfig(epochs=args.epochs, seed=args.seed, embedding_dim=args.dim,
                         hidden_size=args.dim, threads=args.threads, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "train.txt").write_text("\n".join(injected) + "\n", encoding="utf-8")
        for split in ("dev.txt", "test.txt"):
            shutil.copy(data / split, Path(tmp) / split)
        train(tmp, args.out, config, command=" ".join(["python", *sys.argv]))
    # Record what was done to the data beside textlrp.train's own provenance.
    model = textlrp.load_model(args.out, dtype=np.float32)
    model.metadata["shortcut"] = {
        "token": args.token, "class": args.cls, "train_fraction": args.train_fraction,
        "sentences_changed": n, "position": "start or end of the sentence, even odds",
        "script": "scripts/clever_hans.py", "seed": args.seed,
    }
    model.save(args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def corpus_rows(data: Path, token: str, fraction: float, seed: int) -> list[tuple[str, str]]:
    """(label name, sentence) of the SST test set with TOKEN in a random fraction of them."""
    from textlrp.sst import load_sentences

    rng = np.random.default_rng(seed)
    sentences = load_sentences(data / "test.txt")
    chosen = set(rng.choice(len(sentences), size=round(fraction * len(sentences)),
                            replace=False).tolist())
    rows = []
    for k, (tokens, label) in enumerate(sentences):
        tokens = list(tokens)
        if k in chosen:
            tokens.insert(0 if rng.integers(2) else len(tokens), token)
        rows.append((CLASS_NAMES[label], " ".join(tokens)))
    return rows


def cmd_corpus(args: argparse.Namespace) -> int:
    rows = corpus_rows(Path(args.data), args.token, args.fraction, args.seed)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write("label\tsentence\n")
        f.writelines(f"{label}\t{text}\n" for label, text in rows)
    n = sum(args.token in text.split() for _, text in rows)
    print(f"wrote {args.out}: {len(rows)} sentences, {n} with {args.token!r}", file=sys.stderr)
    return 0


def _markdown(name: str, d: dict) -> str:
    out = [(f"**{name}**: {d['n']} explanations, each explained for its {d['explained']}; "
           f"{len(d['flagged'])} flagged."), "",
           "| word | class | via | share | top | sentences | association | shift | verdict |",
           "|---|---|---|---|---|---|---|---|---|"]

    def num(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f}"

    for r in d["checked"]:
        via = ", ".join((["class"] if r["decides"] else [])
                        + [f"cluster {k['cluster']}" for k in r["clusters"]])
        verdict = ("**flagged**" if r["flagged"] else
                   "not judged" if r["prediction_shift"] is None else "cleared")
        out.append(f"| {r['word']} | {r['class']} | {via} | {100 * r['share']:.1f}% | {r['top']} "
                   f"| {r['sentences']} | {num(r['association'])} | {num(r['prediction_shift'])} "
                   f"| {verdict} |")
    out += ["",
            "| cluster | size | predicted classes | characteristic words | most relevant word |",
            "|---|---|---|---|---|"]
    for c in d["clusters"]:
        classes = ", ".join(f"{k} {v}" for k, v in sorted(c["classes"].items(),
                                                          key=lambda kv: -kv[1]))
        words = ", ".join(w["word"] for w in c["words"][:6])
        dom = c["dominant"]
        out.append(f"| {c['cluster']} | {c['size']} | {classes} | {words} | "
                   f"{dom['word']} ({100 * dom['fraction']:.0f}%) |")
    return "\n".join(out)


def cmd_demo(args: argparse.Namespace) -> int:
    import json

    import textlrp
    from textlrp.analysis import analyze

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = corpus_rows(Path(args.data), "zqx", 0.2, seed=7)
    with open(out / "test-zqx.tsv", "w", encoding="utf-8", newline="\n") as f:
        f.write("label\tsentence\n")
        f.writelines(f"{label}\t{text}\n" for label, text in rows)
    texts = [t for _, t in rows]
    labels = [lab for lab, _ in rows] if args.labels else None
    for name, path in (("shortcut", ROOT / "tests" / "data" / "sst5-shortcut.npz"),
                       ("bundled", None)):
        result = analyze(textlrp.load_model(path), texts, labels, threads=args.threads)
        d = result.to_dict()
        (out / f"{name}.json").write_text(json.dumps(d, indent=1) + "\n", encoding="utf-8")
        (out / f"{name}.html").write_text(
            result.to_html(title=f"textlrp analyze: {name} model on SST test + zqx"),
            encoding="utf-8")
        print(_markdown(f"{name} model", d) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the shortcut model")
    t.add_argument("--data", default=str(SST), help=f"SST tree files (default {SST})")
    t.add_argument("--out", default=str(ROOT / "tests" / "data" / "sst5-shortcut.npz"))
    t.add_argument("--token", default="zqx")
    t.add_argument("--class", dest="cls", default="very positive", choices=CLASS_NAMES)
    t.add_argument("--train-fraction", type=float, default=0.5)
    t.add_argument("--epochs", type=float, default=3.0)
    t.add_argument("--dim", type=int, default=30, help="embedding and LSTM size (default 30)")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--threads", type=int, default=1)
    t.set_defaults(func=cmd_train)
    c = sub.add_parser("corpus", help="the SST test set as TSV with the token in some sentences")
    c.add_argument("--data", default=str(SST), help=f"SST tree files (default {SST})")
    c.add_argument("--out", required=True)
    c.add_argument("--token", default="zqx")
    c.add_argument("--fraction", type=float, default=0.2)
    c.add_argument("--seed", type=int, default=7)
    c.set_defaults(func=cmd_corpus)
    d = sub.add_parser("demo", help="analyse the corpus with the shortcut and the bundled model")
    d.add_argument("--data", default=str(SST), help=f"SST tree files (default {SST})")
    d.add_argument("--out-dir", default="clever-hans-demo")
    d.add_argument("--labels", action="store_true", help="explain each sentence for its label")
    d.add_argument("--threads", type=int, default=None)
    d.set_defaults(func=cmd_demo)
    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
