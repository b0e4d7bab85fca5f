# Type stubs of the compiled engine (cpp/bindings/module.cpp). Private: use textlrp.Model.
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy.typing as npt

RULES: tuple[str, ...]  # must equal textlrp.methods.RULES (checked at import)
CELLS: tuple[str, ...]  # must equal textlrp.spec.CELLS
POOLINGS: tuple[str, ...]  # textlrp.spec.POOLINGS

def isa() -> str:
    """Instruction set the kernels use on this CPU: generic, avx2 or avx512 (TEXTLRP_ISA forces one)."""

# W_ih [G*d, in], W_hh [G*d, d], b_ih [G*d], b_hh [G*d]; G = 4 (LSTM i, f, g, o) or 3 (GRU r, z, n)
_Direction: TypeAlias = tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike, npt.ArrayLike]
_Layer: TypeAlias = tuple[str, Sequence[_Direction]]  # (cell, directions)
_Attention: TypeAlias = tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike]  # W [A, F], b [A], v [A]
_Dense: TypeAlias = tuple[npt.ArrayLike, npt.ArrayLike | None]  # W [out, in], b [out] or None

class _Model:
    vocab_size: int  # 0: continuous inputs
    input_size: int
    @property
    def n_classes(self) -> int: ...
    @property
    def n_features(self) -> int: ...
    @property
    def stage_count(self) -> int: ...
    def __init__(
        self, embedding: npt.ArrayLike | None, input_size: int, layers: Sequence[_Layer],
        pooling: str, attention: _Attention | None, head: Sequence[_Dense],
    ) -> None: ...
    def forward(
        self, inputs: npt.ArrayLike, offsets: npt.ArrayLike, deleted: npt.ArrayLike | None = None,
        threads: int = 1, *, background: bool = False,
    ) -> Any: ...
    def lrp(
        self, inputs: npt.ArrayLike, offsets: npt.ArrayLike, deleted: npt.ArrayLike | None = None,
        targets: npt.ArrayLike | None = None, eps: float = 1e-3, bias_factor: float = 0.0,
        rule: str = "signal-take-all", threads: int = 1, keep_embedding: bool = True, *,
        background: bool = False,
    ) -> Any:
        """(scores [N, C], targets [N], relevance [rows], input relevance [rows, input_size] | None,
        rest [N], stage totals [N, stage_count]), or with background=True a Pending of it"""
    def gradient(
        self, inputs: npt.ArrayLike, offsets: npt.ArrayLike, deleted: npt.ArrayLike | None = None,
        targets: npt.ArrayLike | None = None, threads: int = 1, keep_embedding: bool = True, *,
        background: bool = False,
    ) -> Any:
        """(scores, targets, gradient [n_tokens, e] | None, sa [n_tokens], gi [n_tokens]), or with
        background=True a Pending of it"""
    def occlusion(
        self, inputs: npt.ArrayLike, offsets: npt.ArrayLike, deleted: npt.ArrayLike | None = None,
        targets: npt.ArrayLike | None = None, threads: int = 1, *, background: bool = False,
    ) -> Any:
        """(scores, targets, drop [n_tokens]), or with background=True a Pending of it"""

class Pending:
    """An engine pass started with background=True, running on a thread of its own."""
    def result(self) -> Any:
        """Wait (without the GIL); what the direct call returns, or its error."""
    def done(self) -> bool: ...

class ModelF64(_Model): ...
class ModelF32(_Model): ...
