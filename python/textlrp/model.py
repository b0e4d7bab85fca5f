"""The Model: weights, vocabulary and the explain/predict API over the compiled engine."""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Union

import numpy as np

from . import _core
from .explanation import Explanation, ExplanationError, StageLayout
from .methods import DEFAULT_RULE, METHODS, RULES, check_method, check_rule
from .spec import CELLS, Attention, Dense, Direction, ModelSpec, Recurrent
from .tokenize import tokenize as _tokenize
from .vocab import Vocabulary

if tuple(RULES) != tuple(_core.RULES) or tuple(CELLS) != tuple(_core.CELLS):
    raise ImportError("textlrp's compiled core does not match its Python registries; reinstall")

class Encoding(NamedTuple):
    """One input as the engine reads it, what :meth:`Model.encode` returns: the tokens (the
    vocabulary's form; step labels "0".."T-1" for a continuous model), the ids (int64 [T];
    for a continuous model the float input [T, input_size]) and the out-of-vocabulary flags.
    Every method that takes inputs also takes an Encoding and uses its ids as they are
    (checked, never encoded again)."""

    tokens: list[str]
    ids: np.ndarray
    oov: np.ndarray


TokensLike = Union[str, Sequence[str], Sequence[int], np.ndarray, Encoding]
TargetLike = Union[None, int, str]

# ``target="all"``: explain every class of each input (the inputs are encoded once).
ALL_CLASSES = "all"

# Occlusion runs one forward pass per token, each over the whole input: O(T^2) steps per
# input (the bundled model: 2,000 tokens take 10-23 s on one core). Longer inputs warn.
OCCLUSION_WARN_TOKENS = 1000

