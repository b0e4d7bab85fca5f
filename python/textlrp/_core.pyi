# Type stubs of the compiled engine (cpp/bindings/module.cpp). Private: use textlrp.Model.
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

RULES: tuple[str, ...]

def isa() -> str:
    """Instruction set the kernels use on this CPU: generic, avx2 or avx512 (TEXTLRP_ISA forces one)."""

_Direction: TypeAlias = tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike]  # W_ih [4d, in], W_hh [4d, d], b [4d]
_Dense: TypeAlias = tuple[npt.ArrayLike, npt.ArrayLike | None]  # W [out, in], b [out] or None

class _Model:
    vocab_size: int
    embedding_dim: int
    @property
    def n_classes(self) -> int: ...
    @property
    def n_features(self) -> int: ...
    def __init__(
        self, embedding: npt.ArrayLike, layers: Sequence[Sequence[_Direction]], head: Sequence[_Dense]
    ) -> None: ...
    def forward(
        self, ids: npt.ArrayLike, offsets: npt.ArrayLike, deleted: npt.ArrayLike | None = None,
        threads: int = 1,
    ) -> np.ndarray: ...
    def lrp(
        self, ids: npt.ArrayLike, offsets: npt.ArrayLike, deleted: npt.ArrayLike | None = None,
        targets: npt.ArrayLike | None = None, eps: float = 1e-3, bias_factor: float = 0.0,
        rule: str = "signal-take-all", threads: int = 1, keep_embedding: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """(scores [N, C], targets [N], relevance [n_tokens], embedding relevance [n_tokens, e] | None, rest [N])"""
    def gradient(
        self, ids: npt.ArrayLike, offsets: npt.ArrayLike, deleted: npt.ArrayLike | None = None,
        targets: npt.ArrayLike | None = None, threads: int = 1, keep_embedding: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
        """(scores, targets, gradient [n_tokens, e] | None, sa [n_tokens], gi [n_tokens])"""
    def occlusion(
        self, ids: npt.ArrayLike, offsets: npt.ArrayLike, deleted: npt.ArrayLike | None = None,
        targets: npt.ArrayLike | None = None, threads: int = 1,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores, targets, drop [n_tokens])"""

class ModelF64(_Model): ...
class ModelF32(_Model): ...
