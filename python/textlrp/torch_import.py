"""Convert a PyTorch embedding + LSTM + dense head into a :class:`textlrp.Model`.

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


def _convert_lstm(lstm: Any, nn: Any, input_size: int) -> list[list[dict[str, np.ndarray]]]:
    if not isinstance(lstm, nn.LSTM):
        raise TypeError(
            f"lstm must be a torch.nn.LSTM, got {type(lstm).__name__}"
            + (" (GRU and plain RNN cells are not supported)" if isinstance(lstm, nn.RNNBase) else "")
        )
    if getattr(lstm, "proj_size", 0):
        raise ValueError(f"nn.LSTM with proj_size={lstm.proj_size} is not supported (projected hidden states)")
    if lstm.input_size != input_size:
        raise ValueError(
            f"nn.LSTM input_size is {lstm.input_size} but the nn.Embedding has embedding_dim {input_size}"
        )
    layers = []
    for layer in range(lstm.num_layers):
        directions = []
        for suffix in ("", "_reverse")[: 2 if lstm.bidirectional else 1]:
            w_ih = getattr(lstm, f"weight_ih_l{layer}{suffix}")
            w_hh = getattr(lstm, f"weight_hh_l{layer}{suffix}")
            if lstm.bias:
                b = _np(getattr(lstm, f"bias_ih_l{layer}{suffix}")) + _np(getattr(lstm, f"bias_hh_l{layer}{suffix}"))
            else:
                b = np.zeros(w_ih.shape[0])
            directions.append({"W_ih": _np(w_ih), "W_hh": _np(w_hh), "b": b})
        layers.append(directions)
    return layers


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
                raise ValueError(f"{where} is a ReLU before the first Linear; the engine feeds the LSTM features "
                                 "straight into the first Linear")
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
    lstm: Any,
    head: Any,
    *,
    vocab: Sequence[str] | Mapping[str, int] | None = None,
    class_names: Sequence[str] | None = None,
    unk_token: str | None = None,
    lowercase: bool = False,
    dtype: Any = None,
    metadata: Mapping[str, Any] | None = None,
) -> Any:
    """Build a Model equal (in eval mode) to ``head(features(lstm(embedding(ids))))``.

    - ``embedding``: ``nn.Embedding`` (``max_norm`` is refused: it rewrites rows on lookup).
    - ``lstm``: ``nn.LSTM``, any ``num_layers``, uni- or bidirectional, ``batch_first``
      either way, with or without bias (``b = b_ih + b_hh``; no bias = zeros).
      Inter-layer dropout is ignored. ``proj_size > 0``, GRU and RNN are refused.
    - ``head``: ``nn.Linear`` or ``nn.Sequential`` of Linear / ReLU / Dropout with a ReLU
      between Linear layers. Features are [forward h after the last token, backward h at the
      first token] of the last LSTM layer, i.e. ``torch.cat([h_n[-2], h_n[-1]], 1)`` for a
      bidirectional LSTM and ``h_n[-1]`` otherwise.
    - ``vocab``: list of tokens (position = id) or a dict token -> id covering 0..V-1.
    - ``dtype``: defaults to the embedding weight's dtype (float64 stays float64, other
      float types become float32).
    """
    import torch
    from torch import nn

    from .model import from_arrays

    if not isinstance(embedding, nn.Embedding):
        raise TypeError(f"embedding must be a torch.nn.Embedding, got {type(embedding).__name__}")
    if embedding.max_norm is not None:
        raise ValueError(
            f"nn.Embedding with max_norm={embedding.max_norm} is not supported (rows are renormalised on lookup)"
        )
    layers = _convert_lstm(lstm, nn, embedding.embedding_dim)
    n_features = lstm.hidden_size * (2 if lstm.bidirectional else 1)
    head_layers = _convert_head(head, nn, n_features)

    if dtype is None:
        dtype = np.float64 if embedding.weight.dtype == torch.float64 else np.float32
    if isinstance(vocab, Mapping):
        size = embedding.num_embeddings
        tokens: list[str | None] = [None] * size
        for tok, idx in vocab.items():
            if not isinstance(idx, (int, np.integer)) or not 0 <= idx < size:
                raise ValueError(f"vocab maps {tok!r} to {idx!r}, outside 0..{size - 1}")
            if tokens[idx] is not None:
                raise ValueError(f"vocab maps both {tokens[idx]!r} and {tok!r} to id {idx}")
            tokens[idx] = str(tok)
        missing = [i for i, t in enumerate(tokens) if t is None]
        if missing:
            raise ValueError(f"vocab dict has no token for ids {missing[:10]}{' ...' if len(missing) > 10 else ''}")
        vocab = [t for t in tokens if t is not None]
    if metadata is None:
        metadata = {"source": "textlrp.from_torch", "torch_version": torch.__version__}
    return from_arrays(
        _np(embedding.weight),
        layers,
        head_layers,
        vocab=None if vocab is None else list(vocab),
        class_names=None if class_names is None else list(class_names),
        gate_order="ifgo",
        unk_token=unk_token,
        lowercase=lowercase,
        dtype=dtype,
        metadata=dict(metadata),
    )
