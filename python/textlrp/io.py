"""The textlrp model file: one ``.npz`` archive, no pickle, validated on load.

Layout (format ``textlrp-model``, ``format_version`` 1)::

    embedding                      [V, e]
    lstm.{layer}.{direction}.W_ih  [4d, in]     direction 0 = forward, 1 = backward
    lstm.{layer}.{direction}.W_hh  [4d, d]      gate rows in the order i, f, g, o
    lstm.{layer}.{direction}.b     [4d]         b = b_ih + b_hh
    head.{k}.W                     [out, in]    ReLU between head layers, last one linear
    head.{k}.b                     [out]        only for layers with a bias
    metadata                       uint8 [n]    UTF-8 JSON, see below

The JSON header holds ``format``, ``format_version``, ``architecture`` (sizes
and bias flags, cross-checked against the arrays), ``vocab`` (list or null),
``unk_token``, ``class_names``, ``tokenizer`` (``{"lowercase": bool}``),
``gate_order`` (``"ifgo"``), ``dtype`` and ``provenance`` (a free JSON dict: the
Model's ``metadata``). Files are read with ``allow_pickle=False``: loading a model
never executes code.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

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
FORMAT_VERSION = 1
DEFAULT_MODEL_NAME = "sst5-bilstm.npz"
_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


class ModelFileError(ValueError):
    """A model file is unreadable or inconsistent; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: not a valid textlrp model file: {problem}")


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
        f"the bundled default model {DEFAULT_MODEL_NAME} is missing (looked in {candidate} and {checkout}); "
        "reinstall textlrp or pass a model file"
    )


# --------------------------------------------------------------------------- writing


def _as_float_array(name: str, value: Any, dtype: np.dtype) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"array {name!r} must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"array {name!r} has non-finite values")
    return arr


