"""``textlrp predict``: class probabilities of a text or of every line of a corpus."""

from __future__ import annotations

import argparse
from typing import Any

from ..explanation import Prediction
from . import inputs, options, outputs


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "predict", help="class probabilities of a text or a corpus",
        description="Predict the class of a text or of every line of a corpus.")
    options.add_source_options(p)
    options.add_model_option(p)
    options.add_output_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    text = inputs.the_text(args)
    fmt = outputs.check_output(args)
    model = inputs.text_model(args)
    if text is None:
        return outputs.run_corpus(args, fmt, model, "predict")
    enc = model.encode(text)
    scores = model.predict([enc], threads=args.threads)[0]
    outputs.write_one(args, fmt, model, "predict",
                      Prediction(text, enc.tokens, enc.oov, scores, list(model.class_names)))
    return 0
