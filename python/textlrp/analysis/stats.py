"""Word statistics per class, accumulated over a stream of explanations in constant memory,
and a fixed-size uniform sample of the explanations themselves (for SpRAy and the examples).

Memory is bounded by the vocabulary and the sample size, never by the corpus length: words
are counted by their vocabulary id (an out-of-vocabulary token counts as the model's unknown
token, which is what the model sees), in arrays of shape [classes, vocabulary].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["PRIOR_COUNT", "Sample", "SampleItem", "WordStats"]

# The ranking score of a word is its mean relevance shrunk toward 0 as if PRIOR_COUNT more
# occurrences of relevance 0 had been seen: total / (count + PRIOR_COUNT). A word seen 3
# times keeps 3/13 of its mean, one seen 300 times 97%: rare words need a large mean to
# rank high, and frequent words rank by their mean, not by how often they occur (which is
# what ranking by total would do).
PRIOR_COUNT = 10


class WordStats:
    """Sums per (explained class, word type): occurrences, relevance, positive relevance, and
    the number of sentences in which the word was the most relevant one.

    ``add`` takes one batch of explanations at a time; every array has shape
    [classes, vocabulary], whatever the number of explanations added.
    """

    def __init__(self, words: Sequence[str], class_names: Sequence[str]) -> None:
        self.words = list(words)
        self.class_names = list(class_names)
        C, V = len(self.class_names), len(self.words)
        if C < 1 or V < 1:
            raise ValueError("word statistics need at least one class and one word")
        self.count = np.zeros((C, V), dtype=np.int64)
        self.total = np.zeros((C, V))      # sum of relevance
        self.positive = np.zeros((C, V))   # sum of max(relevance, 0)
        self.top = np.zeros((C, V), dtype=np.int64)
        self.sentences = np.zeros(C, dtype=np.int64)  # explanations per explained class
        self.predicted = np.zeros(C, dtype=np.int64)  # explanations per predicted class

    @property
    def n(self) -> int:
        """Explanations added."""
        return int(self.sentences.sum())

    def add(self, ids: Sequence[np.ndarray], relevance: Sequence[np.ndarray],
            targets: Sequence[int], predictions: Sequence[int]) -> None:
        """Add a batch: per explanation its word ids, relevance, explained and predicted class."""
        if not ids:
            return
        C, V = self.count.shape
        lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
        flat_ids = np.concatenate(ids).astype(np.int64, copy=False)
        flat_rel = np.concatenate(relevance).astype(np.float64, copy=False)
        target = np.asarray(targets, dtype=np.int64)
        if flat_ids.size and (flat_ids.min() < 0 or flat_ids.max() >= V):
            raise IndexError(f"word id out of range [0, {V})")
        if target.size and (target.min() < 0 or target.max() >= C):
            raise IndexError(f"class out of range [0, {C})")
        key = np.repeat(target, lengths) * V + flat_ids
        size = C * V
        self.count += np.bincount(key, minlength=size).reshape(C, V)
        self.total += np.bincount(key, weights=flat_rel, minlength=size).reshape(C, V)
        self.positive += np.bincount(key, weights=np.maximum(flat_rel, 0.0),
                                     minlength=size).reshape(C, V)
        # The most relevant word of each sentence: the one with the largest relevance, when
        # that is positive (a sentence whose words all speak against the class has none).
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        best = np.maximum.reduceat(flat_rel, starts)
        for k in np.flatnonzero(best > 0):
            a = starts[k]
            t = a + int(np.argmax(flat_rel[a:a + lengths[k]]))
            self.top[target[k], flat_ids[t]] += 1
        self.sentences += np.bincount(target, minlength=C)
        self.predicted += np.bincount(np.asarray(predictions, dtype=np.int64), minlength=C)

    # ----------------------------------------------------------------- derived numbers
    def score(self) -> np.ndarray:
        """The ranking score per (class, word): total / (count + PRIOR_COUNT)."""
        return self.total / (self.count + PRIOR_COUNT)

    def share(self) -> np.ndarray:
        """Each word's share of all the positive relevance given to its class."""
        per_class = self.positive.sum(axis=1, keepdims=True)
        return self.positive / np.where(per_class > 0, per_class, 1.0)

    def absolute_mass(self) -> np.ndarray:
        """Sum of |relevance| per word over all classes (sum |r| = 2 sum max(r, 0) - sum r)."""
        return (2.0 * self.positive - self.total).sum(axis=0)

    def entry(self, c: int, w: int) -> dict[str, Any]:
        """The JSON record of word w in class c."""
        count = int(self.count[c, w])
        return {
            "word": self.words[w],
            "count": count,
            "mean": float(self.total[c, w] / count) if count else 0.0,
            "total": float(self.total[c, w]),
            "top": int(self.top[c, w]),
            "score": float(self.total[c, w] / (count + PRIOR_COUNT)),
            "share": float(self.share()[c, w]),
        }

    def ranked(self, c: int, min_count: int, n: int) -> tuple[list[int], list[int]]:
        """Word ids speaking most for and most against class c: the n best scores above 0 and
        the n lowest below 0, among words seen at least min_count times in the class."""
        score = self.score()[c]
        ok = self.count[c] >= min_count
        order = np.argsort(-score, kind="stable")
        for_ = [int(w) for w in order if ok[w] and score[w] > 0][:n]
        against = [int(w) for w in order[::-1] if ok[w] and score[w] < 0][:n]
        return for_, against


class SampleItem:
    """One explanation kept in the sample (slots, and the tokens as one string: the sample
    can hold tens of thousands of these)."""

    __slots__ = ("_tokens", "ids", "label", "line", "prediction", "relevance", "target", "text")

    def __init__(self, line: int | None, text: str | None, tokens: Sequence[str],
                 ids: np.ndarray, relevance: np.ndarray, target: int, prediction: int,
                 label: int | None) -> None:
        self.line, self.text = line, text
        self._tokens = _SEP.join(tokens)
        # Copies: a view would keep the engine's whole batch array alive.
        self.ids = np.array(ids, dtype=np.int32)
        self.relevance = np.array(relevance, dtype=np.float32)
        self.target, self.prediction, self.label = int(target), int(prediction), label

    @property
    def tokens(self) -> list[str]:
        return self._tokens.split(_SEP)


_SEP = "\x00"  # no tokenizer yields NUL inside a token


class Sample:
    """A uniform random sample of at most ``capacity`` explanations of a stream of unknown
    length (reservoir sampling, Vitter's algorithm R), reproducible from ``seed``."""

    def __init__(self, capacity: int, seed: int = 0) -> None:
        if capacity < 0:
            raise ValueError(f"the sample capacity must be >= 0, got {capacity}")
        self.capacity = int(capacity)
        self.items: list[SampleItem] = []
        self.seen = 0
        self._rng = np.random.default_rng(seed)

    def slot(self) -> int | None:
        """Where the next item of the stream goes (an index into items), or None if it is not
        kept. Call once per item, in stream order."""
        self.seen += 1
        if len(self.items) < self.capacity:
            self.items.append(None)  # type: ignore[arg-type]  # filled by the caller
            return len(self.items) - 1
        j = int(self._rng.integers(self.seen))
        return j if j < self.capacity else None

    @property
    def sampled(self) -> bool:
        """True when the sample holds fewer items than the stream had."""
        return self.seen > len(self.items)
