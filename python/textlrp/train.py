"""Train the default SST-5 bidirectional LSTM (``textlrp train``).

The architecture is the one Arras et al. (2017) explain: word embeddings (60),
one bidirectional LSTM layer (60 per direction), features = final forward
state + final backward state, one linear output layer without bias. It is
trained on every labelled phrase of the SST training trees and selected on the
dev sentences' root labels; the test set is only evaluated for the record.

torch is imported inside the functions only: ``import textlrp`` never needs it.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .spec import Dense, Direction, ModelSpec, Recurrent

__all__ = ["DropoutConfig", "NetConfig", "OptimConfig", "TrainConfig", "train"]

UNK = "<unk>"


@dataclass(frozen=True)
class NetConfig:
    """The network: sizes, the head's bias and the initial embedding scale."""

    embedding_dim: int = 60
    hidden_size: int = 60  # per direction
    head_bias: bool = False
    embedding_scale: float = 0.1  # std of the initial embeddings

    def __post_init__(self) -> None:
        _normalise(self, float_fields=("embedding_scale",), bool_fields=("head_bias",))
        for name in ("embedding_dim", "hidden_size"):
            _check_int(self, name, 1)
        if not (math.isfinite(self.embedding_scale) and self.embedding_scale >= 0):
            raise ValueError(f"embedding_scale must be >= 0, got {self.embedding_scale}")


