"""``textlrp analyze``: what the model relies on across a corpus — word statistics per class,
SpRAy clusters of explanations and the Clever-Hans check (see docs/analysis.md). The work is
:func:`textlrp.analysis.analyze_rows`; this module only reads the corpus and writes."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..methods import DEFAULT_RULE, RULES
from . import inputs, options, outputs
from .options import PROG, UsageError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "analyze", help="what the model relies on across a corpus (SpRAy, Clever-Hans check)",
        description="Explain every text of a corpus and report the words for and against each "
                    "class, clusters of similar explanations (SpRAy) and words the model uses "
                    "as a shortcut. See docs/analysis.md.")
    g = p.add_argument_group("corpus input")
    g.add_argument("-i", "--input", required=True, metavar="FILE",
                   help="one text per line ('-' = stdin), or a TSV/CSV file with --column")
    g.add_argument("--column", metavar="N|NAME", help="the text column of a TSV/CSV file")
    g.add_argument("--labels", dest="label_column", metavar="N|NAME",
                   help="with --column: the column with each text's true class (name or index); "
                        "a labelled text is explained for its label instead of its prediction")
    g.add_argument("--delimiter", type=options.delimiter, metavar="CHAR",
                   help="column delimiter (default: ',' for *.csv, else tab)")
    g.add_argument("--header", action="store_true", help="the first row is a header (skipped)")
    g.add_argument("--skip-empty", action="store_true", help="skip empty lines silently")
    options.add_model_option(p)
    o = p.add_argument_group("output")
    o.add_argument("-o", "--output", metavar="FILE", help="the HTML report")
    o.add_argument("--json", metavar="FILE", help="every number of the report as JSON ('-' = stdout)")
    o.add_argument("--title", help="title of the report")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    a = p.add_argument_group("analysis")
    a.add_argument("--clusters", type=options.positive_int, metavar="N",
                   help="number of SpRAy clusters (default: read off the largest eigengap)")
    a.add_argument("--no-clusters", action="store_true",
                   help="skip the clustering (word statistics and flags only; no scikit-learn)")
    a.add_argument("--min-count", type=options.positive_int, default=5, metavar="N",
                   help="least occurrences in a class for a word to be ranked (default 5)")
    a.add_argument("--sample", type=options.positive_int, default=20000, metavar="N",
                   help="cluster a random sample of at most N explanations (default 20000)")
    a.add_argument("--seed", type=options.integer, default=0,
                   help="seed of the sample and the clustering")
    a.add_argument("--rule", choices=list(RULES), default=DEFAULT_RULE, help="LRP rule")
    a.add_argument("--eps", type=options.eps, default=1e-3, help="LRP epsilon (default 0.001)")
    a.add_argument("--bias-factor", type=options.bias_factor, default=0.0,
                   help="share of bias relevance passed down, in [0, 1] (default 0)")
    a.add_argument("--batch-size", type=options.positive_int, default=256, metavar="N",
                   help="texts per engine call (default 256)")
    a.add_argument("--threads", type=options.positive_int, metavar="N",
                   help="worker threads (default: all cores)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import analysis

    if args.output is None and args.json is None:
        raise UsageError("give --output REPORT.html and/or --json FILE")
    if args.label_column is not None and args.column is None:
        raise UsageError("--labels needs --column: the texts and labels come from a TSV/CSV file")
    for out, option in ((args.output, "--output"), (args.json, "--json")):
        if out not in (None, "-"):
            options.check_output_path(out, option)
            if args.input != "-" and outputs._same_file(args.input, out):
                raise UsageError(f"{option} would overwrite the --input file")
    if not args.no_clusters:
        for module, name in (("sklearn", "scikit-learn"), ("scipy", "scipy")):
            options.require(module, "the SpRAy clustering (or use --no-clusters)",
                            "pip install 'textlrp[analysis]'", name)
    model = inputs.text_model(args)
    names = model.class_names
    source = inputs.Source(args, names)  # checks the options on the first rows

    def rows(items: Iterator[inputs.Row]) -> Iterator[analysis.Row]:
        for row in items:
            if row.kind == "label":  # a labelled text is explained for its label: no guessing
                raise UsageError(f"--labels {args.label_column}: line {row.line}: {row.error}")
            label = None if row.label is None else names[row.label]
            yield analysis.Row(row.line, row.text, label, row.error)

    progress = outputs.Progress(source, args, "analysing")
    try:
        result = analysis.analyze_rows(
            model, rows(source.rows), clusters=args.clusters, spray=not args.no_clusters,
            min_count=args.min_count, sample_size=args.sample, seed=args.seed, rule=args.rule,
            eps=args.eps, bias_factor=args.bias_factor, batch_size=args.batch_size,
            threads=args.threads, progress=progress.update)
    finally:
        progress.close()
        source.close()
    subtitle = f"model {inputs.model_label(args)} · corpus {Path(source.name).name}"
    if args.output is not None:
        page = result.to_html(title=args.title, subtitle=subtitle)
        with outputs.open_output(argparse.Namespace(output=args.output)) as f:
            f.write(page)
    if args.json is not None:
        text = json.dumps(result.to_dict(), ensure_ascii=False, indent=1, allow_nan=False)
        with outputs.open_output(argparse.Namespace(output=args.json)) as f:
            f.write(text + "\n")
    if not args.quiet:
        # repr() escapes control characters of words and class names from the model file.
        flagged = ", ".join(f"{f['word']!r} ({f['class']!r})" for f in result.flagged) or "none"
        skipped = f", {result.skipped} lines skipped" if result.skipped else ""
        print(f"{PROG}: analysed {result.n} explanations{skipped}; flagged: {flagged}",
              file=sys.stderr)
        if result.spray_skipped:
            print(f"{PROG}: {result.spray_skipped}", file=sys.stderr)
    return 0
