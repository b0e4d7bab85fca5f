"""The ``textlrp`` command: ``explain``, ``predict`` and ``info``, plus the subcommands
that :mod:`textlrp.train`, :mod:`textlrp.experiments` and :mod:`textlrp.download` register.

Every subcommand is a thin layer over the public API. A user mistake prints one line
``textlrp: error: ...`` on stderr and returns 2; a corpus line that cannot be processed
becomes an error record in the output instead of stopping the run.
"""

from __future__ import annotations

import argparse
import codecs
import collections
import contextlib
import csv
import dataclasses
import json
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from . import render

PROG = "textlrp"
METHODS = ("lrp", "sa", "gi", "occlusion", "random")
RULES = ("signal-take-all", "prop", "half", "abs")
FORMATS = ("ansi", "html", "json", "tsv")
_SUFFIX_FORMATS = {".html": "html", ".htm": "html", ".json": "json", ".jsonl": "json",
                   ".ndjson": "json", ".tsv": "tsv", ".txt": "ansi"}


class UsageError(Exception):
    """A mistake in the command line; main() prints it as one line and returns 2."""


class _Parser(argparse.ArgumentParser):
    # argparse would print the usage text and exit; we want one line and a return code.
    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- option types


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def _int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}") from None


def _finite_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {s!r}")
    return v


def _eps(s: str) -> float:
    v = _finite_float(s)
    if v <= 0:  # eps = 0 turns an exact zero pre-activation into 0/0
        raise argparse.ArgumentTypeError(f"eps must be > 0, got {s!r}")
    return v