DEFAULT_EPS = 1e-3


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_threads(threads: int | None) -> int:
    if threads is None:
        return _default_threads()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise TypeError(f"threads must be an int or None, got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return int(threads)


def _as_float_array(a: Any, name: str, dtype: np.dtype) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:  # e.g. ragged nested lists
        raise ValueError(f"{name} is not a numeric array: {exc}") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = np.array(arr, dtype=dtype, order="C", copy=True)  # never freeze the caller's array
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    arr.flags.writeable = False
    return arr


def _gate_permutation(cell: str, gate_order: str | None) -> list[int]:
    """Block order that turns ``gate_order`` into the engine's (CELLS[cell])."""
    engine = CELLS[cell]
    if gate_order is None:
        return list(range(len(engine)))
    order = str(gate_order).lower()
    if cell == "lstm":
        order = order.replace("c", "g")  # Keras calls the cell candidate "c"
    else:
        order = order.replace("h", "n")  # Keras calls the GRU candidate "h"
    if sorted(order) != sorted(engine):
        examples = ("'ifgo' for PyTorch, 'igfo' for the Arras et al. reference code, 'ifco' for Keras"
                    if cell == "lstm" else "'rzn' for PyTorch, 'zrn' for Keras")
        raise ValueError(f"gate_order for {cell} must be a permutation of {engine!r} ({examples}), "
                         f"got {gate_order!r}")
    return [order.index(g) for g in engine]


def _reorder_gates(a: np.ndarray, perm: list[int], name: str) -> np.ndarray:
    G = len(perm)
    if a.ndim < 1 or a.shape[0] % G:
        raise ValueError(f"{name}: gate arrays need {G} * hidden rows, got shape {a.shape}")
    if perm == list(range(G)):
        return a
    blocks = np.split(a, G, axis=0)
    return np.concatenate([blocks[p] for p in perm], axis=0)


def _magnitude_problem(spec: ModelSpec) -> str | None:
    """Why the weights are too large for the engine's float type, or None.

    Two sound, input-independent checks. (1) A bound on every forward quantity: recurrent
    outputs lie in [-1, 1] (LSTM h = o*tanh(c), GRU h a convex mix of tanh values), so a
    layer's pre-activations are at most max_row(sum|W_ih|*a + sum|W_hh|) + |b_ih| + |b_hh|,
    with a = max|embedding| for the first layer of a token model (1 for continuous inputs:
    the bound is then per unit of input), and a head layer's outputs at most
    max_row(sum|W|)*a + |b|. If that bound reaches the float range, scores can be inf/NaN.
    (2) Gradients and relevance multiply weights of successive layers: a weight of magnitude
    >= sqrt(float max) makes such products overflow. Either is reported at build time; what
    actually overflows is reported per input by ``Explanation.overflow``."""
    fmax = float(np.finfo(spec.dtype).max)
    with np.errstate(over="ignore", invalid="ignore"):
        a = 1.0 if spec.embedding is None else float(np.max(np.abs(spec.embedding), initial=0.0))
        bound = 0.0
        where = ""
        biggest = a if spec.embedding is not None else 0.0
        for l, layer in enumerate(spec.layers):
            for d in layer.directions:
                z = (np.abs(d.W_ih).astype(np.float64).sum(axis=1) * a
                     + np.abs(d.W_hh).astype(np.float64).sum(axis=1)
                     + np.abs(d.b_ih) + np.abs(d.b_hh))
                if float(np.max(z)) > bound:
                    bound, where = float(np.max(z)), f"{layer.cell} layer {l}"
                biggest = max(biggest, *(float(np.max(np.abs(w), initial=0.0))
                                         for w in (d.W_ih, d.W_hh, d.b_ih, d.b_hh)))
            a = 1.0
        if spec.attention is not None:
            att = spec.attention
            z = np.abs(att.W).astype(np.float64).sum(axis=1) + np.abs(att.b)
            e = float(np.abs(att.v).astype(np.float64).sum())
            for value in (float(np.max(z)), e):
                if value > bound:
                    bound, where = value, "the attention"
            biggest = max(biggest, *(float(np.max(np.abs(w))) for w in (att.W, att.b, att.v)))
        for k, h in enumerate(spec.head):
            out = np.abs(h.W).astype(np.float64).sum(axis=1) * a
            if h.b is not None:
                out = out + np.abs(h.b)
                biggest = max(biggest, float(np.max(np.abs(h.b))))
            biggest = max(biggest, float(np.max(np.abs(h.W))))
            a = float(np.max(out))
            if a > bound:
                bound, where = a, f"head layer {k}"
    name = np.dtype(spec.dtype).name
    if not bound < fmax:
        return (f"the forward pass can overflow {name}: values in {where} can reach "
                f"{bound:.3g} (> {fmax:.3g})")
    if not biggest < math.sqrt(fmax):
        return (f"a weight of magnitude {biggest:.3g} makes gradients and relevance overflow "
                f"{name} (products of two weights exceed {fmax:.3g})")
    return None


class Model:
    """A recurrent sequence model the engine can explain: token or continuous inputs, LSTM or
    GRU layers, a pooling over the hidden states and a dense head; a classifier, or a
    regression model (one output, no class names). Build one with
    :func:`textlrp.from_arrays`, :func:`textlrp.from_torch` or :func:`textlrp.load_model`."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        vocab: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        unk_token: str | None = None,
        lowercase: bool = False,
        dtype: Any = None,
        metadata: dict[str, Any] | None = None,
        card: str | None = None,
    ) -> None:
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"Model takes a textlrp.spec.ModelSpec, got {type(spec).__name__}; "
                            "use textlrp.from_arrays to build one from plain arrays")
        self.spec = spec.checked(dtype)
        self.dtype = self.spec.dtype
        problem = _magnitude_problem(self.spec)
        if problem is not None:
            warnings.warn(f"{problem}; scores, gradients or relevance may come out as inf/NaN "
                          "(Explanation.overflow reports each such input)", RuntimeWarning,
                          stacklevel=2)
        core_cls = _core.ModelF64 if self.dtype == np.float64 else _core.ModelF32
        sp = self.spec
        self._core = core_cls(
            sp.embedding, sp.input_size,
            [(r.cell, [(d.W_ih, d.W_hh, d.b_ih, d.b_hh) for d in r.directions]) for r in sp.layers],
            sp.pooling,
            None if sp.attention is None else (sp.attention.W, sp.attention.b, sp.attention.v),
            [(h.W, h.b) for h in sp.head],
        )
        self.n_classes: int = self._core.n_classes
        self.vocab_size: int = self._core.vocab_size
        self.input_size: int = self._core.input_size
        self.continuous: bool = sp.embedding is None
        # One output and no class names: a regression model, explained on its output value.
        self.regression: bool = class_names is None and self.n_classes == 1
        if class_names is None:
            class_names = ["value"] if self.regression else [str(c) for c in range(self.n_classes)]
        self.class_names = [str(c) for c in class_names]
        if len(self.class_names) != self.n_classes:
            raise ValueError(
                f"{len(self.class_names)} class names for a model with {self.n_classes} outputs"
            )
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class names must be unique, got {self.class_names}")

        # The vocabulary and the tokenizer settings, in one object (None: ids only).
        self.vocabulary: Vocabulary | None = None
        if vocab is not None:
            if self.continuous:
                raise ValueError("a model without embedding (continuous inputs) takes no vocabulary")
            self.vocabulary = (vocab if isinstance(vocab, Vocabulary) else
                               Vocabulary(vocab, unk_token=unk_token, lowercase=lowercase))
            if len(self.vocabulary) != self.vocab_size:
                raise ValueError(
                    f"vocabulary has {len(self.vocabulary)} entries but the embedding has "
                    f"{self.vocab_size} rows"
                )
        elif unk_token is not None:
            raise ValueError(f"unk_token {unk_token!r} is not in the vocabulary (there is none)")
        self._lowercase = bool(lowercase) if self.vocabulary is None else self.vocabulary.lowercase
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.card: str | None = None if card is None else str(card)
        self._stages = _stage_layout(self.spec)
        if len(self._stages.names) != self._core.stage_count:
            raise RuntimeError("the engine's LRP stages do not match textlrp.explanation.StageLayout")

    # ----------------------------------------------------------------- description
    @property
    def cells(self) -> set[str]:
        return {r.cell for r in self.spec.layers}

    @property
    def embedding(self) -> np.ndarray | None:
        return self.spec.embedding

    @property
    def embedding_dim(self) -> int:
        """Width of x_t: the embedding's, or a continuous input's (same as ``input_size``)."""
        return self.input_size

    @property
    def lstm_layers(self) -> list[list[dict[str, np.ndarray]]]:
        """The layers as dicts of arrays (LSTM: W_ih, W_hh, b = b_ih + b_hh; GRU: W_ih, W_hh,
        b_ih, b_hh), gate rows in the engine's order."""
        out = []
        for r in self.spec.layers:
            if r.cell == "lstm":
                out.append([{"W_ih": d.W_ih, "W_hh": d.W_hh, "b": d.b_ih + d.b_hh}
                            for d in r.directions])
            else:
                out.append([{"W_ih": d.W_ih, "W_hh": d.W_hh, "b_ih": d.b_ih, "b_hh": d.b_hh}
                            for d in r.directions])
        return out

    @property
    def head(self) -> list[dict[str, np.ndarray | None]]:
        return [{"W": h.W, "b": h.b} for h in self.spec.head]

    @property
    def architecture(self) -> dict[str, Any]:
        arch = self.spec.describe()
        arch["embedding_dim"] = self.input_size
        arch["n_classes"] = self.n_classes
        arch["regression"] = self.regression
        return arch

    def __repr__(self) -> str:
        a = self.spec.describe()
        inp = (f"vocab={self.vocab_size} emb={self.input_size}" if not self.continuous
               else f"continuous({self.input_size})")
        rnn = ", ".join(f"{'bi' if r['directions'] == 2 else ''}{r['cell'].upper()}({r['hidden']})"
                        for r in a["layers"])
        heads = " -> ".join(f"Linear({h['out']}{'' if h['bias'] else ', no bias'})" for h in a["head"])
        out = "regression" if self.regression else f"classes={self.class_names}"
        return (f"<textlrp.Model {inp} {rnn} -> {a['pooling']} -> {heads} {out} {self.dtype.name}>")

    # ----------------------------------------------------------------- encoding
    def class_index(self, c: int | str) -> int:
        """Index of a class given by index or name."""
        if isinstance(c, (bool, np.bool_)):
            raise TypeError("a class is an index or a name, not a bool")
        if isinstance(c, (int, np.integer)):
            if not 0 <= c < self.n_classes:
                raise ValueError(f"class index {c} out of range: the model has {self.n_classes} "
                                 f"classes {self.class_names}")
            return int(c)
        if isinstance(c, str):
            if c in self.class_names:
                return self.class_names.index(c)
            if c.lstrip("-").isdigit():
                return self.class_index(int(c))
            raise ValueError(f"unknown class {c!r}; the model's classes are {self.class_names}")
        raise TypeError(f"a class is an index or a name, got {type(c).__name__}")

    @property
    def vocab(self) -> list[str] | None:
        """Tokens by id (None: a model that takes ids only)."""
        return None if self.vocabulary is None else self.vocabulary.tokens

    @property
    def unk_token(self) -> str | None:
        return None if self.vocabulary is None else self.vocabulary.unk_token

    @property
    def lowercase(self) -> bool:
        return self._lowercase

    def tokenize(self, text: str) -> list[str]:
        if self.vocabulary is not None:
            return self.vocabulary.tokenize(text)
        return _tokenize(text, lowercase=self.lowercase)

    def encode(self, x: TokensLike) -> Encoding:
        """The :class:`Encoding` (tokens, ids, out-of-vocabulary flags) of one input: a text,
        a list of token strings, a list or 1-D array of token ids, or an Encoding (checked
        and returned as it is).

        For a continuous-input model: (step labels "0".."T-1", the input as a float array
        [T, input_size] of the model's dtype, no-OOV flags).

        Raises TypeError for an input of the wrong kind, ValueError for an empty input or a
        token outside the vocabulary without an unknown token, IndexError for an id outside
        [0, vocab_size) (however large)."""
        if isinstance(x, Encoding):
            return self._check_encoding(x)
        if self.continuous:
            return self._encode_continuous(x)
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            raise TypeError("this model reads tokens: pass a text, a list of tokens or integer ids, "
                            f"not a float array (shape {x.shape})")
        if isinstance(x, str):
            if self.vocab is None:
                raise ValueError("this model has no vocabulary: pass token ids")
            tokens = self.tokenize(x)
        elif isinstance(x, np.ndarray):
            return self._from_ids(self._check_ids(x))
        elif isinstance(x, (list, tuple)):
            if not x:
                raise ValueError("empty input: there is nothing to explain")
            if all(isinstance(t, str) for t in x):
                tokens = [t.lower() for t in x] if self.lowercase else list(x)  # as the vocab spells
            elif all(isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_))
                     for t in x):
                return self._from_ids(self._check_ids(x))
            else:
                raise TypeError("an input must be a text, a list of token strings or a list of ids")
        else:
            raise TypeError(
                f"an input must be a text, a list of token strings or a list of ids, "
                f"got {type(x).__name__}"
            )
        if not tokens:
            raise ValueError("empty input: there is nothing to explain")
        if self.vocabulary is None:
            raise ValueError("this model has no vocabulary: pass token ids")
        ids, oov = self.vocabulary.lookup(tokens)
        return Encoding(tokens, ids, oov)

    def _encode_continuous(self, x: Any) -> Encoding:
        if isinstance(x, str):
            raise TypeError("this model reads continuous inputs: pass a float array "
                            f"[steps, {self.input_size}], not a text")
        arr = self._continuous_array(x)
        return Encoding([str(t) for t in range(arr.shape[0])], arr,
                        np.zeros(arr.shape[0], dtype=bool))

    def _continuous_array(self, x: Any) -> np.ndarray:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"an input must be a float array [steps, {self.input_size}]: {exc}") from None
        if arr.dtype.kind not in "fiu" or arr.dtype == bool:
            raise TypeError(f"an input must be a float array [steps, {self.input_size}], "
                            f"got dtype {arr.dtype}")
        if arr.ndim == 1 and arr.dtype.kind in "iu":
            raise TypeError("this model reads continuous inputs, not token ids: pass a float array "
                            f"[steps, {self.input_size}]")
        if arr.ndim != 2 or arr.shape[1] != self.input_size:
            raise ValueError(f"an input must have shape (steps, {self.input_size}), got {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError("empty input: there is nothing to explain")
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        if not np.all(np.isfinite(arr)):
            t = int(np.argmax(~np.isfinite(arr).all(axis=1)))
            raise ValueError(f"the input has NaN or inf at step {t}")
        return arr

    def _check_ids(self, x: Any) -> np.ndarray:
        """Token ids as int64 [T], each in [0, vocab_size); IndexError names the first id out
        of range, however large (no OverflowError from a Python int >= 2**63)."""
        if isinstance(x, np.ndarray):
            if x.ndim != 1:
                raise ValueError(f"an id array must be 1-D, got shape {x.shape}")
            if x.dtype.kind not in "iu":
                raise TypeError(f"token ids must be integers, got dtype {x.dtype}")
            bad = (x < 0) | (x >= self.vocab_size)  # compared before any conversion
            values: Any = x
        else:
            values = [int(v) for v in x]
            bad = np.fromiter((not 0 <= v < self.vocab_size for v in values), dtype=bool,
                              count=len(values))
        if len(values) == 0:
            raise ValueError("empty input: there is nothing to explain")
        if bad.any():
            t = int(np.argmax(bad))
            raise IndexError(f"token id {int(values[t])} at position {t} is out of range "
                             f"[0, {self.vocab_size})")
        return np.ascontiguousarray(values, dtype=np.int64)

    def _from_ids(self, ids: np.ndarray) -> Encoding:
        if self.vocabulary is None:
            return Encoding([str(i) for i in ids], ids, np.zeros(len(ids), bool))
        tokens, oov = self.vocabulary.decode(ids)
        return Encoding(tokens, ids, oov)

    def _check_encoding(self, enc: Encoding) -> Encoding:
        tokens, ids, oov = enc
        if self.continuous:
            ids = self._continuous_array(ids)
        else:
            if not isinstance(ids, np.ndarray):
                raise TypeError(f"Encoding.ids must be a numpy array, got {type(ids).__name__}")
            ids = self._check_ids(ids)
        oov = np.asarray(oov, dtype=bool)
        if not (len(tokens) == len(ids) == len(oov)) or oov.ndim != 1:
            raise ValueError(f"an Encoding needs one token, id and oov flag per position, got "
                             f"{len(tokens)}, {len(ids)} and {len(oov)}")
        return Encoding(list(tokens), ids, oov)

    def _ids(self, x: TokensLike) -> np.ndarray:
        """The ids of one input without building token strings when they are not needed
        (predict's path): an Encoding's ids, token ids checked, anything else encoded."""
        if isinstance(x, Encoding):
            return self._check_encoding(x).ids
        if self.continuous:
            return self._continuous_array(x)
        if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
            return self._check_ids(x)
        if (isinstance(x, (list, tuple)) and x and not isinstance(x[0], str)
                and all(isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_))
                        for t in x)):
            return self._check_ids(x)
        return self.encode(x).ids

    def _pack(self, seqs: list[np.ndarray], deleted: Any
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Flat ids, offsets and the deleted-position mask of a batch, as the engine takes them."""
        lengths = np.fromiter((len(q) for q in seqs), dtype=np.int64, count=len(seqs))
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if self.continuous:
            ids = (np.concatenate(seqs) if seqs else np.zeros((0, self.input_size), self.dtype))
        else:
            ids = np.concatenate(seqs) if seqs else np.zeros(0, np.int64)
        mask = None
        if deleted is not None:
            mask = np.zeros(len(ids), dtype=np.uint8)
            for k, pos in enumerate(_check_deleted(deleted, len(seqs), lengths)):
                if pos is not None:
                    mask[offsets[k] + pos] = 1
        return ids, offsets, mask

    def _targets(self, target: Any, n: int) -> np.ndarray:
        if isinstance(target, (list, tuple, np.ndarray)):
            if len(target) != n:
                raise ValueError(f"{len(target)} targets for {n} inputs")
            return np.array([-1 if t is None else self.class_index(t) for t in target], dtype=np.int64)
        value = -1 if target is None else self.class_index(target)
        return np.full(n, value, dtype=np.int64)

    def _method_params(self, method: str, eps: Any, bias_factor: Any, rule: Any,
                       seed: Any) -> dict[str, Any]:
        """The checked parameters of ``method`` with their defaults filled in. A parameter
        given (not None) to a method that does not take it is an error, not ignored."""
        m = check_method(method)
        given = {"eps": eps, "bias_factor": bias_factor, "rule": rule, "seed": seed}
        for name, value in given.items():
            if value is not None and name not in m.params:
                takes = [k for k, v in METHODS.items() if name in v.params]
                raise ValueError(f"{name} applies to method {' and '.join(map(repr, takes))} only; "
                                 f"method {method!r} takes "
                                 + (", ".join(m.params) if m.params else "no parameters"))
        if method == "lrp":
            eps = _check_real(DEFAULT_EPS if eps is None else eps, "eps")
            if eps <= 0:  # eps = 0 turns an exact zero pre-activation into 0/0
                raise ValueError(f"eps must be finite and > 0 (e.g. 1e-12 for the plain z-rule), "
                                 f"got {eps}")
            bias_factor = _check_real(0.0 if bias_factor is None else bias_factor, "bias_factor")
            if not 0.0 <= bias_factor <= 1.0:
                raise ValueError("bias_factor is the share of the bias (and stabiliser) relevance "
                                 f"passed down and must be in [0, 1], got {bias_factor}")
            rule = DEFAULT_RULE if rule is None else rule
            check_rule(rule, self.cells)
            return {"rule": rule, "eps": eps, "bias_factor": bias_factor}
        if method == "random":
            seed = 0 if seed is None else seed
            if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
                raise TypeError(f"seed must be an int, got {type(seed).__name__}")
            return {"seed": int(seed)}
        return {}

    # ----------------------------------------------------------------- API
    def predict(self, inputs: Sequence[TokensLike] | str, *, deleted: Any = None,
                threads: int | None = None) -> np.ndarray:
        """Class scores [N, C] (a regression model: its output, [N, 1]). ``inputs``: texts,
        token lists, id lists or :class:`Encoding` objects (used as they are, not encoded
        again). ``deleted[k]`` lists positions of input k whose embedding is replaced by
        zeros (a list or 1-D integer array per input, or None)."""
        return self._start_predict(inputs, deleted=deleted, threads=threads).result()

    def _start_predict(self, inputs: Any, *, deleted: Any = None, threads: int | None = None,
                       background: bool = False) -> Any:
        """predict, started: ``.result()`` gives the scores. With ``background=True`` the
        engine runs on its own thread while the caller goes on (the command line's corpus
        loop tokenises the next chunk meanwhile)."""
        inputs = self._as_inputs(inputs)
        threads = _check_threads(threads)
        if deleted is not None:
            _check_deleted(deleted, len(inputs))
        seqs = [self._ids(x) for x in inputs]
        if not seqs:
            return _Started(np.zeros((0, self.n_classes), dtype=self.dtype))
        ids, offsets, mask = self._pack(seqs, deleted)
        return _Started(self._core.forward(ids, offsets, mask, threads, background=background))

    def explain(self, x: TokensLike, *, method: str = "lrp", target: TargetLike = None,
                eps: float | None = None, bias_factor: float | None = None,
                rule: str | None = None, seed: int | None = None,
                deleted: Sequence[int] | None = None, threads: int | None = 1
                ) -> Explanation | list[Explanation]:
        """Explain one input (a text, tokens, ids or an :class:`Encoding`) for ``target``
        (default: the prediction; ``"all"``: every class, a list of Explanations in class
        order). The parameters are those of :meth:`explain_batch`."""
        if isinstance(x, (int, float, np.number, bool, np.bool_)):
            raise TypeError(f"explain takes one input (a text, a list of tokens or a list of token "
                            f"ids), got the {type(x).__name__} {x!r}; a one-token input is [{x!r}]")
        return self.explain_batch(
            [x], method=method, target=target if _is_all(target) else [target], eps=eps,
            bias_factor=bias_factor, rule=rule, seed=seed,
            deleted=None if deleted is None else [deleted], threads=threads,
        )[0]

    def explain_batch(self, inputs: Sequence[TokensLike], *, method: str = "lrp",
                      target: Any = None, eps: float | None = None,
                      bias_factor: float | None = None, rule: str | None = None,
                      seed: int | None = None, deleted: Any = None,
                      threads: int | None = None, keep_embedding: bool = True
                      ) -> list[Explanation] | list[list[Explanation]]:
        """Explain many inputs in one call of the engine, spread over ``threads`` cores
        (default: all). Results do not depend on the thread count.

        ``inputs``: texts, token lists, id lists or :class:`Encoding` objects (not encoded
        again). ``target``: None (each input's predicted class), a class name or index for
        all inputs, a list with one per input, or ``"all"``: every class of each input, which
        returns one list of Explanations per input, in class order (each input is encoded
        once; a class that is literally named "all" is then selected by its index).

        ``method``: see :data:`textlrp.METHODS`. ``eps`` (> 0, default 1e-3),
        ``bias_factor`` (in [0, 1], default 0) and ``rule`` (default "signal-take-all")
        belong to "lrp", ``seed`` (default 0) to "random": giving one to another method is a
        ValueError. ``bias_factor`` is the share of each layer's bias and stabiliser
        relevance passed down to its inputs: 0 lets biases absorb it (the Arras et al.
        default), 1 passes it all down so that ``relevance.sum() + rest`` equals the
        explained score; values outside [0, 1] would create or destroy relevance and are
        refused. ``deleted[k]``: positions of input k replaced by zeros.
        ``keep_embedding=False`` skips the [T, e] embedding-level arrays, which dominate
        memory for large batches.

        Arguments are checked even for an empty batch. Non-finite results (inf/NaN relevance,
        gradients, rest or scores) do not raise: the Explanation's ``overflow`` is True.
        ``method="occlusion"`` costs O(T^2) per input (one forward pass per token) and warns
        (RuntimeWarning, with an estimated time) for inputs over ``OCCLUSION_WARN_TOKENS``."""
        inputs = self._as_inputs(inputs)
        params = self._method_params(method, eps, bias_factor, rule, seed)
        threads = _check_threads(threads)
        if not _is_all(target):
            self._targets(target, len(inputs))  # checked before any work, even with no inputs
        if deleted is not None:
            _check_deleted(deleted, len(inputs))
        encoded = [self.encode(x) for x in inputs]
        return self._explain_encoded(inputs, encoded, method=method, params=params,
                                     target=target, deleted=deleted, threads=threads,
                                     keep_embedding=keep_embedding)

    def _explain_encoded(self, inputs: Sequence[Any], encoded: list[Encoding], *, method: str,
                         params: dict[str, Any], target: Any, deleted: Any, threads: int,
                         keep_embedding: bool = True) -> list[Any]:
        return self._start_encoded(inputs, encoded, method=method, params=params, target=target,
                                   deleted=deleted, threads=threads,
                                   keep_embedding=keep_embedding).result()

    def _start_encoded(self, inputs: Sequence[Any], encoded: list[Encoding], *, method: str,
                       params: dict[str, Any], target: Any, deleted: Any, threads: int,
                       keep_embedding: bool = True, background: bool = False) -> _Started:
        """The engine pass of explain_batch over checked encodings, started (in the
        background if asked); ``.result()`` builds the Explanations."""
        if _is_all(target):
            # Every class of every input in one engine call: each encoding C times.
            C = self.n_classes
            flat = self._start_encoded(
                [x for x in inputs for _ in range(C)], [e for e in encoded for _ in range(C)],
                method=method, params=params, target=list(range(C)) * len(encoded),
                deleted=None if deleted is None else [p for p in deleted for _ in range(C)],
                threads=threads, keep_embedding=keep_embedding, background=background)
            return _Started(flat, lambda exps: [exps[k:k + C] for k in range(0, len(exps), C)])
        n = len(encoded)
        targets = self._targets(target, n)
        if not encoded:
            return _Started([])
        ids, offsets, mask = self._pack([e.ids for e in encoded], deleted)
        started = self._start_pass(method, params, ids, offsets, mask, targets, threads,
                                   keep_embedding, background=background)
        return _Started(started, lambda raw: self._explanations(inputs, encoded, method, params,
                                                                offsets, raw))

    def _explanations(self, inputs: Sequence[Any], encoded: list[Encoding], method: str,
                      params: dict[str, Any], offsets: np.ndarray, raw: tuple[Any, ...]
                      ) -> list[Explanation]:
        scores, used, rel, emb, rest, totals = raw
        n = len(encoded)
        # Which inputs came out non-finite (the epsilon rule divides at every step; huge
        # weights overflow products): reported per input, never silently.
        finite = np.logical_and.reduceat(np.isfinite(rel), offsets[:-1])
        finite &= np.isfinite(scores).all(axis=1)
        if rest is not None:
            finite &= np.isfinite(rest)
        if emb is not None:
            finite &= np.logical_and.reduceat(np.isfinite(emb).all(axis=1), offsets[:-1])
        # Per-input values as Python lists, read once per batch (not one numpy call each).
        predictions = np.argmax(scores, axis=1).tolist()  # regression: 0, the one output
        used_l, finite_l = used.tolist(), finite.tolist()
        rests = [None] * n if rest is None else rest.tolist()
        bounds = offsets.tolist()
        continuous, names, layout = self.continuous, self.class_names, self._stages
        out = []
        for k, (tokens, tok_ids, oov) in enumerate(encoded):
            a, b = bounds[k], bounds[k + 1]
            x = inputs[k]
            out.append(Explanation(
                tokens=tokens, ids=np.arange(b - a) if continuous else tok_ids,
                relevance=rel[a:b], scores=scores[k], class_names=names,
                prediction=predictions[k], target=used_l[k], method=method, oov=oov,
                text=x if isinstance(x, str) else None, regression=self.regression,
                rest=rests[k], embedding_relevance=None if emb is None else emb[a:b],
                params=dict(params), overflow=not finite_l[k],
                stage_totals=None if totals is None else totals[k], stage_layout=layout,
            ))
        return out

    def _engine_pass(self, method: str, params: dict[str, Any], ids: np.ndarray,
                     offsets: np.ndarray, mask: np.ndarray | None, targets: np.ndarray,
                     threads: int, keep_embedding: bool, scores: bool = True) -> tuple[Any, ...]:
        """One engine call of ``method`` over a packed, checked batch: (scores, targets used,
        per-position relevance, embedding-level relevance or None, rest or None, stage totals
        or None). ``scores=False`` lets "random" skip its forward pass when every target is
        given (its scores are then None)."""
        return self._start_pass(method, params, ids, offsets, mask, targets, threads,
                                keep_embedding, scores=scores).result()

    def _start_pass(self, method: str, params: dict[str, Any], ids: np.ndarray,
                    offsets: np.ndarray, mask: np.ndarray | None, targets: np.ndarray,
                    threads: int, keep_embedding: bool, scores: bool = True,
                    background: bool = False) -> _Started:
        """_engine_pass, started: the one place that maps a method onto the engine."""
        core, bg = self._core, {"background": background}
        if method == "occlusion":
            self._warn_long_occlusion(ids, offsets, threads)
        if method == "lrp":
            return _Started(core.lrp(ids, offsets, mask, targets, params["eps"],
                                     params["bias_factor"], params["rule"], threads,
                                     keep_embedding, **bg))
        if method in ("sa", "gi"):
            pick = 3 if method == "sa" else 4
            return _Started(core.gradient(ids, offsets, mask, targets, threads, keep_embedding,
                                          **bg),
                            lambda r: (r[0], r[1], r[pick], r[2], None, None))
        if method == "occlusion":
            return _Started(core.occlusion(ids, offsets, mask, targets, threads, **bg),
                            lambda r: (r[0], r[1], r[2], None, None, None))
        rel = _random_relevance(_row_keys(ids), offsets, params["seed"]).astype(self.dtype)
        if not scores and bool(np.all(targets >= 0)):
            return _Started((None, targets, rel, None, None, None))

        def finish(out: np.ndarray) -> tuple[Any, ...]:
            used = np.where(targets >= 0, targets, np.argmax(out, axis=1))
            return out, used, rel, None, None, None

        return _Started(core.forward(ids, offsets, mask, threads, **bg), finish)

    def _warn_long_occlusion(self, ids: np.ndarray, offsets: np.ndarray, threads: int) -> None:
        lengths = np.diff(offsets)
        longest = int(np.argmax(lengths))
        T = int(lengths[longest])
        if T <= OCCLUSION_WARN_TOKENS:
            return
        # Time the same kernel on a prefix of the longest input (n^2 of its T^2 steps, ~1 %
        # of the work) and scale by (T / n)^2; inputs run in parallel over the threads.
        a = int(offsets[longest])
        n = 200
        start = time.perf_counter()
        self._core.occlusion(ids[a:a + n], np.array([0, n], dtype=np.int64), None, None, 1)
        per_step = (time.perf_counter() - start) / (n * n)
        work = float(np.sum(lengths.astype(np.float64) ** 2)) * per_step
        seconds = max(work / min(threads, len(lengths)), T * T * per_step)
        n_long = int(np.sum(lengths > OCCLUSION_WARN_TOKENS))
        warnings.warn(
            f"occlusion reruns the model once per token, O(T^2) per input: {n_long} input(s) "
            f"longer than {OCCLUSION_WARN_TOKENS} tokens (the longest has {T}); expect about "
            f"{seconds:.0f} s. Split long texts, or use lrp/gi/sa (one pass each)",
            RuntimeWarning, stacklevel=_caller_level())

    def explain_corpus(self, iterable: Iterable[TokensLike], *, batch_size: int = 256,
                       threads: int | None = None, errors: str = "raise",
                       skip_empty: bool = False, **explain_kwargs: Any
                       ) -> Iterator[Explanation | list[Explanation] | ExplanationError]:
        """Explain a stream lazily, ``batch_size`` inputs per engine call, in input order.

        Memory stays bounded by two batches whatever the corpus size: while the engine
        explains one batch (without the GIL), the next one is tokenised. The stream can be a
        file: ``explain_corpus(open(path))`` reads it line by line.

        Text items lose one trailing line ending ("\\n" or "\\r\\n"; nothing else), so
        ``exp.text`` is the line as written. A blank text item (empty or whitespace only) is
        not an error of the data but of the layout, as in the command line: it yields an
        :class:`ExplanationError` ("empty line") whatever ``errors`` says, or is skipped
        with ``skip_empty=True`` (then the results no longer pair one to one with the
        inputs; ``ExplanationError.line`` still counts every item). Other inputs that cannot
        be explained (unknown token without an unknown-token id, id out of range, ...) raise
        with ``errors="raise"`` (default) or yield an ExplanationError with
        ``errors="record"``. ``ExplanationError.line`` counts the items from 1: for a file,
        its line number, as the ``line`` of the command line's JSON records.

        ``explain_kwargs``: method, target (one for all inputs, or "all": each input then
        yields a list of Explanations, one per class in class order), eps, bias_factor,
        rule, seed, keep_embedding, as in :meth:`explain_batch`.
        """
        if errors not in ("raise", "record"):
            raise ValueError(f"errors must be 'raise' or 'record', got {errors!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        threads = _check_threads(threads)
        unknown = set(explain_kwargs) - {"method", "target", "eps", "bias_factor", "rule", "seed",
                                         "keep_embedding"}
        if unknown:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(unknown))}")
        target = explain_kwargs.get("target")
        if isinstance(target, (list, tuple, np.ndarray)):
            raise TypeError("explain_corpus takes one target for all inputs, 'all' or None")
        method = explain_kwargs.get("method", "lrp")
        params = self._method_params(method, *(explain_kwargs.get(k) for k in
                                               ("eps", "bias_factor", "rule", "seed")))
        if not _is_all(target):
            self._targets(target, 0)
        keep_embedding = bool(explain_kwargs.get("keep_embedding", True))
        chunks = (self._encode_chunk(batch, k * batch_size, errors, skip_empty)
                  for k, batch in enumerate(batches(iterable, batch_size)))

        def start(chunk: tuple[list[Any], list[Any], list[Encoding]]) -> _Started:
            return self._start_encoded(chunk[1], chunk[2], method=method, params=params,
                                       target=target, deleted=None, threads=threads,
                                       keep_embedding=keep_embedding, background=True)

        for (slots, _, _), job in one_behind(chunks, start):
            yield from _fill(job, slots)

    def _encode_chunk(self, batch: list[Any], start: int, errors: str, skip_empty: bool
                      ) -> tuple[list[Any], list[Any], list[Encoding]]:
        """(slots: per input an ExplanationError, None (to explain) or _SKIP, the inputs to
        explain, their encodings)."""
        slots: list[Any] = [None] * len(batch)
        good, encoded = [], []
        for k, x in enumerate(batch):
            line = start + k + 1
            if isinstance(x, str):
                x = _strip_line_ending(x)
                if not x.strip():
                    slots[k] = _SKIP if skip_empty else ExplanationError(line, x, "empty line")
                    continue
            try:
                encoded.append(self.encode(x))
                good.append(x)
            except (ValueError, TypeError, IndexError, LookupError) as exc:
                if errors == "raise":
                    raise
                slots[k] = ExplanationError(line, x, str(exc))
        return slots, good, encoded

    def _as_inputs(self, inputs: Any) -> list[Any]:
        if isinstance(inputs, Encoding):
            raise TypeError("pass a list of inputs; wrap a single Encoding in a list")
        if self.continuous and isinstance(inputs, np.ndarray) and inputs.ndim == 2:
            raise TypeError(f"pass a list of inputs, each a float array [steps, {self.input_size}] "
                            "(or one array [N, steps, features]); wrap a single input in a list")
        if isinstance(inputs, str):
            return [inputs]
        if isinstance(inputs, np.ndarray) and inputs.ndim == 1 and inputs.dtype.kind in "iu":
            raise TypeError("pass a list of sequences; wrap a single id array in a list")
        if isinstance(inputs, (int, float, np.number, bool, np.bool_)) or inputs is None:
            raise TypeError(f"pass a list of inputs, got the {type(inputs).__name__} {inputs!r}")
        inputs = list(inputs)
        if inputs and all(isinstance(t, (int, np.integer)) for t in inputs):
            raise TypeError("pass a list of sequences; wrap a single sequence of ids in a list")
        return inputs

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to one .npz file (no pickle; see the README for the format)."""
        from .io import save_model

        save_model(self, path)


def _stage_layout(spec: ModelSpec) -> StageLayout:
    """Names of the engine's LRP stage totals, in its order (Model::stage_count in C++)."""
    names: list[str] = ["score"]
    names += [f"head layer {k} input" for k in range(len(spec.head) - 1, -1, -1)]
    names.append(f"{spec.pooling} pooling: layer {len(spec.layers) - 1} outputs")
    for l in range(len(spec.layers) - 1, -1, -1):
        r = spec.layers[l]
        for k in range(len(r.directions)):
            where = f"{r.cell} layer {l}" + (f" {'forward' if k == 0 else 'backward'}"
                                              if len(r.directions) == 2 else "")
            names += [f"{where} outputs", f"{where} initial state", f"{where} inputs"]
    return StageLayout(tuple(names), len(spec.head),
                       tuple(len(r.directions) for r in spec.layers))


def _row_keys(inputs: np.ndarray) -> np.ndarray:
    """One uint64 per input row: the token id, or a hash of a continuous input vector's bits."""
    if inputs.ndim == 1:
        return inputs
    bits = np.ascontiguousarray(inputs, dtype=np.float64).view(np.uint64)
    with np.errstate(over="ignore"):
        weights = _mix(np.arange(1, bits.shape[1] + 1, dtype=np.uint64))
        return _mix((bits * weights).sum(axis=1, dtype=np.uint64))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (arithmetic wraps modulo 2^64)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _random_relevance(ids: np.ndarray, offsets: np.ndarray, seed: int) -> np.ndarray:
    """Uniform [0, 1) values per token, a function of the seed and the sentence itself, so a
    sentence gets the same draw wherever it sits in a batch or corpus. One vectorised pass:
    a hash of (seed, sentence content, position)."""
    lengths = np.diff(offsets)
    pos = (np.arange(len(ids)) - np.repeat(offsets[:-1], lengths)).astype(np.uint64)
    golden = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        token = _mix(ids.astype(np.uint64) * golden + pos)
        content = np.add.reduceat(token, offsets[:-1]) if len(ids) else token
        key = _mix(np.repeat(content, lengths) ^ _mix(np.array([seed % 2**64], dtype=np.uint64) + golden))
        value = _mix(key + pos * golden)
    return (value >> np.uint64(11)).astype(np.float64) * 2.0**-53


def batches(iterable: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of ``size`` consecutive items (the last one shorter), read lazily."""
    batch: list[Any] = []
    for x in iterable:
        batch.append(x)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


_SKIP = object()  # explain_corpus's slot of a skipped blank line


class _Started:
    """An engine call under way (a ``_core.Pending``), done (its value), or another _Started,
    and what turns its value into the caller's: ``result()`` waits, then finishes (once)."""

    __slots__ = ("_finish", "_value")

    def __init__(self, value: Any, finish: Any = None) -> None:
        self._value = value
        self._finish = finish

    def result(self) -> Any:
        value = self._value
        if isinstance(value, (_Started, _core.Pending)):
            value = value.result()
        if self._finish is not None:
            value = self._finish(value)
        self._value, self._finish = value, None
        return value


def _caller_level() -> int:
    """The stacklevel of warnings.warn, called from the caller of this function, that names
    the first frame outside textlrp: the user's line, however deep the API's call chain."""
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def one_behind(chunks: Iterable[Any], start: Any) -> Iterator[tuple[Any, Any]]:
    """(chunk, start(chunk)) pairs, each job started in the background before the previous
    pair is handed out: the engine works on chunk k while the caller writes chunk k-1 and
    prepares chunk k+1. One job at a time (chunk k's starts once chunk k-1's has finished),
    so that `threads` caps the engine's cores. An error preparing or starting chunk k comes
    after chunk k-1 has been handed out; one of chunk k-1's own job comes instead of it.
    A job of None (nothing to run) is allowed."""
    pending: tuple[Any, Any] | None = None
    chunks, end = iter(chunks), object()
    while True:
        try:
            chunk = next(chunks, end)
            if chunk is end:
                break
            if pending is not None and pending[1] is not None:
                pending[1].result()
            job = start(chunk)
        except Exception:
            if pending is not None:
                yield pending  # its own error, if that was the one, comes from its result()
            raise
        if pending is not None:
            yield pending
        pending = (chunk, job)
    if pending is not None:
        yield pending


def _fill(job: _Started, slots: list[Any]) -> Iterator[Any]:
    """The chunk's results in input order: explanations where the slot is free, the error
    records where it holds one, nothing for a skipped line."""
    explained = iter(job.result())
    for slot in slots:
        if slot is None:
            yield next(explained)
        elif slot is not _SKIP:
            yield slot


def _is_all(target: Any) -> bool:
    return isinstance(target, str) and target == ALL_CLASSES


def _strip_line_ending(text: str) -> str:
    """One trailing CR LF or LF removed (a line as a file iterator gives it)."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def _check_real(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value}")
    return v


def _check_deleted(deleted: Any, n: int, lengths: Any = None) -> list[np.ndarray | None]:
    """``deleted``: one entry per input, None or that input's positions (a list of ints or a
    1-D integer array). Bools, floats, nested lists and masks are refused; with ``lengths``
    every position is checked against its input's length (exactly, however large) and the
    positions come back as int64 arrays."""
    if isinstance(deleted, (str, bytes)) or not isinstance(deleted, (list, tuple, np.ndarray)):
        raise TypeError("deleted must be a list with one list of positions (or None) per input, "
                        f"got {type(deleted).__name__}")
    if len(deleted) != n:
        raise ValueError(f"deleted has {len(deleted)} entries for {n} inputs")
    out: list[np.ndarray | None] = []
    for k, p in enumerate(deleted):
        if p is None:
            out.append(None)
            continue
        length = None if lengths is None else int(lengths[k])
        if isinstance(p, np.ndarray):
            if p.dtype.kind == "b":
                raise TypeError(f"deleted[{k}] is a bool mask; pass the positions "
                                "(np.flatnonzero(mask))")
            if p.ndim != 1 or p.dtype.kind not in "iu":
                raise TypeError(f"deleted[{k}] must be a 1-D array of integer positions, got "
                                f"dtype {p.dtype} and shape {p.shape}")
            values: Any = p
            bad = None if length is None else (p < 0) | (p >= length)
        elif isinstance(p, (list, tuple, range)):
            for v in p:
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                    raise TypeError(f"deleted[{k}] must list integer positions, got {v!r} "
                                    f"({type(v).__name__})")
            values = [int(v) for v in p]
            bad = None if length is None else np.array([not 0 <= v < length for v in values],
                                                       dtype=bool)
        else:
            raise TypeError(f"deleted[{k}] must be a list of positions or None, got "
                            f"{type(p).__name__}")
        if bad is not None and bad.any():
            raise IndexError(f"deleted position {int(values[int(np.argmax(bad))])} out of range "
                             f"for input {k} of length {length}")
        out.append(None if length is None else np.asarray(values, dtype=np.int64))
    return out


def from_arrays(
    embedding: Any,
    layers: Any,
    head: Any,
    *,
    cell: str | Sequence[str] = "lstm",
    pooling: str = "last",
    attention: Any = None,
    input_size: int | None = None,
    vocab: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    gate_order: str | None = None,
    unk_token: str | None = None,
    lowercase: bool = False,
    dtype: Any = None,
    metadata: dict[str, Any] | None = None,
    card: str | None = None,
) -> Model:
    """Build a Model from plain arrays.

    ``embedding``: [V, e] for token inputs, or None for continuous inputs (``input_size``
    then defaults to the first layer's W_ih width).
    ``layers``: a list of recurrent layers; a layer is a list of 1 (forward) or 2 (forward,
    backward) directions; a direction is ``dict(W_ih=[G*d, in], W_hh=[G*d, d], b_ih=[G*d],
    b_hh=[G*d])`` — an LSTM direction may give ``b`` (= b_ih + b_hh) instead; a GRU needs both
    biases apart. ``cell``: "lstm" or "gru", or one per layer. Gate row blocks in
    ``gate_order`` (default PyTorch's: LSTM "ifgo", GRU "rzn"; "igfo" is the Arras et al. code,
    Keras LSTM "ifco", Keras GRU "zrn").
    ``pooling``: "last" (final states), "mean", "max" or "attention" with
    ``attention=dict(W=[A, F], b=[A], v=[A])``.
    ``head``: a list of ``dict(W=[out, in], b=[out] or None)``, ReLU between layers.
    ``class_names``: None with one output makes a regression model.
    ``dtype``: float64 or float32; default float32 if the weights are float32, else float64.
    """
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError("layers must be a non-empty list of recurrent layers")
    cells = [cell] * len(layers) if isinstance(cell, str) else list(cell)
    if len(cells) != len(layers):
        raise ValueError(f"{len(cells)} cells for {len(layers)} layers")
    rec = []
    for l, (layer, c) in enumerate(zip(layers, cells)):
        if c not in CELLS:
            raise ValueError(f"unknown cell {c!r}; expected one of {', '.join(CELLS)}")
        perm = _gate_permutation(c, gate_order)
        if isinstance(layer, dict):
            layer = [layer]  # a unidirectional layer given without its list
        if not isinstance(layer, (list, tuple)) or len(layer) not in (1, 2):
            raise ValueError(f"{c} layer {l} must be a list of 1 or 2 directions")
        dirs = []
        for k, direction in enumerate(layer):
            name = f"{c} layer {l} direction {k}"
            if not isinstance(direction, dict):
                raise TypeError(f"{name} must be a dict with W_ih, W_hh and b_ih, b_hh (or b)")
            missing = {"W_ih", "W_hh"} - set(direction)
            if missing:
                raise ValueError(f"{name} lacks {', '.join(sorted(missing))}")
            W_ih = np.asarray(direction["W_ih"])
            W_hh = np.asarray(direction["W_hh"])
            if "b_ih" in direction or "b_hh" in direction:
                if "b" in direction or not {"b_ih", "b_hh"} <= set(direction):
                    raise ValueError(f"{name}: give b_ih and b_hh, or (LSTM) b alone")
                b_ih, b_hh = np.asarray(direction["b_ih"]), np.asarray(direction["b_hh"])
            elif "b" in direction:
                if c != "lstm":
                    raise ValueError(f"{name}: a GRU needs b_ih and b_hh apart (b_hn sits inside "
                                     "the reset product)")
                b_ih = np.asarray(direction["b"])
                b_hh = np.zeros_like(b_ih)
            else:
                raise ValueError(f"{name} lacks its biases (b_ih and b_hh, or b)")
            dirs.append(Direction(*(_reorder_gates(a, perm, f"{name} {key}") for a, key in
                                    ((W_ih, "W_ih"), (W_hh, "W_hh"), (b_ih, "b_ih"), (b_hh, "b_hh")))))
        rec.append(Recurrent(c, tuple(dirs)))
    if isinstance(head, dict):
        head = [head]
    if not isinstance(head, (list, tuple)) or not head:
        raise ValueError("head must be a non-empty list of dict(W=..., b=... or None)")
    dense = []
    for k, h in enumerate(head):
        if not isinstance(h, dict) or "W" not in h:
            raise ValueError(f"head layer {k} must be a dict with W and optionally b")
        dense.append(Dense(h["W"], h.get("b")))
    att = None
    if attention is not None:
        if isinstance(attention, dict):
            missing = {"W", "b", "v"} - set(attention)
            if missing:
                raise ValueError(f"attention lacks {', '.join(sorted(missing))}")
            att = Attention(attention["W"], attention["b"], attention["v"])
        elif isinstance(attention, Attention):
            att = attention
        else:
            raise TypeError("attention must be dict(W=[A, F], b=[A], v=[A])")
    if embedding is None and input_size is None:
        input_size = int(np.shape(rec[0].directions[0].W_ih)[1])
    if dtype is None:
        probe = embedding if embedding is not None else rec[0].directions[0].W_ih
        dtype = np.float32 if np.asarray(probe).dtype == np.float32 else np.float64
    spec = ModelSpec(embedding=embedding, layers=tuple(rec), head=tuple(dense), pooling=pooling,
                     attention=att, input_size=int(input_size or 0))
    return Model(spec, vocab=vocab, class_names=class_names, unk_token=unk_token,
                 lowercase=lowercase, dtype=dtype, metadata=metadata, card=card)
