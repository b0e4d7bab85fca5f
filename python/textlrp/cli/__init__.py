"""The ``textlrp`` command line: one module per command in this package.

Each command module exposes ``add_parser(subparsers)``, which registers the command, its
options and (``set_defaults(func=...)``) the function that runs it. The commands only parse,
call the API and write; what they share lives in :mod:`.options` (parser, option types and
validators, checks that run before any work), :mod:`.inputs` (model, TEXT, corpus rows) and
:mod:`.outputs` (formats, writers, the corpus loop). A new command is a new module plus its
name in ``COMMANDS`` (the module's name; the command's name is what ``add_parser``
registers, e.g. ``import_keras`` -> ``import-keras``). An option of every corpus command goes
into ``options.add_source_options``, another way to run a corpus into
``outputs.run_corpus``.

A user mistake prints one line ``textlrp: error: ...`` on stderr and returns 2; a corpus line
that cannot be processed becomes an error record in the output instead of stopping the run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from .options import PROG, Parser, UsageError, terminal_safe

__all__ = ["COMMANDS", "PROG", "UsageError", "build_parser", "main"]

# The command modules of this package, in the order of `textlrp --help`. Heavy dependencies
# (torch, matplotlib) load only when their commands run, never when the parser is built.
COMMANDS = ("explain", "predict", "analyze", "info", "train", "deletion", "data", "import_keras")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or (``command``, a module name of COMMANDS) of that one
    alone: a run of one command imports only its module (cold start)."""
    parser = Parser(
        prog=PROG,
        description="Explain LSTM text classifiers word by word with Layer-wise Relevance "
                    "Propagation.",
        epilog="Run 'textlrp COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="show program's version number and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS if command is None else (command,):
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    parser.set_defaults(commands=list(sub.choices))
    return parser


class _Version(argparse.Action):
    """--version, with the installed version looked up only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"{parser.prog} {_version()}")  # stdout, as argparse's version action
        parser.exit()


def _command(argv: Sequence[str]) -> str | None:
    """The module of the command argv runs, when its first word names one (only --help and
    --version can come before a command, and both need every command or none)."""
    if argv:
        name = str(argv[0]).replace("-", "_")
        if name in COMMANDS and str(argv[0]) == name.replace("_", "-"):
            return name
    return None


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("textlrp")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 user error, 130 interrupted,
    141 the reader of stdout went away)."""
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # restored when the block ends
            argv = sys.argv[1:] if argv is None else list(argv)
            parser = build_parser(_command(argv))
            args = parser.parse_args(argv)
            if getattr(args, "func", None) is None:
                raise UsageError(f"choose a command: {', '.join(args.commands)} "
                                 "(see 'textlrp --help')")
            return int(args.func(args) or 0)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except UsageError as exc:
        _error(str(exc))
        return 2
    except BrokenPipeError:
        # The reader (e.g. `| head`) has gone: stop quietly, and keep the interpreter's
        # final flush from raising again.
        _silence_stdout()
        return 141
    except KeyboardInterrupt:
        with contextlib.suppress(OSError, ValueError):
            print(f"\n{PROG}: interrupted", file=sys.stderr, flush=True)
        return 130
    except (ValueError, OSError, KeyError, LookupError) as exc:
        if os.environ.get("TEXTLRP_DEBUG"):
            raise
        _error(_describe(exc))
        return 2


def _error(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"{PROG}: error: {terminal_safe(' '.join(message.split()))}", file=sys.stderr,
              flush=True)


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """A warning from the API (e.g. a long occlusion) as one line, without source lines."""
    with contextlib.suppress(OSError, ValueError):
        print(f"{PROG}: warning: {terminal_safe(' '.join(str(message).split()))}",
              file=sys.stderr, flush=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