def _delimiter(s: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
    d = named.get(s.lower(), s)
    if len(d) != 1 or d in "\r\n\"":
        raise argparse.ArgumentTypeError(
            f"a delimiter is one character (or tab, comma, semicolon, pipe, space), got {s!r}")
    return d


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Explain LSTM text classifiers word by word with Layer-wise Relevance "
                    "Propagation.",
        epilog="Run 'textlrp COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    model = _Parser(add_help=False)
    model.add_argument("-m", "--model", metavar="PATH", default=os.environ.get("TEXTLRP_MODEL"),
                       help="model file (.npz); default: $TEXTLRP_MODEL or the bundled SST-5 model")

    source = _Parser(add_help=False)
    source.add_argument("text", nargs="*", metavar="TEXT",
                        help="the text (several words need no quotes)")
    g = source.add_argument_group("corpus input")
    g.add_argument("-i", "--input", metavar="FILE",
                   help="one text per line ('-' = stdin); output is streamed, one record per line")
    g.add_argument("--column", metavar="N|NAME",
                   help="read the text from this column of a TSV/CSV file (N counts from 1; "
                        "a NAME implies --header)")
    g.add_argument("--delimiter", type=_delimiter, metavar="CHAR",
                   help="column delimiter for --column (default: ',' for *.csv, else tab)")
    g.add_argument("--header", action="store_true", help="the first row is a header (skipped)")
    g.add_argument("--skip-empty", action="store_true",
                   help="skip empty lines instead of writing an error record for them")
    g.add_argument("--batch-size", type=_positive_int, default=256, metavar="N",
                   help="texts per engine call (default 256; memory grows with it)")

    output = _Parser(add_help=False)
    o = output.add_argument_group("output")
    o.add_argument("-f", "--format", choices=FORMATS,
                   help="ansi (terminal), html (one report), json (JSON Lines), tsv; default: "
                        "from the --output suffix, else ansi for TEXT and json for --input")
    o.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    o.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colours in ansi output (auto: only on a terminal and without NO_COLOR)")
    o.add_argument("--theme", choices=("auto", "light", "dark"), default="auto",
                   help="terminal colour scale; both are readable anywhere (auto: from COLORFGBG)")
    o.add_argument("--title", help="title of an HTML report")
    o.add_argument("--threads", type=_positive_int, metavar="N",
                   help="worker threads (default: all cores)")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary on stderr")

    p = sub.add_parser("explain", parents=[source, model, output],
                       help="colour each word by its relevance for a class",
                       description="Explain a prediction word by word: red words are evidence "
                                   "for the target class, blue words against it.")
    e = p.add_argument_group("explanation")
    e.add_argument("-t", "--target", metavar="CLASS",
                   help="class to explain, by name or index (default: the predicted class)")
    e.add_argument("--all-classes", action="store_true", help="explain every class, one line each")
    e.add_argument("--method", choices=METHODS, default="lrp",
                   help="lrp (default), sa (sensitivity), gi (gradient x input), occlusion, random")
    e.add_argument("--rule", choices=RULES, default="signal-take-all",
                   help="LRP rule for the LSTM's products (default signal-take-all)")
    e.add_argument("--eps", type=_eps, default=1e-3, help="LRP epsilon stabiliser (default 0.001)")
    e.add_argument("--bias-factor", type=_finite_float, default=0.0,
                   help="share of bias relevance passed down (default 0; 1 conserves relevance)")
    e.add_argument("--seed", type=_int, default=0, help="seed of --method random")
    e.add_argument("--values", action="store_true", help="print the relevance beside each word")
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("predict", parents=[source, model, output],
                       help="class probabilities of a text or a corpus",
                       description="Predict the class of a text or of every line of a corpus.")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("info", parents=[model], help="show the model card",
                       description="Architecture, vocabulary, classes and provenance of a model.")
    p.add_argument("-f", "--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_cmd_info)

    _add_analyze_parser(sub)
    _register_plugins(sub)
    parser.set_defaults(commands=list(sub.choices))
    return parser


def _add_analyze_parser(sub: Any) -> None:
    p = sub.add_parser("analyze", help="what the model relies on across a corpus (SpRAy, "
                                       "Clever-Hans check)",
                       description="Explain every text of a corpus and report the words for and "
                                   "against each class, clusters of similar explanations "
                                   "(SpRAy) and words the model uses as a shortcut. See "
                                   "docs/analysis.md.")
    g = p.add_argument_group("corpus input")
    g.add_argument("-i", "--input", required=True, metavar="FILE",
                   help="one text per line ('-' = stdin), or a TSV/CSV file with --column")
    g.add_argument("--column", metavar="N|NAME", help="the text column of a TSV/CSV file")
    g.add_argument("--labels", metavar="N|NAME",
                   help="column with each text's true class (name or index); a labelled text "
                        "is explained for its label instead of its prediction")
    g.add_argument("--delimiter", type=_delimiter, metavar="CHAR",
                   help="column delimiter (default: ',' for *.csv, else tab)")
    g.add_argument("--header", action="store_true", help="the first row is a header (skipped)")
    g.add_argument("--skip-empty", action="store_true", help="skip empty lines silently")
    p.add_argument("-m", "--model", metavar="PATH", default=os.environ.get("TEXTLRP_MODEL"),
                   help="model file (.npz); default: $TEXTLRP_MODEL or the bundled SST-5 model")
    o = p.add_argument_group("output")
    o.add_argument("-o", "--output", metavar="FILE", help="the HTML report")
    o.add_argument("--json", metavar="FILE",
                   help="every number of the report as JSON ('-' = stdout)")
    o.add_argument("--title", help="title of the report")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    a = p.add_argument_group("analysis")
    a.add_argument("--clusters", type=_positive_int, metavar="N",
                   help="number of SpRAy clusters (default: read off the largest eigengap)")
    a.add_argument("--no-clusters", action="store_true",
                   help="skip the clustering (word statistics and flags only; no scikit-learn)")
    a.add_argument("--min-count", type=_positive_int, default=5, metavar="N",
                   help="least occurrences in a class for a word to be ranked (default 5)")
    a.add_argument("--sample", type=_positive_int, default=20000, metavar="N",
                   help="cluster a random sample of at most N explanations (default 20000)")
    a.add_argument("--seed", type=_int, default=0, help="seed of the sample and the clustering")
    a.add_argument("--rule", choices=RULES, default="signal-take-all", help="LRP rule")
    a.add_argument("--eps", type=_eps, default=1e-3, help="LRP epsilon (default 0.001)")
    a.add_argument("--bias-factor", type=_finite_float, default=0.0,
                   help="share of bias relevance passed down (default 0)")
    a.add_argument("--batch-size", type=_positive_int, default=256, metavar="N",
                   help="texts per engine call (default 256)")
    a.add_argument("--threads", type=_positive_int, metavar="N",
                   help="worker threads (default: all cores)")
    p.set_defaults(func=_cmd_analyze)


def _register_plugins(sub: Any) -> None:
    # train, deletion and data come from the modules that own them; their heavy
    # dependencies (torch, matplotlib) load only when their commands run.
    from . import download, experiments, train

    for module in (train, experiments, download):
        module.register_cli(sub)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("textlrp")
    except metadata.PackageNotFoundError:
        return "(not installed)"


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 user error, 130 interrupted)."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "func", None) is None:
            raise UsageError(f"choose a command: {', '.join(args.commands)} (see 'textlrp --help')")
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
        print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr, flush=True)


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


