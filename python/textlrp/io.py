"""The textlrp model file: one ``.npz`` (zip) archive of ``.npy`` members, no pickle, checked
member by member before any array data is read.

Layout of format ``textlrp-model`` version 2 (written by this version), for any
:class:`~textlrp.spec.ModelSpec`::

    metadata                  uint8 [n]   the JSON header (UTF-8), see below
    embedding                 [V, e]      only for token models (architecture.input "embedding")
    rnn.{l}.{k}.W_ih          [G*d, in]   layer l (0 = bottom), direction k (0 forward, 1 backward);
    rnn.{l}.{k}.W_hh          [G*d, d]    gate row blocks in the engine's order, G = 4 for LSTM
    rnn.{l}.{k}.b_ih          [G*d]       (i, f, g, o), 3 for GRU (r, z, n)
    rnn.{l}.{k}.b_hh          [G*d]
    attention.W / .b / .v     [A, F] [A] [A]   only with pooling "attention"
    head.{k}.W                [out, in]   ReLU between head layers, the last one linear
    head.{k}.b                [out]       only for layers with a bias

Every array has the dtype the header names (float32 or float64), C order. The header is a
JSON object with exactly these keys: ``format`` ("textlrp-model"), ``format_version`` (2),
``architecture`` (``ModelSpec.describe()``, cross-checked against every member), ``gate_order``
(``{cell: gate letters}`` for the cells used), ``dtype``, ``vocab`` (list or null),
``unk_token`` (string or null), ``class_names`` (list, or null for a one-output regression
model), ``tokenizer`` (``{"lowercase": bool}``), ``provenance`` (a free JSON object: the
Model's ``metadata``) and ``card`` (the model card text, or null).

Version 1 files (``lstm.{l}.{k}.W_ih/W_hh/b``, architecture ``vocab_size``/``embedding_dim``/
``lstm``/``head``, no ``card``) still load, with ``b_ih = b`` and ``b_hh = 0``.

Reading trusts nothing in the file: only regular files are opened (never blocking on a FIFO
or reading a device without end); the zip directory, the header and every member's npy
header and declared size are checked against the architecture before any array data is
decompressed, so a small hostile file cannot make the reader allocate much; every problem
raises :class:`ModelFileError` naming the file.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import stat
import struct
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Callable, NamedTuple, NoReturn

import numpy as np

from .spec import CELLS, POOLINGS, Attention, Dense, Direction, ModelSpec, Recurrent

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFileError",
    "default_model_path",
    "load_model",
    "read_model_file",
    "save_model",
    "write_model_file",
]

FORMAT_NAME = "textlrp-model"
FORMAT_VERSION = 2
DEFAULT_MODEL_NAME = "sst5-bilstm.npz"
_FLOAT_DTYPES = ("float32", "float64")

# Limits on what a file may declare; each is far above any real model and bounds the work
# and memory a hostile file can cause before it is refused.
MAX_HEADER_BYTES = 16 * 2**20  # the JSON header (a 1M-word vocabulary is ~12 MB)
MAX_JSON_DEPTH = 64  # nesting of the header (provenance included)
MAX_MEMBERS = 1024  # zip members
MAX_DIM = 2**31 - 1  # any size in the architecture
_MAX_DIRECTORY_BYTES = 2**20  # the zip's central directory
_MAX_NPY_HEADER = 4096  # numpy writes ~128 bytes
# Weights hardly compress (ratio ~1.1); a file whose members expand to far more than the file
# itself is a zip bomb. Files declaring less than the floor are never refused for it.
_BOMB_RATIO = 8
_BOMB_FLOOR = 64 * 2**20
_CHUNK = 2**20  # decompression step: memory beyond the arrays stays ~1 MB

_V1_KEYS = frozenset({"format", "format_version", "architecture", "vocab", "unk_token",
                      "class_names", "tokenizer", "gate_order", "dtype", "provenance"})
_V2_KEYS = frozenset({"format", "format_version", "architecture", "gate_order", "dtype", "vocab",
                      "unk_token", "class_names", "tokenizer", "provenance", "card"})
_V2_ARCH_KEYS = frozenset({"input", "vocab_size", "input_size", "layers", "pooling",
                           "attention_size", "head", "n_outputs"})


def _printable(text: str) -> str:
    """``text`` with every non-printable character escaped as repr does (``\\x1b``)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _show(value: Any, limit: int = 60) -> str:
    """A short, terminal-safe rendering of a value read from a file, for error messages."""
    if isinstance(value, (dict, list)):  # never repr a container: it may be huge or deep
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(items: Sequence[Any]) -> str:
    """Names read from a file for a message: the first five, shown safely."""
    shown = ", ".join(_show(n) for n in items[:5])
    return shown + (f" and {len(items) - 5} more" if len(items) > 5 else "")


