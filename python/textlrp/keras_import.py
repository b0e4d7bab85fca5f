"""Convert Keras 3 models (a ``.keras`` file or a live ``keras.Model``) into a
:class:`textlrp.Model`, and the ``textlrp import-keras`` command.

A ``.keras`` file is a zip archive of ``config.json`` (the layers and their settings, JSON),
``metadata.json`` and ``model.weights.h5`` (the variables, HDF5). textlrp reads these members
itself with :mod:`json` and h5py and never hands the file to Keras: Keras' own loader rebuilds
the model by resolving class and function names from the config, and its ``safe_mode`` is a
deny-list that has been bypassed again and again (CVE-2024-3660, CVE-2025-1550,
CVE-2025-8747, CVE-2025-9906); reading the two members directly runs no code from the file
whatever it holds, and needs only h5py, not Keras. The price is that the config is mapped here,
setting by setting: anything this module does not know to be computed exactly by the engine is
refused with an error naming the layer and the setting (docs/keras.md has the whole list).

A live model is saved by Keras to a temporary ``.keras`` file and read back the same way, so
both routes share one mapping. ``import textlrp`` never imports this module's optional
dependencies: h5py is imported when a file is read, Keras never (a live model brings its own).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from .io import _open_regular, _printable, _show
from .model import _gate_permutation, _reorder_gates, from_arrays
from .vocab import tokens_from_mapping

__all__ = ["KerasImportError", "add_cli_arguments", "from_keras", "run_cli"]

# Limits on what a file may declare (far above any real model; they bound the memory a
# hostile file can make the reader use before it is refused).
MAX_MEMBERS = 4096  # zip members (assets of preprocessing layers add a few)
MAX_CONFIG_BYTES = 64 * 2**20
# Weights hardly compress: declared weights far beyond the file's own size mean a bomb.
_BOMB_RATIO = 8
_BOMB_FLOOR = 64 * 2**20

# The layers read, by Keras class name. Everything else is refused.
_RECURRENT = {"LSTM": "lstm", "GRU": "gru"}
_POOLING = {"GlobalAveragePooling1D": "mean", "GlobalMaxPooling1D": "max"}
_DROPOUT = ("Dropout", "SpatialDropout1D")  # identity at inference
_HEAD_ACTIVATIONS = ("Activation", "ReLU", "Softmax")
_KNOWN = frozenset({"InputLayer", "Embedding", "Bidirectional", "Dense", *_RECURRENT, *_POOLING,
                    *_DROPOUT, *_HEAD_ACTIVATIONS})
_SUPPORTED = ("InputLayer, Embedding, LSTM, GRU, Bidirectional, Dropout, SpatialDropout1D, "
              "GlobalAveragePooling1D, GlobalMaxPooling1D, Dense, Activation, ReLU, Softmax")
# Why some common layers are refused (the generic message lists what is supported).
_REFUSED = {
    "Lambda": "a Lambda layer holds Python code, which textlrp never runs",
    "Masking": "masking skips time steps, which the engine does not model",
    "LayerNormalization": "normalisation layers are not supported",
    "BatchNormalization": "normalisation layers are not supported",
    "UnitNormalization": "normalisation layers are not supported",
    "GroupNormalization": "normalisation layers are not supported",
    "Attention": "attention layers are not supported",
    "AdditiveAttention": "attention layers are not supported",
    "MultiHeadAttention": "attention layers are not supported",
    "GroupedQueryAttention": "attention layers are not supported",
    "SimpleRNN": "only LSTM and GRU cells are supported",
    "RNN": "a generic RNN wrapper is not read; use keras.layers.LSTM or GRU",
    "ConvLSTM1D": "only LSTM and GRU cells are supported",
    "Flatten": "flattening over time is not a pooling textlrp computes",
    "TimeDistributed": "per-step outputs are not supported",
    "Sequential": "nested models are not read; build one flat Sequential or functional model",
    "Functional": "nested models are not read; build one flat Sequential or functional model",
}
_FLOAT_POLICIES = ("float16", "bfloat16", "float32", "float64", "mixed_float16", "mixed_bfloat16")
# Settings that do not change what a layer computes at inference (training-only, or the
# same computation done differently); everything ending in these suffixes too.
_INERT = frozenset({"name", "trainable", "dtype", "seed", "dropout", "recurrent_dropout",
                    "unit_forget_bias", "unroll", "zero_output_for_mask", "use_cudnn",
                    "implementation", "rate", "noise_shape", "input_length", "lora_alpha"})
_INERT_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
_H5_FILTERS = frozenset({"gzip", "shuffle", "fletcher32", "lzf", "scaleoffset"})  # built into HDF5


class KerasImportError(ValueError):
    """A Keras model textlrp cannot represent faithfully, or a damaged ``.keras`` file; the
    message names the layer and the setting (or the file and the problem)."""


def _fail(message: str) -> NoReturn:
    raise KerasImportError(_printable(message)) from None


# --------------------------------------------------------------------------- the archive


@dataclass
class _Archive:
    config: dict[str, Any]
    keras_version: str | None
    weights: _Weights


def _read_archive(path: str) -> _Archive:
    """config.json, metadata.json and model.weights.h5 of a ``.keras`` file, checked."""
    def fail(problem: str) -> NoReturn:
        _fail(f"{path}: {problem}")

    f, size = _open_regular(path, fail)
    with f, _damaged(fail, "not a readable .keras (zip) archive"), zipfile.ZipFile(f) as z:
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS:
            fail(f"the archive has {len(infos)} members; a .keras file has a handful")
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            fail("the archive lists a member twice")
        members = {i.filename: i for i in infos}
        if "config.json" not in members:
            fail("no config.json: not a Keras 3 .keras archive")
        if "model.weights.h5" not in members:
            other = [n for n in ("model.weights.npz", "model.weights.json") if n in members]
            fail(f"weights stored as {other[0]} are not read; save the model with Keras' default "
                 "weights format (model.save('model.keras'))" if other
                 else "no model.weights.h5 (a model saved without weights?)")
        config = _json_member(z, members["config.json"], MAX_CONFIG_BYTES, fail)
        version = None
        if "metadata.json" in members:
            meta = _json_member(z, members["metadata.json"], 2**20, fail)
            version = meta.get("keras_version") if isinstance(meta, dict) else None
            if not isinstance(version, str):
                version = None
        if version is not None and not version.startswith("3."):
            fail(f"saved by Keras {_show(version)}; textlrp reads files of Keras 3")
        info = members["model.weights.h5"]
        if info.file_size > max(_BOMB_FLOOR, _BOMB_RATIO * size):
            fail(f"model.weights.h5 declares {info.file_size} bytes in a file of {size} bytes "
                 "(a zip bomb?)")
        raw = _read(z, info)
    if not isinstance(config, dict):
        fail("config.json is not a JSON object")
    return _Archive(config, version, _Weights(raw, path, size))


def _read(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.flag_bits & 0x1:
        raise ValueError(f"member {info.filename} is encrypted")
    with z.open(info) as m:
        data = m.read(info.file_size + 1)  # zipfile checks the CRC at the declared end
    if len(data) != info.file_size:
        raise ValueError(f"member {info.filename} does not have its declared size")
    return data


def _json_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, fail: Any) -> Any:
    if info.file_size > limit:
        fail(f"{info.filename} declares {info.file_size} bytes, more than {limit}")
    try:
        return json.loads(_read(z, info).decode("utf-8"))
    except RecursionError:
        fail(f"{info.filename} is nested too deeply")
    except (ValueError, UnicodeDecodeError) as exc:
        fail(f"{info.filename} is not valid JSON ({str(exc)[:200]})")


@contextlib.contextmanager
def _damaged(fail: Any, what: str) -> Iterator[None]:
    """Errors of the zip/HDF5 layers (any type: damaged bytes can raise anything) become
    one message; our own errors and MemoryError pass through."""
    try:
        yield
    except (KerasImportError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 -- see the docstring
        fail(f"{what} ({type(exc).__name__}: {exc})")


class _Weights:
    """The variables of ``model.weights.h5``, looked up the way Keras stores them: group
    ``layers/<snake_case class name, numbered in layer order>/.../vars`` holding datasets
    ``0, 1, ...``. Only hard links and plain float datasets in the file itself are followed
    (no external links or external/virtual storage, which would read other files; no
    filters beyond HDF5's built-in ones, which could load plugins)."""

    def __init__(self, raw: bytes, path: str, size: int) -> None:
        try:
            import h5py
        except ImportError:
            raise ImportError("reading .keras files needs h5py: pip install 'textlrp[keras]' "
                              "(or pip install h5py)") from None
        self._h5py = h5py
        self.path = path
        self._budget = max(_BOMB_FLOOR, _BOMB_RATIO * size)
        self.dtypes: set[np.dtype] = set()
        with self._damaged():
            self._file = h5py.File(io.BytesIO(raw), "r")

    def _damaged(self) -> Any:
        return _damaged(lambda p: _fail(f"{self.path}: {p}"), "damaged model.weights.h5")

    def group(self, path: str) -> Any:
        node = self._file
        with self._damaged():
            for part in path.split("/"):
                link = node.get(part, getlink=True)
                if link is None:
                    return None
                if not isinstance(link, self._h5py.HardLink):
                    _fail(f"{self.path}: model.weights.h5 links {_show(path)} elsewhere "
                          f"({type(link).__name__}); only plain groups are read")
                node = node[part]
                if not isinstance(node, self._h5py.Group):
                    return None
        return node

    def check_name(self, layer: _Layer) -> None:
        """Keras records each layer's name on its ``vars`` group: it must be this layer's."""
        group = self.group(f"{layer.path}/vars")
        if group is None:
            return
        with self._damaged():
            recorded = group.attrs.get("name")
        if isinstance(recorded, bytes):
            recorded = recorded.decode("utf-8", "replace")
        if isinstance(recorded, str) and recorded != layer.name:
            _fail(f"{layer.where}: model.weights.h5 stores layer {_show(recorded)} where Keras "
                  "keeps this layer's weights; config.json and the weights disagree")

    def kernel_rows(self, path: str) -> int | None:
        """The first dimension of dataset ``path/0`` (a kernel's input width), if any."""
        group = self.group(path)
        with self._damaged():
            ds = None if group is None else group.get("0")
            shape = getattr(ds, "shape", None)
        return int(shape[0]) if shape else None

    def variables(self, where: str, path: str, shapes: Sequence[tuple[int, ...]]
                  ) -> list[np.ndarray]:
        """The datasets ``0 .. len(shapes)-1`` of group ``path`` with exactly these shapes
        (float64 copies)."""
        group = self.group(path)
        if group is None:
            _fail(f"{where}: its weights are missing from model.weights.h5 (no group "
                  f"{path!r}); was the model built before it was saved?")
        with self._damaged():
            keys = sorted(group.keys())
            want = [str(k) for k in range(len(shapes))]
            if keys != want:
                _fail(f"{where}: expected {len(shapes)} weight arrays, model.weights.h5 has "
                      f"{len(keys)} ({_show(', '.join(keys[:8]))}); a quantized or modified layer?")
            return [self._dataset(where, group, key, shape) for key, shape in zip(want, shapes)]

    def _dataset(self, where: str, group: Any, key: str, shape: tuple[int, ...]) -> np.ndarray:
        h5py = self._h5py
        if not isinstance(group.get(key, getlink=True), h5py.HardLink):
            _fail(f"{where}: weight {key} is a link; only plain datasets are read")
        ds = group[key]
        if not isinstance(ds, h5py.Dataset):
            _fail(f"{where}: weight {key} is not an array")
        if ds.dtype.kind != "f":
            _fail(f"{where}: weight {key} has dtype {ds.dtype}; float arrays expected")
        if ds.is_virtual or ds.external:
            _fail(f"{where}: weight {key} is stored outside the file; not read")
        unknown = set(ds._filters) - _H5_FILTERS
        if unknown:
            _fail(f"{where}: weight {key} uses HDF5 filters {sorted(unknown)}; not read")
        if tuple(ds.shape) != tuple(shape):
            _fail(f"{where}: weight {key} has shape {tuple(ds.shape)}, the config needs {shape}")
        self._budget -= math.prod(shape) * ds.dtype.itemsize
        if self._budget < 0:
            _fail(f"{self.path}: the weights declare far more data than the file holds")
        arr = np.asarray(ds[()], dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            _fail(f"{where}: weight {key} contains NaN or inf")
        self.dtypes.add(ds.dtype)
        return arr


# --------------------------------------------------------------------------- the config


@dataclass
class _Layer:
    name: str
    cls: str
    config: dict[str, Any]
    path: str  # the layer's group in model.weights.h5

    @property
    def where(self) -> str:
        return f"layer {_show(self.name)} ({self.cls[:60]})"  # both from the file: bounded


def _snake_case(name: str) -> str:
    """Keras' naming.to_snake_case: the weight group of a layer is named after its class."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _builtin(entry: Any, where: str) -> tuple[str, dict[str, Any]]:
    """(class name, config) of a serialized Keras object that must be a Keras built-in."""
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        _fail(f"{where}: malformed entry in config.json")
    cls = entry["class_name"]
    module = entry.get("module")
    registered = entry.get("registered_name")
    builtin = isinstance(module, str) and (module == "keras"
                                           or module.startswith(("keras.layers", "keras.src.")))
    if not builtin or registered not in (None, cls):
        _fail(f"{where} is a custom class ({_show(cls)} from module {_show(module)}, registered "
              f"as {_show(registered)}): its own Python code decides what it computes, which "
              "textlrp neither runs nor knows; only Keras' built-in layers in Sequential or "
              "functional models are read")
    config = entry.get("config")
    if not isinstance(config, dict):
        _fail(f"{where}: malformed config in config.json")
    return cls, config


def _layers(config: dict[str, Any]) -> list[_Layer]:
    """The model's layers from input to output, each with its weight group."""
    model_cls, model_cfg = _builtin(config, "the model")
    if model_cls not in ("Sequential", "Functional", "Model"):
        _fail(f"the model is a {_show(model_cls)}; textlrp reads Sequential and functional models")
    entries = model_cfg.get("layers")
    if not isinstance(entries, list) or not entries:
        _fail("the model has no layers")
    layers = []
    for k, entry in enumerate(entries):
        where = f"layer {k}"
        if isinstance(entry, dict) and isinstance(entry.get("config"), dict):
            name = entry["config"].get("name")
            if isinstance(name, str):
                where = f"layer {_show(name)}"
        cls, cfg = _builtin(entry, where)
        name = cfg.get("name", entry.get("name"))
        if not isinstance(name, str):
            _fail(f"{where}: a layer without a name in config.json")
        layers.append(_Layer(name, cls, cfg, ""))
        if cls in _REFUSED:
            _fail(f"{layers[-1].where}: {_REFUSED[cls]}")
        if cls not in _KNOWN:
            _fail(f"{layers[-1].where} is not supported; textlrp reads {_SUPPORTED}")
    # Keras stores each layer's variables under layers/<snake_case class name>, numbered
    # _1, _2, ... in the order of model.layers, which for a Sequential model leaves out the
    # InputLayer it makes itself (saving_lib._save_container_state).
    counts: dict[str, int] = {}
    stored = layers[1:] if model_cls == "Sequential" and layers[0].cls == "InputLayer" else layers
    for layer in stored:
        base = _snake_case(layer.cls)
        n = counts.get(base)
        counts[base] = 0 if n is None else n + 1
        layer.path = f"layers/{base}" if n is None else f"layers/{base}_{n + 1}"
    if model_cls == "Sequential":
        return layers
    return _functional_chain(model_cfg, layers, entries)


def _endpoint(value: Any, what: str) -> str:
    """The layer name of a functional model's single input or output ([name, 0, 0])."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if (not isinstance(value, list) or len(value) != 3 or not isinstance(value[0], str)
            or value[1:] != [0, 0]):
        _fail(f"the model must have exactly one {what}; textlrp reads single-input, "
              "single-output models")
    return value[0]


def _functional_chain(model_cfg: dict[str, Any], layers: list[_Layer],
                      entries: list[Any]) -> list[_Layer]:
    """The layers of a functional model in data-flow order; refuses anything but a chain in
    which each layer reads the previous one's single output once, with no call arguments
    that change what it computes."""
    by_name = {layer.name: layer for layer in layers}
    if len(by_name) != len(layers):
        _fail("two layers share a name in config.json")
    source: dict[str, str] = {}
    for layer, entry in zip(layers, entries):
        nodes = entry.get("inbound_nodes", [])
        if layer.cls == "InputLayer":
            continue
        if not isinstance(nodes, list) or len(nodes) != 1:
            _fail(f"{layer.where} is called {len(nodes) if isinstance(nodes, list) else '?'} times "
                  "in the model; textlrp reads a chain of layers, each called once")
        node = nodes[0]
        args = node.get("args") if isinstance(node, dict) else None
        kwargs = node.get("kwargs", {}) if isinstance(node, dict) else None
        history = None
        if isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict):
            tensor_cfg = args[0].get("config")
            if args[0].get("class_name") == "__keras_tensor__" and isinstance(tensor_cfg, dict):
                history = tensor_cfg.get("keras_history")
        if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)):
            history = None
        if history is not None and history[0] in by_name and history[1] == 0 and history[2] != 0:
            _fail(f"{by_name[history[0]].where} has several outputs (return_state=True?) and "
                  f"{layer.where} reads output {_show(history[2])}; textlrp reads layers with "
                  "one output")
        if history is None or history[0] not in by_name or history[1:] != [0, 0]:
            _fail(f"{layer.where} does not read exactly one output of one layer (a branch or a "
                  "merge); textlrp reads a chain of layers")
        if not isinstance(kwargs, dict):
            _fail(f"{layer.where}: malformed call arguments in config.json")
        for key, value in kwargs.items():
            if key == "training" and value:
                _fail(f"{layer.where} is called with training=True: its dropout would stay "
                      "active at inference, which the engine does not compute")
            if key not in ("training", "mask") or value not in (None, False):
                _fail(f"{layer.where} is called with {key}={_show(value)}; textlrp reads layers "
                      "called on one input without other arguments")
        source[layer.name] = history[0]
    first = _endpoint(model_cfg.get("input_layers"), "input")
    last = _endpoint(model_cfg.get("output_layers"), "output")
    readers: dict[str, list[str]] = {}
    for name, src in source.items():
        readers.setdefault(src, []).append(name)
    chain = [by_name[first]] if first in by_name else _fail("the model's input is not a layer")
    while chain[-1].name != last:
        nxt = readers.get(chain[-1].name, [])
        if len(nxt) != 1:
            _fail(f"{chain[-1].where} feeds {len(nxt)} layers; textlrp reads a chain of layers "
                  "from the input to the output")
        chain.append(by_name[nxt[0]])
    if len(chain) != len(layers):
        extra = [layer.name for layer in layers if layer not in chain]
        _fail(f"layers {_show(', '.join(extra))} are not on the path from the input to the output")
    return chain


# --------------------------------------------------------------------------- settings


def _setting(where: str, cfg: dict[str, Any], key: str, kind: Any, default: Any = None) -> Any:
    value = cfg.get(key, default)
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    else:
        ok = isinstance(value, kind)
    if not ok:
        _fail(f"{where}: setting {key}={_show(value)} is not valid")
    return value


def _check_settings(where: str, cfg: dict[str, Any], checked: Sequence[str]) -> None:
    """Refuse settings this module does not know, unless they are off (None/False/0/empty):
    a Keras version may add options that change what a layer computes."""
    _check_dtype(where, cfg.get("dtype"))
    for key, value in cfg.items():
        if key in checked or key in _INERT or key.endswith(_INERT_SUFFIXES):
            continue
        if value in (None, False, 0, "", [], {}):
            continue
        _fail(f"{where}: setting {_show(key)}={_show(value)} is unknown to textlrp's Keras "
              "importer and may change what the layer computes")


def _check_dtype(where: str, policy: Any) -> None:
    name = policy
    if isinstance(policy, dict):
        if policy.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy"):
            _fail(f"{where}: dtype policy {_show(policy.get('class_name'))} is not supported "
                  "(quantized layers compute with other weights)")
        cfg = policy.get("config")
        name = cfg.get("name") if isinstance(cfg, dict) else None
    if name is not None and name not in _FLOAT_POLICIES:
        _fail(f"{where}: dtype policy {_show(name)} is not supported (float policies only; "
              "quantized layers compute with other weights)")


def _activation(where: str, cfg: dict[str, Any], key: str) -> str:
    value = cfg.get(key, "linear")
    if value is None:
        return "linear"
    if not isinstance(value, str):
        _fail(f"{where}: {key} is a custom function; only Keras' built-in activations are read")
    return value


# --------------------------------------------------------------------------- conversion


@dataclass
class _Recurrent:
    cell: str
    directions: list[dict[str, np.ndarray]]
    units: int
    return_sequences: bool


def _rnn_direction(where: str, cls: str, cfg: dict[str, Any], path: str, n_in: int | None,
                   weights: _Weights, backward: bool) -> tuple[dict[str, np.ndarray], int, bool]:
    """One LSTM/GRU direction in the engine's layout; (direction, units, return_sequences)."""
    _check_settings(where, cfg, ("units", "activation", "recurrent_activation", "use_bias",
                                 "return_sequences", "return_state", "go_backwards", "stateful",
                                 "reset_after"))
    units = _setting(where, cfg, "units", int)
    act = _activation(where, cfg, "activation")
    if act != "tanh":
        _fail(f"{where}: activation={_show(act)}; the engine's {cls} uses tanh")
    rec = _activation(where, cfg, "recurrent_activation")
    if rec != "sigmoid":
        _fail(f"{where}: recurrent_activation={_show(rec)}; the engine's {cls} gates use sigmoid")
    if cfg.get("stateful"):
        _fail(f"{where}: stateful=True carries states from one batch to the next; the engine "
              "starts every input from zero states")
    if cfg.get("return_state"):
        _fail(f"{where}: return_state=True; textlrp reads layers with one output")
    if cfg.get("go_backwards") and not backward:
        _fail(f"{where}: go_backwards=True reverses the input (and the outputs); use "
              "keras.layers.Bidirectional for a backward direction")
    if backward and not cfg.get("go_backwards"):
        _fail(f"{where}: go_backwards=False in the backward direction of a Bidirectional layer")
    if cls == "GRU" and cfg.get("reset_after", True) is not True:
        _fail(f"{where}: reset_after=False applies the reset gate before the recurrent matrix "
              "(with one bias); the engine computes the GRU of torch.nn.GRU, i.e. Keras' "
              "reset_after=True")
    use_bias = _setting(where, cfg, "use_bias", bool, True)
    rs = _setting(where, cfg, "return_sequences", bool, False)
    G = 4 if cls == "LSTM" else 3
    if n_in is None:  # continuous inputs of unrecorded width: the kernel tells
        n_in = weights.kernel_rows(path) or 1
    shapes: list[tuple[int, ...]] = [(n_in, G * units), (units, G * units)]
    if use_bias:
        shapes.append((2, G * units) if cls == "GRU" else (G * units,))
    arrays = weights.variables(where, path, shapes)
    kernel, recurrent = arrays[0].T, arrays[1].T  # Keras: [in, G*d]; the engine: [G*d, in]
    if cls == "LSTM":
        # Keras' LSTM gate blocks are i, f, c, o: the engine's i, f, g, o (c is the candidate).
        bias = arrays[2] if use_bias else np.zeros(G * units)
        return {"W_ih": kernel, "W_hh": recurrent, "b": bias}, units, rs
    perm = _gate_permutation("gru", "zrh")  # Keras' GRU blocks z, r, h -> the engine's r, z, n
    b_ih, b_hh = (arrays[2][0], arrays[2][1]) if use_bias else (np.zeros(G * units),) * 2
    direction = {key: _reorder_gates(a, perm, f"{where} {key}") for key, a in
                 (("W_ih", kernel), ("W_hh", recurrent), ("b_ih", b_ih), ("b_hh", b_hh))}
    return direction, units, rs


def _recurrent(layer: _Layer, n_in: int | None, weights: _Weights) -> _Recurrent:
    if layer.cls in _RECURRENT:
        d, units, rs = _rnn_direction(layer.where, layer.cls, layer.config,
                                      f"{layer.path}/cell/vars", n_in, weights, backward=False)
        return _Recurrent(_RECURRENT[layer.cls], [d], units, rs)
    cfg = layer.config
    _check_settings(layer.where, cfg, ("merge_mode", "layer", "backward_layer"))
    if cfg.get("merge_mode", "concat") != "concat":
        _fail(f"{layer.where}: merge_mode={_show(cfg.get('merge_mode'))}; the engine concatenates "
              "the two directions (merge_mode='concat')")
    fwd_cls, fwd_cfg = _builtin(cfg.get("layer"), f"{layer.where}, its wrapped layer")
    if cfg.get("backward_layer") is None:  # as Keras does: the same layer, reversed
        bwd_cls, bwd_cfg = fwd_cls, {**fwd_cfg, "go_backwards": not fwd_cfg.get("go_backwards")}
    else:
        bwd_cls, bwd_cfg = _builtin(cfg.get("backward_layer"), f"{layer.where}, its backward layer")
    for cls in (fwd_cls, bwd_cls):
        if cls not in _RECURRENT:
            _fail(f"{layer.where} wraps a {_show(cls)}; only LSTM and GRU are supported")
    if fwd_cls != bwd_cls:
        _fail(f"{layer.where}: forward {fwd_cls} and backward {bwd_cls}; the engine needs the "
              "same cell in both directions")
    fwd, units, rs = _rnn_direction(f"{layer.where}, its forward {fwd_cls}", fwd_cls, fwd_cfg,
                                    f"{layer.path}/forward_layer/cell/vars", n_in, weights,
                                    backward=False)
    bwd, b_units, b_rs = _rnn_direction(f"{layer.where}, its backward {bwd_cls}", bwd_cls,
                                        bwd_cfg, f"{layer.path}/backward_layer/cell/vars", n_in,
                                        weights, backward=True)
    if b_units != units or b_rs != rs:
        _fail(f"{layer.where}: the two directions differ in units or return_sequences")
    # Keras flips the backward outputs back to input order when it returns sequences, and
    # without sequences returns the backward state after the first position: the engine's
    # layout (forward, backward at each position; forward last, backward first).
    return _Recurrent(_RECURRENT[fwd_cls], [fwd, bwd], units, rs)


def _dense(layer: _Layer, n_in: int, weights: _Weights) -> tuple[dict[str, Any], str]:
    cfg = layer.config
    _check_settings(layer.where, cfg, ("units", "activation", "use_bias", "quantization_config",
                                       "lora_rank"))
    if cfg.get("lora_rank") or cfg.get("quantization_config") is not None:
        _fail(f"{layer.where}: LoRA or quantization settings are not supported")
    units = _setting(layer.where, cfg, "units", int)
    use_bias = _setting(layer.where, cfg, "use_bias", bool, True)
    shapes = [(n_in, units)] + ([(units,)] if use_bias else [])
    arrays = weights.variables(layer.where, f"{layer.path}/vars", shapes)
    return ({"W": arrays[0].T, "b": arrays[1] if use_bias else None},
            _activation(layer.where, cfg, "activation"))


def _head_activation(layer: _Layer) -> str:
    cfg = layer.config
    if layer.cls == "Activation":
        _check_settings(layer.where, cfg, ("activation",))
        return _activation(layer.where, cfg, "activation")
    if layer.cls == "ReLU":
        _check_settings(layer.where, cfg, ("max_value", "negative_slope", "threshold"))
        if cfg.get("max_value") is not None or cfg.get("negative_slope") or cfg.get("threshold"):
            _fail(f"{layer.where}: max_value, negative_slope or threshold set; only the plain "
                  "ReLU is supported")
        return "relu"
    _check_settings(layer.where, cfg, ("axis",))
    if cfg.get("axis", -1) not in (-1, [-1], 1, [1]):
        _fail(f"{layer.where}: axis={_show(cfg.get('axis'))}; a softmax over the classes is "
              "expected")
    return "softmax"


@dataclass
class _Converted:
    embedding: np.ndarray | None
    input_size: int | None
    layers: list[_Recurrent]
    pooling: str
    head: list[dict[str, Any]]
    output_activation: str


def _convert(chain: list[_Layer], weights: _Weights) -> _Converted:
    """Walk the chain: [InputLayer] [Embedding] recurrent layers [pooling] Dense head, with
    dropout layers anywhere (identity at inference); refuse everything else."""
    embedding = None
    input_size: int | None = None  # width of a continuous input, if recorded
    rank = None  # of the InputLayer's batch shape: 2 token ids, 3 continuous
    width: int | None = None  # features reaching the next layer
    recurrent: list[_Recurrent] = []
    pooling: str | None = None
    head: list[dict[str, Any]] = []
    acts: list[str] = []  # the activation after each head layer ("linear": none yet)
    for k, layer in enumerate(chain):
        cls, cfg, where = layer.cls, layer.config, layer.where
        if cls in ("Embedding", "Dense", "Bidirectional") or cls in _RECURRENT:
            weights.check_name(layer)
        if cls == "InputLayer":
            if k:
                _fail(f"{where} is not the first layer")
            # its dtype is the input's (int32 ids, float32 features), not a layer policy
            _check_settings(where, {**cfg, "dtype": None},
                            ("batch_shape", "batch_input_shape", "shape", "sparse", "ragged",
                             "optional"))
            shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
            if not isinstance(shape, list) or len(shape) not in (2, 3):
                _fail(f"{where}: input shape {_show(shape)}; expected (steps,) token ids or "
                      "(steps, features) continuous inputs")
            rank = len(shape)
            if rank == 3 and shape[2] is not None:
                input_size = width = _setting(where, {"features": shape[2]}, "features", int)
        elif cls == "Embedding":
            if k > 1 or (k == 1 and chain[0].cls != "InputLayer"):
                _fail(f"{where} must come first (after the Input)")
            if rank == 3:
                _fail(f"{where} reads an input of shape (steps, features); token ids are (steps,)")
            _check_settings(where, cfg, ("input_dim", "output_dim", "mask_zero",
                                         "quantization_config", "lora_rank", "sparse"))
            if cfg.get("mask_zero"):
                _fail(f"{where}: mask_zero=True skips the steps of token id 0 (padding); the "
                      "engine reads every step. Rebuild it with mask_zero=False (the same weights) "
                      "if your inputs hold no padding")
            if (cfg.get("lora_rank") or cfg.get("quantization_config") is not None
                    or cfg.get("sparse")):
                _fail(f"{where}: LoRA, quantization or sparse settings are not supported")
            V = _setting(where, cfg, "input_dim", int)
            e = _setting(where, cfg, "output_dim", int)
            (embedding,) = weights.variables(where, f"{layer.path}/vars", [(V, e)])
            width = e
        elif cls in _DROPOUT:
            _check_settings(where, cfg, ())
        elif cls in _RECURRENT or cls == "Bidirectional":
            if pooling is not None or head:
                _fail(f"{where} comes after the pooling or the Dense layers")
            if recurrent and not recurrent[-1].return_sequences:
                _fail(f"{where} reads sequences, but the recurrent layer before it returns only "
                      "its last state (set return_sequences=True on it)")
            if rank == 2 and embedding is None:
                _fail(f"{where} reads token ids without an Embedding layer")
            rec = _recurrent(layer, width, weights)
            if not recurrent and embedding is None:
                input_size = int(rec.directions[0]["W_ih"].shape[1])
            width = rec.units * len(rec.directions)
            recurrent.append(rec)
        elif cls in _POOLING:
            if not recurrent or pooling is not None or head:
                _fail(f"{where} must follow the last recurrent layer")
            if not recurrent[-1].return_sequences:
                _fail(f"{where} pools over time, but the recurrent layer before it returns only "
                      "its last state (set return_sequences=True on it)")
            _check_settings(where, cfg, ("data_format", "keepdims"))
            if cfg.get("data_format", "channels_last") != "channels_last":
                _fail(f"{where}: data_format={_show(cfg.get('data_format'))}; the engine pools "
                      "over time (channels_last)")
            if cfg.get("keepdims"):
                _fail(f"{where}: keepdims=True; the Dense head expects [batch, features]")
            pooling = _POOLING[cls]
        elif cls == "Dense":
            if not recurrent:
                _fail(f"{where} comes before the recurrent layers; textlrp reads Dense layers "
                      "only in the head")
            if pooling is None:
                if recurrent[-1].return_sequences:
                    _fail(f"{where} reads the outputs of every step: the last recurrent layer "
                          "returns sequences (return_sequences=True) but no "
                          "GlobalAveragePooling1D/GlobalMaxPooling1D follows it")
                pooling = "last"
            if acts and acts[-1] == "linear":
                _fail(f"{where} follows another Dense layer without a ReLU between them; "
                      "textlrp heads have a ReLU between Dense layers (folding the two would "
                      "keep the scores but change the LRP relevances)")
            if acts and acts[-1] != "relu":
                _fail(f"{where} follows a {acts[-1]}; only the last layer may end in softmax or "
                      "sigmoid")
            assert width is not None
            dense, act = _dense(layer, width, weights)
            head.append(dense)
            width = int(dense["W"].shape[0])
            acts.append("linear")
            _apply(acts, act, where)
        elif cls in _HEAD_ACTIVATIONS:
            if not head:
                _fail(f"{where} comes before the first Dense layer; only the head may have "
                      "activation layers")
            _apply(acts, _head_activation(layer), where)
        else:
            _fail(f"{where} is not supported; textlrp reads {_SUPPORTED}")
    if not recurrent:
        _fail("the model has no LSTM or GRU layer")
    if not head:
        _fail("the model has no Dense layer after its recurrent layers")
    if acts[-1] == "relu":
        _fail(f"{chain[-1].where}: the model ends with a ReLU; the last layer must give the "
              "scores (linear, or softmax/sigmoid, explained before the activation)")
    return _Converted(embedding, input_size if embedding is None else None, recurrent,
                      pooling or "last", head, acts[-1])


def _apply(acts: list[str], act: str, where: str) -> None:
    """Record ``act`` after the current head layer (at most one non-linear one)."""
    if act == "linear":
        return
    if act not in ("relu", "softmax", "sigmoid"):
        _fail(f"{where}: activation {_show(act)}; textlrp heads have ReLU between Dense layers and "
              "a linear, softmax or sigmoid output")
    if acts[-1] != "linear":
        _fail(f"{where}: a second activation ({act}) after {acts[-1]}")
    acts[-1] = act


# --------------------------------------------------------------------------- the API


def from_keras(
    model_or_path: Any,
    vocab: Sequence[str] | Mapping[str, int] | None = None,
    class_names: Sequence[str] | None = None,
    *,
    unk_token: str | None = None,
    lowercase: bool = False,
    dtype: Any = None,
    metadata: Mapping[str, Any] | None = None,
) -> Any:
    """Build a Model that computes what a Keras 3 model computes at inference, before its
    final softmax or sigmoid. See :func:`textlrp.from_keras` and docs/keras.md."""
    if isinstance(model_or_path, (str, os.PathLike)):
        path = os.fspath(model_or_path)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        archive = _read_archive(path)
        source = os.path.basename(path)
    else:
        archive = _save_live(model_or_path)
        source = None
    chain = _layers(archive.config)
    conv = _convert(chain, archive.weights)
    head = conv.head
    out_units = int(head[-1]["W"].shape[0])
    explained = ("scores" if conv.output_activation == "linear"
                 else f"scores before the final {conv.output_activation}")
    if class_names is not None and out_units == 1 and len(class_names) == 2:
        if conv.output_activation != "sigmoid":
            raise ValueError("two class names for a model with one output: only a one-unit "
                             "sigmoid output is a two-class model")
        # sigmoid(z) = softmax([-z/2, z/2])[1]: two scores with Keras' probabilities exactly.
        def halves(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.concatenate([-a, a]) / 2

        head = head[:-1] + [{"W": halves(head[-1]["W"]), "b": halves(head[-1]["b"])}]
        explained = "scores -z/2 and +z/2 of the logit z before the final sigmoid"
    if dtype is None:
        dtype = np.float64 if np.dtype(np.float64) in archive.weights.dtypes else np.float32
    if isinstance(vocab, Mapping) and conv.embedding is not None:
        vocab = tokens_from_mapping(vocab, int(conv.embedding.shape[0]))
    info: dict[str, Any] = {"source": "textlrp.from_keras", "keras_version": archive.keras_version,
                            "output_activation": conv.output_activation, "explained": explained}
    if source is not None:
        info["file"] = source
    info.update(metadata or {})
    return from_arrays(
        conv.embedding,
        [rec.directions for rec in conv.layers],
        head,
        cell=[rec.cell for rec in conv.layers],
        pooling=conv.pooling,
        input_size=conv.input_size,
        vocab=None if vocab is None else list(vocab),
        class_names=None if class_names is None else list(class_names),
        unk_token=unk_token,
        lowercase=lowercase,
        dtype=dtype,
        metadata=info,
    )


def _save_live(model: Any) -> _Archive:
    """A live keras.Model, saved by Keras to a temporary .keras file and read back."""
    keras = sys.modules.get("keras")
    if keras is None or not isinstance(model, keras.Model):
        raise TypeError("from_keras takes the path of a .keras file or a keras.Model, got "
                        f"{type(model).__name__}")
    with tempfile.TemporaryDirectory(prefix="textlrp-keras-") as tmp:
        path = os.path.join(tmp, "model.keras")
        try:
            model.save(path)
        except Exception as exc:  # noqa: BLE001 -- Keras raises many types here
            raise KerasImportError(f"Keras could not save this model ({type(exc).__name__}: "
                                   f"{exc}); textlrp reads Sequential and functional models of "
                                   "built-in layers") from None
        return _read_archive(path)


# --------------------------------------------------------------------------- command line


def add_cli_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``textlrp import-keras``."""
    p.add_argument("keras_model", metavar="MODEL.keras", help="a Keras 3 model file (.keras)")
    p.add_argument("--vocab", metavar="FILE",
                   help="the vocabulary, one token per line in id order (line 1 = id 0; an empty "
                        "line is the empty token, e.g. TextVectorization's padding)")
    p.add_argument("--classes", metavar="A,B,...",
                   help="class names, comma-separated, one per output (two for a one-unit sigmoid "
                        "output); default: 0..C-1, or a regression value for one output")
    p.add_argument("--unk-token", metavar="TOKEN",
                   help="the vocabulary's unknown-word token (e.g. [UNK]); unknown words map to it")
    p.add_argument("--lowercase", action="store_true", help="lowercase text before lookup")
    p.add_argument("--dtype", choices=("float32", "float64"),
                   help="dtype of the written model (default: the weights')")
    p.add_argument("-o", "--out", required=True, metavar="PATH",
                   help="the textlrp model to write (.npz)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def run_cli(args: argparse.Namespace) -> int:
    """``textlrp import-keras``: convert, save, print one summary line."""
    from .io import save_model

    out = args.out if args.out.endswith(".npz") else args.out + ".npz"  # np.savez appends it
    if os.path.exists(out) and not args.force:
        raise FileExistsError(f"{out} exists; pass --force to overwrite it")
    vocab = None if args.vocab is None else read_vocab(args.vocab)
    classes = None
    if args.classes is not None:
        classes = [c.strip() for c in args.classes.split(",")]
        if not all(classes):
            raise ValueError(f"--classes has an empty name: {args.classes!r}")
    try:
        model = from_keras(args.keras_model, vocab=vocab, class_names=classes,
                           unk_token=args.unk_token, lowercase=args.lowercase, dtype=args.dtype)
    except ImportError as exc:
        print(f"textlrp: error: {exc}", file=sys.stderr)
        return 2
    save_model(model, out)
    from .cli.options import terminal_safe

    print(terminal_safe(f"wrote {out}: {model!r}"))
    return 0


def read_vocab(path: str) -> list[str]:
    """One token per line, in id order (UTF-8; a final newline ends the last line)."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValueError(f"{path}: line {line} is not UTF-8 text") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]
