"""The Model: weights, vocabulary and the explain/predict API over the compiled engine."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Union

import numpy as np

from . import _core
from .explanation import Explanation, ExplanationError

METHODS = ("lrp", "sa", "gi", "occlusion", "random")
RULES = ("signal-take-all", "prop", "half", "abs")
GATES = "ifgo"  # the engine's (and PyTorch's) gate row order

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


def _gate_permutation(gate_order: str) -> list[int]:
    order = str(gate_order).lower().replace("c", "g")  # Keras calls the cell candidate "c"
    if sorted(order) != sorted(GATES):
        raise ValueError(
            f"gate_order must be a permutation of 'ifgo' (e.g. 'ifgo' for PyTorch, "
            f"'igfo' for the Arras et al. reference code), got {gate_order!r}"
        )
    return [order.index(g) for g in GATES]


def _reorder_gates(a: np.ndarray, perm: list[int]) -> np.ndarray:
    if a.shape[0] % 4:
        raise ValueError(f"gate arrays need 4 * hidden rows, got {a.shape[0]}")
    blocks = np.split(a, 4, axis=0)
    return np.concatenate([blocks[p] for p in perm], axis=0)


class Model:
    """An LSTM text classifier the engine can explain. Build one with
    :func:`textlrp.from_arrays`, :func:`textlrp.from_torch` or :func:`textlrp.load_model`."""

    def __init__(
        self,
        embedding: np.ndarray,
        lstm_layers: list[list[dict[str, np.ndarray]]],
        head: list[dict[str, np.ndarray | None]],
        *,
        vocab: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        unk_token: str | None = None,
        lowercase: bool = False,
        dtype: Any = np.float64,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
            raise ValueError(f"dtype must be float64 or float32, got {self.dtype}")
        self.embedding = _as_float_array(embedding, "embedding", self.dtype)
        if self.embedding.ndim != 2:
            raise ValueError(f"embedding must be 2-D [vocab, dim], got shape {self.embedding.shape}")
        self.lstm_layers = self._take_layers(lstm_layers)
        self.head = self._take_head(head)
        core_cls = _core.ModelF64 if self.dtype == np.float64 else _core.ModelF32
        self._core = core_cls(
            self.embedding,
            [[(d["W_ih"], d["W_hh"], d["b"]) for d in layer] for layer in self.lstm_layers],
            [(h["W"], h["b"]) for h in self.head],
        )
        self.n_classes: int = self._core.n_classes
        self.vocab_size: int = self._core.vocab_size
        self.embedding_dim: int = self._core.embedding_dim

        if class_names is None:
            class_names = [str(c) for c in range(self.n_classes)]
        self.class_names = [str(c) for c in class_names]
        if len(self.class_names) != self.n_classes:
            raise ValueError(
                f"{len(self.class_names)} class names for a model with {self.n_classes} classes"
            )
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class names must be unique, got {self.class_names}")

        self.vocab: list[str] | None = None
        self._index: dict[str, int] = {}
        if vocab is not None:
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

    def _take_layers(self, layers: Any) -> list[list[dict[str, np.ndarray]]]:
        if not isinstance(layers, (list, tuple)) or not layers:
            raise ValueError("lstm_layers must be a non-empty list of layers")
        out = []
        for l, layer in enumerate(layers):
            if isinstance(layer, dict):
                layer = [layer]  # a unidirectional layer given without its list
            if not isinstance(layer, (list, tuple)) or len(layer) not in (1, 2):
                raise ValueError(f"lstm layer {l} must be a list of 1 or 2 directions")
            dirs = []
            for k, direction in enumerate(layer):
                name = f"lstm layer {l} direction {k}"
                if not isinstance(direction, dict):
                    raise TypeError(f"{name} must be a dict with W_ih, W_hh, b")
                missing = {"W_ih", "W_hh", "b"} - set(direction)
                if missing:
                    raise ValueError(f"{name} lacks {', '.join(sorted(missing))}")
                dirs.append(
                    {key: _as_float_array(direction[key], f"{name} {key}", self.dtype)
                     for key in ("W_ih", "W_hh", "b")}
                )
            out.append(dirs)
        return out

    def _take_head(self, head: Any) -> list[dict[str, Any]]:
        if isinstance(head, dict):
            head = [head]
        if not isinstance(head, (list, tuple)) or not head:
            raise ValueError("head must be a non-empty list of dict(W=..., b=... or None)")
        out: list[dict[str, Any]] = []
        for k, dense in enumerate(head):
            if not isinstance(dense, dict) or "W" not in dense:
                raise ValueError(f"head layer {k} must be a dict with W and optionally b")
            b = dense.get("b")
            out.append({
                "W": _as_float_array(dense["W"], f"head layer {k} W", self.dtype),
                "b": None if b is None else _as_float_array(b, f"head layer {k} b", self.dtype),
            })
        return out

    # ----------------------------------------------------------------- description
    @property
    def architecture(self) -> dict[str, Any]:
        return {
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "lstm": [
                {"directions": len(layer), "hidden": int(layer[0]["W_hh"].shape[1])}
                for layer in self.lstm_layers
            ],
            "head": [
                {"in": int(h["W"].shape[1]), "out": int(h["W"].shape[0]), "bias": h["b"] is not None}
                for h in self.head
            ],
            "n_classes": self.n_classes,
        }

    def __repr__(self) -> str:
        lstm = ", ".join(
            f"{'bi' if a['directions'] == 2 else ''}LSTM({a['hidden']})" for a in self.architecture["lstm"]
        )
        heads = " -> ".join(f"Linear({h['out']}{'' if h['bias'] else ', no bias'})"
                            for h in self.architecture["head"])
        return (
            f"<textlrp.Model vocab={self.vocab_size} emb={self.embedding_dim} {lstm} -> {heads} "
            f"classes={self.class_names} {self.dtype.name}>"
        )

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
        """Tokens, ids and out-of-vocabulary flags of one input (text, tokens or ids)."""
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
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; expected one of {', '.join(RULES)}")
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
        if method == "lrp":
            eps, bias_factor = float(eps), float(bias_factor)
            scores, used, rel, emb, rest = core.lrp(ids, offsets, mask, targets, eps, bias_factor,
                                                    rule, threads, keep_embedding)
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
            rel = _random_relevance(ids, offsets, int(seed)).astype(self.dtype)
            params = {"seed": int(seed)}
        if not np.all(np.isfinite(rel)) or (rest is not None and not np.all(np.isfinite(rest))):
            # The epsilon rule divides by pre-activations at every step; over very long inputs
            # (or with a tiny eps) the quotients can compound past the float range.
            bad = sorted({int(np.searchsorted(offsets, i, side="right")) - 1
                          for i in np.flatnonzero(~np.isfinite(rel))[:5]})
            warnings.warn(f"{method} relevance overflowed to inf/NaN for input(s) {bad or 'rest'}; "
                          f"try a larger eps or a shorter input", RuntimeWarning, stacklevel=3)
        predictions = np.argmax(scores, axis=1)
        out = []
        for k, (tokens, tok_ids, oov) in enumerate(encoded):
            a, b = offsets[k], offsets[k + 1]
            out.append(Explanation(
                tokens=tokens, ids=tok_ids, relevance=rel[a:b], scores=scores[k],
                class_names=self.class_names, prediction=int(predictions[k]), target=int(used[k]),
                method=method, oov=oov, text=inputs[k] if isinstance(inputs[k], str) else None,
                rest=None if rest is None else float(rest[k]),
                embedding_relevance=None if emb is None else emb[a:b], params=params,
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

    @staticmethod
    def _as_inputs(inputs: Any) -> list[Any]:
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
    lstm_layers: Any,
    head: Any,
    *,
    vocab: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    gate_order: str = "ifgo",
    unk_token: str | None = None,
    lowercase: bool = False,
    dtype: Any = None,
    metadata: dict[str, Any] | None = None,
) -> Model:
    """Build a Model from plain arrays.

    ``lstm_layers``: a list of layers; a layer is a list of 1 (forward) or 2 (forward,
    backward) directions; a direction is ``dict(W_ih=[4d, in], W_hh=[4d, d], b=[4d])`` with
    gate row blocks in ``gate_order`` ("ifgo" = PyTorch, "igfo" = Arras et al.'s code).
    ``head``: a list of ``dict(W=[out, in], b=[out] or None)``, ReLU between layers.
    ``dtype``: float64 or float32; default float32 if the embedding is float32, else float64.
    """
    if dtype is None:
        dtype = np.float32 if np.asarray(embedding).dtype == np.float32 else np.float64
    perm = _gate_permutation(gate_order)
    if perm != [0, 1, 2, 3]:
        if not isinstance(lstm_layers, (list, tuple)):
            raise ValueError("lstm_layers must be a list of layers")
        lstm_layers = [
            [
                {**d, **{k: _reorder_gates(np.asarray(d[k]), perm) for k in ("W_ih", "W_hh", "b") if k in d}}
                if isinstance(d, dict) else d
                for d in (layer if isinstance(layer, (list, tuple)) else [layer])
            ]
            for layer in lstm_layers
        ]
    return Model(embedding, lstm_layers, head, vocab=vocab, class_names=class_names,
                 unk_token=unk_token, lowercase=lowercase, dtype=dtype, metadata=metadata)