class ModelFileError(ValueError):
    """A model file is unreadable or inconsistent; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        # Both parts may carry bytes of the file: keep the message one printable line.
        super().__init__(f"{_printable(self.path)}: not a valid textlrp model file: "
                         f"{_printable(problem)}")


def default_model_path() -> Path:
    """Path of the bundled SST-5 model (installed as ``textlrp/data/sst5-bilstm.npz``)."""
    from importlib import resources

    candidate = Path(str(resources.files("textlrp").joinpath("data", DEFAULT_MODEL_NAME)))
    if candidate.is_file():
        return candidate
    # A source checkout run with PYTHONPATH=python keeps the model in <repo>/data.
    checkout = Path(__file__).resolve().parents[2] / "data" / DEFAULT_MODEL_NAME
    if checkout.is_file():
        return checkout
    raise FileNotFoundError(
        f"the bundled default model {DEFAULT_MODEL_NAME} is missing (looked in {candidate} and "
        f"{checkout}); reinstall textlrp or pass a model file"
    )


# --------------------------------------------------------------------------- Model <-> spec
# The two places that know today's Model class. The Model built from a ModelSpec replaces
# both with ``Model(spec, **extras)`` and ``(model.spec, {...})``.


def _build_model(spec: ModelSpec, **extras: Any) -> Any:
    """A :class:`textlrp.Model` from a checked spec and the file's extras."""
    from .model import Model

    return Model(spec, dtype=spec.dtype, **extras)


def _model_parts(model: Any) -> tuple[ModelSpec, dict[str, Any]]:
    """(spec, extras) of a Model: what a model file stores (class_names None: regression)."""
    extras = {"vocab": model.vocab,
              "class_names": None if model.regression else model.class_names,
              "unk_token": model.unk_token, "lowercase": model.lowercase,
              "metadata": model.metadata, "card": model.card}
    return model.spec, extras


def _legacy_spec(embedding: Any, lstm_layers: Any, head: Any) -> ModelSpec:
    """A spec from the nested lists of format 1 (``b`` = the summed LSTM bias)."""
    if not isinstance(lstm_layers, (list, tuple)) or not isinstance(head, (list, tuple)):
        raise TypeError("lstm_layers and head must be lists")
    layers = []
    for li, layer in enumerate(lstm_layers):
        directions = []
        for di, d in enumerate([layer] if isinstance(layer, Mapping) else layer):
            missing = {"W_ih", "W_hh", "b"} - set(d)
            if missing:
                raise ValueError(f"LSTM layer {li} direction {di} lacks {sorted(missing)}")
            b = np.asarray(d["b"])
            directions.append(Direction(d["W_ih"], d["W_hh"], b, np.zeros(b.shape, b.dtype)))
        layers.append(Recurrent("lstm", tuple(directions)))
    dense = tuple(Dense(h["W"], h.get("b")) for h in head)
    return ModelSpec(embedding, tuple(layers), dense)


# --------------------------------------------------------------------------- writing


