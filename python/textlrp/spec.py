"""The typed model specification: what the engine computes, as plain numpy arrays.

These dataclasses mirror the C++ structs of ``cpp/include/textlrp/model.hpp`` one to one and
carry the weights between the model file (``io``), the importers (``torch_import``), training
and the numpy reference of the tests. A :class:`ModelSpec` holds numbers only; vocabulary,
class names and provenance live on :class:`textlrp.Model`.

Gate row order is the engine's (and PyTorch's): LSTM ``i, f, g, o``; GRU ``r, z, n``.

    input x_t          embedding row of token t, or row t of a float array [T, input_size]
    recurrent layers   each CELLS[cell] with 1 (forward) or 2 (forward, backward) directions;
                       layer l+1 reads the concatenated outputs of layer l at each position
    pooling            POOLINGS: which of the last layer's outputs the head reads
    head               Dense layers, ReLU between them, the last one linear
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

# Gate row blocks per cell, in the engine's order. One registry: the bindings, the file
# format, the importers and the reference read the cell names and gate counts from here.
CELLS: dict[str, str] = {"lstm": "ifgo", "gru": "rzn"}
POOLINGS = ("last", "mean", "max", "attention")


def _array(value: Any, name: str, ndim: int, dtype: Any) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ValueError(f"{name} is not a numeric array: {exc}") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    arr = np.array(arr, dtype=dtype, order="C", copy=True)  # never freeze the caller's array
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True)
class Direction:
    """One direction of a recurrent layer: ``W_ih`` [G*d, in], ``W_hh`` [G*d, d],
    ``b_ih`` and ``b_hh`` [G*d] (G = 4 for LSTM, 3 for GRU). GRU needs the two biases apart
    (b_hn sits inside the reset product); for LSTM only their sum matters."""

    W_ih: np.ndarray
    W_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray

    @property
    def hidden(self) -> int:
        return int(self.W_hh.shape[1])


@dataclass(frozen=True)
class Recurrent:
    """A recurrent layer: ``cell`` (a key of CELLS) and 1 or 2 directions."""

    cell: str
    directions: tuple[Direction, ...]

    @property
    def hidden(self) -> int:
        return self.directions[0].hidden

    @property
    def out(self) -> int:
        return sum(d.hidden for d in self.directions)


@dataclass(frozen=True)
class Dense:
    """``y = W a + b``: ``W`` [out, in], ``b`` [out] or None (no bias)."""

    W: np.ndarray
    b: np.ndarray | None = None


@dataclass(frozen=True)
class Attention:
    """Additive attention over the last layer's outputs h_t [F]:
    ``e_t = v . tanh(W h_t + b)``, ``alpha = softmax_t(e)``, ``context = sum_t alpha_t h_t``.
    ``W`` [A, F], ``b`` [A], ``v`` [A]."""

    W: np.ndarray
    b: np.ndarray
    v: np.ndarray


@dataclass(frozen=True)
class ModelSpec:
    """A whole model. ``embedding`` [V, e] for token inputs, or None for continuous inputs of
    width ``input_size``; ``pooling`` one of POOLINGS (``attention`` needs ``attention``)."""

    embedding: np.ndarray | None
    layers: tuple[Recurrent, ...]
    head: tuple[Dense, ...]
    pooling: str = "last"
    attention: Attention | None = None
    input_size: int = field(default=0)

    # ------------------------------------------------------------------ derived sizes
    @property
    def n_outputs(self) -> int:
        return int(self.head[-1].W.shape[0])

    @property
    def n_features(self) -> int:
        return self.layers[-1].out

    @property
    def vocab_size(self) -> int:
        return 0 if self.embedding is None else int(self.embedding.shape[0])

    @property
    def dtype(self) -> np.dtype:
        return self.head[-1].W.dtype

    def describe(self) -> dict[str, Any]:
        """Sizes and kinds only (the file header's ``architecture``; ``textlrp info``)."""
        return {
            "input": "embedding" if self.embedding is not None else "continuous",
            "vocab_size": self.vocab_size,
            "input_size": self.input_size,
            "layers": [{"cell": r.cell, "directions": len(r.directions), "hidden": r.hidden}
                       for r in self.layers],
            "pooling": self.pooling,
            "attention_size": None if self.attention is None else int(self.attention.W.shape[0]),
            "head": [{"in": int(h.W.shape[1]), "out": int(h.W.shape[0]), "bias": h.b is not None}
                     for h in self.head],
            "n_outputs": self.n_outputs,
        }

    # ------------------------------------------------------------------ checking
    def checked(self, dtype: Any = None) -> ModelSpec:
        """A copy with every array validated (rank, shapes chain, finite) and converted to
        ``dtype`` (default: float64 unless the arrays are float32). Raises ValueError or
        TypeError naming the offending array."""
        if dtype is None:
            probe = self.embedding if self.embedding is not None else self.head[-1].W if self.head else None
            dtype = np.float32 if probe is not None and np.asarray(probe).dtype == np.float32 else np.float64
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
            raise ValueError(f"dtype must be float64 or float32, got {dtype}")
        emb = None
        if self.embedding is not None:
            emb = _array(self.embedding, "embedding", 2, dtype)
            if emb.shape[0] < 1 or emb.shape[1] < 1:
                raise ValueError(f"embedding must have at least one row and column, got {emb.shape}")
            n_in = int(emb.shape[1])
            if self.input_size not in (0, n_in):
                raise ValueError(f"input_size {self.input_size} differs from the embedding width {n_in}")
        else:
            n_in = int(self.input_size)
            if isinstance(self.input_size, bool) or n_in < 1:
                raise ValueError("a model without embedding needs input_size >= 1")
        if not self.layers:
            raise ValueError("the model needs at least one recurrent layer")
        layers = []
        for l, layer in enumerate(self.layers):
            if layer.cell not in CELLS:
                raise ValueError(f"recurrent layer {l}: unknown cell {layer.cell!r}; expected one of "
                                 f"{', '.join(CELLS)}")
            G = len(CELLS[layer.cell])
            if len(layer.directions) not in (1, 2):
                raise ValueError(f"recurrent layer {l} must have 1 or 2 directions")
            dirs = []
            for k, dr in enumerate(layer.directions):
                name = f"{layer.cell} layer {l} direction {k}"
                W_ih = _array(dr.W_ih, f"{name} W_ih", 2, dtype)
                W_hh = _array(dr.W_hh, f"{name} W_hh", 2, dtype)
                b_ih = _array(dr.b_ih, f"{name} b_ih", 1, dtype)
                b_hh = _array(dr.b_hh, f"{name} b_hh", 1, dtype)
                d = W_hh.shape[1]
                if d < 1 or W_hh.shape[0] != G * d:
                    raise ValueError(f"{name} W_hh: expected shape ({G}*d, d), got {W_hh.shape}")
                if W_ih.shape != (G * d, n_in):
                    raise ValueError(f"{name} W_ih: expected shape ({G * d}, {n_in}), got {W_ih.shape}")
                for b, bn in ((b_ih, "b_ih"), (b_hh, "b_hh")):
                    if b.shape != (G * d,):
                        raise ValueError(f"{name} {bn}: expected {G * d} values, got shape {b.shape}")
                dirs.append(Direction(W_ih, W_hh, b_ih, b_hh))
            if len(dirs) == 2 and dirs[0].hidden != dirs[1].hidden:
                raise ValueError(f"recurrent layer {l}: both directions must have the same hidden size")
            layers.append(Recurrent(layer.cell, tuple(dirs)))
            n_in = sum(d.hidden for d in dirs)
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; expected one of {', '.join(POOLINGS)}")
        att = None
        if self.pooling == "attention":
            if self.attention is None:
                raise ValueError("pooling 'attention' needs the attention weights (W, b, v)")
            W = _array(self.attention.W, "attention W", 2, dtype)
            b = _array(self.attention.b, "attention b", 1, dtype)
            v = _array(self.attention.v, "attention v", 1, dtype)
            A = W.shape[0]
            if A < 1 or W.shape[1] != n_in or b.shape != (A,) or v.shape != (A,):
                raise ValueError(f"attention: expected W [A, {n_in}], b [A], v [A], got "
                                 f"{W.shape}, {b.shape}, {v.shape}")
            att = Attention(W, b, v)
        elif self.attention is not None:
            raise ValueError(f"attention weights given with pooling {self.pooling!r}")
        if not self.head:
            raise ValueError("the model needs at least one dense layer")
        head = []
        for k, dense in enumerate(self.head):
            W = _array(dense.W, f"head layer {k} W", 2, dtype)
            if W.shape[1] != n_in or W.shape[0] < 1:
                raise ValueError(f"head layer {k} W: expected shape (out, {n_in}), got {W.shape}")
            bias: np.ndarray | None = None
            if dense.b is not None:
                bias = _array(dense.b, f"head layer {k} b", 1, dtype)
                if bias.shape != (W.shape[0],):
                    raise ValueError(f"head layer {k} b: expected {W.shape[0]} values, got {bias.shape}")
            head.append(Dense(W, bias))
            n_in = int(W.shape[0])
        input_size = int(emb.shape[1]) if emb is not None else int(self.input_size)
        return replace(self, embedding=emb, layers=tuple(layers), head=tuple(head), attention=att,
                       input_size=input_size)
