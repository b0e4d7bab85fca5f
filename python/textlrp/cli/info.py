"""``textlrp info``: architecture, vocabulary, classes, provenance and model card of a model
file. Everything shown that came from the file is made harmless for the terminal first."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..explanation import json_ready
from . import inputs, options


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("info", help="show the model card",
                              description="Architecture, vocabulary, classes and provenance of "
                                          "a model.")
    options.add_model_option(p)
    p.add_argument("-f", "--format", choices=("text", "json"), default="text",
                   help="text: readable lines (default); json: the same card as one JSON object")
    p.set_defaults(func=run)


def model_card(model: Any, path: str | None) -> dict[str, Any]:
    """What `textlrp info` shows, as a JSON-ready dict (``architecture``: the file header's,
    ``card``: the model card text the file carries, or None)."""
    return {
        "path": path,
        "architecture": model.spec.describe(),
        "class_names": None if model.regression else [str(c) for c in model.class_names],
        "regression": bool(model.regression),
        "vocab_size": int(model.vocab_size),
        "has_vocab": model.vocab is not None,
        "unk_token": model.unk_token,
        "lowercase": bool(model.lowercase),
        "dtype": str(getattr(model.dtype, "name", model.dtype)),
        "metadata": json_ready(dict(model.metadata or {})),
        "card": model.card,
    }


def _json_safe(text: str) -> str:
    """JSON text with every non-printable character inside its strings \\u-escaped (json.dumps
    leaves C1 controls and bidi overrides raw); the escaped JSON decodes to the same data."""
    def escape(c: str) -> str:
        if c == "\n" or c.isprintable():  # newlines only occur between values (indent)
            return c
        code = ord(c)
        if code > 0xFFFF:  # a surrogate pair, as JSON spells characters beyond the BMP
            code -= 0x10000
            return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
        return f"\\u{code:04x}"
    return "".join(escape(c) for c in text)


def run(args: argparse.Namespace) -> int:
    from ..io import default_model_path

    model = inputs.load_model(args)
    path = args.model if args.model else str(default_model_path())
    info = model_card(model, path)
    if args.format == "json":
        print(_json_safe(json.dumps(info, ensure_ascii=False, indent=2, allow_nan=False)))
        return 0
    arch = info["architecture"]
    rnn = " → ".join(
        f"{'bidirectional ' if a['directions'] == 2 else ''}{a['cell'].upper()} {a['hidden']}"
        + (" per direction" if a["directions"] == 2 else "") for a in arch["layers"])
    pooling = {"last": "final states", "mean": "mean over time", "max": "max over time",
               "attention": f"additive attention ({arch['attention_size']})"}[arch["pooling"]]
    head = " → ReLU → ".join(f"linear {h['in']}→{h['out']}{'' if h['bias'] else ' (no bias)'}"
                             for h in arch["head"])
    source = (f"embedding {arch['vocab_size']}×{arch['input_size']}"
              if arch["input"] == "embedding"
              else f"continuous inputs ({arch['input_size']} features per step)")
    rows = [
        ("model", path),
        ("architecture", f"{source} → {rnn} → {pooling} → {head}"),
    ]
    if arch["input"] == "embedding":
        ids_only = "" if info["has_vocab"] else " (ids only)"
        lowercase = "yes" if info["lowercase"] else "no"
        vocabulary = (f"{info['vocab_size']} entries{ids_only}, unknown token "
                      f"{info['unk_token']!r}, lowercase {lowercase}")
        rows.append(("vocabulary", vocabulary))
    rows += [
        ("outputs", "one value (regression)" if info["regression"]
         else ", ".join(f"{k} {c}" for k, c in enumerate(info["class_names"]))
         + "  (scores are explained before any softmax)"),
        ("dtype", info["dtype"]),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if info["metadata"]:
        lines.append("metadata")
        lines.extend(_describe_metadata(info["metadata"], indent=2))
    # Everything below came from the file: no string of it may drive the terminal.
    text = "\n".join(options.terminal_safe(line) for line in lines)
    if info["card"]:
        card = options.terminal_safe(info["card"].strip("\n"), newlines=True)
        text += "\n\nmodel card\n\n" + card
    else:
        text += "\n\nmodel card: none (this model file carries no card)"
    print(text)
    return 0


def _describe_metadata(value: dict[str, Any], indent: int) -> list[str]:
    """Readable lines for a JSON dict: flat dicts on one line, long lists summarised."""
    pad = " " * indent
    lines = []
    for key, v in value.items():
        if isinstance(v, dict) and v and all(_is_scalar(x) for x in v.values()):
            lines.append(f"{pad}{key}: " + ", ".join(f"{k} {_scalar(x)}" for k, x in v.items()))
        elif isinstance(v, dict) and v:
            lines.append(f"{pad}{key}")
            lines.extend(_describe_metadata(v, indent + 2))
        elif isinstance(v, list) and (len(v) > 12 or not all(_is_scalar(x) for x in v)):
            lines.append(f"{pad}{key}: [{len(v)} entries]")
        elif isinstance(v, list):
            lines.append(f"{pad}{key}: " + ", ".join(_scalar(x) for x in v))
        else:
            lines.append(f"{pad}{key}: {_scalar(v)}")
    return lines


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _scalar(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
