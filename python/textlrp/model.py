"""The Model: weights, vocabulary and the explain/predict API over the compiled engine."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Union

import numpy as np

from . import _core
from .explanation import Explanation, ExplanationError, StageLayout
from .methods import RULES, check_method, check_rule
from .spec import CELLS, Attention, Dense, Direction, ModelSpec, Recurrent

if tuple(RULES) != tuple(_core.RULES) or tuple(CELLS) != tuple(_core.CELLS):
    raise ImportError("textlrp's compiled core does not match its Python registries; reinstall")

TokensLike = Union[str, Sequence[str], Sequence[int], np.ndarray]
TargetLike = Union[None, int, str]


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

        self.vocab: list[str] | None = None
        self._index: dict[str, int] = {}
        if vocab is not None:
            if self.continuous:
                raise ValueError("a model without embedding (continuous inputs) takes no vocabulary")
            self.vocab = [str(w) for w in vocab]
            if len(self.vocab) != self.vocab_size:
                raise ValueError(
                    f"vocabulary has {len(self.vocab)} entries but the embedding has "
                    f"{self.vocab_size} rows"
                )
            self._index = {w: i for i, w in enumerate(self.vocab)}
            if len(self._index) != len(self.vocab):
                raise ValueError("vocabulary entries must be unique")
        if unk_token is not None and unk_token not in self._index:
            raise ValueError(f"unk_token {unk_token!r} is not in the vocabulary")
        self.unk_token = unk_token
        self.lowercase = bool(lowercase)
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

    def tokenize(self, text: str) -> list[str]:
        from .tokenize import tokenize

        return tokenize(text, lowercase=self.lowercase)

    def encode(self, x: TokensLike) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Tokens, ids and out-of-vocabulary flags of one input (text, tokens or ids).

        For a continuous-input model: (step labels "0".."T-1", the input as a float array
        [T, input_size] of the model's dtype, no-OOV flags)."""
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
            if x.ndim != 1:
                raise ValueError(f"an id array must be 1-D, got shape {x.shape}")
            if x.dtype.kind not in "iu":
                raise TypeError(f"token ids must be integers, got dtype {x.dtype}")
            return self._from_ids(x)
        elif isinstance(x, (list, tuple)):
            if not x:
                raise ValueError("empty input: there is nothing to explain")
            if all(isinstance(t, str) for t in x):
                tokens = [t.lower() for t in x] if self.lowercase else list(x)
            elif all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in x):
                return self._from_ids(np.asarray(x, dtype=np.int64))
            else:
                raise TypeError("an input must be a text, a list of token strings or a list of ids")
        else:
            raise TypeError(
                f"an input must be a text, a list of token strings or a list of ids, "
                f"got {type(x).__name__}"
            )
        if not tokens:
            raise ValueError("empty input: there is nothing to explain")
        if self.vocab is None:
            raise ValueError("this model has no vocabulary: pass token ids")
        unk = self._index.get(self.unk_token, -1) if self.unk_token is not None else -1
        ids = np.empty(len(tokens), dtype=np.int64)
        oov = np.zeros(len(tokens), dtype=bool)
        for t, tok in enumerate(tokens):
            i = self._index.get(tok, -1)
            if i < 0:
                if unk < 0:
                    raise ValueError(
                        f"token {tok!r} is not in the vocabulary and the model has no unknown token"
                    )
                i = unk
                oov[t] = True
            ids[t] = i
        return tokens, ids, oov

    def _encode_continuous(self, x: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
        if isinstance(x, str):
            raise TypeError("this model reads continuous inputs: pass a float array "
                            f"[steps, {self.input_size}], not a text")
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
        return [str(t) for t in range(arr.shape[0])], arr, np.zeros(arr.shape[0], dtype=bool)

    def _from_ids(self, ids: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0:
            raise ValueError("empty input: there is nothing to explain")
        bad = (ids < 0) | (ids >= self.vocab_size)
        if bad.any():
            t = int(np.argmax(bad))
            raise IndexError(f"token id {int(ids[t])} at position {t} is out of range "
                             f"[0, {self.vocab_size})")
        vocab = self.vocab
        tokens = [vocab[i] for i in ids] if vocab is not None else [str(i) for i in ids]
        oov = ids == self._index[self.unk_token] if self.unk_token is not None else np.zeros(len(ids), bool)
        return tokens, ids, oov

    def _ids(self, x: TokensLike) -> np.ndarray:
        """The ids of one input; token ids skip building token strings (predict's fast path)."""
        if self.continuous:
            return self._encode_continuous(x)[1]
        if isinstance(x, np.ndarray) or (isinstance(x, (list, tuple)) and x
                                         and not isinstance(x[0], str)):
            arr = np.asarray(x)
            if arr.ndim == 1 and arr.dtype.kind in "iu" and arr.size:
                return arr.astype(np.int64, copy=False)  # the engine checks the range
        return self.encode(x)[1]

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
            if len(deleted) != len(seqs):
                raise ValueError(f"deleted has {len(deleted)} entries for {len(seqs)} inputs")
            counts = [0 if p is None else len(p) for p in deleted]
            flat = np.array([i for p in deleted if p is not None for i in p])
            mask = np.zeros(len(ids), dtype=np.uint8)
            if flat.size:
                if flat.dtype.kind not in "iu":
                    raise TypeError(f"deleted positions must be integers, got {flat.dtype}")
                owner = np.repeat(np.arange(len(seqs)), counts)
                bad = (flat < 0) | (flat >= lengths[owner])
                if bad.any():
                    k = int(owner[np.argmax(bad)])
                    raise IndexError(f"deleted position {int(flat[np.argmax(bad)])} out of range "
                                     f"for input {k} of length {lengths[k]}")
                mask[offsets[owner] + flat] = 1
        return ids, offsets, mask

    def _targets(self, target: Any, n: int) -> np.ndarray:
        if isinstance(target, (list, tuple, np.ndarray)):
            if len(target) != n:
                raise ValueError(f"{len(target)} targets for {n} inputs")
            return np.array([-1 if t is None else self.class_index(t) for t in target], dtype=np.int64)
        value = -1 if target is None else self.class_index(target)
        return np.full(n, value, dtype=np.int64)

    # ----------------------------------------------------------------- API
    def predict(self, inputs: Sequence[TokensLike] | str, *, deleted: Any = None,
                threads: int | None = None) -> np.ndarray:
        """Class scores [N, C]. ``deleted[k]`` lists positions of input k whose embedding
        is replaced by zeros."""
        inputs = self._as_inputs(inputs)
        threads = _check_threads(threads)
        seqs = [self._ids(x) for x in inputs]
        if not seqs:
            return np.zeros((0, self.n_classes), dtype=self.dtype)
        ids, offsets, mask = self._pack(seqs, deleted)
        return self._core.forward(ids, offsets, mask, threads)

    def explain(self, x: TokensLike, *, method: str = "lrp", target: TargetLike = None,
                eps: float = 1e-3, bias_factor: float = 0.0, rule: str = "signal-take-all",
                seed: int = 0, deleted: Sequence[int] | None = None,
                threads: int | None = 1) -> Explanation:
        """Explain one input (text, tokens or ids) for ``target`` (default: the prediction)."""
        return self.explain_batch(
            [x], method=method, target=[target], eps=eps, bias_factor=bias_factor, rule=rule,
            seed=seed, deleted=None if deleted is None else [deleted], threads=threads,
        )[0]

    def explain_batch(self, inputs: Sequence[TokensLike], *, method: str = "lrp",
                      target: Any = None, eps: float = 1e-3, bias_factor: float = 0.0,
                      rule: str = "signal-take-all", seed: int = 0, deleted: Any = None,
                      threads: int | None = None, keep_embedding: bool = True) -> list[Explanation]:
        """Explain many inputs in one call of the engine, spread over ``threads`` cores
        (default: all). Results do not depend on the thread count. ``keep_embedding=False``
        skips the [T, e] embedding-level arrays, which dominate memory for large batches."""
        inputs = self._as_inputs(inputs)
        encoded = [self.encode(x) for x in inputs]
        return self._explain_encoded(inputs, encoded, method=method, target=target, eps=eps,
                                     bias_factor=bias_factor, rule=rule, seed=seed,
                                     deleted=deleted, threads=threads,
                                     keep_embedding=keep_embedding)

    def _explain_encoded(self, inputs: Sequence[Any], encoded: list, *, method: str, target: Any,
                         eps: float, bias_factor: float, rule: str, seed: int, deleted: Any,
                         threads: int | None, keep_embedding: bool = True) -> list[Explanation]:
        check_method(method)
        check_rule(rule, self.cells if method == "lrp" else None)
        threads = _check_threads(threads)
        if not encoded:
            return []
        n = len(encoded)
        ids, offsets, mask = self._pack([e[1] for e in encoded], deleted)
        targets = self._targets(target, n)
        core = self._core
        params: dict[str, Any] = {}
        emb: np.ndarray | None = None
        rest: np.ndarray | None = None
        totals: np.ndarray | None = None
        if method == "lrp":
            eps, bias_factor = float(eps), float(bias_factor)
            scores, used, rel, emb, rest, totals = core.lrp(ids, offsets, mask, targets, eps,
                                                            bias_factor, rule, threads, keep_embedding)
            params = {"rule": rule, "eps": eps, "bias_factor": bias_factor}
        elif method in ("sa", "gi"):
            scores, used, emb, sa, gi = core.gradient(ids, offsets, mask, targets, threads,
                                                       keep_embedding)
            rel = sa if method == "sa" else gi
        elif method == "occlusion":
            scores, used, rel = core.occlusion(ids, offsets, mask, targets, threads)
        else:
            scores = core.forward(ids, offsets, mask, threads)
            used = np.where(targets >= 0, targets, np.argmax(scores, axis=1))
            rel = _random_relevance(_row_keys(ids), offsets, int(seed)).astype(self.dtype)
            params = {"seed": int(seed)}
        if not np.all(np.isfinite(rel)) or (rest is not None and not np.all(np.isfinite(rest))):
            # The epsilon rule divides by pre-activations at every step; over very long inputs
            # (or with a tiny eps) the quotients can compound past the float range.
            bad = sorted({int(np.searchsorted(offsets, i, side="right")) - 1
                          for i in np.flatnonzero(~np.isfinite(rel))[:5]})
            warnings.warn(f"{method} relevance overflowed to inf/NaN for input(s) {bad or 'rest'}; "
                          f"try a larger eps or a shorter input", RuntimeWarning, stacklevel=3)
        predictions = np.argmax(scores, axis=1)  # regression: 0, the one output
        out = []
        for k, (tokens, tok_ids, oov) in enumerate(encoded):
            a, b = offsets[k], offsets[k + 1]
            out.append(Explanation(
                tokens=tokens, ids=np.arange(b - a) if self.continuous else tok_ids, relevance=rel[a:b], scores=scores[k],
                class_names=self.class_names, prediction=int(predictions[k]), target=int(used[k]),
                method=method, oov=oov, text=inputs[k] if isinstance(inputs[k], str) else None,
                regression=self.regression,
                rest=None if rest is None else float(rest[k]),
                embedding_relevance=None if emb is None else emb[a:b], params=params,
                stage_totals=None if totals is None else totals[k], stage_layout=self._stages,
            ))
        return out

    def explain_corpus(self, iterable: Iterable[TokensLike], *, batch_size: int = 256,
                       threads: int | None = None, errors: str = "raise",
                       **explain_kwargs: Any) -> Iterator[Explanation | ExplanationError]:
        """Explain a stream lazily, ``batch_size`` inputs per engine call, in input order.

        Memory stays bounded by two batches whatever the corpus size: while the engine
        explains one batch (without the GIL), the next one is tokenised. With
        ``errors="record"`` an input that cannot be explained (empty text, unknown token
        without an unknown-token id, ...) yields an :class:`ExplanationError` instead of
        stopping the stream. ``explain_kwargs``: method, target (one for all), eps,
        bias_factor, rule, seed, keep_embedding.
        """
        if errors not in ("raise", "record"):
            raise ValueError(f"errors must be 'raise' or 'record', got {errors!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        threads = _check_threads(threads)
        if isinstance(explain_kwargs.get("target"), (list, tuple, np.ndarray)):
            raise TypeError("explain_corpus takes one target for all inputs (or None)")
        params = self._explain_defaults(explain_kwargs)
        with ThreadPoolExecutor(max_workers=1) as engine:
            pending: tuple[Future[list[Explanation]], list[Any]] | None = None
            for start, batch in _chunks(iterable, batch_size):
                try:
                    slots, good, encoded = self._encode_chunk(batch, start, errors)
                except Exception:
                    if pending is not None:
                        yield from _fill(*pending)
                    raise
                job = engine.submit(self._explain_encoded, good, encoded, threads=threads,
                                    deleted=None, **params)
                if pending is not None:
                    yield from _fill(*pending)
                pending = (job, slots)
            if pending is not None:
                yield from _fill(*pending)

    def _encode_chunk(self, batch: list[Any], start: int, errors: str
                      ) -> tuple[list[Any], list[Any], list[tuple[list[str], np.ndarray, np.ndarray]]]:
        """(slots: an ExplanationError or None per input, the inputs to explain, their encodings)."""
        slots: list[Any] = [None] * len(batch)
        good, encoded = [], []
        for k, x in enumerate(batch):
            try:
                encoded.append(self.encode(x))
                good.append(x)
            except (ValueError, TypeError, IndexError, LookupError) as exc:
                if errors == "raise":
                    raise
                slots[k] = ExplanationError(start + k, x, str(exc))
        return slots, good, encoded

    @staticmethod
    def _explain_defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
        params = {"method": "lrp", "target": None, "eps": 1e-3, "bias_factor": 0.0,
                  "rule": "signal-take-all", "seed": 0, "keep_embedding": True}
        unknown = set(kwargs) - set(params)
        if unknown:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(unknown))}")
        params.update(kwargs)
        return params

    def _as_inputs(self, inputs: Any) -> list[Any]:
        if self.continuous and isinstance(inputs, np.ndarray) and inputs.ndim == 2:
            raise TypeError(f"pass a list of inputs, each a float array [steps, {self.input_size}] "
                            "(or one array [N, steps, features]); wrap a single input in a list")
        if isinstance(inputs, str):
            return [inputs]
        if isinstance(inputs, np.ndarray) and inputs.ndim == 1 and inputs.dtype.kind in "iu":
            raise TypeError("pass a list of sequences; wrap a single id array in a list")
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


def _chunks(iterable: Iterable[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    batch: list[Any] = []
    start = 0
    for x in iterable:
        batch.append(x)
        if len(batch) == size:
            yield start, batch
            start += size
            batch = []
    if batch:
        yield start, batch


def _fill(job: Future[list[Explanation]], slots: list[Any]) -> Iterator[Any]:
    """The chunk's results in input order: explanations where the slot is free."""
    explained = iter(job.result())
    for slot in slots:
        yield next(explained) if slot is None else slot


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
