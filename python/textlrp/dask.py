"""Explain corpora on a Dask cluster (the optional extra ``textlrp[dask]``).

    >>> import dask.bag as db, textlrp.dask
    >>> texts = db.read_text("reviews/*.txt").map(str.rstrip)
    >>> records = textlrp.dask.explain(texts, model="model.npz")   # a bag of dicts
    >>> frame = textlrp.dask.explain(ddf, model="model.npz", column="review")

and on the command line ``textlrp explain --input 'corpus/*.txt' --dask ADDRESS
--output-dir out/`` (one JSON Lines file per partition, resumable). See docs/dask.md.

How the model travels. The client reads the model file's bytes once and checks them by
loading them (a broken file fails there, with :class:`~textlrp.io.ModelFileError`, before any
task exists). The bytes enter the task graph as ONE data key, ``textlrp-model-<sha256>``,
that every partition task depends on: the graph carries the model once (not once per task),
each worker receives it once (from the scheduler or a peer) and loads it once per process
into a small cache keyed by the file's sha256; a partition task pickles to about 700 bytes.
The model file format (no pickle) is the wire format, so nothing in a Model needs pickling.

Importing this module does not import dask; its functions do.
"""

from __future__ import annotations

import argparse
import collections
import glob
import hashlib
import json
import math
import os
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .explanation import Explanation

__all__ = ["add_cli_arguments", "explain", "frame_columns", "run_cli"]

_INSTALL_HINT = "pip install 'textlrp[dask]'"
_OVERFLOW_API = "relevance overflowed to inf/NaN; try a larger eps or a shorter text"
# The CLI's wording (textlrp.cli), so that --dask output is byte-identical to a local run.
_OVERFLOW_CLI = "relevance overflowed to inf/NaN; try a larger --eps or a shorter text"


def _import_dask() -> Any:
    try:
        import dask
        import dask.bag  # the collections explain() returns
    except ImportError as exc:
        raise ImportError(f"textlrp.dask needs Dask: {_INSTALL_HINT} ({exc})") from None
    return dask


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class _Shipped:
    """What a task needs to find the model on its worker: the data key of the file's bytes,
    their sha256 and the computation dtype."""

    sha256: str
    dtype: str

    @property
    def key(self) -> str:
        return f"textlrp-model-{self.sha256}"


def _load_bytes(data: bytes, dtype: str, label: str) -> Any:
    """A Model from the bytes of a model file, through the file reader and all its checks
    (it reads regular files only, hence the temporary copy); errors name ``label``."""
    from .io import ModelFileError, load_model

    with tempfile.TemporaryDirectory(prefix="textlrp-model-") as tmp:
        path = Path(tmp, "model.npz")
        path.write_bytes(data)
        try:
            return load_model(path, dtype=dtype)
        except ModelFileError as exc:
            raise ModelFileError(label, exc.problem) from None


def _prepare_model(model: Any, dtype: Any = None) -> tuple[Any, bytes, _Shipped]:
    """(the Model on the client, the model file's bytes, how tasks find it) for a path,
    None (the bundled model) or a Model. A path is read once and checked by loading exactly
    the bytes that will be shipped."""
    from .io import default_model_path, load_model, save_model
    from .model import Model

    if isinstance(model, Model):
        if dtype is not None and np.dtype(dtype) != model.dtype:
            raise ValueError(f"dtype {np.dtype(dtype).name} differs from the Model's "
                             f"{model.dtype.name}; load the file with that dtype instead")
        with tempfile.TemporaryDirectory(prefix="textlrp-model-") as tmp:
            path = Path(tmp, "model.npz")
            save_model(model, path)
            data = path.read_bytes()
        name = np.dtype(model.dtype).name
        return model, data, _Shipped(hashlib.sha256(data).hexdigest(), name)
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a path, a textlrp.Model or None (the bundled model), "
                        f"got {type(model).__name__}")
    path = default_model_path() if model is None else Path(model)
    name = np.dtype(np.float64 if dtype is None else dtype).name
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {name}")
    if not path.is_file():  # a missing file, a directory, a FIFO: the reader's own message
        load_model(path, dtype=name)
    data = path.read_bytes()
    loaded = _load_bytes(data, name, str(path))
    return loaded, data, _Shipped(hashlib.sha256(data).hexdigest(), name)


