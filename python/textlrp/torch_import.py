"""Convert PyTorch modules (embedding or none, LSTM or GRU, pooling, dense head) into a
:class:`textlrp.Model`.

torch is never imported by ``import textlrp``; this module touches it only
through the objects it is given (and imports it inside :func:`from_torch`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["from_torch"]


def _np(t: Any) -> np.ndarray:
    # float64 first so the final cast to the model dtype is the only rounding.
    return t.detach().cpu().double().numpy()


def _convert_rnn(rnn: Any, nn: Any, input_size: int | None) -> tuple[str, list[list[dict[str, np.ndarray]]]]:
    """(cell, layers) of an nn.LSTM or nn.GRU, gate rows in PyTorch's order (the engine's)."""
    if isinstance(rnn, nn.LSTM):
        cell = "lstm"
    elif isinstance(rnn, nn.GRU):
        cell = "gru"
    else:
        raise TypeError(
            f"rnn must be a torch.nn.LSTM or torch.nn.GRU, got {type(rnn).__name__}"
            + (" (plain RNN cells are not supported)" if isinstance(rnn, nn.RNNBase) else "")
        )
    if getattr(rnn, "proj_size", 0):
        raise ValueError(f"nn.LSTM with proj_size={rnn.proj_size} is not supported (projected hidden states)")
    if input_size is not None and rnn.input_size != input_size:
        raise ValueError(
            f"nn.{type(rnn).__name__} input_size is {rnn.input_size} but the nn.Embedding has "
            f"embedding_dim {input_size}"
        )
    layers = []
    for layer in range(rnn.num_layers):
        directions = []
        for suffix in ("", "_reverse")[: 2 if rnn.bidirectional else 1]:
            w_ih = _np(getattr(rnn, f"weight_ih_l{layer}{suffix}"))
            w_hh = _np(getattr(rnn, f"weight_hh_l{layer}{suffix}"))
            if rnn.bias:
                b_ih = _np(getattr(rnn, f"bias_ih_l{layer}{suffix}"))
                b_hh = _np(getattr(rnn, f"bias_hh_l{layer}{suffix}"))
            else:
                b_ih = b_hh = np.zeros(w_ih.shape[0])
            directions.append({"W_ih": w_ih, "W_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh})
        layers.append(directions)
    return cell, layers


def _convert_pooling(pooling: Any, nn: Any, n_features: int) -> tuple[str, dict[str, np.ndarray] | None]:
    """("last" | "mean" | "max", None) or ("attention", weights) from an AdditiveAttention-like
    module (submodules ``proj`` = Linear(features, size), ``score`` = Linear(size, 1, bias=False))."""
    if isinstance(pooling, str):
        if pooling not in ("last", "mean", "max"):
            raise ValueError(f"pooling must be 'last', 'mean', 'max' or an AdditiveAttention module, "
                             f"got {pooling!r}")
        return pooling, None
    if isinstance(pooling, nn.Module):
        proj, score = getattr(pooling, "proj", None), getattr(pooling, "score", None)
        if not (isinstance(proj, nn.Linear) and isinstance(score, nn.Linear)):
            raise TypeError(
                f"pooling module {type(pooling).__name__} is not supported: use "
                "textlrp.nn.AdditiveAttention (submodules proj = Linear(features, size), "
                "score = Linear(size, 1, bias=False)), or 'last' / 'mean' / 'max'"
            )
        if proj.in_features != n_features:
            raise ValueError(f"attention proj has in_features={proj.in_features} but the recurrent "
                             f"layers give {n_features} features")
        if score.in_features != proj.out_features or score.out_features != 1:
            raise ValueError("attention score must be Linear(size, 1)")
        if score.bias is not None:
            raise ValueError("attention score must have no bias (a bias shifts every e_t alike and "
                             "cancels in the softmax; build it with bias=False)")
        if proj.bias is None:
            b = np.zeros(proj.out_features)
        else:
            b = _np(proj.bias)
        return "attention", {"W": _np(proj.weight), "b": b, "v": _np(score.weight)[0]}
    raise TypeError(f"pooling must be 'last', 'mean', 'max' or an AdditiveAttention module, "
                    f"got {type(pooling).__name__}")


def _convert_head(head: Any, nn: Any, n_features: int) -> list[dict[str, np.ndarray | None]]:
    """Linear, or Sequential of Linear / ReLU / Dropout (Dropout ignored: eval semantics).

    The engine puts a ReLU between consecutive head layers, so the Sequential
    must alternate Linear, ReLU, Linear, ... and end with a Linear. Two Linear
    layers without a ReLU between them are refused rather than folded: folding
    keeps the scores but changes the epsilon-LRP relevances of the head.
    """
    if isinstance(head, nn.Linear):
        modules: list[tuple[str, Any]] = [("head", head)]
    elif isinstance(head, nn.Sequential):
        modules = []

        def flatten(seq: Any, prefix: str) -> None:
            for name, m in seq.named_children():
                if isinstance(m, nn.Sequential):
                    flatten(m, f"{prefix}[{name}]")
                else:
                    modules.append((f"{prefix}[{name}]", m))

        flatten(head, "head")
    else:
        raise TypeError(f"head must be an nn.Linear or an nn.Sequential, got {type(head).__name__}")

    layers: list[dict[str, np.ndarray | None]] = []
    pending_relu = False
    for where, m in modules:
        if isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        if isinstance(m, nn.ReLU):
            if not layers:
                raise ValueError(f"{where} is a ReLU before the first Linear; the engine feeds the pooled "
                                 "features straight into the first Linear")
            if pending_relu:
                raise ValueError(f"{where}: two ReLUs in a row")
            pending_relu = True
            continue
        if isinstance(m, nn.Linear):
            if layers and not pending_relu:
                raise ValueError(
                    f"{where} is a Linear right after another Linear; textlrp heads have a ReLU between "
                    "Linear layers (insert nn.ReLU, or merge the two Linear layers into one)"
                )
            n_in = layers[-1]["W"].shape[0] if layers else n_features  # type: ignore[union-attr]
            if m.in_features != n_in:
                raise ValueError(f"{where} has in_features={m.in_features} but receives {n_in} features")
            layers.append({"W": _np(m.weight), "b": None if m.bias is None else _np(m.bias)})
            pending_relu = False
            continue
        raise ValueError(
            f"{where} is {type(m).__name__}: head modules must be Linear, ReLU or Dropout"
        )
    if not layers:
        raise ValueError("head has no nn.Linear layer")
    if pending_relu:
        raise ValueError("head ends with a ReLU; the last head layer must be a Linear (the class scores)")
    return layers


def from_torch(
    embedding: Any,
    rnn: Any,
    head: Any,
    *,
    pooling: Any = "last",
    vocab: Sequence[str] | Mapping[str, int] | None = None,
    class_names: Sequence[str] | None = None,
    unk_token: str | None = None,
    lowercase: bool = False,
    dtype: Any = None,
    metadata: Mapping[str, Any] | None = None,
) -> Any:
    """Build a Model equal (in eval mode) to ``head(pool(rnn(embedding(ids))))``.

    - ``embedding``: ``nn.Embedding`` (``max_norm`` is refused: it rewrites rows on lookup),
      or None for a model on continuous inputs [T, rnn.input_size].
    - ``rnn``: ``nn.LSTM`` or ``nn.GRU``, any ``num_layers``, uni- or bidirectional,
      ``batch_first`` either way, with or without bias. Inter-layer dropout is ignored.
      LSTM ``proj_size > 0`` and plain RNN are refused.
    - ``pooling``: what the head reads of the last layer's outputs y [T, F] (directions
      concatenated): ``"last"`` = [forward h after the last step, backward h at the first],
      i.e. ``torch.cat([h_n[-2], h_n[-1]], 1)`` bidirectional and ``h_n[-1]`` otherwise;
      ``"mean"`` = ``y.mean(1)``; ``"max"`` = ``y.max(1).values``; or a
      :class:`textlrp.nn.AdditiveAttention` module.
    - ``head``: ``nn.Linear`` or ``nn.Sequential`` of Linear / ReLU / Dropout with a ReLU
      between Linear layers.
    - ``class_names``: None with one output gives a regression model.
    - ``vocab``: list of tokens (position = id) or a dict token -> id covering 0..V-1.
    - ``dtype``: defaults to the weights' dtype (float64 stays float64, other float types
      become float32).
    """
    import torch
    from torch import nn

    from .model import from_arrays
    from .vocab import tokens_from_mapping

    if embedding is not None:
        if not isinstance(embedding, nn.Embedding):
            raise TypeError(f"embedding must be a torch.nn.Embedding or None, got {type(embedding).__name__}")
        if embedding.max_norm is not None:
            raise ValueError(
                f"nn.Embedding with max_norm={embedding.max_norm} is not supported (rows are renormalised on lookup)"
            )
    elif vocab is not None:
        raise ValueError("a model without embedding (continuous inputs) takes no vocabulary")
    cell, layers = _convert_rnn(rnn, nn, None if embedding is None else embedding.embedding_dim)
    n_features = rnn.hidden_size * (2 if rnn.bidirectional else 1)
    pool, attention = _convert_pooling(pooling, nn, n_features)
    head_layers = _convert_head(head, nn, n_features)

    if dtype is None:
        probe = embedding.weight if embedding is not None else rnn.weight_ih_l0
        dtype = np.float64 if probe.dtype == torch.float64 else np.float32
    if isinstance(vocab, Mapping):
        assert embedding is not None
        vocab = tokens_from_mapping(vocab, embedding.num_embeddings)
    if metadata is None:
        metadata = {"source": "textlrp.from_torch", "torch_version": torch.__version__}
    return from_arrays(
        None if embedding is None else _np(embedding.weight),
        layers,
        head_layers,
        cell=cell,
        pooling=pool,
        attention=attention,
        input_size=rnn.input_size,
        vocab=None if vocab is None else list(vocab),
        class_names=None if class_names is None else list(class_names),
        unk_token=unk_token,
        lowercase=lowercase,
        dtype=dtype,
        metadata=dict(metadata),
    )
