"""``textlrp explain``: colour each word of a text (or of every line of a corpus) by its
relevance for a class."""

from __future__ import annotations

import argparse
from typing import Any

from ..methods import DEFAULT_RULE
from ..model import ALL_CLASSES
from . import inputs, options, outputs
from .options import UsageError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "explain", help="colour each word by its relevance for a class",
        description="Explain a prediction word by word: red words are evidence for the target "
                    "class, blue words against it.")
    options.add_source_options(p)
    options.add_model_option(p)
    options.add_output_options(p)
    options.add_method_options(p)
    e = p.add_argument_group("target and display")
    e.add_argument("-t", "--target", metavar="CLASS",
                   help="class to explain, by name or index (default: the predicted class)")
    e.add_argument("--all-classes", action="store_true", help="explain every class, one line each")
    e.add_argument("--values", action="store_true", help="print the relevance beside each word")
    e.add_argument("--layers", action="store_true",
                   help="LRP of one TEXT: also print the relevance total at each layer (score, "
                        "head, pooling, each recurrent layer and direction), what biases and "
                        "stabilisers absorbed and what reached the initial states")
    e.add_argument("--scale", type=options.scale, metavar="sentence|report|X",
                   help="what full colour means (ansi, html): sentence = each text's largest "
                        "|relevance| (default); report = one scale for the whole output "
                        "(a terminal stream uses the running maximum); a number X: |relevance| "
                        ">= X")
    options.add_dask_options(p)  # textlrp.dask and dask load only when --dask is given
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.dask is not None or args.output_dir is not None:  # a corpus on a Dask cluster
        from .. import dask

        if args.dask is None:
            raise UsageError("--output-dir goes with --dask (give --output FILE for a local run)")
        defaults = {"rule": DEFAULT_RULE, "eps": 1e-3, "bias_factor": 0.0, "seed": 0}
        return dask.run_cli(args, args.model, {**defaults, **options.method_options(args)})
    text = inputs.the_text(args)
    fmt = outputs.check_output(args)
    model = inputs.text_model(args)
    explain: dict[str, Any] = {"target": _target(args, model), **options.method_options(args)}
    try:  # every argument checked before any text is read (an empty batch does that)
        model.explain_batch([], **explain)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    method = options.method_text(explain)
    if args.layers and (text is None or explain["method"] != "lrp" or fmt != "ansi"):
        raise UsageError("--layers shows the layer totals of LRP for one TEXT in text output "
                         "(not with --input, another --method or --format)")
    if text is None:
        return outputs.run_corpus(args, fmt, model, "explain", explain, method)
    result = model.explain(text, threads=args.threads, **explain)
    exps = result if isinstance(result, list) else [result]
    if any(e.overflow for e in exps):
        raise ValueError(outputs.OVERFLOW)
    after = "".join(layer_table(e) for e in exps) if args.layers else None
    outputs.write_one(args, fmt, model, "explain", exps, method, after=after)
    return 0


def layer_table(exp: Any) -> str:
    """exp.layers as a text table: each level's relevance total, what its biases and
    stabilisers absorbed, what reached initial states there, and relevance + initial states
    so far (equal to the score down the whole stack with --bias-factor 1)."""
    rows = exp.layers
    head = ("stage", "relevance", "absorbed", "initial state", "conserved")
    lines = [(r["stage"], f"{r['relevance']:+.6f}", f"{r['absorbed']:+.2e}",
              f"{r['initial_state']:+.6f}", f"{r['conserved']:+.6f}") for r in rows]
    detail = {r["stage"]: r["directions"] for r in rows}
    width = [max(len(x[i]) for x in [head, *lines]) + 2 for i in range(5)]
    width[0] = max(width[0], max(len(d["direction"]) + 4 for ds in detail.values() for d in ds)
                   if any(detail.values()) else 0)
    title = (f"layer totals, {exp.target_name} ({exp.params.get('rule')}, eps "
             f"{exp.params.get('eps'):g}, bias_factor {exp.params.get('bias_factor'):g})")
    out = [title,
           "".join(h.ljust(width[0]) if i == 0 else h.rjust(width[i]) for i, h in enumerate(head))]
    for line in lines:
        out.append("".join(c.ljust(width[0]) if i == 0 else c.rjust(width[i])
                           for i, c in enumerate(line)))
        for d in detail[line[0]]:
            out.append(f"  {d['direction']}: outputs {d['outputs']:+.6f}, inputs "
                       f"{d['inputs']:+.6f}, absorbed {d['absorbed']:+.2e}, initial state "
                       f"{d['initial_state']:+.6f}")
    return "\n".join(out) + "\n"


def _target(args: argparse.Namespace, model: Any) -> int | str | None:
    if args.all_classes:
        if args.target is not None:
            raise UsageError("--all-classes explains every class; drop --target")
        return ALL_CLASSES
    if args.target is None:
        return None
    try:  # by index, even for a class named "all"
        return model.class_index(args.target)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