def _model_node(data: bytes, shipped: _Shipped) -> Any:
    """The graph's single data key holding the model file's bytes."""
    dask = _import_dask()
    return dask.delayed(data, name=shipped.key, pure=False)


# The worker side: one Model per (file, dtype) and process, loaded on first use.
_CACHE: collections.OrderedDict[tuple[str, str], Any] = collections.OrderedDict()
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()
_LOADS: collections.Counter[str] = collections.Counter()  # loads per sha256, for tests


def _worker_model(data: bytes, shipped: _Shipped) -> Any:
    cache_key = (shipped.sha256, shipped.dtype)
    with _CACHE_LOCK:  # a worker with several threads loads once, not once per thread
        model = _CACHE.get(cache_key)
        if model is None:
            if hashlib.sha256(data).hexdigest() != shipped.sha256:
                raise RuntimeError("the model bytes on this worker do not match their sha256")
            model = _load_bytes(data, shipped.dtype, f"model sha256:{shipped.sha256[:12]}")
            _LOADS[shipped.sha256] += 1
            _CACHE[cache_key] = model
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        _CACHE.move_to_end(cache_key)
        return model


# --------------------------------------------------------------------------- explaining


@dataclass(frozen=True)
class _Params:
    """The explanation options every task gets (plain values: cheap to pickle)."""

    targets: tuple[int | None, ...]
    method: str
    rule: str
    eps: float
    bias_factor: float
    seed: int
    batch_size: int
    threads: int

    def explain_kwargs(self) -> dict[str, Any]:
        """The keywords of explain_corpus: the method and the parameters it takes (the API
        refuses parameters of other methods)."""
        from .methods import METHODS

        given = {"rule": self.rule, "eps": self.eps, "bias_factor": self.bias_factor,
                 "seed": self.seed}
        return {"method": self.method, "keep_embedding": False,
                **{k: v for k, v in given.items() if k in METHODS[self.method].params}}


def _finite(exp: Explanation) -> bool:
    return bool(np.isfinite(exp.relevance).all()) and (exp.rest is None or math.isfinite(exp.rest))


def _explain_inputs(model: Any, inputs: Sequence[Any], failed: dict[int, str], params: _Params,
                    overflow: str) -> Iterator[list[Explanation] | str]:
    """Per input, in order: its explanations (one per target) or an error message.

    ``failed`` maps positions that could not even be read to their message; they keep their
    place in the stream as an empty input (as the local CLI does). One target: one lazy pass
    of ``explain_corpus`` (tokenising overlaps the engine). Several: the later targets reuse
    the first pass's tokens."""
    opts = params.explain_kwargs()
    stream_in = [[] if k in failed else x for k, x in enumerate(inputs)]

    def run(xs: Sequence[Any], target: int | None) -> Iterator[Any]:
        return model.explain_corpus(xs, batch_size=params.batch_size, threads=params.threads,
                                    errors="record", target=target, **opts)

    with warnings.catch_warnings():  # overflow is reported per input, not as a warning
        warnings.filterwarnings("ignore", message=".*overflowed", category=RuntimeWarning)
        if len(params.targets) == 1:
            per_input: Iterable[list[Any]] = ([r] for r in run(stream_in, params.targets[0]))
        else:
            first = list(run(stream_in, params.targets[0]))
            ok = [k for k, r in enumerate(first) if isinstance(r, Explanation)]
            columns = [first]
            for target in params.targets[1:]:
                again = list(run([first[k].tokens for k in ok], target))
                column = list(first)
                for k, exp in zip(ok, again):
                    if isinstance(exp, Explanation):
                        exp.text = first[k].text
                    column[k] = exp
                columns.append(column)
            per_input = (list(results) for results in zip(*columns))
        for k, results in enumerate(per_input):
            if k in failed:
                yield failed[k]
                continue
            bad = next((r for r in results if not isinstance(r, Explanation)), None)
            if bad is not None:
                yield str(bad.error)
            elif not all(_finite(r) for r in results):
                yield overflow
            else:
                yield results


def _missing(x: Any) -> bool:
    """None, NaN or pandas' NA: how dataframes spell a missing text."""
    return (x is None or (isinstance(x, float) and math.isnan(x))
            or type(x).__name__ == "NAType")