# --------------------------------------------------------------------------- helpers


def _load_model(args: argparse.Namespace) -> Any:
    from . import load_model

    path = args.model
    if path is not None and not Path(path).exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if path is not None and Path(path).is_dir():
        raise IsADirectoryError(f"the model path is a directory, not a file: {path}")
    return load_model(path)


def _text_model(args: argparse.Namespace) -> Any:
    model = _load_model(args)
    if model.vocab is None:
        raise UsageError("this model has no vocabulary, so it cannot read text; "
                         "use the Python API with token ids")
    return model


def _model_label(args: argparse.Namespace) -> str:
    return Path(args.model).name if args.model else "bundled sst5-bilstm"


def _the_text(args: argparse.Namespace) -> str | None:
    """The TEXT argument, or None when --input is used."""
    if args.input is not None:
        if args.text:
            raise UsageError("give either TEXT or --input FILE, not both")
        return None
    if args.column is not None or args.delimiter is not None or args.header:
        raise UsageError("--column, --delimiter and --header need --input FILE")
    if not args.text:
        raise UsageError(f"give a TEXT or --input FILE (see 'textlrp {args.command} --help')")
    text = " ".join(args.text)
    if not text.strip():
        raise UsageError("the text is empty")
    return text


def _output_format(args: argparse.Namespace, corpus: bool) -> str:
    if args.format is not None:
        return str(args.format)
    if args.output is not None:
        suffix = Path(args.output).suffix.lower()
        if suffix in _SUFFIX_FORMATS:
            return _SUFFIX_FORMATS[suffix]
    return "json" if corpus else "ansi"


def _color(args: argparse.Namespace, stream: TextIO) -> str:
    if args.color == "never":
        return "none"
    if args.color == "always":
        return render._terminal_palette(os.environ)
    return render.detect_color(stream)


def _theme(args: argparse.Namespace) -> str:
    return render.detect_theme() if args.theme == "auto" else str(args.theme)