def write_model_file(
    path: str | os.PathLike[str],
    *,
    embedding: Any,
    lstm_layers: Sequence[Sequence[Mapping[str, Any]]],
    head: Sequence[Mapping[str, Any]],
    vocab: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    unk_token: str | None = None,
    lowercase: bool = False,
    metadata: Mapping[str, Any] | None = None,
    dtype: Any = None,
) -> None:
    """Write a model file from plain arrays (the engine is not needed).

    ``dtype`` defaults to the embedding's dtype when it is float32/float64, else float64.
    The written file is checked by reading it back, so an inconsistent model
    fails here with :class:`ModelFileError` rather than on the next load.
    """
    emb = np.asarray(embedding)
    if dtype is None:
        dtype = emb.dtype if emb.dtype in (np.float32, np.float64) else np.float64
    dtype = np.dtype(dtype)
    if dtype.name not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")

    arrays: dict[str, np.ndarray] = {"embedding": _as_float_array("embedding", emb, dtype)}
    lstm_arch = []
    for li, layer in enumerate(lstm_layers):
        hidden = []
        if len(layer) not in (1, 2):
            raise ValueError(f"LSTM layer {li} must have 1 or 2 directions, got {len(layer)}")
        for di, direction in enumerate(layer):
            for key in ("W_ih", "W_hh", "b"):
                if key not in direction:
                    raise ValueError(f"LSTM layer {li} direction {di} lacks {key!r}")
                name = f"lstm.{li}.{di}.{key}"
                arrays[name] = _as_float_array(name, direction[key], dtype)
            hidden.append(int(arrays[f"lstm.{li}.{di}.W_hh"].shape[-1]))
        lstm_arch.append({"input_size": int(arrays[f"lstm.{li}.0.W_ih"].shape[-1]), "hidden_sizes": hidden})
    head_arch = []
    for k, dense in enumerate(head):
        arrays[f"head.{k}.W"] = _as_float_array(f"head.{k}.W", dense["W"], dtype)
        b = dense.get("b")
        if b is not None:
            arrays[f"head.{k}.b"] = _as_float_array(f"head.{k}.b", b, dtype)
        out_f, in_f = arrays[f"head.{k}.W"].shape if arrays[f"head.{k}.W"].ndim == 2 else (-1, -1)
        head_arch.append({"in_features": int(in_f), "out_features": int(out_f), "bias": b is not None})

    n_classes = head_arch[-1]["out_features"] if head_arch else 0
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": {
            "vocab_size": int(emb.shape[0]) if emb.ndim == 2 else -1,
            "embedding_dim": int(emb.shape[1]) if emb.ndim == 2 else -1,
            "lstm": lstm_arch,
            "head": head_arch,
        },
        "vocab": list(vocab) if vocab is not None else None,
        "unk_token": unk_token,
        "class_names": list(class_names) if class_names is not None else [str(c) for c in range(n_classes)],
        "tokenizer": {"lowercase": bool(lowercase)},
        "gate_order": "ifgo",
        "dtype": dtype.name,
        "provenance": dict(metadata) if metadata is not None else {},
    }
    try:
        text = json.dumps(header, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model metadata must be JSON-serialisable (no NaN/inf): {exc}") from None
    arrays["metadata"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _validate(str(path), header, arrays)

    path = Path(path)
    # np.savez_compressed appends ".npz" to names without it; write to an open
    # file instead so the given name is kept exactly.
    with path.open("wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]  # numpy's stub mistypes **kwds


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Write ``model`` (a :class:`textlrp.Model`) to ``path`` in its own dtype. Used by ``Model.save``."""
    write_model_file(
        path,
        embedding=model.embedding,
        lstm_layers=model.lstm_layers,
        head=model.head,
        vocab=model.vocab,
        class_names=model.class_names,
        unk_token=model.unk_token,
        lowercase=model.lowercase,
        metadata=model.metadata,
        dtype=model.dtype,
    )


# --------------------------------------------------------------------------- reading


def read_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a model file without building a Model.

    Returns a dict with ``embedding``, ``lstm_layers``, ``head`` (arrays in the
    file's dtype), ``vocab``, ``class_names``, ``unk_token``, ``lowercase``,
    ``dtype``, ``metadata`` (the provenance dict) and ``header`` (the whole JSON).
    """
    path_str = os.fspath(path)
    p = Path(path_str)
    if not p.exists():
        raise FileNotFoundError(f"model file {path_str} not found")
    if p.is_dir():
        raise ModelFileError(path_str, "is a directory")
    if not zipfile.is_zipfile(p):
        raise ModelFileError(path_str, "not an .npz (zip) archive, or the file is truncated")

    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(p, allow_pickle=False) as npz:
            for name in npz.files:
                try:
                    arrays[name] = npz[name]
                except ValueError as exc:
                    if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                        raise ModelFileError(path_str, f"array {name!r} holds pickled Python objects (refused)") from None
                    raise ModelFileError(path_str, f"array {name!r} is unreadable: {exc}") from None
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 -- zlib.error, BadZipFile, EOFError...: all mean a damaged file
        raise ModelFileError(path_str, f"damaged archive ({type(exc).__name__}: {exc})") from None

    if "metadata" not in arrays:
        raise ModelFileError(path_str, "no 'metadata' entry")
    header = _decode_header(path_str, arrays["metadata"])
    _validate(path_str, header, arrays)

    dtype = _FLOAT_DTYPES[header["dtype"]]
    lstm_layers = [
        [
            {key: arrays[f"lstm.{li}.{di}.{key}"] for key in ("W_ih", "W_hh", "b")}
            for di in range(len(layer["hidden_sizes"]))
        ]
        for li, layer in enumerate(header["architecture"]["lstm"])
    ]
    head = [
        {"W": arrays[f"head.{k}.W"], "b": arrays[f"head.{k}.b"] if layer["bias"] else None}
        for k, layer in enumerate(header["architecture"]["head"])
    ]
    return {
        "embedding": arrays["embedding"],
        "lstm_layers": lstm_layers,
        "head": head,
        "vocab": header["vocab"],
        "class_names": header["class_names"],
        "unk_token": header["unk_token"],
        "lowercase": header["tokenizer"]["lowercase"],
        "dtype": np.dtype(dtype),
        "metadata": header["provenance"],
        "header": header,
    }


def load_model(path: str | os.PathLike[str] | None = None, *, dtype: Any = np.float64) -> Any:
    """Load a model file (``None``: the bundled SST-5 model) as a :class:`textlrp.Model`.

    ``dtype`` is the computation dtype (float64 by default, float32 allowed);
    float32 files load exactly into float64.
    """
    import textlrp

    content = read_model_file(default_model_path() if path is None else path)
    return textlrp.from_arrays(
        content["embedding"],
        content["lstm_layers"],
        content["head"],
        vocab=content["vocab"],
        class_names=content["class_names"],
        gate_order="ifgo",
        unk_token=content["unk_token"],
        lowercase=content["lowercase"],
        dtype=dtype,
        metadata=content["metadata"],
    )


def _decode_header(path: str, raw: np.ndarray) -> dict[str, Any]:
    if raw.dtype == np.uint8 and raw.ndim == 1:
        try:
            text = raw.tobytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFileError(path, "'metadata' is not UTF-8 text") from None
    elif raw.dtype.kind == "U" and raw.ndim == 0:
        text = str(raw[()])
    else:
        raise ModelFileError(
            path, f"'metadata' must be UTF-8 JSON bytes (uint8 [n]) or a 0-d string, got {raw.dtype} {raw.shape}"
        )
    try:
        header = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(path, f"'metadata' is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ModelFileError(path, "'metadata' JSON must be an object")
    return header


def _validate(path: str, header: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Check the header against the arrays; raise ModelFileError on the first problem."""

    def fail(problem: str) -> NoReturn:
        raise ModelFileError(path, problem)

    if header.get("format") != FORMAT_NAME:
        fail(f"'format' is {header.get('format')!r}, expected {FORMAT_NAME!r}")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        fail(f"'format_version' must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        fail(
            f"format_version {version} was written by a newer textlrp; this version reads up to "
            f"{FORMAT_VERSION} (upgrade textlrp)"
        )
    for key in ("architecture", "class_names", "tokenizer", "gate_order", "dtype"):
        if key not in header:
            fail(f"metadata lacks {key!r}")
    if header["gate_order"] != "ifgo":
        fail(f"gate_order {header['gate_order']!r} is not supported (files store 'ifgo')")
    if header["dtype"] not in _FLOAT_DTYPES:
        fail(f"dtype {header['dtype']!r} is not float32 or float64")
    dtype = np.dtype(header["dtype"])
    tok = header["tokenizer"]
    if not isinstance(tok, dict) or not isinstance(tok.get("lowercase"), bool):
        fail("'tokenizer' must be an object with a boolean 'lowercase'")
    if not isinstance(header.get("provenance", {}), dict):
        fail("'provenance' must be an object")

    arch = header["architecture"]
    try:
        V, e = int(arch["vocab_size"]), int(arch["embedding_dim"])
        lstm = [(int(layer["input_size"]), [int(d) for d in layer["hidden_sizes"]]) for layer in arch["lstm"]]
        head = [(int(h["in_features"]), int(h["out_features"]), bool(h["bias"])) for h in arch["head"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(path, f"'architecture' is malformed ({type(exc).__name__}: {exc})") from None
    if V < 1 or e < 1:
        fail(f"vocab_size and embedding_dim must be >= 1, got {V} and {e}")
    if not lstm:
        fail("the architecture has no LSTM layer")
    if not head:
        fail("the architecture has no head layer")

    # Expected array shapes from the architecture, with the chaining rules of the contract.
    expected: dict[str, tuple[int, ...]] = {"embedding": (V, e)}
    n_in = e
    for li, (input_size, hidden) in enumerate(lstm):
        if len(hidden) not in (1, 2) or min(hidden) < 1:
            fail(f"LSTM layer {li} must have 1 or 2 directions with hidden size >= 1, got {hidden}")
        if input_size != n_in:
            fail(f"LSTM layer {li} input_size is {input_size}, but its input has {n_in} features")
        for di, d in enumerate(hidden):
            expected[f"lstm.{li}.{di}.W_ih"] = (4 * d, n_in)
            expected[f"lstm.{li}.{di}.W_hh"] = (4 * d, d)
            expected[f"lstm.{li}.{di}.b"] = (4 * d,)
        n_in = sum(hidden)
    for k, (in_f, out_f, has_bias) in enumerate(head):
        if in_f != n_in:
            fail(f"head layer {k} in_features is {in_f}, but its input has {n_in} features")
        if out_f < 1:
            fail(f"head layer {k} out_features must be >= 1")
        expected[f"head.{k}.W"] = (out_f, in_f)
        if has_bias:
            expected[f"head.{k}.b"] = (out_f,)
        n_in = out_f
    n_classes = n_in

    present = set(arrays) - {"metadata"}
    missing = sorted(set(expected) - present)
    extra = sorted(present - set(expected))
    if missing:
        fail(f"missing arrays {missing}")
    if extra:
        fail(f"unexpected arrays {extra} (not in the architecture)")
    for name, shape in expected.items():
        arr = arrays[name]
        if arr.dtype != dtype:
            fail(f"array {name!r} has dtype {arr.dtype}, metadata says {dtype.name}")
        if arr.shape != shape:
            fail(f"array {name!r} has shape {arr.shape}, the architecture needs {shape}")
        if not np.all(np.isfinite(arr)):
            fail(f"array {name!r} has non-finite values (NaN or inf)")

    names = header["class_names"]
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        fail("'class_names' must be a list of strings")
    if len(names) != n_classes:
        fail(f"{len(names)} class_names but the head has {n_classes} outputs")
    if len(set(names)) != len(names):
        fail("'class_names' has duplicates")
    vocab = header.get("vocab")
    unk = header.get("unk_token")
    if vocab is not None:
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            fail("'vocab' must be a list of strings or null")
        if len(vocab) != V:
            fail(f"vocab has {len(vocab)} tokens but the embedding has {V} rows")
        if len(set(vocab)) != len(vocab):
            fail("'vocab' has duplicate tokens")
    if unk is not None:
        if not isinstance(unk, str):
            fail("'unk_token' must be a string or null")
        if vocab is None or unk not in vocab:
            fail(f"unk_token {unk!r} is not in the vocab")
