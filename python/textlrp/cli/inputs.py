"""Reading what the commands work on: the model (with the $TEXTLRP_MODEL hint), a TEXT
argument, and a corpus file read lazily as rows (plain lines, or a column of a TSV/CSV file
with an optional label column)."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import csv
import dataclasses
import itertools
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from .options import FromEnvironment, UsageError

# When the first rows of a --column input all fail the same way (the column is not there,
# the label column holds no class), the options are wrong, not the data: stop with one
# error instead of writing an error record per line. FIRST_ROWS rows are looked at.
FIRST_ROWS = 100


# --------------------------------------------------------------------------- the model


def load_model(args: argparse.Namespace) -> Any:
    """The model of --model, $TEXTLRP_MODEL or the bundled one; a bad path names where it
    came from."""
    from .. import load_model as _load

    path = args.model
    origin = (" (set by the environment variable TEXTLRP_MODEL)"
              if isinstance(path, FromEnvironment) else "")
    if path is not None and not Path(path).exists():
        raise FileNotFoundError(f"model file not found: {path}{origin}")
    if path is not None and Path(path).is_dir():
        raise IsADirectoryError(f"the model path is a directory, not a file: {path}{origin}")
    return _load(path)


def text_model(args: argparse.Namespace) -> Any:
    model = load_model(args)
    if model.vocab is None:
        raise UsageError("this model has no vocabulary, so it cannot read text; "
                         "use the Python API with token ids")
    return model


def model_label(args: argparse.Namespace) -> str:
    return Path(args.model).name if args.model else "bundled sst5-bilstm"


# --------------------------------------------------------------------------- TEXT


def the_text(args: argparse.Namespace) -> str | None:
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


# --------------------------------------------------------------------------- corpus input


@dataclasses.dataclass
class Row:
    line: int  # counts from 1, as in the file (a quoted CSV field may span lines)
    text: str | None
    error: str | None = None
    label: int | None = None  # gold class index (--label-column)
    # A failure that points at the options rather than the data: "column" (the text column
    # is missing), "label-column" (the label column is missing), "label" (no class there).
    kind: str | None = None


class Source:
    """Lines of an input file (or stdin) read lazily as rows; counts bytes for progress.

    Everything the options decide is checked on construction, before any output is opened:
    the header, named columns, and (with --column) the first rows (see FIRST_ROWS)."""

    def __init__(self, args: argparse.Namespace, class_names: Sequence[str] = ()) -> None:
        self.args = args
        self.class_names = list(class_names)
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

    def _rows(self) -> Iterator[Row]:
        a = self.args
        column, header = a.column, a.header
        if column is None:
            if a.delimiter is not None or a.label_column is not None:
                raise UsageError(f"--{'delimiter' if a.label_column is None else 'label-column'} "
                                 "needs --column")
            return self._plain_rows(skip=1 if header else 0)
        delim = a.delimiter
        if delim is None:
            delim = "," if str(a.input).lower().endswith(".csv") else "\t"
        index, name = column_index(column, "--column")
        label_index, label_name = column_index(a.label_column, "--label-column")
        header = header or name is not None or label_name is not None
        rows = self._csv_rows(delim, (index, name), (label_index, label_name), header)
        return self._check_first_rows(rows, delim)

    def _check_first_rows(self, rows: Iterator[Row], delim: str) -> Iterator[Row]:
        """Read rows while every non-empty one fails the same way (up to FIRST_ROWS of them);
        when that is all of them, the options are wrong: one UsageError. Otherwise the rows
        read so far go out first, in order."""
        seen: list[Row] = []
        failed: list[Row] = []
        for row in rows:
            seen.append(row)
            if row.error == "empty line":  # layout, not data: neither for nor against
                continue
            if row.error is None or row.kind is None or (failed and row.kind != failed[0].kind):
                return itertools.chain(seen, rows)
            failed.append(row)
            if len(failed) == FIRST_ROWS:
                break
        if not failed:
            return iter(seen)
        n, first, a = len(failed), failed[0], self.args
        looked = (f"the first {n} rows" if n == FIRST_ROWS else f"all {n} rows" if n > 1
                  else "the only row")
        where = f"{looked} of {self.name}"
        example = f"line {first.line}: {first.error}"
        if first.kind == "label":
            raise UsageError(f"--label-column {a.label_column}: {where} "
                             f"{'holds' if n == 1 else 'hold'} no class of the model ({example})")
        option, value = (("--column", a.column) if first.kind == "column"
                         else ("--label-column", a.label_column))
        shown = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", " ": "space"}
        raise UsageError(f"{option} {value}: {where} {'lacks' if n == 1 else 'lack'} that column "
                         f"({example}); check {option} and --delimiter "
                         f"(now {shown.get(delim, repr(delim))})")

    def _plain_rows(self, skip: int) -> Iterator[Row]:
        skip_empty = self.args.skip_empty
        for n, raw in enumerate(self._raw_lines(), 1):
            if n <= skip:
                continue
            raw = raw.rstrip(b"\r\n")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Row(n, raw.decode("utf-8", "replace"),
                          f"not valid UTF-8 (byte {exc.start + 1} of the line)")
                continue
            if not text.strip():
                if not skip_empty:
                    yield Row(n, text, "empty line")
                continue
            yield Row(n, text)

    def _csv_rows(self, delim: str, text_col: tuple[int, str | None],
                  label_col: tuple[int, str | None], header: bool) -> Iterator[Row]:
        bad_utf8 = [False]

        def lines() -> Iterator[str]:
            for raw in self._raw_lines():
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    bad_utf8[0] = True
                    yield raw.decode("utf-8", "replace")

        # TSV files rarely quote, and quotes are common inside sentences: read them verbatim.
        if delim == "\t":
            reader = csv.reader(lines(), delimiter=delim, quoting=csv.QUOTE_NONE)
        else:
            reader = csv.reader(lines(), delimiter=delim, quoting=csv.QUOTE_MINIMAL)
        index, label = text_col[0], label_col[0]
        if header:
            try:
                names = next(reader)
            except StopIteration:
                return iter(())
            except csv.Error as exc:
                raise UsageError(f"cannot read the header of {self.name}: {exc}") from None
            for _col, name in (text_col, label_col):
                if name is not None and name not in names:
                    raise UsageError(f"no column {name!r} in the header of {self.name}; "
                                     f"its columns are {', '.join(map(repr, names))}")
            index = names.index(text_col[1]) if text_col[1] is not None else index
            label = names.index(label_col[1]) if label_col[1] is not None else label
        return self._csv_body(reader, index, label, bad_utf8)

    def _label(self, fields: list[str], index: int) -> int:
        """The class index of the row's label (a class name or index)."""
        value = fields[index].strip()
        if value in self.class_names:
            return self.class_names.index(value)
        if value.isdigit() and int(value) < len(self.class_names):
            return int(value)
        raise ValueError(f"label {value!r} is not a class of the model "
                         f"({', '.join(self.class_names)} or 0..{len(self.class_names) - 1})")

    def _csv_body(self, reader: Any, index: int, label: int,
                  bad_utf8: list[bool]) -> Iterator[Row]:
        skip_empty = self.args.skip_empty
        while True:
            start = reader.line_num + 1
            bad_utf8[0] = False
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Row(start, None, f"cannot parse the row: {exc}")
                continue
            if not fields or not any(f.strip() for f in fields):
                if not skip_empty:
                    yield Row(start, "", "empty line")
                continue
            if bad_utf8[0]:
                yield Row(start, " | ".join(fields), "not valid UTF-8")
                continue
            if index >= len(fields):
                yield Row(start, None, f"the row has {_columns(len(fields))}, column {index + 1} "
                                       "is needed", kind="column")
                continue
            text = fields[index]
            if not text.strip():
                if not skip_empty:
                    yield Row(start, text, "empty text")
                continue
            if label < 0:
                yield Row(start, text)
                continue
            if label >= len(fields):
                yield Row(start, text, f"the row has {_columns(len(fields))}, the label is in "
                                       f"column {label + 1}", kind="label-column")
                continue
            if not fields[label].strip():  # data, not a wrong option: never stops the run
                yield Row(start, text, f"no label in column {label + 1}")
                continue
            try:
                yield Row(start, text, label=self._label(fields, label))
            except ValueError as exc:
                yield Row(start, text, str(exc), kind="label")


def _columns(n: int) -> str:
    return f"{n} column{'s' if n != 1 else ''}"


def column_index(value: str | None, option: str) -> tuple[int, str | None]:
    """(index from 0, None) for a column number, (-1, name) for a name, (-1, None) if unset."""
    if value is None:
        return -1, None
    if value.isdigit():
        if int(value) < 1:
            raise UsageError(f"{option} counts from 1")
        return int(value) - 1, None
    return -1, value


class _EncodedText:
    """A text stream (e.g. a replaced sys.stdin) seen as UTF-8 byte lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __iter__(self) -> Iterator[bytes]:
        for line in self.stream:
            yield line.encode("utf-8", "surrogateescape")
