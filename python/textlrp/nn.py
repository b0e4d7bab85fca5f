"""PyTorch building blocks that textlrp can explain exactly. Importing this module needs torch
(``import textlrp`` alone never imports it).

:class:`AdditiveAttention` is the ``attention`` pooling of the model specification: put it on
top of an ``nn.LSTM`` / ``nn.GRU`` in your own model, train as usual, and hand it to
``textlrp.from_torch(..., pooling=<the module>)``.
"""

from __future__ import annotations

import torch
from torch import nn


class AdditiveAttention(nn.Module):
    """Additive attention pooling over a sequence of feature vectors h_t [F]:

        u_t = tanh(W h_t + b)      e_t = v . u_t      alpha = softmax over t of e
        context = sum_t alpha_t h_t

    Submodules ``proj = nn.Linear(features, size)`` and ``score = nn.Linear(size, 1,
    bias=False)``; in ``textlrp.spec.Attention`` terms ``W = proj.weight`` [size, features],
    ``b = proj.bias`` [size], ``v = score.weight[0]`` [size].

    ``forward(h, mask=None, lengths=None)``: ``h`` [B, T, F] (batch first); positions where
    ``mask`` [B, T] is False, or at or past ``lengths`` [B], get alpha = 0 (padding). Returns
    ``(context [B, F], alpha [B, T])``.
    """

    def __init__(self, features: int, size: int, *, device=None, dtype=None) -> None:
        super().__init__()
        for name, value in (("features", features), ("size", size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.features = features
        self.size = size
        self.proj = nn.Linear(features, size, device=device, dtype=dtype)
        self.score = nn.Linear(size, 1, bias=False, device=device, dtype=dtype)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None,
                lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if h.dim() != 3 or h.shape[2] != self.features:
            raise ValueError(f"h must have shape [batch, time, {self.features}], "
                             f"got {tuple(h.shape)}")
        B, T, _ = h.shape
        if T == 0:
            raise ValueError("attention over an empty sequence")
        if lengths is not None:
            if mask is not None:
                raise ValueError("give mask or lengths, not both")
            lengths = torch.as_tensor(lengths, device=h.device)
            if lengths.shape != (B,):
                raise ValueError(f"lengths must have shape [{B}], got {tuple(lengths.shape)}")
            if bool((lengths > T).any()):
                raise ValueError(f"lengths must be at most the sequence length {T}")
            mask = torch.arange(T, device=h.device)[None, :] < lengths[:, None]
        if mask is not None:
            mask = torch.as_tensor(mask, device=h.device)
            if mask.shape != (B, T) or mask.dtype != torch.bool:
                raise ValueError(f"mask must be a bool tensor of shape [{B}, {T}], "
                                 f"got {mask.dtype} {tuple(mask.shape)}")
            if not bool(mask.any(dim=1).all()):
                raise ValueError("every sequence needs at least one unmasked position")
        u = torch.tanh(self.proj(h))  # [B, T, A]
        e = self.score(u).squeeze(-1)  # [B, T]
        if mask is not None:
            e = e.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(e, dim=1)  # subtracts the maximum before exp
        context = torch.bmm(alpha.unsqueeze(1), h).squeeze(1)  # [B, F]
        return context, alpha
