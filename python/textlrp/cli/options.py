"""What every command shares: the parser class, option types and validators, the option
groups of explain/predict, and the checks that run before any work (output paths, optional
dependencies).

A user mistake raises :class:`UsageError`; ``main()`` prints it as one line and returns 2.
Option types raise ``argparse.ArgumentTypeError``, which argparse turns into a UsageError
naming the option.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import re
from pathlib import Path
from typing import Any

from .. import render
from ..methods import DEFAULT_RULE, METHODS, RULES

PROG = "textlrp"


class UsageError(Exception):
    """A mistake in the command line; main() prints it as one line and returns 2."""


class Parser(argparse.ArgumentParser):
    # argparse would print the usage text and exit; we want one line and a return code.
    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- option types


def positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def nonnegative_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {s!r}")
    return v


def integer(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}") from None


def finite_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {s!r}")
    return v


def positive_float(s: str) -> float:
    v = finite_float(s)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {s!r}")
    return v


def eps(s: str) -> float:
    v = finite_float(s)
    if v <= 0:  # eps = 0 turns an exact zero pre-activation into 0/0
        raise argparse.ArgumentTypeError(f"eps must be > 0, got {s!r}")
    return v


def bias_factor(s: str) -> float:
    v = finite_float(s)
    if not 0.0 <= v <= 1.0:  # the API's range (Model.explain_batch says why)
        raise argparse.ArgumentTypeError(f"bias factor must be in [0, 1], got {s!r}")
    return v


def seconds(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {s!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {s!r}")
    return v


def scale(s: str) -> str | float:
    try:
        return render.check_scale(s)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def delimiter(s: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
    d = named.get(s.lower(), s)
    if len(d) != 1 or d in "\r\n\"":
        raise argparse.ArgumentTypeError(
            f"a delimiter is one character (or tab, comma, semicolon, pipe, space), got {s!r}")
    return d


def csv_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


# --------------------------------------------------------------------------- option groups


class FromEnvironment(str):
    """The --model default read from $TEXTLRP_MODEL. argparse keeps a default object as it is
    when the option is not given, so errors can tell the user where the path came from."""


def model_from_environment() -> str | None:
    value = os.environ.get("TEXTLRP_MODEL")
    return FromEnvironment(value) if value else None  # empty: unset, as shells mean it


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", metavar="PATH", default=model_from_environment(),
                        help="model file (.npz); default: $TEXTLRP_MODEL or the bundled SST-5 "
                             "model")


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """TEXT or --input FILE with its column options (explain, predict)."""
    parser.add_argument("text", nargs="*", metavar="TEXT",
                        help="the text (several words need no quotes)")
    g = parser.add_argument_group("corpus input")
    g.add_argument("-i", "--input", metavar="FILE",
                   help="one text per line ('-' = stdin); output is streamed, one record per line")
    g.add_argument("--column", metavar="N|NAME",
                   help="read the text from this column of a TSV/CSV file (N counts from 1; "
                        "a NAME implies --header)")
    g.add_argument("--delimiter", type=delimiter, metavar="CHAR",
                   help="column delimiter for --column (default: ',' for *.csv, else tab)")
    g.add_argument("--label-column", metavar="N|NAME",
                   help="with --column: the gold label (class name or index) is in this column; "
                        "the HTML report then sorts and filters by error, JSON gets 'label'")
    g.add_argument("--header", action="store_true", help="the first row is a header (skipped)")
    g.add_argument("--skip-empty", action="store_true",
                   help="skip empty lines instead of writing an error record for them")
    g.add_argument("--batch-size", type=positive_int, default=256, metavar="N",
                   help="texts per engine call (default 256; memory grows with it)")


def add_dask_options(parser: argparse.ArgumentParser) -> None:
    """explain's options for a corpus on a Dask cluster (textlrp.dask runs them; neither it
    nor dask is imported to register them)."""
    g = parser.add_argument_group("Dask cluster (needs textlrp[dask])")
    g.add_argument("--dask", metavar="ADDRESS|local[:N]",
                   help="explain --input (a file or a quoted glob such as 'corpus/*.txt') on "
                        "the Dask scheduler at ADDRESS (tcp://host:8786), or on a local cluster "
                        "of N worker processes (default: one per core); needs --output-dir")
    g.add_argument("--output-dir", metavar="DIR",
                   help="with --dask: one JSON Lines file per partition; a rerun skips the "
                        "partitions already written")
    g.add_argument("--partition-lines", type=positive_int, default=10_000, metavar="N",
                   help="with --dask: input lines per partition (default 10000)")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """Where and how records are written (explain, predict)."""
    o = parser.add_argument_group("output")
    o.add_argument("-f", "--format", choices=render.format_names(),
                   help="; ".join(f"{n}: {w.help}" for n, w in sorted(render.WRITERS.items()))
                        + ". Default: from the --output suffix ("
                        + ", ".join(f"{s} {n}" for s, n in render.suffix_formats().items())
                        + "), else ansi for TEXT and json for --input")
    o.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    o.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colours in ansi output (auto: only on a terminal and without NO_COLOR)")
    o.add_argument("--theme", choices=("auto", "light", "dark"), default="auto",
                   help="terminal colour scale; both are readable anywhere (auto: from COLORFGBG)")
    o.add_argument("--title", help="title of an HTML report")
    o.add_argument("--threads", type=positive_int, metavar="N",
                   help="worker threads (default: all cores)")
    o.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar or summary on stderr")


def add_method_options(parser: argparse.ArgumentParser) -> None:
    """--method and its parameters. A parameter left out is not passed to the API (which
    fills in its default), so giving one to a method that does not take it is an error."""
    e = parser.add_argument_group("explanation")
    e.add_argument("--method", choices=tuple(METHODS), default="lrp",
                   help="lrp (default), sa (squared gradient norm), gi (gradient x input), "
                        "occlusion (one forward pass per word: O(T^2) per text), random "
                        "(a seeded baseline)")
    e.add_argument("--rule", choices=tuple(RULES),
                   help=f"LRP rule for the LSTM's products (default {DEFAULT_RULE}; lrp only)")
    e.add_argument("--eps", type=eps, help="LRP epsilon stabiliser, > 0 (default 0.001; lrp only)")
    e.add_argument("--bias-factor", type=bias_factor, metavar="X",
                   help="share of bias relevance passed down, in [0, 1] (default 0; 1 conserves "
                        "relevance; lrp only)")
    e.add_argument("--seed", type=integer, help="seed of --method random (default 0)")


def method_options(args: argparse.Namespace) -> dict[str, Any]:
    """The API keywords of --method and the parameters the user gave."""
    opts: dict[str, Any] = {"method": args.method}
    for name in ("rule", "eps", "bias_factor", "seed"):
        value = getattr(args, name)
        if value is not None:
            opts[name] = value
    return opts


def method_text(opts: dict[str, Any]) -> str:
    """How the explanations were made, for the legend: every parameter, defaults included."""
    method = opts["method"]
    if method == "lrp":
        return (f"lrp ({opts.get('rule', DEFAULT_RULE)}, eps {opts.get('eps', 1e-3):g}, "
                f"bias_factor {opts.get('bias_factor', 0.0):g})")
    if method == "random":
        return f"random (seed {opts.get('seed', 0)})"
    return str(method)


# Terminal control sequences: CSI (ESC [ or 0x9b ... final byte), terminated OSC/DCS/SOS/PM/APC
# strings (up to BEL or ST), and any other ESC + one character (so an unterminated string loses
# its introducer and its text stays visible).
_CONTROL_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b.?", re.DOTALL)


def terminal_safe(text: str, newlines: bool = False) -> str:
    """``text`` from a model file made harmless for a terminal: control sequences removed,
    any other non-printable character (C0/C1 controls, bidi overrides, ...) shown as U+FFFD.
    ``newlines``: keep line breaks (the model card)."""
    text = _CONTROL_SEQUENCE.sub("", text.expandtabs(4) if newlines else text)
    return "".join(c if c.isprintable() or (newlines and c == "\n") else "\ufffd" for c in text)


# --------------------------------------------------------------------------- checks before work


def check_output_path(path: str | os.PathLike[str] | None, option: str) -> None:
    """UsageError unless ``path`` can be written as a file: an existing writable file, or a
    new file in an existing writable directory. None and '-' (stdout) pass. Run before the
    work starts, so a long run never ends in a failed write."""
    if path is None or str(path) == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"cannot write {option} {path}: it is a directory; give a file name")
    if p.exists():
        if not os.access(p, os.W_OK):
            raise UsageError(f"cannot write {option} {path}: the file is not writable")
        return
    parent = p.parent
    if not parent.exists():
        raise UsageError(f"cannot write {option} {path}: the directory {parent} does not exist")
    if not parent.is_dir():
        raise UsageError(f"cannot write {option} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {option} {path}: the directory {parent} is not writable")


def check_output_dir(path: str | os.PathLike[str], option: str) -> None:
    """UsageError unless ``path`` is a writable directory or can be created as one."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise UsageError(f"{option} {path}: exists and is not a directory")
        if not os.access(p, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {path}: the directory is not writable")
        return
    ancestor = p.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{option} {path}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot create it, {ancestor} is not writable")


def require(module: str, purpose: str, install: str, name: str | None = None) -> Any:
    """Import an optional dependency before the work that needs it starts; UsageError with
    the install command when it is missing (or broken). ``name``: as users know it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"{purpose} needs {name or module.split('.')[0]} (not installed): "
                         f"{install}") from None
