"""Writing what explain and predict produce: the output format and file, the writer of the
chosen format with the counts the summary needs, the progress bar, and the corpus loop that
streams rows through the API into the writer."""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from .. import render
from ..explanation import Prediction
from ..model import batches, one_behind
from .inputs import Row, Source, model_label
from .options import PROG, UsageError, check_output_path

OVERFLOW = "relevance overflowed to inf/NaN; try a larger --eps or a shorter text"


def output_format(args: argparse.Namespace, corpus: bool) -> str:
    """--format, else the format --output's suffix names (an unknown suffix is an error),
    else ansi for a TEXT and json for a corpus."""
    if args.format is not None:
        fmt = str(args.format)
    elif args.output not in (None, "-"):
        try:
            fmt = render.format_for_path(args.output)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    else:
        fmt = "json" if corpus else "ansi"
    if getattr(args, "scale", None) is not None and fmt not in ("ansi", "html"):
        raise UsageError(f"--scale sets colours; the {fmt} format has none")
    return fmt


def check_output(args: argparse.Namespace) -> str:
    """Everything about --output that can be known before the work: the format it implies,
    that it can be written, that it is not the --input file. Returns the format."""
    fmt = output_format(args, corpus=args.input is not None)
    check_output_path(args.output, "--output")
    if args.input not in (None, "-") and args.output not in (None, "-") \
            and _same_file(args.input, args.output):
        raise UsageError("--output would overwrite the --input file")
    return fmt


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@contextlib.contextmanager
def open_output(args: argparse.Namespace) -> Iterator[TextIO]:
    if args.output is None or args.output == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        f = open(args.output, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write output: {exc.strerror}", args.output) from None
    with f:
        yield f


def isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Output:
    """The writer of the chosen format, plus the counts the summary on stderr needs."""

    def __init__(self, out: TextIO, fmt: str, args: argparse.Namespace, *, corpus: bool,
                 class_names: Sequence[str], kind: str, method: str | None = None) -> None:
        if fmt != "ansi" or args.color == "never":
            color = "none"
        elif args.color == "always":
            color = render.terminal_palette(os.environ)
        else:
            color = render.detect_color(out)
        title = args.title or ("textlrp explanations" if kind == "explain"
                               else "textlrp predictions")
        subtitle = " · ".join([f"model {model_label(args)}", *([method] if method else [])])
        options = render.WriterOptions(
            kind=kind, class_names=tuple(class_names), lines=corpus,
            labels=getattr(args, "label_column", None) is not None,
            color=color, theme=render.detect_theme() if args.theme == "auto" else str(args.theme),
            values=bool(getattr(args, "values", False)),
            # On a terminal, wrap between words ourselves: the terminal would cut through them.
            width=shutil.get_terminal_size().columns if color != "none" and isatty(out) else None,
            scale=getattr(args, "scale", None) or "sentence",
            title=title, subtitle=subtitle, log=None if args.quiet else sys.stderr)
        self.writer = render.make_writer(fmt, out, options)
        self.count = 0
        self.errors = 0

    def begin(self) -> None:
        self.writer.begin()

    def explanations(self, row: Row | None, exps: Sequence[Any]) -> None:
        self.count += 1
        self.writer.explanation(exps, line=None if row is None else row.line,
                                label=None if row is None else row.label)

    def prediction(self, row: Row | None, pred: Prediction) -> None:
        self.count += 1
        self.writer.prediction(pred, line=None if row is None else row.line,
                               label=None if row is None else row.label)

    def error(self, row: Row, message: str) -> None:
        self.errors += 1
        self.writer.error(message, line=row.line, text=row.text)

    def end(self) -> None:
        self.writer.end()


def write_one(args: argparse.Namespace, fmt: str, model: Any, kind: str, record: Any,
              method: str | None = None, after: str | None = None) -> None:
    """Write the record(s) of a single TEXT (then ``after``, a text block, to the same output)."""
    with open_output(args) as out:
        writer = Output(out, fmt, args, corpus=False, class_names=model.class_names, kind=kind,
                        method=method)
        writer.begin()
        if kind == "explain":
            writer.explanations(None, record)
        else:
            writer.prediction(None, record)
        writer.end()
        if after:
            out.write(after)


class Progress:
    """tqdm bar on stderr: by bytes for a file (so it has an ETA), by lines for stdin."""

    def __init__(self, source: Source, args: argparse.Namespace, verb: str) -> None:
        self.source = source
        self.verb = verb
        self.enabled = not args.quiet and isatty(sys.stderr)
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


def run_corpus(args: argparse.Namespace, fmt: str, model: Any, kind: str,
               explain: dict[str, Any] | None = None, method: str | None = None) -> int:
    """Stream the rows of --input through the API into the writer, then the summary.
    ``explain``: the keywords of Model.explain_corpus (kind "explain")."""
    source = Source(args, model.class_names)  # checks the options on the first rows
    try:
        with open_output(args) as out:
            writer = Output(out, fmt, args, corpus=True, class_names=model.class_names, kind=kind,
                            method=method)
            progress = Progress(source, args, "explaining" if kind == "explain" else "predicting")
            try:
                writer.begin()
                if kind == "explain":
                    _explain_rows(model, source.rows, writer, args, explain or {}, progress)
                else:
                    _predict_rows(model, source.rows, writer, args, progress)
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


def _explain_rows(model: Any, rows: Iterator[Row], writer: Output, args: argparse.Namespace,
                  explain: dict[str, Any], progress: Progress) -> None:
    """One lazy pass through model.explain_corpus, which tokenises the next batch while the
    engine explains the current one; results come back in input order (with target "all",
    a list of explanations per row)."""
    pending: collections.deque[Row] = collections.deque()

    def texts() -> Iterator[Any]:
        for row in rows:
            pending.append(row)
            # A row that failed to read still takes its place in the stream, as an empty
            # input the model records as an error: order and bounded memory come for free.
            yield row.text if row.error is None else []

    stream = model.explain_corpus(texts(), batch_size=args.batch_size, threads=args.threads,
                                  errors="record", keep_embedding=False, **explain)
    for result in stream:
        row = pending.popleft()
        exps = result if isinstance(result, list) else [result]
        if row.error is not None:
            writer.error(row, row.error)
        elif not hasattr(exps[0], "relevance"):
            writer.error(row, result.error)
        elif any(e.overflow for e in exps):
            writer.error(row, OVERFLOW)
        else:
            writer.explanations(row, exps)
        progress.update(1)
    if pending:
        raise RuntimeError(f"explain_corpus returned no result for line {pending[0].line}")


def _predict_rows(model: Any, rows: Iterator[Row], writer: Output, args: argparse.Namespace,
                  progress: Progress) -> None:
    """Chunks of rows, overlapped: while the engine scores one chunk on its own thread (it
    never needs the GIL), the next is tokenised and the one before is written; at most three
    chunks are held."""

    def write(chunk: list[Row], encoded: dict[int, Any], job: Any) -> None:
        by_key = dict(zip(encoded, job.result())) if job is not None else {}
        class_names = list(model.class_names)
        for k, row in enumerate(chunk):
            if row.error is not None:
                writer.error(row, row.error)
                continue
            enc = encoded[k]
            writer.prediction(row, Prediction(row.text, enc.tokens, enc.oov, by_key[k],
                                              class_names))
        progress.update(len(chunk))

    def encode(chunk: list[Row]) -> tuple[list[Row], dict[int, Any]]:
        encoded = {}
        for k, row in enumerate(chunk):
            if row.error is None:
                try:
                    encoded[k] = model.encode(row.text)
                except (ValueError, TypeError, IndexError, LookupError) as exc:
                    row.error = str(exc)
        return chunk, encoded

    def start(chunk: tuple[list[Row], dict[int, Any]]) -> Any:
        # The Encodings are taken as they are: the tokens are not looked up again.
        encoded = chunk[1]
        return model._start_predict(list(encoded.values()), threads=args.threads,
                                    background=True) if encoded else None

    chunks = (encode(chunk) for chunk in batches(rows, args.batch_size))
    for (chunk, encoded), job in one_behind(chunks, start):
        write(chunk, encoded, job)