def _as_texts(items: Sequence[Any], column: Any) -> tuple[list[Any], dict[int, str]]:
    """(the texts, {position: error}) of a partition's elements: a missing value (None,
    NaN, pd.NA) or a non-string is an error record, not a failed task."""
    texts: list[Any] = []
    failed: dict[int, str] = {}
    for k, item in enumerate(items):
        if column is not None:
            try:
                item = item[column]
            except (KeyError, IndexError, TypeError) as exc:
                failed[k] = f"the element has no field {column!r} ({type(exc).__name__})"
                texts.append(None)
                continue
        if isinstance(item, str):
            texts.append(item)
        else:
            failed[k] = ("missing text" if _missing(item)
                         else f"expected a text (str), got {type(item).__name__}")
            texts.append(None)
    return texts, failed


def _records(texts: list[Any], failed: dict[int, str], model: Any,
             params: _Params) -> list[dict[str, Any]]:
    """The JSON-ready record of each text: ``Explanation.to_dict()``, or an error record
    ``{"text", "error"}`` (the CLI's, without the line number a bag does not know)."""
    out = []
    for text, result in zip(texts, _explain_inputs(model, texts, failed, params, _OVERFLOW_API)):
        out.append({"text": text, "error": result} if isinstance(result, str)
                   else result[0].to_dict())
    return out


def _bag_partition(items: Iterable[Any], data: bytes, shipped: _Shipped, params: _Params,
                   column: Any, errors: str) -> list[dict[str, Any]]:
    model = _worker_model(data, shipped)
    texts, failed = _as_texts(list(items), column)
    records = _records(texts, failed, model, params)
    if errors == "raise":
        _raise_first(records)
    return records


def _raise_first(records: Iterable[dict[str, Any]]) -> None:
    for k, r in enumerate(records):
        if "error" in r:
            raise ValueError(f"input {k} of the partition: {r['error']}")


def frame_columns(regression: bool = False) -> dict[str, str]:
    """The columns of the dataframe :func:`explain` returns, with their dtypes.

    ``prediction``: the predicted class index (``Int64``; a regression model's output value,
    ``Float64``); ``prediction_name``, ``target``, ``target_name``: as in the JSON records;
    ``probabilities``, ``tokens``, ``relevance``, ``oov``: Python lists (``object``);
    ``rest``: the relevance left at the initial states (LRP; else missing); ``error``: None,
    or why the text could not be explained (then the other columns are missing)."""
    return {"prediction": "Float64" if regression else "Int64", "prediction_name": "object",
            "target": "Int64", "target_name": "object", "probabilities": "object",
            "tokens": "object", "relevance": "object", "oov": "object", "rest": "float64",
            "error": "object"}


def _frame(records: list[dict[str, Any]], index: Any, regression: bool) -> Any:
    import pandas as pd

    columns = frame_columns(regression)
    values: dict[str, list[Any]] = {c: [] for c in columns}
    for r in records:
        for c in columns:
            v = r.get(c)
            values[c].append(float("nan") if c == "rest" and v is None else v)
    data = {}
    for c, dtype in columns.items():
        if dtype == "object":
            data[c] = pd.Series(values[c], index=index, dtype=object)
        else:
            data[c] = pd.Series(pd.array(values[c], dtype=dtype), index=index)
    return pd.DataFrame(data, index=index)