@contextlib.contextmanager
def _open_output(args: argparse.Namespace) -> Iterator[TextIO]:
    if args.output is None or args.output == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    if args.input not in (None, "-") and _same_file(args.input, args.output):
        raise UsageError("--output would overwrite the --input file")
    try:
        f = open(args.output, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write output: {exc.strerror}", args.output) from None
    with f:
        yield f


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _explain_options(args: argparse.Namespace) -> dict[str, Any]:
    # No output format shows the [T, e] embedding-level arrays, and they dominate memory.
    return {"method": args.method, "rule": args.rule, "eps": args.eps,
            "bias_factor": args.bias_factor, "seed": args.seed, "keep_embedding": False}


def _targets(args: argparse.Namespace, model: Any) -> list[int | None]:
    if args.all_classes:
        if args.target is not None:
            raise UsageError("--all-classes explains every class; drop --target")
        return list(range(model.n_classes))
    if args.target is None:
        return [None]
    try:
        return [model.class_index(args.target)]
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None


def _subtitle(args: argparse.Namespace, method_text: str | None = None) -> str:
    bits = [f"model {_model_label(args)}"]
    if method_text:
        bits.append(method_text)
    return " · ".join(bits)


def _lrp_text(args: argparse.Namespace) -> str:
    if args.method == "lrp":
        return f"lrp ({args.rule}, eps {args.eps:g}, bias_factor {args.bias_factor:g})"
    if args.method == "random":
        return f"random (seed {args.seed})"
    return str(args.method)


# --------------------------------------------------------------------------- writers


class _Writer:
    """Writes records of one format to a stream, as they come (HTML as one report)."""

    def __init__(self, out: TextIO, fmt: str, args: argparse.Namespace, *, corpus: bool,
                 class_names: Sequence[str], kind: str) -> None:
        self.out, self.fmt, self.args, self.corpus, self.kind = out, fmt, args, corpus, kind
        self.class_names = list(class_names)
        self.color = _color(args, out) if fmt == "ansi" else "none"
        self.theme = _theme(args)
        self.values = bool(getattr(args, "values", False))
        # On a terminal, wrap between words ourselves: the terminal would cut through them.
        self.width = (shutil.get_terminal_size().columns
                      if self.color != "none" and _isatty(out) else None)
        self.any_oov = False
        self.count = 0
        self.errors = 0

    def _write(self, s: str) -> None:
        self.out.write(s)

    def begin(self) -> None:
        if self.fmt == "html":
            title = self.args.title or ("textlrp explanations" if self.kind == "explain"
                                        else "textlrp predictions")
            method = _lrp_text(self.args) if self.kind == "explain" else None
            self._write(render.html_header(title, subtitle=_subtitle(self.args, method),
                                           legend=self.kind == "explain"))
        elif self.fmt == "tsv":
            line = self.corpus
            if self.kind == "explain":
                self._write(render.tsv_header(line=line) + "\n")
            else:
                self._write(render.prediction_tsv_header(self.class_names, line=line) + "\n")

    def explanations(self, line: int | None, exps: Sequence[Any]) -> None:
        self.count += 1
        fmt = self.fmt
        if fmt == "json":
            for exp in exps:
                self._write(render.to_json(exp, line=line) + "\n")
        elif fmt == "tsv":
            for exp in exps:
                self._write(render.to_tsv(exp, line=line) + "\n")
        elif fmt == "html":
            for exp in exps:
                # The report's subtitle states the method once.
                self._write(render.html_item(exp, index=line, method=False))
        else:
            self.any_oov = self.any_oov or any(bool(exp.oov.any()) for exp in exps)
            prefix = "" if line is None else f"#{line} "
            if len(exps) == 1:
                text = render.to_ansi(exps[0], color=self.color, values=self.values,
                                      theme=self.theme, legend=False, width=self.width)
            else:
                text = render.ansi_all_classes(exps, color=self.color, values=self.values,
                                               theme=self.theme, width=self.width)
            self._write(prefix + text + "\n" + ("\n" if self.corpus else ""))

    def prediction(self, line: int | None, pred: render.Prediction) -> None:
        self.count += 1
        if self.fmt == "json":
            self._write(render.prediction_to_json(pred, line=line) + "\n")
        elif self.fmt == "tsv":
            self._write(render.prediction_to_tsv(pred, line=line) + "\n")
        elif self.fmt == "html":
            self._write(render.html_prediction(pred, index=line))
        else:
            prefix = "" if line is None else f"#{line} "
            text = render.prediction_to_ansi(pred, color=self.color, bars=not self.corpus)
            self._write(prefix + text + "\n")

    def error(self, line: int, text: str | None, message: str) -> None:
        self.errors += 1
        if self.fmt == "json":
            self._write(render.error_record(line, text, message) + "\n")
        elif self.fmt == "html":
            self._write(render.html_error(line, text, message))
        elif self.fmt == "tsv":
            # A TSV table has no place for a message: report it on stderr instead.
            if not self.args.quiet:
                print(f"{PROG}: line {line}: {message}", file=sys.stderr)
        else:
            gap = "\n" if self.corpus and self.kind == "explain" else ""
            self._write(f"#{line} error: {message}\n{gap}")

    def end(self) -> None:
        if self.fmt == "html":
            self._write(render.html_footer(count=self.count if self.corpus else None,
                                           errors=self.errors))
        elif self.fmt == "ansi" and self.kind == "explain":
            self._write(render.ansi_legend(color=self.color, oov=self.any_oov, theme=self.theme,
                                           width=self.width) + "\n")


# --------------------------------------------------------------------------- corpus input


@dataclasses.dataclass
class _Row:
    line: int
    text: str | None
    error: str | None = None


class _Source:
    """Lines of an input file (or stdin) read lazily as rows; counts bytes for progress."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.name = "<stdin>" if args.input == "-" else args.input
        self.bytes_read = 0
        self.size: int | None = None
        self.stream: Any
        if args.input == "-":
            self.stream = getattr(sys.stdin, "buffer", None) or _EncodedText(sys.stdin)
            self._close = False
        else:
            try:
                self.stream = open(args.input, "rb")  # noqa: SIM115 (closed by close())
            except OSError as exc:
                raise OSError(exc.errno, f"cannot read input: {exc.strerror}", args.input) from None
            self._close = True
            with contextlib.suppress(OSError):
                st = os.fstat(self.stream.fileno())
                if st.st_size > 0 and Path(args.input).is_file():
                    self.size = st.st_size
        try:
            self.rows = self._rows()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._close:
            self.stream.close()

    def _raw_lines(self) -> Iterator[bytes]:
        for n, raw in enumerate(self.stream):
            self.bytes_read += len(raw)
            if n == 0 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            yield raw

    def _rows(self) -> Iterator[_Row]:
        a = self.args
        column, header = a.column, a.header
        if column is None:
            if a.delimiter is not None:
                raise UsageError("--delimiter needs --column")
            return self._plain_rows(skip=1 if header else 0)
        delimiter = a.delimiter
        if delimiter is None:
            delimiter = "," if str(a.input).lower().endswith(".csv") else "\t"
        if column.isdigit():
            index = int(column) - 1
            if index < 0:
                raise UsageError("--column counts from 1")
            name = None
        else:
            index, name, header = -1, column, True
        return self._csv_rows(delimiter, index, name, header)

    def _plain_rows(self, skip: int) -> Iterator[_Row]:
        skip_empty = self.args.skip_empty
        for n, raw in enumerate(self._raw_lines(), 1):
            if n <= skip:
                continue
            raw = raw.rstrip(b"\r\n")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield _Row(n, raw.decode("utf-8", "replace"),
                           f"not valid UTF-8 (byte {exc.start + 1} of the line)")
                continue
            if not text.strip():
                if not skip_empty:
                    yield _Row(n, text, "empty line")
                continue
            yield _Row(n, text)

    def _csv_rows(self, delimiter: str, index: int, name: str | None,
                  header: bool) -> Iterator[_Row]:
        bad_utf8 = [False]

        def lines() -> Iterator[str]:
            for raw in self._raw_lines():
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    bad_utf8[0] = True
                    yield raw.decode("utf-8", "replace")

        # TSV files rarely quote, and quotes are common inside sentences: read them verbatim.
        if delimiter == "\t":
            reader = csv.reader(lines(), delimiter=delimiter, quoting=csv.QUOTE_NONE)
        else:
            reader = csv.reader(lines(), delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
        if header:
            try:
                names = next(reader)
            except StopIteration:
                return iter(())
            except csv.Error as exc:
                raise UsageError(f"cannot read the header of {self.name}: {exc}") from None
            if name is not None:
                if name not in names:
                    raise UsageError(f"no column {name!r} in the header of {self.name}; "
                                     f"its columns are {', '.join(map(repr, names))}")
                index = names.index(name)
        return self._csv_body(reader, index, bad_utf8)

    def _csv_body(self, reader: Any, index: int, bad_utf8: list[bool]) -> Iterator[_Row]:
        skip_empty = self.args.skip_empty
        while True:
            start = reader.line_num + 1
            bad_utf8[0] = False
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield _Row(start, None, f"cannot parse the row: {exc}")
                continue
            if not fields or not any(f.strip() for f in fields):
                if not skip_empty:
                    yield _Row(start, "", "empty line")
                continue
            if bad_utf8[0]:
                yield _Row(start, " | ".join(fields), "not valid UTF-8")
                continue
            if index >= len(fields):
                yield _Row(start, None,
                           f"the row has {len(fields)} column{'s' if len(fields) != 1 else ''}, "
                           f"column {index + 1} is needed")
                continue
            text = fields[index]
            if not text.strip():
                if not skip_empty:
                    yield _Row(start, text, "empty text")
                continue
            yield _Row(start, text)


class _EncodedText:
    """A text stream (e.g. a replaced sys.stdin) seen as UTF-8 byte lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __iter__(self) -> Iterator[bytes]:
        for line in self.stream:
            yield line.encode("utf-8", "surrogateescape")


def _chunks(rows: Iterator[_Row], size: int) -> Iterator[list[_Row]]:
    chunk: list[_Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Progress:
    """tqdm bar on stderr: by bytes for a file (so it has an ETA), by lines for stdin."""

    def __init__(self, source: _Source, args: argparse.Namespace, verb: str) -> None:
        self.source = source
        self.verb = verb
        self.enabled = not args.quiet and _isatty(sys.stderr)
        self.bar: Any = None
        self.start = time.perf_counter()
        self.shown = 0.0
        self.done = 0
        if not self.enabled:
            return
        from tqdm import tqdm

        if source.size is not None:
            # Bytes give an ETA without counting lines first; the postfix shows lines.
            self.bar = tqdm(total=source.size, unit="B", unit_scale=True, unit_divisor=1024,
                            desc=verb, file=sys.stderr, dynamic_ncols=True, leave=False,
                            bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
        else:
            self.bar = tqdm(unit=" lines", desc=verb, file=sys.stderr, dynamic_ncols=True,
                            leave=False)

    def update(self, lines: int) -> None:
        self.done += lines
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self.shown < 0.1:  # called per line: redraw a few times a second only
            return
        self.shown = now
        if self.source.size is not None:
            rate = self.done / max(time.perf_counter() - self.start, 1e-9)
            self.bar.set_description_str(f"{self.verb} {self.done} lines ({rate:.0f}/s)",
                                         refresh=False)
            self.bar.update(self.source.bytes_read - self.bar.n)
        else:
            self.bar.update(lines)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _run_corpus(args: argparse.Namespace, model: Any, kind: str,
                targets: list[int | None] | None = None) -> int:
    fmt = _output_format(args, corpus=True)
    source = _Source(args)
    try:
        with _open_output(args) as out:
            writer = _Writer(out, fmt, args, corpus=True, class_names=model.class_names, kind=kind)
            progress = _Progress(source, args, "explaining" if kind == "explain" else "predicting")
            try:
                writer.begin()
                with _quiet_overflow():
                    if kind == "explain" and len(targets or [None]) == 1:
                        _explain_stream(model, source.rows, writer, args, (targets or [None])[0],
                                        progress)
                    else:
                        for chunk in _chunks(source.rows, args.batch_size):
                            if kind == "explain":
                                _explain_chunk(model, chunk, writer, args, targets or [None])
                            else:
                                _predict_chunk(model, chunk, writer, args)
                            progress.update(len(chunk))
                writer.end()
            finally:
                progress.close()
    finally:
        source.close()
    if progress.enabled:
        elapsed = time.perf_counter() - progress.start
        where = f" -> {args.output}" if args.output not in (None, "-") else ""
        print(f"{PROG}: {kind}ed {progress.done} lines in {elapsed:.1f} s "
              f"({progress.done / max(elapsed, 1e-9):.0f}/s){where}", file=sys.stderr)
    if writer.errors and not args.quiet:
        what = "explained" if kind == "explain" else "predicted"
        where = "above" if fmt == "tsv" else "the error records in the output"
        print(f"{PROG}: {writer.errors} of {writer.count + writer.errors} lines could not be "
              f"{what}; see {where}", file=sys.stderr)
    return 0


_OVERFLOW = "relevance overflowed to inf/NaN; try a larger --eps or a shorter text"


@contextlib.contextmanager
def _quiet_overflow() -> Iterator[None]:
    # The engine warns about non-finite relevance; the CLI reports it per line instead.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*overflowed", category=RuntimeWarning)
        yield


def _finite(exp: Any) -> bool:
    return bool(np.isfinite(exp.relevance).all()) and (exp.rest is None or math.isfinite(exp.rest))


def _explain_stream(model: Any, rows: Iterator[_Row], writer: _Writer,
                    args: argparse.Namespace, target: int | None, progress: _Progress) -> None:
    """One lazy pass through model.explain_corpus, which tokenises the next batch while the
    engine explains the current one; results come back in input order."""
    pending: collections.deque[_Row] = collections.deque()

    def inputs() -> Iterator[Any]:
        for row in rows:
            pending.append(row)
            # A row that failed to read still takes its place in the stream, as an empty
            # input the model records as an error: order and bounded memory come for free.
            yield row.text if row.error is None else []

    stream = model.explain_corpus(inputs(), batch_size=args.batch_size, threads=args.threads,
                                  errors="record", target=target, **_explain_options(args))
    for result in stream:
        row = pending.popleft()
        if row.error is not None:
            writer.error(row.line, row.text, row.error)
        elif not hasattr(result, "relevance"):
            writer.error(row.line, row.text, result.error)
        elif not _finite(result):
            writer.error(row.line, row.text, _OVERFLOW)
        else:
            writer.explanations(row.line, [result])
        progress.update(1)
    if pending:
        raise RuntimeError(f"explain_corpus returned no result for line {pending[0].line}")


def _explain_chunk(model: Any, chunk: list[_Row], writer: _Writer, args: argparse.Namespace,
                   targets: list[int | None]) -> None:
    """--all-classes: every class for a chunk of lines (tokenised once)."""
    texts = [r.text for r in chunk if r.error is None]
    opts = _explain_options(args)

    def explain(inputs: list[Any], target: int | None) -> list[Any]:
        results = list(model.explain_corpus(inputs, batch_size=max(1, len(inputs)),
                                            threads=args.threads, errors="record",
                                            target=target, **opts))
        if len(results) != len(inputs):
            raise RuntimeError(f"explain_corpus gave {len(results)} results for {len(inputs)} inputs")
        return results

    first = explain(texts, targets[0])
    per_target = [first]
    if len(targets) > 1:
        # Tokenise once: the other classes get the first pass's tokens, not the text again.
        ok = [k for k, r in enumerate(first) if hasattr(r, "relevance")]
        for target in targets[1:]:
            again = explain([first[k].tokens for k in ok], target)
            results: list[Any] = list(first)
            for k, exp in zip(ok, again):
                if hasattr(exp, "relevance"):
                    exp.text = texts[k]
                results[k] = exp
            per_target.append(results)
    k = 0
    for row in chunk:
        if row.error is not None:
            writer.error(row.line, row.text, row.error)
            continue
        results = [res[k] for res in per_target]
        k += 1
        failed = next((r for r in results if not hasattr(r, "relevance")), None)
        if failed is not None:
            writer.error(row.line, row.text, failed.error)
        elif not all(_finite(r) for r in results):
            writer.error(row.line, row.text, _OVERFLOW)
        else:
            writer.explanations(row.line, results)


def _predict_chunk(model: Any, chunk: list[_Row], writer: _Writer,
                   args: argparse.Namespace) -> None:
    encoded: dict[int, Any] = {}
    for k, row in enumerate(chunk):
        if row.error is None:
            try:
                encoded[k] = model.encode(row.text)
            except (ValueError, TypeError, IndexError, LookupError) as exc:
                row.error = str(exc)
    keys = list(encoded)
    scores = model.predict([encoded[k][0] for k in keys], threads=args.threads) if keys else []
    by_key = dict(zip(keys, scores))
    for k, row in enumerate(chunk):
        if row.error is not None:
            writer.error(row.line, row.text, row.error)
            continue
        tokens, _ids, oov = encoded[k]
        writer.prediction(row.line, render.Prediction(row.text, tokens, oov, by_key[k],
                                                      list(model.class_names)))


# --------------------------------------------------------------------------- commands


def _cmd_explain(args: argparse.Namespace) -> int:
    text = _the_text(args)
    model = _text_model(args)
    targets = _targets(args, model)
    if text is None:
        return _run_corpus(args, model, "explain", targets)
    opts = _explain_options(args)
    with _quiet_overflow():
        exps = model.explain_batch([text] * len(targets), target=targets, threads=args.threads,
                                   **opts)
    if not all(_finite(exp) for exp in exps):
        raise ValueError(_OVERFLOW)
    fmt = _output_format(args, corpus=False)
    with _open_output(args) as out:
        writer = _Writer(out, fmt, args, corpus=False, class_names=model.class_names, kind="explain")
        writer.begin()
        writer.explanations(None, exps)
        writer.end()
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    text = _the_text(args)
    model = _text_model(args)
    if text is None:
        return _run_corpus(args, model, "predict")
    tokens, _ids, oov = model.encode(text)
    scores = model.predict([tokens], threads=args.threads)[0]
    fmt = _output_format(args, corpus=False)
    with _open_output(args) as out:
        writer = _Writer(out, fmt, args, corpus=False, class_names=model.class_names, kind="predict")
        writer.begin()
        writer.prediction(None, render.Prediction(text, tokens, oov, scores, list(model.class_names)))
        writer.end()
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    """Rows of the corpus (with labels read from a second pass over the same file, in step
    by line number) into textlrp.analysis; the report and the JSON are written at the end."""
    from . import analysis

    if args.output is None and args.json is None:
        raise UsageError("give --output REPORT.html and/or --json FILE")
    if args.labels is not None and args.column is None:
        raise UsageError("--labels needs --column: the texts and labels come from a TSV/CSV file")
    if args.labels is not None and args.input == "-":
        raise UsageError("--labels reads the file twice, so it cannot read stdin")
    for out in (args.output, args.json):
        if out not in (None, "-") and args.input != "-" and _same_file(args.input, out):
            raise UsageError("an output would overwrite the --input file")
    if args.labels is not None and not (args.column.isdigit() and args.labels.isdigit()):
        args.header = True  # a column name means a header row, for both passes alike

    def rows(texts: Iterator[_Row], labels: _Source | None) -> Iterator[analysis.Row]:
        pending = iter(()) if labels is None else labels.rows
        label = next(pending, None)
        for row in texts:
            while label is not None and label.line < row.line:
                label = next(pending, None)
            if labels is None or row.error is not None:
                yield analysis.Row(row.line, row.text, None, row.error)
            elif label is None or label.line != row.line:
                yield analysis.Row(row.line, row.text, None, f"no label in column {args.labels}")
            elif label.error is not None:
                yield analysis.Row(row.line, row.text, None, label.error)
            else:
                yield analysis.Row(row.line, row.text, (label.text or "").strip())

    model = _text_model(args)
    texts = _Source(args)
    labels = None
    try:
        if args.labels is not None:
            labels = _Source(argparse.Namespace(**{**vars(args), "column": args.labels,
                                                   "skip_empty": True}))
        progress = _Progress(texts, args, "analysing")
        try:
            result = analysis.analyze_rows(
                model, rows(texts.rows, labels),
                clusters=args.clusters, spray=not args.no_clusters, min_count=args.min_count,
                sample_size=args.sample, seed=args.seed, rule=args.rule, eps=args.eps,
                bias_factor=args.bias_factor, batch_size=args.batch_size, threads=args.threads,
                progress=progress.update)
        finally:
            progress.close()
    except ImportError as exc:
        raise UsageError(f"{exc} (or use --no-clusters)") from None
    finally:
        texts.close()
        if labels is not None:
            labels.close()
    subtitle = f"model {_model_label(args)} · corpus {Path(texts.name).name}"
    if args.output is not None:
        page = result.to_html(title=args.title, subtitle=subtitle)
        with _open_output(argparse.Namespace(output=args.output, input=args.input)) as f:
            f.write(page)
    if args.json is not None:
        text = json.dumps(result.to_dict(), ensure_ascii=False, indent=1, allow_nan=False)
        with _open_output(argparse.Namespace(output=args.json, input=args.input)) as f:
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


def model_card(model: Any, path: str | None) -> dict[str, Any]:
    """What `textlrp info` shows, as a JSON-ready dict."""
    layers = [{"directions": len(layer), "hidden": int(layer[0]["W_hh"].shape[1])}
              for layer in model.lstm_layers]
    head = [{"in": int(h["W"].shape[1]), "out": int(h["W"].shape[0]), "bias": h["b"] is not None}
            for h in model.head]
    return {
        "path": path,
        "architecture": {"vocab_size": int(model.vocab_size),
                         "embedding_dim": int(model.embedding_dim),
                         "lstm": layers, "head": head},
        "class_names": [str(c) for c in model.class_names],
        "vocab_size": int(model.vocab_size),
        "has_vocab": model.vocab is not None,
        "unk_token": model.unk_token,
        "lowercase": bool(model.lowercase),
        "dtype": str(getattr(model.dtype, "name", model.dtype)),
        "metadata": render._jsonable(dict(model.metadata or {})),
    }


def _cmd_info(args: argparse.Namespace) -> int:
    from .io import default_model_path

    model = _load_model(args)
    path = args.model if args.model else str(default_model_path())
    card = model_card(model, path)
    if args.format == "json":
        print(json.dumps(card, ensure_ascii=False, indent=2, allow_nan=False))
        return 0
    arch = card["architecture"]
    lstm = " → ".join(
        f"{'bidirectional ' if a['directions'] == 2 else ''}LSTM {a['hidden']}"
        + (" per direction" if a["directions"] == 2 else "") for a in arch["lstm"])
    head = " → ReLU → ".join(f"linear {h['in']}→{h['out']}{'' if h['bias'] else ' (no bias)'}"
                             for h in arch["head"])
    rows = [
        ("model", path),
        ("architecture", f"embedding {arch['vocab_size']}×{arch['embedding_dim']} → {lstm} → {head}"),
        ("vocabulary", f"{card['vocab_size']} entries" + ("" if card["has_vocab"] else " (ids only)")
         + f", unknown token {card['unk_token']!r}, lowercase {'yes' if card['lowercase'] else 'no'}"),
        ("classes", ", ".join(f"{k} {c}" for k, c in enumerate(card["class_names"]))),
        ("dtype", card["dtype"]),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if card["metadata"]:
        lines.append("metadata")
        lines.extend(_describe_metadata(card["metadata"], indent=2))
    print("\n".join(lines))
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
