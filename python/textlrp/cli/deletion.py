"""``textlrp deletion``: the word-deletion evaluation of explanation methods (Arras et al.
2017). The options are the fields of :class:`textlrp.experiments.DeletionConfig`, plus where
the numbers go (--json, --csv, --plot: all checked before the experiment starts)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import inputs, options
from .options import UsageError, csv_list, nonnegative_int, positive_int


def add_parser(subparsers: Any) -> None:
    from ..experiments import METHODS, DeletionConfig

    d = DeletionConfig()
    p = subparsers.add_parser(
        "deletion",
        help="word-deletion evaluation of explanation methods (Arras et al. 2017)",
        description="Delete the most relevant words of correctly classified sentences (least "
        "relevant of falsely classified ones) and report accuracy after 0..K deletions per "
        "method.",
    )
    p.add_argument("--data", required=True,
                   help="SST PTB tree file (e.g. test.txt) or label<TAB>text file")
    p.add_argument("--format", choices=("auto", "sst", "tsv"), default="auto",
                   help="data format (default: auto)")
    options.add_model_option(p)
    g = p.add_argument_group("protocol")
    g.add_argument("--methods", default=",".join(METHODS), type=csv_list,
                   help=f"comma-separated (default: {','.join(METHODS)}; lrp-<rule> for an LRP "
                        "rule variant)")
    g.add_argument("--rules", default="", type=csv_list,
                   help="extra LRP rules reported as lrp-<rule>, e.g. prop,half,abs")
    g.add_argument("-k", "--k", type=positive_int, default=d.k,
                   help=f"largest number of deleted words (default: {d.k})")
    g.add_argument("--min-length", type=positive_int, default=d.min_length,
                   help=f"skip shorter sentences (default: {d.min_length})")
    g.add_argument("--target", choices=("true", "predicted"), default=d.target)
    g.add_argument("--order", choices=("auto", "decreasing", "increasing"), default=d.order)
    g.add_argument("--mode", choices=("zero", "remove"), default=d.mode)
    g.add_argument("--seeds", type=nonnegative_int, default=len(d.random_seeds),
                   help=f"random baseline seeds 0..N-1 (default: {len(d.random_seeds)})")
    g.add_argument("--eps", type=options.eps, default=d.eps,
                   help=f"LRP stabiliser, > 0 (default {d.eps:g})")
    g.add_argument("--bias-factor", type=options.bias_factor, default=d.bias_factor,
                   help=f"LRP bias share, in [0, 1] (default {d.bias_factor:g})")
    g = p.add_argument_group("output")
    g.add_argument("--json", default=None, metavar="FILE", help="write all numbers as JSON")
    g.add_argument("--csv", default=None, metavar="FILE", help="write the curves as CSV")
    g.add_argument("--plot", default=None, metavar="FILE",
                   help="write a plot; the suffix picks the format (png, svg, pdf, ...; needs "
                        "matplotlib)")
    g.add_argument("--threads", type=positive_int, default=None)
    g.add_argument("--batch-size", type=positive_int, default=4096)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..experiments import DeletionConfig, load_labelled, word_deletion

    try:
        config = DeletionConfig(
            methods=args.methods, rules=args.rules, k=args.k, min_length=args.min_length,
            target=args.target, order=args.order, mode=args.mode,
            random_seeds=tuple(range(args.seeds)), eps=args.eps, bias_factor=args.bias_factor)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    # Everything that could fail after the experiment is checked before it.
    for option in ("json", "csv", "plot"):
        options.check_output_path(getattr(args, option), f"--{option}")
    if args.plot:
        _check_plot(args.plot)
    model = inputs.load_model(args)
    sentences, labels = load_labelled(args.data, format=args.format, class_names=model.class_names)
    result = word_deletion(model, sentences, labels, config, threads=args.threads,
                           batch_size=args.batch_size, progress=sys.stderr.isatty())
    print(result.table())
    if args.json:
        result.to_json(args.json)
        print(f"wrote {args.json}")
    if args.csv:
        result.to_csv(args.csv)
        print(f"wrote {args.csv}")
    if args.plot:
        result.plot(args.plot, title=f"word deletion on {Path(args.data).name}")
        print(f"wrote {args.plot}")
    return 0


def _check_plot(path: str) -> None:
    """matplotlib is there and can write the format the suffix names."""
    backend = options.require("matplotlib.backend_bases", "--plot",
                              "pip install 'textlrp[plot]'", name="matplotlib")
    formats = backend.FigureCanvasBase.get_supported_filetypes()
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in formats:
        raise UsageError(f"--plot {path}: cannot tell the image format from the suffix; use one "
                         f"of {', '.join('.' + f for f in sorted(formats))}")