@dataclass(frozen=True)
class OptimConfig:
    """How the weights are fitted: Adam, gradient clipping, a moving average of the weights."""

    epochs: float = 5.0  # may be fractional
    lr: float = 2e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    clip: float = 5.0  # gradient norm clipping, 0 = off
    ema: float = 0.999  # decay of the evaluated and exported weight average, 0 = off

    def __post_init__(self) -> None:
        _normalise(self, float_fields=("epochs", "lr", "weight_decay", "clip", "ema"))
        if not (math.isfinite(self.epochs) and self.epochs > 0):
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr}")
        _check_int(self, "batch_size", 1)
        for name in ("weight_decay", "clip"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")


@dataclass(frozen=True)
class DropoutConfig:
    """Regularisation: dropout on the features and the embeddings, word dropout (a training
    token replaced by <unk>)."""

    dropout: float = 0.5
    embedding_dropout: float = 0.3
    word_dropout: float = 0.0

    def __post_init__(self) -> None:
        _normalise(self, float_fields=("dropout", "embedding_dropout", "word_dropout"))
        for name in ("dropout", "embedding_dropout", "word_dropout"):
            p = getattr(self, name)
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")


def _normalise(obj: Any, float_fields: Sequence[str] = (), bool_fields: Sequence[str] = ()) -> None:
    """Numbers as floats and flags as bools, whatever the caller passed (so that the record
    in the model file does not depend on it); a frozen dataclass sets them once, here."""
    for name in float_fields:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a number, got {value!r}")
        object.__setattr__(obj, name, float(value))
    for name in bool_fields:
        object.__setattr__(obj, name, bool(getattr(obj, name)))


def _check_int(obj: Any, name: str, low: int) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    object.__setattr__(obj, name, int(value))


# The flat names of TrainConfig.as_dict(), in the order model files record them (and
# `command_line` lists them), with the group each belongs to (None: TrainConfig itself).
_FLAT: dict[str, str | None] = {
    "epochs": "optim", "seed": None, "lr": "optim", "batch_size": "optim",
    "embedding_dim": "net", "hidden_size": "net", "dropout": "regularisation",
    "embedding_dropout": "regularisation", "word_dropout": "regularisation",
    "weight_decay": "optim", "clip": "optim", "ema": "optim", "embedding_scale": "net",
    "lowercase": None, "threads": None, "evals_per_epoch": None, "head_bias": "net",
}


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; the defaults are the ones the bundled model was trained with.

    Grouped: ``net`` (sizes, initialisation), ``optim`` (epochs, Adam, clipping, weight
    average), ``regularisation`` (dropouts); the run itself keeps ``seed``, ``lowercase``
    (of the data, stored in the model file), ``threads`` (torch's, None = its choice),
    ``evals_per_epoch`` (dev evaluations) and ``progress`` (a bar on stderr).
    ``as_dict()`` is the flat record stored in model files; ``from_dict`` reads it back.

        TrainConfig(net=NetConfig(hidden_size=30), optim=OptimConfig(epochs=2), seed=3)
    """

    net: NetConfig = field(default_factory=NetConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    regularisation: DropoutConfig = field(default_factory=DropoutConfig)
    seed: int = 1
    lowercase: bool = True
    threads: int | None = None
    evals_per_epoch: int = 4
    progress: bool = True

    def __post_init__(self) -> None:
        for name, cls in (("net", NetConfig), ("optim", OptimConfig),
                          ("regularisation", DropoutConfig)):
            if not isinstance(getattr(self, name), cls):
                raise TypeError(f"{name} must be a {cls.__name__}, got "
                                f"{type(getattr(self, name)).__name__}")
        _normalise(self, bool_fields=("lowercase", "progress"))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        if self.threads is not None:
            _check_int(self, "threads", 1)
        _check_int(self, "evals_per_epoch", 1)

    def as_dict(self) -> dict[str, Any]:
        """Every setting but ``progress`` under its flat name (the model file's record)."""
        return {name: getattr(self if group is None else getattr(self, group), name)
                for name, group in _FLAT.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any], **run: Any) -> TrainConfig:
        """The config of a flat dict (``as_dict()``, or a model file's ``config``); names it
        leaves out keep their defaults. ``run``: progress (not recorded in files)."""
        unknown = set(values) - set(_FLAT)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        groups: dict[str | None, dict[str, Any]] = {}
        for name, value in values.items():
            groups.setdefault(_FLAT[name], {})[name] = value
        return cls(net=NetConfig(**groups.get("net", {})),
                   optim=OptimConfig(**groups.get("optim", {})),
                   regularisation=DropoutConfig(**groups.get("regularisation", {})),
                   **groups.get(None, {}), **run)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def _batches_by_length(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None
) -> list[np.ndarray]:
    """Index batches whose members all have the same length: no padding or packing
    is needed and final states are exact. Shuffled within lengths and in batch order
    when rng is given, deterministic otherwise."""
    batches: list[np.ndarray] = []
    for length in np.unique(lengths):
        idx = np.flatnonzero(lengths == length)
        if rng is not None:
            idx = rng.permutation(idx)
        batches.extend(idx[i : i + batch_size] for i in range(0, len(idx), batch_size))
    if rng is not None:
        order = rng.permutation(len(batches))
        batches = [batches[i] for i in order]
    return batches


def _build_net(vocab_size: int, cfg: TrainConfig, n_classes: int) -> Any:
    import torch
    from torch import nn

    class BiLSTMClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, cfg.net.embedding_dim)
            self.lstm = nn.LSTM(cfg.net.embedding_dim, cfg.net.hidden_size, batch_first=True,
                                bidirectional=True)
            self.head = nn.Linear(2 * cfg.net.hidden_size, n_classes, bias=cfg.net.head_bias)
            self.embedding_dropout = nn.Dropout(cfg.regularisation.embedding_dropout)
            self.dropout = nn.Dropout(cfg.regularisation.dropout)
            with torch.no_grad():
                self.embedding.weight.normal_(0.0, cfg.net.embedding_scale)
                # <unk> (id 0) starts at zero = the "deleted word" vector; it is
                # trained only through word dropout.
                self.embedding.weight[0].zero_()

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            x = self.embedding_dropout(self.embedding(ids))
            _, (h_n, _) = self.lstm(x)
            # h_n[0]: forward state after the last token; h_n[1]: backward state at position 0.
            features = torch.cat([h_n[0], h_n[1]], dim=1)
            return self.head(self.dropout(features))

    return BiLSTMClassifier()


def _encode(sentences: Sequence[Sequence[str]], index: dict[str, int], lowercase: bool) -> list[np.ndarray]:
    out = []
    for tokens in sentences:
        if lowercase:
            tokens = [t.lower() for t in tokens]
        out.append(np.array([index.get(t, 0) for t in tokens], dtype=np.int64))
    return out


def _predict_scores(net: Any, encoded: list[np.ndarray], batch_size: int = 512) -> np.ndarray:
    import torch

    lengths = np.array([len(e) for e in encoded])
    scores = np.zeros((len(encoded), net.head.out_features), dtype=np.float64)
    net.eval()
    with torch.no_grad():
        for batch in _batches_by_length(lengths, batch_size, None):
            ids = torch.from_numpy(np.stack([encoded[i] for i in batch]))
            scores[batch] = net(ids).double().numpy()
    return scores


def accuracies(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """5-class accuracy, and binary accuracy on non-neutral items.

    Binary: labels 0/1 are negative, 3/4 positive, 2 is left out; the model says
    positive when p(3) + p(4) > p(0) + p(1) (softmax over the five scores).
    """
    labels = np.asarray(labels)
    fine = float(np.mean(scores.argmax(axis=1) == labels))
    z = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    keep = labels != 2
    pos_pred = p[keep, 3] + p[keep, 4] > p[keep, 0] + p[keep, 1]
    binary = float(np.mean(pos_pred == (labels[keep] > 2))) if keep.any() else float("nan")
    return {"fine": fine, "binary": binary}


def train(
    data_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: TrainConfig | None = None,
    *,
    command: str | None = None,
    log: Any = None,
) -> dict[str, Any]:
    """Train on ``data_dir/{train,dev,test}.txt`` (SST PTB trees) and write the model to ``out``.

    Returns the provenance dict stored in the model file. ``test.txt`` is optional;
    when present its accuracy is recorded but never used for selection.
    torch's global settings (thread count, deterministic algorithms) are restored afterwards.
    """
    import torch

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return _train(data_dir, out, config, command=command, log=log)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train(
    data_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: TrainConfig | None,
    *,
    command: str | None,
    log: Any,
) -> dict[str, Any]:
    import torch
    from torch import nn

    from . import io as textlrp_io
    from .sst import SST_CLASS_NAMES, load_phrases, load_sentences

    cfg = config or TrainConfig()
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    data_dir = Path(data_dir)
    paths = {split: data_dir / f"{split}.txt" for split in ("train", "dev", "test")}
    for split in ("train", "dev"):
        if not paths[split].is_file():
            raise FileNotFoundError(f"{paths[split]} not found (expected SST PTB tree files in {data_dir})")
    has_test = paths["test"].is_file()
    out = Path(out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"output directory {out.parent} does not exist")

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    _seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    phrases = load_phrases(paths["train"])
    if cfg.lowercase:
        # Lowercasing can merge phrases; keep each (tokens, label) pair once, in order.
        merged = dict.fromkeys((tuple(t.lower() for t in toks), y) for toks, y in phrases)
        phrases = [(list(toks), y) for toks, y in merged]
    dev = load_sentences(paths["dev"])
    test = load_sentences(paths["test"]) if has_test else []

    vocab = [UNK] + sorted({t for toks, _ in phrases for t in toks} - {UNK})
    index = {t: i for i, t in enumerate(vocab)}

    train_x = _encode([p[0] for p in phrases], index, False)
    train_y = np.array([p[1] for p in phrases], dtype=np.int64)
    train_len = np.array([len(x) for x in train_x])
    dev_x = _encode([s[0] for s in dev], index, cfg.lowercase)
    dev_y = np.array([s[1] for s in dev])
    test_x = _encode([s[0] for s in test], index, cfg.lowercase)
    test_y = np.array([s[1] for s in test])
    log(f"train phrases {len(phrases)}, vocab {len(vocab)}, dev {len(dev)}, test {len(test)}")

    net = _build_net(len(vocab), cfg, len(SST_CLASS_NAMES))
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.optim.lr,
                                 weight_decay=cfg.optim.weight_decay)
    loss_fn = nn.CrossEntropyLoss()

    steps_per_epoch = len(_batches_by_length(train_len, cfg.optim.batch_size, None))
    total_steps = round(cfg.optim.epochs * steps_per_epoch)
    eval_every = max(1, steps_per_epoch // cfg.evals_per_epoch)
    best: dict[str, Any] = {"dev": -1.0}
    history = []
    from tqdm import tqdm

    # Polyak averaging: the evaluated and exported weights are an exponential
    # moving average of the trained ones (same architecture, smoother optimum).
    averaged = [p.detach().clone() for p in net.parameters()] if cfg.optim.ema > 0 else None

    def swap_averaged() -> None:
        if averaged is not None:
            with torch.no_grad():
                for p, a in zip(net.parameters(), averaged):
                    tmp = p.detach().clone()
                    p.copy_(a)
                    a.copy_(tmp)

    start = time.perf_counter()
    step = 0
    bar = tqdm(total=total_steps, desc="train", unit="batch", disable=not cfg.progress, mininterval=1.0)
    while step < total_steps:
        for batch in _batches_by_length(train_len, cfg.optim.batch_size, rng):
            if step >= total_steps:
                break
            net.train()
            ids_np = np.stack([train_x[i] for i in batch])
            if cfg.regularisation.word_dropout > 0:
                dropped = rng.random(ids_np.shape) < cfg.regularisation.word_dropout
                ids_np = np.where(dropped, 0, ids_np)
            ids = torch.from_numpy(ids_np)
            labels = torch.from_numpy(train_y[batch])
            optimizer.zero_grad()
            loss = loss_fn(net(ids), labels)
            loss.backward()
            if cfg.optim.clip > 0:
                nn.utils.clip_grad_norm_(net.parameters(), cfg.optim.clip)
            optimizer.step()
            if averaged is not None:
                with torch.no_grad():
                    for p, a in zip(net.parameters(), averaged):
                        a.lerp_(p, 1.0 - cfg.optim.ema)
            step += 1
            bar.update(1)
            if step % eval_every == 0 or step == total_steps:
                swap_averaged()
                dev_fine = accuracies(_predict_scores(net, dev_x), dev_y)["fine"]
                epoch = step / steps_per_epoch
                history.append({"epoch": round(epoch, 3), "dev": dev_fine, "loss": round(loss.item(), 4)})
                marker = ""
                if dev_fine > best["dev"]:
                    best = {
                        "dev": dev_fine,
                        "epoch": round(epoch, 3),
                        "state": {k: v.detach().clone() for k, v in net.state_dict().items()},
                    }
                    marker = " *"
                swap_averaged()
                msg = f"epoch {epoch:5.2f}  dev acc {dev_fine:.4f}{marker}"
                if cfg.progress:
                    bar.write(msg)
                else:
                    log(msg)
    bar.close()
    seconds = time.perf_counter() - start

    net.load_state_dict(best["state"])
    net.eval()
    dev_acc = accuracies(_predict_scores(net, dev_x), dev_y)
    test_acc = accuracies(_predict_scores(net, test_x), test_y) if has_test else None
    measured = [f"dev {_accuracy_text(dev_acc)}"]
    if test_acc:
        measured.append(f"test {_accuracy_text(test_acc)}")
    log(f"best epoch {best['epoch']:g}: {'; '.join(measured)}; {seconds:.0f} s")

    provenance: dict[str, Any] = {
        "command": command,
        "trained_with": "textlrp.train",
        "config": cfg.as_dict(),
        "seed": cfg.seed,
        "epochs": cfg.optim.epochs,
        "best_epoch": best["epoch"],
        "data": {split: {"file": p.name, "sha256": _sha256(p)} for split, p in paths.items() if p.is_file()},
        "train_phrases": len(phrases),
        "vocab_size": len(vocab),
        "accuracy": {
            "dev": {"fine": dev_acc["fine"], "binary": dev_acc["binary"], "n": len(dev)},
            **(
                {"test": {"fine": test_acc["fine"], "binary": test_acc["binary"], "n": len(test)}}
                if test_acc
                else {}
            ),
        },
        "accuracy_note": "sentence (root label) accuracy; binary = non-neutral sentences, p(3)+p(4) vs p(0)+p(1)",
        "history": history,
        "training_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
    }
    textlrp_io.write_model_file(
        out,
        net_to_spec(net),
        vocab=vocab,
        class_names=list(SST_CLASS_NAMES),
        unk_token=UNK,
        lowercase=cfg.lowercase,
        metadata=provenance,
    )
    log(f"wrote {out}")
    return provenance


def net_to_spec(net: Any) -> ModelSpec:
    """The trained network as the engine's typed specification (float32). The two LSTM biases
    are summed in torch, as they always were, so retraining stays bit-identical."""
    def np32(t: Any) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float32)

    lstm = net.lstm
    directions = []
    for suffix in ("", "_reverse"):
        b = np32(getattr(lstm, f"bias_ih_l0{suffix}") + getattr(lstm, f"bias_hh_l0{suffix}"))
        directions.append(Direction(np32(getattr(lstm, f"weight_ih_l0{suffix}")),
                                    np32(getattr(lstm, f"weight_hh_l0{suffix}")),
                                    b, np.zeros_like(b)))
    head_b = np32(net.head.bias) if net.head.bias is not None else None
    return ModelSpec(np32(net.embedding.weight), (Recurrent("lstm", tuple(directions)),),
                     (Dense(np32(net.head.weight), head_b),))


# The pin the README gives: the torch the bundled model was trained with (and, unpinned,
# pip may pull a multi-GB CUDA build).
TORCH_HINT = "pip install torch==2.13.0"


def command_line(data: str, out: str, cfg: TrainConfig) -> str:
    """The ``textlrp train`` command that repeats a run, rebuilt from the config (never from
    the process's own arguments): --data, --out, the seed, and every setting that differs
    from its default."""
    words = ["textlrp", "train", "--data", str(data), "--out", str(out)]
    defaults = TrainConfig().as_dict()
    for name, value in cfg.as_dict().items():
        if name == "head_bias" or (value == defaults[name] and name != "seed"):
            continue  # head_bias has no option; the seed is always shown
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + name.replace("_", "-"))
        else:
            words += [flag, _number(value)]
    return shlex.join(words)


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    short = f"{value:g}"  # 5 for 5.0, 0.002; repr only where %g would round
    return short if float(short) == value else repr(value)


def summary_lines(out: str | os.PathLike[str], result: dict[str, Any]) -> list[str]:
    """What ``textlrp train`` prints when it is done: ``key: value`` lines."""
    lines = [f"model: {out}", f"best epoch: {result['best_epoch']:g}"]
    for split, acc in result["accuracy"].items():
        lines.append(f"{split} accuracy: {_accuracy_text(acc)} ({acc['n']} sentences)")
    return lines


def _accuracy_text(acc: dict[str, Any]) -> str:
    return f"{acc['fine']:.1%} 5-class, {acc['binary']:.1%} binary"
