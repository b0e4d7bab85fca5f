"""``textlrp train``: train the Arras et al. (2017) bidirectional LSTM on SST tree files
(needs torch). The options are the fields of :class:`textlrp.train.TrainConfig`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import options
from .options import UsageError, finite_float, positive_float, positive_int


def add_parser(subparsers: Any) -> None:
    from ..train import DropoutConfig, NetConfig, OptimConfig, TrainConfig

    n, o, r, d = NetConfig(), OptimConfig(), DropoutConfig(), TrainConfig()
    p = subparsers.add_parser(
        "train",
        help="train a bidirectional LSTM sentiment classifier on SST tree files (needs torch)",
        description="Train the Arras et al. (2017) bidirectional LSTM on all labelled phrases of "
        "DIR/train.txt, select the best checkpoint on DIR/dev.txt sentence accuracy, report "
        "DIR/test.txt accuracy, and write a textlrp model file. Requires torch.",
    )
    p.add_argument("--data", required=True, metavar="DIR",
                   help="directory with SST train.txt, dev.txt [, test.txt]")
    p.add_argument("--out", required=True, metavar="FILE", help="model file to write (.npz)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=positive_float, default=o.epochs,
                   help=f"training epochs, may be fractional (default {o.epochs:g})")
    g.add_argument("--lr", type=positive_float, default=o.lr,
                   help=f"Adam learning rate (default {o.lr:g})")
    g.add_argument("--batch-size", type=positive_int, default=o.batch_size,
                   help=f"default {o.batch_size}")
    g.add_argument("--weight-decay", type=finite_float, default=o.weight_decay,
                   help=f"default {o.weight_decay:g}")
    g.add_argument("--clip", type=finite_float, default=o.clip,
                   help=f"gradient norm clipping, 0 = off (default {o.clip:g})")
    g.add_argument("--ema", type=finite_float, default=o.ema,
                   help="decay of the weight moving average that is evaluated and exported, "
                        f"0 = off (default {o.ema:g})")
    g = p.add_argument_group("network")
    g.add_argument("--embedding-dim", type=positive_int, default=n.embedding_dim,
                   help=f"default {n.embedding_dim}")
    g.add_argument("--hidden-size", type=positive_int, default=n.hidden_size,
                   help=f"per direction (default {n.hidden_size})")
    g.add_argument("--embedding-scale", type=finite_float, default=n.embedding_scale,
                   help=f"std of the initial embeddings (default {n.embedding_scale:g})")
    g = p.add_argument_group("regularisation")
    g.add_argument("--dropout", type=finite_float, default=r.dropout,
                   help=f"dropout on the features (default {r.dropout:g})")
    g.add_argument("--embedding-dropout", type=finite_float, default=r.embedding_dropout,
                   help=f"dropout on the word embeddings (default {r.embedding_dropout:g})")
    g.add_argument("--word-dropout", type=finite_float, default=r.word_dropout,
                   help="probability of replacing a training token by <unk> "
                        f"(default {r.word_dropout:g})")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=options.integer, default=d.seed,
                   help=f"random seed (default {d.seed})")
    g.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=d.lowercase,
                   help=f"lowercase tokens (stored in the model file; default {d.lowercase})")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads (default: torch's choice)")
    g.add_argument("--evals-per-epoch", type=positive_int, default=d.evals_per_epoch,
                   help=f"default {d.evals_per_epoch}")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train import TORCH_HINT, TrainConfig, command_line, summary_lines, train

    try:
        cfg = TrainConfig.from_dict(
            {name: getattr(args, name) for name in TrainConfig().as_dict() if hasattr(args, name)},
            progress=not args.no_progress)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    data = Path(args.data)
    if not data.is_dir():
        raise UsageError(f"--data {args.data}: not a directory (expected SST train.txt, dev.txt)")
    options.check_output_path(args.out, "--out")
    options.require("torch", "textlrp train", TORCH_HINT, name="PyTorch")
    result = train(args.data, args.out, cfg, command=command_line(args.data, args.out, cfg))
    print("\n".join(summary_lines(args.out, result)))
    return 0