def _frame_partition(series: Any, data: bytes, shipped: _Shipped, params: _Params,
                     errors: str) -> Any:
    model = _worker_model(data, shipped)
    texts, failed = _as_texts(series.tolist(), None)
    records = _records(texts, failed, model, params)
    if errors == "raise":
        _raise_first(records)
    return _frame(records, series.index, model.regression)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_params(model: Any, *, targets: Sequence[Any], method: str, rule: str, eps: Any,
                  bias_factor: Any, seed: Any, batch_size: Any, threads: Any) -> _Params:
    """Every option checked on the client, so that a mistake fails before any task runs."""
    from .methods import check_method, check_rule

    check_method(method)
    check_rule(rule, model.cells if method == "lrp" else None)
    try:
        eps_f, bias_f = float(eps), float(bias_factor)
    except (TypeError, ValueError):
        raise TypeError(f"eps and bias_factor must be numbers, got {eps!r}, {bias_factor!r}") \
            from None
    if not (math.isfinite(eps_f) and eps_f > 0 and math.isfinite(bias_f)):
        raise ValueError(f"eps must be finite and > 0 and bias_factor finite, got {eps!r}, "
                         f"{bias_factor!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    resolved = tuple(None if t is None else model.class_index(t) for t in targets)
    return _Params(resolved, str(method), str(rule), eps_f, bias_f, int(seed),
                   _positive_int(batch_size, "batch_size"), _positive_int(threads, "threads"))


def explain(collection: Any, model: Any = None, *, method: str = "lrp", target: Any = None,
            eps: float = 1e-3, bias_factor: float = 0.0, rule: str = "signal-take-all",
            seed: int = 0, column: Any = None, batch_size: int = 256, threads: int = 1,
            errors: str = "record", dtype: Any = None) -> Any:
    """Explain every text of a Dask collection, lazily, on whatever scheduler computes it.

    ``collection``: a ``dask.bag.Bag`` of texts (or of dicts/tuples with the text at
    ``column``), a ``dask.dataframe.Series`` of texts, or a ``dask.dataframe.DataFrame``
    with ``column`` naming the text column.
    ``model``: a model file path, a :class:`textlrp.Model`, or None (the bundled model); a
    path is read and checked here, on the client (a broken file raises
    :class:`~textlrp.io.ModelFileError` before any task exists). ``dtype``: the computation
    dtype for a path (float64 by default).
    ``method``, ``target`` (one for all texts; index or name), ``eps``, ``bias_factor``,
    ``rule``, ``seed``: as in :meth:`textlrp.Model.explain`. ``batch_size``: texts per engine
    call. ``threads``: engine threads per task (default 1: Dask already runs one task per
    worker thread). Results do not depend on any of the last three.
    ``errors``: "record" (default) turns a text that cannot be explained (empty, missing,
    not a string, relevance overflow) into an error record; "raise" fails the task instead.

    Returns, for a bag, a bag with one JSON-ready dict per input in input order:
    ``Explanation.to_dict()``, or ``{"text": ..., "error": ...}``; for a dataframe or series,
    a dataframe with the input's index and the columns of :func:`frame_columns`.
    """
    dask = _import_dask()
    if errors not in ("raise", "record"):
        raise ValueError(f"errors must be 'raise' or 'record', got {errors!r}")
    kind = _collection_kind(collection, column, dask)
    local, data, shipped = _prepare_model(model, dtype)
    if local.vocab is None:
        raise ValueError("this model has no vocabulary, so it cannot read text")
    params = _check_params(local, targets=[target], method=method, rule=rule, eps=eps,
                           bias_factor=bias_factor, seed=seed, batch_size=batch_size,
                           threads=threads)
    node = _model_node(data, shipped)
    if kind == "bag":
        return collection.map_partitions(_bag_partition, node, shipped, params, column, errors)
    import pandas as pd

    series = collection[column] if kind == "frame" else collection
    meta = _frame([], pd.RangeIndex(0), local.regression)
    return series.map_partitions(_frame_partition, node, shipped, params, errors, meta=meta)


def _collection_kind(collection: Any, column: Any, dask: Any) -> str:
    if isinstance(collection, dask.bag.Bag):
        return "bag"
    if type(collection).__module__.startswith("dask.dataframe"):
        import dask.dataframe as dd

        if isinstance(collection, dd.Series):
            if column is not None:
                raise ValueError("column names a column of a dataframe; a series is the column")
            return "series"
        if isinstance(collection, dd.DataFrame):
            if column is None:
                raise ValueError("a dataframe needs column=NAME, the column that holds the texts")
            if column not in collection.columns:
                raise KeyError(f"no column {column!r}; the columns are "
                               f"{', '.join(map(repr, collection.columns))}")
            return "frame"
    raise TypeError(f"explain takes a dask.bag.Bag, dask.dataframe.Series or DataFrame, "
                    f"got {type(collection).__name__}")


# --------------------------------------------------------------------------- the command line


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``textlrp explain`` for a corpus on a Dask cluster (no dask import).
    They live with the command line's options, so that building the parser does not import
    this module."""
    from .cli.options import add_dask_options

    add_dask_options(parser)


@dataclass(frozen=True)
class _Part:
    """One partition of the input: lines ``first .. first + n - 1`` of ``path`` (counted from
    1), bytes ``[start, end)``."""

    index: int
    path: str
    start: int
    end: int
    first: int
    n: int
    name: str


def _plan_file(path: str, lines: int) -> list[tuple[int, int, int, int]]:
    """(start byte, end byte, first line, line count) of each run of ``lines`` lines of a
    file: the newlines are counted in 1 MB blocks (numpy), never line by line."""
    cuts = [0]  # byte offsets where a partition starts
    count = 0  # newlines seen
    pos = 0
    last = b""
    with open(path, "rb") as f:
        while block := f.read(2**20):
            nl = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
            first = lines - count % lines  # the newline (1-based in this block) closing a run
            cuts.extend((pos + nl[first - 1::lines] + 1).tolist())
            count += len(nl)
            pos += len(block)
            last = block[-1:]
    total = count + (1 if pos and last != b"\n" else 0)
    if cuts[-1] == pos:
        cuts.pop()
    bounds = [*cuts, pos]
    return [(bounds[k], bounds[k + 1], k * lines + 1, min(lines, total - k * lines))
            for k in range(len(cuts)) if pos]


def _safe_name(path: str) -> str:
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(path).name)
    return name[:60] or "input"


def _plan(files: list[str], lines: int) -> list[_Part]:
    chunks = [(path, c) for path in files for c in _plan_file(path, lines)]
    width = max(5, len(str(len(chunks) - 1)))
    return [_Part(k, path, start, end, first, n,
                  f"{k:0{width}d}-{_safe_name(path)}-lines-{first}-{first + n - 1}.jsonl")
            for k, (path, (start, end, first, n)) in enumerate(chunks)]


def _read_part(part: _Part, header: bool, skip_empty: bool) -> tuple[list[int], list[Any],
                                                                      dict[int, str]]:
    """(line numbers, texts, {position: error}) of a partition, read exactly as the local
    CLI reads a plain-text --input: UTF-8 with a BOM dropped, CR/LF stripped, an empty line
    or undecodable bytes an error record (or skipped with --skip-empty)."""
    with open(part.path, "rb") as f:
        f.seek(part.start)
        data = f.read(part.end - part.start)
    raws = data.split(b"\n")
    if raws and raws[-1] == b"":
        raws.pop()  # the split after the final newline is not a line
    if len(raws) != part.n:
        raise OSError(f"{part.path} changed since the run was planned (expected {part.n} lines "
                      f"at byte {part.start}, found {len(raws)}); start a new --output-dir")
    numbers: list[int] = []
    texts: list[Any] = []
    failed: dict[int, str] = {}
    for k, raw in enumerate(raws):
        n = part.first + k
        if n == 1:
            if header:
                continue
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        raw = raw.rstrip(b"\r\n")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            failed[len(texts)] = f"not valid UTF-8 (byte {exc.start + 1} of the line)"
            text = raw.decode("utf-8", "replace")
        else:
            if not text.strip():
                if skip_empty:
                    continue
                failed[len(texts)] = "empty line"
        numbers.append(n)
        texts.append(text)
    return numbers, texts, failed


def _write_part(part: _Part, data: bytes, shipped: _Shipped, params: _Params, out_dir: str,
                header: bool, skip_empty: bool) -> tuple[int, int, int]:
    """Explain one partition into ``out_dir/part.name``, atomically (a temporary file in the
    same directory, then a rename): a file there is always complete. Returns (index, lines
    written, error records)."""
    from . import render

    model = _worker_model(data, shipped)
    numbers, texts, failed = _read_part(part, header, skip_empty)
    final = Path(out_dir, part.name)
    tmp = Path(out_dir, f".{part.name}.{uuid.uuid4().hex}.tmp")
    errors = 0
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            writer = render.make_writer("json", f, render.WriterOptions(
                kind="explain", class_names=tuple(model.class_names), lines=True))
            writer.begin()
            results = _explain_inputs(model, texts, failed, params, _OVERFLOW_CLI)
            for line, text, result in zip(numbers, texts, results):
                if isinstance(result, str):
                    errors += 1
                    writer.error(result, line=line, text=text)
                else:
                    writer.explanation(result, line=line)
            writer.end()
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return part.index, len(numbers), errors


_MANIFEST = "textlrp-dask.json"


def _manifest(files: list[str], parts: list[_Part], shipped: _Shipped, params: _Params,
              lines: int, header: bool, skip_empty: bool) -> dict[str, Any]:
    from . import __version__

    inputs = []
    for path in files:
        st = os.stat(path)
        inputs.append({"path": os.path.abspath(path), "size": st.st_size,
                       "mtime_ns": st.st_mtime_ns})
    options = asdict(params)
    del options["batch_size"], options["threads"]  # they do not change the output
    manifest = {"format": "textlrp-dask-output", "version": 1, "textlrp": __version__,
            "model_sha256": shipped.sha256, "dtype": shipped.dtype, "explain": options,
            "partition_lines": lines, "header": header, "skip_empty": skip_empty,
            "inputs": inputs, "partitions": len(parts)}
    return json.loads(json.dumps(manifest))  # as it reads back from the file (lists, not tuples)


def _check_output_dir(out: Path, manifest: dict[str, Any]) -> None:
    """Create ``out`` or check that it holds this very run: the same inputs (size and
    modification time), model, options and partitioning. Then remove temporary files a
    killed run left behind."""
    path = out / _MANIFEST
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output-dir {out} exists and is not a directory")
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None
        what = {"model_sha256": "the model", "dtype": "the dtype", "explain": "the explanation "
                "options", "partition_lines": "--partition-lines", "header": "--header",
                "skip_empty": "--skip-empty", "inputs": "the input files (or their size or "
                "modification time)"}
        differ = [text for key, text in what.items()
                  if not isinstance(old, dict) or old.get(key) != manifest[key]]
        if differ:
            raise ValueError(f"--output-dir {out} holds the output of another run ("
                             f"{', '.join(differ)} differ); use a new directory or empty it")
    elif out.is_dir() and any(out.iterdir()):
        raise ValueError(f"--output-dir {out} is not empty and holds no {_MANIFEST}; "
                         f"use a new or empty directory")
    else:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".{_MANIFEST}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    _remove_temporary_files(out)


def _remove_temporary_files(out: Path) -> None:
    """Temporary files of tasks that died while writing (a killed worker cannot clean up)."""
    for stale in out.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def _input_files(pattern: str) -> list[str]:
    if pattern == "-":
        raise ValueError("--dask reads files the workers can open; it cannot read stdin")
    matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    if not matches:
        raise ValueError(f"no input file matches {pattern!r}")
    files = []
    for m in matches:
        if os.path.isdir(m):
            if not glob.has_magic(pattern):
                raise ValueError(f"--input {m} is a directory; give a file or a glob "
                                 f"such as '{os.path.join(m, '*.txt')}'")
            continue
        if not os.path.isfile(m):
            raise FileNotFoundError(f"input file not found: {m}")
        files.append(m)
    if not files:
        raise ValueError(f"{pattern!r} matches only directories")
    return files


def _check_cli_usage(args: argparse.Namespace) -> None:
    if args.input is None:
        raise ValueError("--dask explains a corpus: give --input FILE or a quoted glob")
    if getattr(args, "text", None):
        raise ValueError("give either TEXT or --input with --dask, not both")
    if args.output_dir is None:
        raise ValueError("--dask writes one file per partition: give --output-dir DIR")
    if args.output is not None:
        raise ValueError("--dask writes into --output-dir, not --output")
    if args.format not in (None, "json"):
        raise ValueError(f"--dask writes JSON Lines; --format {args.format} is not available")
    for option in ("column", "delimiter", "label_column"):
        if getattr(args, option, None) is not None:
            raise ValueError(f"--{option.replace('_', '-')} is not available with --dask "
                             "(plain text, one text per line)")
    if getattr(args, "scale", None) is not None:
        raise ValueError("--scale sets colours; the json format has none")
    _local_workers(str(args.dask))


def _local_workers(address: str) -> int | None:
    """N for ``local:N`` (``local``: one per core), None for a scheduler address."""
    if address != "local" and not address.startswith("local:"):
        return None
    n = address.partition(":")[2]
    if n and not (n.isdigit() and int(n) >= 1):
        raise ValueError(f"--dask local:N needs a positive number of workers, got {n!r}")
    return int(n) if n else len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)


def _cli_targets(args: argparse.Namespace, model: Any) -> list[Any]:
    if args.all_classes:
        if args.target is not None:
            raise ValueError("--all-classes explains every class; drop --target")
        return list(range(model.n_classes))
    return [args.target]


def run_cli(args: argparse.Namespace, model_path: str | None,
            explain_params: dict[str, Any]) -> int:
    """``textlrp explain --input PATTERN --dask ADDRESS --output-dir DIR``; returns 0, or
    raises ValueError/OSError with a one-line message (the CLI prints it and exits 2).

    ``explain_params``: method, rule, eps, bias_factor, seed (as the local CLI passes them
    to ``explain_corpus``). Also read from ``args``: input, text, target, all_classes, header,
    skip_empty, batch_size, threads (per task; default 1), quiet, output, format, output_dir,
    partition_lines, dask."""
    _check_cli_usage(args)
    try:
        _import_dask()
        import distributed
    except ImportError:
        raise ValueError(f"--dask needs Dask: {_INSTALL_HINT}") from None
    started = time.perf_counter()
    files = _input_files(args.input)
    local, data, shipped = _prepare_model(model_path)
    if local.vocab is None:
        raise ValueError("this model has no vocabulary, so it cannot read text")
    opts = {k: explain_params[k] for k in ("method", "rule", "eps", "bias_factor", "seed")}
    params = _check_params(local, targets=_cli_targets(args, local), batch_size=args.batch_size,
                           threads=args.threads or 1, **opts)
    lines = args.partition_lines
    parts = _plan(files, lines)
    out = Path(args.output_dir)
    _check_output_dir(out, _manifest(files, parts, shipped, params, lines, args.header,
                                     args.skip_empty))
    todo = [p for p in parts if not (out / p.name).is_file()]
    quiet = bool(args.quiet)
    if not todo:
        if not quiet:
            print(f"textlrp: all {len(parts)} partitions are already in {out}", file=sys.stderr)
        return 0
    with _Connection(str(args.dask), distributed) as client:
        done, written, errors = _run_parts(client, todo, data, shipped, params, out, args,
                                           quiet)
    _remove_temporary_files(out)  # every task of this run has ended
    if not quiet:
        elapsed = time.perf_counter() - started
        print(f"textlrp: explained {written} lines in {done} partitions "
              f"({len(parts) - len(todo)} already done) in {elapsed:.1f} s "
              f"({written / max(elapsed, 1e-9):.0f}/s) -> {out}", file=sys.stderr)
        if errors:
            print(f"textlrp: {errors} of {written} lines could not be explained; see the error "
                  "records in the output", file=sys.stderr)
    return 0


class _Connection:
    """A Client of the scheduler at ``address``, or of a LocalCluster for ``local[:N]``."""

    def __init__(self, address: str, distributed: Any) -> None:
        self.address = address
        self.distributed = distributed
        self.cluster: Any = None
        self.client: Any = None

    def __enter__(self) -> Any:
        d = self.distributed
        workers = _local_workers(self.address)
        if workers is not None:
            self.cluster = d.LocalCluster(n_workers=workers, threads_per_worker=1,
                                          processes=True, dashboard_address=":0")
            self.client = d.Client(self.cluster)
            return self.client
        try:
            self.client = d.Client(self.address, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise OSError(f"cannot reach the Dask scheduler at {self.address}: "
                          f"{' '.join(str(exc).split()) or type(exc).__name__}") from None
        return self.client

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _run_parts(client: Any, todo: list[_Part], data: bytes, shipped: _Shipped,
               params: _Params, out: Path, args: argparse.Namespace,
               quiet: bool) -> tuple[int, int, int]:
    """Submit every missing partition as one task of a graph with the model as one data key;
    results come back as the tasks finish. A worker lost mid-run has its tasks rerun
    elsewhere by the scheduler; a partition that fails is reported after the others finish."""
    import dask
    from distributed import as_completed

    node = _model_node(data, shipped)
    write = dask.delayed(_write_part, pure=False)
    tasks = [write(p, node, shipped, params, str(out.resolve()), bool(args.header),
                   bool(args.skip_empty), dask_key_name=f"textlrp-part-{p.index}-{shipped.sha256[:8]}")
             for p in todo]
    futures = client.compute(tasks)
    by_index = {p.index: p for p in todo}
    bar = None
    if not quiet and _isatty(sys.stderr):
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit=" partitions", desc="explaining", file=sys.stderr,
                   leave=False, dynamic_ncols=True)
    done = written = errors = 0
    failures: list[str] = []
    try:
        for future in as_completed(futures):
            if future.status == "error":
                exc = future.exception()
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            _index, n, e = future.result()
            done += 1
            written += n
            errors += e
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if failures:
        missing = [by_index[i].name for i in sorted(by_index) if not (out / by_index[i].name).exists()]
        raise ValueError(f"{len(failures)} of {len(todo)} partitions failed (first: "
                         f"{failures[0]}); rerun to retry them (missing: {', '.join(missing[:3])}"
                         f"{' ...' if len(missing) > 3 else ''})")
    return done, written, errors


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