def write_model_file(
    path: str | os.PathLike[str],
    spec: ModelSpec | None = None,
    *,
    vocab: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    unk_token: str | None = None,
    lowercase: bool = False,
    metadata: Mapping[str, Any] | None = None,
    card: str | None = None,
    dtype: Any = None,
    embedding: Any = None,
    lstm_layers: Any = None,
    head: Any = None,
) -> None:
    """Write a model file (format 2) from a :class:`~textlrp.spec.ModelSpec`; the engine is
    not needed.

    ``dtype`` (float32 or float64) defaults to the spec's. ``class_names`` defaults to
    ``"0", "1", ...`` for several outputs and to null (regression) for one. ``metadata`` is
    the provenance dict, ``card`` the model card text. The format-1 keywords ``embedding``,
    ``lstm_layers`` (``b`` = summed bias) and ``head`` may stand in for ``spec``. The header
    goes through the reader's checks before anything is written, so an inconsistent model
    fails here with :class:`ModelFileError`, not on the next load.
    """
    path_str = os.fspath(path)
    legacy = (embedding, lstm_layers, head)
    if spec is None:
        if any(x is None for x in legacy):
            raise TypeError("write_model_file needs a ModelSpec (or the format-1 keywords "
                            "embedding, lstm_layers and head)")
        spec = _legacy_spec(embedding, lstm_layers, head)
    elif any(x is not None for x in legacy):
        raise TypeError("give either a ModelSpec or embedding/lstm_layers/head, not both")
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a textlrp.spec.ModelSpec, got {type(spec).__name__}")
    if card is not None and not isinstance(card, str):
        raise TypeError(f"card must be a string or None, got {type(card).__name__}")
    spec = spec.checked(dtype)
    if class_names is None and spec.n_outputs > 1:
        class_names = [str(c) for c in range(spec.n_outputs)]
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": spec.describe(),
        "gate_order": {r.cell: CELLS[r.cell] for r in spec.layers},
        "dtype": spec.dtype.name,
        "vocab": None if vocab is None else list(vocab),
        "unk_token": unk_token,
        "class_names": None if class_names is None else list(class_names),
        "tokenizer": {"lowercase": bool(lowercase)},
        "provenance": {} if metadata is None else dict(metadata),
        "card": card,
    }
    try:
        raw = json.dumps(header, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model metadata must be JSON-serialisable (no NaN/inf): {exc}") from None

    def fail(problem: str) -> NoReturn:
        raise ModelFileError(path_str, problem) from None  # the cause is in the message

    if len(raw) > MAX_HEADER_BYTES:
        fail(f"the header would take {len(raw)} bytes, more than {MAX_HEADER_BYTES}")
    layout = _check_header(_decode_header(raw, fail), fail)  # the reader's own checks
    arrays = {"metadata": np.frombuffer(raw, dtype=np.uint8), **_spec_arrays(spec)}
    for name, shape in layout.shapes.items():  # spec.checked() guarantees this; say so loudly
        if arrays[name].shape != shape:
            fail(f"array {name!r} has shape {arrays[name].shape}, the architecture needs {shape}")
    # np.savez_compressed appends ".npz" to names without it; an open file keeps the name.
    with open(path_str, "wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]  # numpy's stub mistypes **kwds


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Write ``model`` (a :class:`textlrp.Model`) to ``path`` in its own dtype, card and
    provenance included. Used by ``Model.save``."""
    spec, extras = _model_parts(model)
    write_model_file(path, spec, dtype=model.dtype, **extras)


def _spec_arrays(spec: ModelSpec) -> dict[str, np.ndarray]:
    """The members of a format-2 file (without the header), named as the module doc says."""
    arrays: dict[str, np.ndarray] = {}
    if spec.embedding is not None:
        arrays["embedding"] = spec.embedding
    for li, layer in enumerate(spec.layers):
        for di, d in enumerate(layer.directions):
            for key in ("W_ih", "W_hh", "b_ih", "b_hh"):
                arrays[f"rnn.{li}.{di}.{key}"] = getattr(d, key)
    if spec.attention is not None:
        for key in ("W", "b", "v"):
            arrays[f"attention.{key}"] = getattr(spec.attention, key)
    for k, dense in enumerate(spec.head):
        arrays[f"head.{k}.W"] = dense.W
        if dense.b is not None:
            arrays[f"head.{k}.b"] = dense.b
    return arrays


# --------------------------------------------------------------------------- reading


def read_model_file(path: str | os.PathLike[str]) -> tuple[ModelSpec, dict[str, Any]]:
    """Read and check a model file without building a Model.

    Returns ``(spec, extras)``: the checked :class:`~textlrp.spec.ModelSpec` in the file's
    dtype (read-only arrays) and a dict with ``vocab``, ``class_names`` (None for
    regression), ``unk_token``, ``lowercase``, ``metadata`` (the provenance dict) and
    ``card`` (str or None) -- the keyword arguments of :class:`textlrp.Model`.
    Raises :class:`ModelFileError` for any malformed file, FileNotFoundError if there is none.
    """
    path_str = os.fspath(path)

    def fail(problem: str) -> NoReturn:
        raise ModelFileError(path_str, problem) from None  # the cause is in the message

    f, size = _open_regular(path_str, fail)
    with f:
        _check_zip_directory(f, size, fail)
        with _damaged(fail, "damaged archive"):
            z = zipfile.ZipFile(f)
        with z:
            members = _members(z, size, fail)
            uint8 = np.dtype(np.uint8)
            at, shape = _member_header(z, members["metadata"], "metadata", uint8, None, fail)
            raw = _read_member(z, members["metadata"], "metadata", uint8, at, shape, fail)
            layout = _check_header(_decode_header(raw.tobytes(), fail), fail)
            del raw
            unknown = sorted(set(members) - set(layout.shapes) - {"metadata"})
            missing = sorted(set(layout.shapes) - set(members))
            if unknown:
                fail(f"unknown members {_names(unknown)} (not in the architecture)")
            if missing:
                fail(f"missing arrays {_names(missing)}")
            dtype = np.dtype(layout.dtype)
            # Every npy header and declared size first; only then any array data.
            offsets = {name: _member_header(z, members[name], name, dtype, shape, fail)[0]
                       for name, shape in layout.shapes.items()}
            arrays = {name: _read_member(z, members[name], name, dtype, offsets[name], shape, fail)
                      for name, shape in layout.shapes.items()}
    spec = _to_spec(layout, arrays)
    try:
        spec = spec.checked(dtype)
    except (ValueError, TypeError) as exc:
        fail(f"inconsistent arrays: {exc}")
    if layout.version >= 2 and spec.describe() != layout.architecture:
        fail("the header's architecture does not describe the arrays")
    return spec, layout.extras


def load_model(path: str | os.PathLike[str] | None = None, *, dtype: Any = np.float64) -> Any:
    """Load a model file (``None``: the bundled SST-5 model) as a :class:`textlrp.Model`.

    ``dtype`` is the computation dtype (float64 by default, float32 allowed); float32 files
    load exactly into float64.
    """
    spec, extras = read_model_file(default_model_path() if path is None else path)
    if np.dtype(dtype) != spec.dtype:
        spec = spec.checked(dtype)
    return _build_model(spec, **extras)


@contextlib.contextmanager
def _damaged(fail: Callable[[str], NoReturn], what: str) -> Iterator[None]:
    """``with _damaged(fail, what):`` turns any error of the zip/zlib/npy layers into
    ModelFileError. Damaged bytes make them raise BadZipFile, zlib.error, EOFError,
    struct.error, OSError, ValueError, NotImplementedError, UnicodeDecodeError...: the type
    says nothing useful to the caller, the file is damaged either way. A MemoryError would
    mean that a size check failed to protect the reader: never hide it."""
    try:
        yield
    except (ModelFileError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 -- any type: see the docstring
        fail(f"{what} ({type(exc).__name__}: {exc})")


def _open_regular(path: str, fail: Callable[[str], NoReturn]) -> tuple[IO[bytes], int]:
    """An open regular file and its size. A FIFO would block and /dev/zero never ends: look
    before opening, open without blocking, and look again at what was opened."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"model file {path} not found") from None
    if stat.S_ISDIR(st.st_mode):
        fail("is a directory")
    if not stat.S_ISREG(st.st_mode):
        fail("is not a regular file (a device, FIFO or socket); model files are regular files")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced between stat and open
            fail("is not a regular file (a device, FIFO or socket); model files are regular files")
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def _check_zip_directory(f: IO[bytes], size: int, fail: Callable[[str], NoReturn]) -> None:
    """Refuse archives whose central directory is too large before zipfile parses it
    (it builds one object per listed member)."""
    tail = min(size, 22 + 0xFFFF)  # end record + the longest comment
    f.seek(size - tail)
    data = f.read(tail)
    pos = data.rfind(b"PK\x05\x06")
    if pos < 0 or len(data) - pos < 22:
        fail("not an .npz (zip) archive, or the file is truncated")
    entries, directory = struct.unpack("<HI", data[pos + 10: pos + 16])
    if entries > MAX_MEMBERS or directory > _MAX_DIRECTORY_BYTES:
        fail(f"the archive lists {entries} members in {directory} bytes; a model file has at "
             f"most {MAX_MEMBERS} members")
    f.seek(0)


def _members(z: zipfile.ZipFile, size: int, fail: Callable[[str], NoReturn]
             ) -> dict[str, zipfile.ZipInfo]:
    """The members by array name, after the checks that need no data."""
    infos = z.infolist()
    if len(infos) > MAX_MEMBERS:
        fail(f"the archive has {len(infos)} members; a model file has at most {MAX_MEMBERS}")
    counts = collections.Counter(info.filename for info in infos)
    duplicates = sorted(name for name, n in counts.items() if n > 1)
    if duplicates:
        fail(f"duplicate members {_names(duplicates)}")
    declared = 0
    for info in infos:
        name = info.filename
        if not name.endswith(".npy"):
            fail(f"member {_show(name)} is not npy data (a model file holds .npy arrays only)")
        if info.flag_bits & 0x1:
            fail(f"member {_show(name)} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            fail(f"member {_show(name)} uses an unsupported compression ({info.compress_type})")
        if info.compress_size > size or info.header_offset > size:
            fail(f"member {_show(name)} declares more bytes than the file has")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            fail(f"member {_show(name)} is stored but declares two different sizes")
        declared += info.file_size
    # Overlapping members let a few compressed bytes stand for many members.
    spans = sorted((info.header_offset, info.header_offset + 30 + len(info.orig_filename)
                    + info.compress_size) for info in infos)
    if any(end > start for (_, end), (start, _) in zip(spans, spans[1:])):
        fail("members overlap in the archive")
    if declared > max(_BOMB_FLOOR, _BOMB_RATIO * size):
        fail(f"the members declare {declared} bytes of data in a file of {size} bytes "
             f"(a zip bomb?)")
    members = {info.filename[:-4]: info for info in infos}
    if "metadata" not in members:
        fail("no 'metadata' member (the JSON header)")
    return members


def _member_header(z: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, dtype: np.dtype,
                   shape: tuple[int, ...] | None, fail: Callable[[str], NoReturn]
                   ) -> tuple[int, tuple[int, ...]]:
    """Check a member's npy header (dtype, order, shape) and declared size against what the
    architecture needs, reading only the first bytes of the member; returns the data offset
    and the shape.
    ``shape`` None: any 1-D shape (the header member, whose size is capped instead)."""
    with _damaged(fail, f"member {name!r} is not npy data"), z.open(info) as m:
        version = np.lib.format.read_magic(m)
        if version == (1, 0):
            got, fortran, got_dtype = np.lib.format.read_array_header_1_0(
                m, max_header_size=_MAX_NPY_HEADER)
        elif version == (2, 0):
            got, fortran, got_dtype = np.lib.format.read_array_header_2_0(
                m, max_header_size=_MAX_NPY_HEADER)
        else:
            fail(f"member {name!r} has npy format version {version}; expected 1.0 or 2.0")
        offset = m.tell()
    if got_dtype != dtype:
        fail(f"array {name!r} has dtype {_show(str(got_dtype))}, the header says {dtype.name}")
    if fortran:
        fail(f"array {name!r} is stored in Fortran order; model files store C order")
    if shape is None:
        if len(got) != 1 or not 0 < got[0] <= MAX_HEADER_BYTES:
            fail(f"the 'metadata' member must be 1-D with at most {MAX_HEADER_BYTES} bytes, got "
                 f"shape {_show(got)}")
        shape = got
    elif got != shape:
        fail(f"array {name!r} has shape {_show(got)}, the architecture needs {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    if info.file_size != offset + nbytes:
        fail(f"member {name!r} declares {info.file_size} bytes; its {shape} array needs "
             f"{offset + nbytes}")
    return offset, shape


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, dtype: np.dtype,
                 offset: int, shape: tuple[int, ...], fail: Callable[[str], NoReturn]
                 ) -> np.ndarray:
    """A member checked by _member_header as a read-only array, decompressed in bounded
    steps into one buffer of the declared size."""
    out = np.empty(shape, dtype=dtype)
    view = out.data.cast("B")
    with _damaged(fail, f"member {name!r} is damaged"), z.open(info) as m:
        m.read(offset)
        pos = 0
        while pos < len(view):
            chunk = m.read(min(_CHUNK, len(view) - pos))
            if not chunk:
                fail(f"member {name!r} ends early")
            view[pos: pos + len(chunk)] = chunk
            pos += len(chunk)
        # The CRC is checked as the last declared byte is read; nothing may follow.
        if m.read(1):
            fail(f"member {name!r} has data beyond its declared size")
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        fail(f"array {name!r} has non-finite values (NaN or inf)")
    out.flags.writeable = False
    return out


def _decode_header(raw: bytes, fail: Callable[[str], NoReturn]) -> dict[str, Any]:
    """The JSON header: UTF-8, strict JSON (no NaN/Infinity, no duplicate keys), depth-capped."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        fail("the header is not UTF-8 text")

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            keys = [k for k, _ in pairs]
            raise ValueError(f"duplicate key {_show(next(k for k in keys if keys.count(k) > 1))}")
        return out

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    def finite(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"number {_show(text)} is out of range")
        return value

    try:
        header = json.loads(text, object_pairs_hook=unique_keys, parse_constant=no_constant,
                            parse_float=finite)
    except RecursionError:
        fail(f"the header is nested more than {MAX_JSON_DEPTH} levels deep")
    except ValueError as exc:  # JSONDecodeError, the hooks above, ints of > 4300 digits
        fail(f"the header is not valid JSON ({_printable(str(exc))[:200]})")
    # Iterative, so that checking depth cannot itself overflow the stack.
    stack = [(header, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            fail(f"the header is nested more than {MAX_JSON_DEPTH} levels deep")
        children = list(value.values()) if isinstance(value, dict) else value
        if not {dict, list}.isdisjoint(map(type, children)):  # a vocab list holds none
            stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    if not isinstance(header, dict):
        fail("the header must be a JSON object")
    return header


# --------------------------------------------------------------------------- the header


class _Layout(NamedTuple):
    version: int
    architecture: dict[str, Any]
    dtype: str
    shapes: dict[str, tuple[int, ...]]  # every array member the file must have
    extras: dict[str, Any]  # the Model's keyword arguments


def _int(value: Any, what: str, fail: Callable[[str], NoReturn], lo: int = 1,
         hi: int = MAX_DIM) -> int:
    # type(...) is int: JSON 5.0, 16582.5 and true are not sizes.
    if type(value) is not int or not lo <= value <= hi:
        fail(f"{what} must be an integer in [{lo}, {hi}], got {_show(value)}")
    return value


def _object(value: Any, what: str, keys: frozenset[str] | set[str],
            fail: Callable[[str], NoReturn]) -> dict[str, Any]:
    if not isinstance(value, dict):
        fail(f"{what} must be a JSON object, got {_show(value)}")
    missing = sorted(keys - set(value))
    unknown = sorted(set(value) - keys)
    if missing:
        fail(f"{what} lacks {_names(missing)}")
    if unknown:
        fail(f"{what} has unknown keys {_names(unknown)}")
    return value


def _list(value: Any, what: str, fail: Callable[[str], NoReturn]) -> list[Any]:
    if not isinstance(value, list) or not value:
        fail(f"{what} must be a non-empty list, got {_show(value)}")
    return value


def _strings(value: Any, what: str, n: int, of: str, fail: Callable[[str], NoReturn]
             ) -> list[str]:
    if not isinstance(value, list) or not set(map(type, value)) <= {str}:
        fail(f"'{what}' must be a list of strings or null")
    if len(value) != n:
        fail(f"{what} has {len(value)} entries but {of.format(n)}")
    if len(set(value)) != len(value):
        fail(f"'{what}' has duplicates")
    return value


def _check_header(header: dict[str, Any], fail: Callable[[str], NoReturn]) -> _Layout:
    """Check every key of the header; return the members and shapes it requires."""
    if header.get("format") != FORMAT_NAME:
        fail(f"'format' is {_show(header.get('format'))}, expected {FORMAT_NAME!r}")
    version = header.get("format_version")
    if type(version) is int and version > FORMAT_VERSION:
        fail(f"format_version {version} was written by a newer textlrp; this version reads up "
             f"to {FORMAT_VERSION} (upgrade textlrp)")
    version = _int(version, "'format_version'", fail, 1, FORMAT_VERSION)
    _object(header, "the header", _V1_KEYS if version == 1 else _V2_KEYS, fail)
    dtype = header["dtype"]
    if dtype not in _FLOAT_DTYPES:
        fail(f"dtype {_show(dtype)} is not float32 or float64")
    if version == 1:
        shapes, vocab_size, n_outputs, cells = _v1_shapes(header["architecture"], fail)
    else:
        shapes, vocab_size, n_outputs, cells = _v2_shapes(header["architecture"], fail)
    gate_order = "ifgo" if version == 1 else {cell: CELLS[cell] for cell in cells}
    if header["gate_order"] != gate_order:
        fail(f"gate_order {_show(header['gate_order'])} is not supported (expected "
             f"{gate_order})")
    tokenizer = _object(header["tokenizer"], "'tokenizer'", {"lowercase"}, fail)
    if not isinstance(tokenizer["lowercase"], bool):
        fail("'tokenizer' must be an object with a boolean 'lowercase'")
    if not isinstance(header["provenance"], dict):
        fail("'provenance' must be a JSON object")
    card = header.get("card")
    if card is not None and not isinstance(card, str):
        fail("'card' must be a string or null")

    vocab, unk = header["vocab"], header["unk_token"]
    if vocab is not None:
        if "embedding" not in shapes:
            fail("a model without embedding has no vocab")
        _strings(vocab, "vocab", vocab_size, "the embedding has {} rows", fail)
    if unk is not None:
        if not isinstance(unk, str):
            fail("'unk_token' must be a string or null")
        if vocab is None or unk not in vocab:
            fail(f"unk_token {_show(unk)} is not in the vocab")
    names = header["class_names"]
    if names is None and (version == 1 or n_outputs != 1):
        fail(f"'class_names' may be null only for a one-output regression model (the head has "
             f"{n_outputs} outputs)")
    if names is not None:
        _strings(names, "class_names", n_outputs, "the head has {} outputs", fail)
    extras = {"vocab": vocab, "class_names": names, "unk_token": unk,
              "lowercase": tokenizer["lowercase"], "metadata": header["provenance"],
              "card": card}
    return _Layout(version, header["architecture"], dtype, shapes, extras)


def _head_shapes(head: Any, n_in: int, keys: tuple[str, str, str], shapes: dict[str, Any],
                 fail: Callable[[str], NoReturn]) -> int:
    """Shapes of the dense layers; returns the number of outputs. ``keys``: the names of
    (in, out, bias) in this format version."""
    kin, kout, kbias = keys
    for k, layer in enumerate(_list(head, "architecture 'head'", fail)):
        layer = _object(layer, f"architecture head layer {k}", set(keys), fail)
        if _int(layer[kin], f"head layer {k} {kin}", fail) != n_in:
            fail(f"head layer {k} {kin} is {layer[kin]}, but its input has {n_in} features")
        out = _int(layer[kout], f"head layer {k} {kout}", fail)
        if not isinstance(layer[kbias], bool):
            fail(f"head layer {k} {kbias} must be true or false")
        shapes[f"head.{k}.W"] = (out, n_in)
        if layer[kbias]:
            shapes[f"head.{k}.b"] = (out,)
        n_in = out
    return n_in


def _v2_shapes(arch: Any, fail: Callable[[str], NoReturn]
               ) -> tuple[dict[str, tuple[int, ...]], int, int, list[str]]:
    arch = _object(arch, "'architecture'", _V2_ARCH_KEYS, fail)
    shapes: dict[str, tuple[int, ...]] = {}
    n_in = _int(arch["input_size"], "input_size", fail)
    if arch["input"] == "embedding":
        vocab_size = _int(arch["vocab_size"], "vocab_size", fail)
        shapes["embedding"] = (vocab_size, n_in)
    elif arch["input"] == "continuous":
        vocab_size = _int(arch["vocab_size"], "vocab_size", fail, 0, 0)
    else:
        fail(f"architecture input {_show(arch['input'])} is not 'embedding' or 'continuous'")
    cells = []
    for li, layer in enumerate(_list(arch["layers"], "architecture 'layers'", fail)):
        layer = _object(layer, f"architecture layer {li}", {"cell", "directions", "hidden"}, fail)
        cell = layer["cell"]
        if not isinstance(cell, str) or cell not in CELLS:
            fail(f"layer {li}: unknown cell {_show(cell)}; expected one of {', '.join(CELLS)}")
        directions = _int(layer["directions"], f"layer {li} directions", fail, 1, 2)
        d = _int(layer["hidden"], f"layer {li} hidden", fail)
        rows = len(CELLS[cell]) * d
        for di in range(directions):
            shapes[f"rnn.{li}.{di}.W_ih"] = (rows, n_in)
            shapes[f"rnn.{li}.{di}.W_hh"] = (rows, d)
            shapes[f"rnn.{li}.{di}.b_ih"] = (rows,)
            shapes[f"rnn.{li}.{di}.b_hh"] = (rows,)
        cells.append(cell)
        n_in = directions * d
    pooling, size = arch["pooling"], arch["attention_size"]
    if not isinstance(pooling, str) or pooling not in POOLINGS:
        fail(f"unknown pooling {_show(pooling)}; expected one of {', '.join(POOLINGS)}")
    if pooling == "attention":
        size = _int(size, "attention_size", fail)
        shapes.update({"attention.W": (size, n_in), "attention.b": (size,),
                       "attention.v": (size,)})
    elif size is not None:
        fail(f"attention_size must be null with pooling {pooling!r}")
    n_outputs = _head_shapes(arch["head"], n_in, ("in", "out", "bias"), shapes, fail)
    if arch["n_outputs"] != n_outputs or type(arch["n_outputs"]) is not int:
        fail(f"n_outputs is {_show(arch['n_outputs'])}, but the head has {n_outputs} outputs")
    return shapes, vocab_size, n_outputs, cells


def _v1_shapes(arch: Any, fail: Callable[[str], NoReturn]
               ) -> tuple[dict[str, tuple[int, ...]], int, int, list[str]]:
    arch = _object(arch, "'architecture'", {"vocab_size", "embedding_dim", "lstm", "head"}, fail)
    vocab_size = _int(arch["vocab_size"], "vocab_size", fail)
    n_in = _int(arch["embedding_dim"], "embedding_dim", fail)
    shapes: dict[str, tuple[int, ...]] = {"embedding": (vocab_size, n_in)}
    for li, layer in enumerate(_list(arch["lstm"], "architecture 'lstm'", fail)):
        layer = _object(layer, f"LSTM layer {li}", {"input_size", "hidden_sizes"}, fail)
        if _int(layer["input_size"], f"LSTM layer {li} input_size", fail) != n_in:
            fail(f"LSTM layer {li} input_size is {layer['input_size']}, but its input has "
                 f"{n_in} features")
        hidden = layer["hidden_sizes"]
        if not isinstance(hidden, list) or len(hidden) not in (1, 2):
            fail(f"LSTM layer {li} must have 1 or 2 directions")
        d = _int(hidden[0], f"LSTM layer {li} hidden size", fail)
        if any(h != d or type(h) is not int for h in hidden):
            fail(f"LSTM layer {li}: both directions must have the same hidden size")
        for di in range(len(hidden)):
            shapes[f"lstm.{li}.{di}.W_ih"] = (4 * d, n_in)
            shapes[f"lstm.{li}.{di}.W_hh"] = (4 * d, d)
            shapes[f"lstm.{li}.{di}.b"] = (4 * d,)
        n_in = len(hidden) * d
    n_outputs = _head_shapes(arch["head"], n_in, ("in_features", "out_features", "bias"),
                             shapes, fail)
    return shapes, vocab_size, n_outputs, ["lstm"]


def _to_spec(layout: _Layout, arrays: dict[str, np.ndarray]) -> ModelSpec:
    """The spec of checked arrays, in either format version."""
    arch = layout.architecture
    head = tuple(Dense(arrays[f"head.{k}.W"], arrays.get(f"head.{k}.b"))
                 for k in range(len(arch["head"])))
    if layout.version == 1:
        layers = []
        for li, layer in enumerate(arch["lstm"]):
            directions = []
            for di in range(len(layer["hidden_sizes"])):
                b = arrays[f"lstm.{li}.{di}.b"]
                zero = np.zeros_like(b)
                zero.flags.writeable = False
                directions.append(Direction(arrays[f"lstm.{li}.{di}.W_ih"],
                                            arrays[f"lstm.{li}.{di}.W_hh"], b, zero))
            layers.append(Recurrent("lstm", tuple(directions)))
        return ModelSpec(arrays["embedding"], tuple(layers), head)
    layers = [Recurrent(layer["cell"], tuple(
        Direction(*(arrays[f"rnn.{li}.{di}.{key}"] for key in ("W_ih", "W_hh", "b_ih", "b_hh")))
        for di in range(layer["directions"]))) for li, layer in enumerate(arch["layers"])]
    attention = None
    if arch["pooling"] == "attention":
        attention = Attention(arrays["attention.W"], arrays["attention.b"], arrays["attention.v"])
    return ModelSpec(arrays.get("embedding"), tuple(layers), head, pooling=arch["pooling"],
                     attention=attention, input_size=arch["input_size"])
