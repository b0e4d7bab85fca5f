"""The Clever-Hans check: words the model relies on that carry no sentiment of their own.

Candidates are the words the model decides by: a word that is the most relevant word of at
least 20 explanations of a class and of at least 1 % of them, or that carries at least
``share_min`` (default 10 %) of all the positive relevance the corpus gives to a class, or
that is the most relevant word (largest |relevance|) of at least half of a SpRAy cluster.

A candidate is flagged when both hold, measured on the analysis sample:

1. **Its sentences are, apart from it, like all the others** ("it carries no sentiment").
   The sentences that contain the word, judged *without* it -- by their labels when the
   corpus has labels, else by the model's prediction with every occurrence of the word
   deleted (its embedding zeroed) -- fall into the classes in the same proportions as the
   sentences that do not contain it: the total variation distance between the two class
   distributions (the *association*) is at most ``association_max`` (default 0.15). Words
   that carry sentiment co-occur with other words of the same leaning (reviews that say
   "masterpiece" say other good things), so their sentences differ from the rest even
   without them ("bad", "best", "fun" on SST: 0.25-0.75); a tag inserted independently of
   the content gives about 0.
2. **The word alone decides.** The model's predictions for the sentences that contain it
   differ from its predictions for the others (same distance, the *shift*) by at least
   ``shift_min`` (default 0.5) more than their content does: ``shift - association >=
   shift_min``, i.e. the word by itself moves at least half of its sentences to another
   class.

Condition 1 alone is met by function words and by negations ("n't", "not": the rest of
"not good" is positive); condition 2 rules them out (their shift minus association is 0.1-0.3
on SST). Condition 2 alone is met by strong sentiment words. With few sentences the
distances are noisy (about 0.1 at 50 sentences for 5 classes): a word with fewer than 20
sentences with or without it in the sample is reported as not judged.

The limit of any check without outside knowledge: in a corpus where the tag only ever
occurs in sentences that are already of its class (the training data of a shortcut),
nothing separates it from a real sentiment word. The SpRAy cluster it dominates is then
still in the report, for a person to look at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .stats import SampleItem, WordStats

__all__ = ["clever_hans", "total_variation"]

MIN_SENTENCES = 20  # fewer sentences with (or without) the word: its distance is not judged
MAX_DELETIONS = 2000  # sentences re-predicted without the word, per word


def total_variation(a: np.ndarray, b: np.ndarray, n_classes: int) -> float:
    """Total variation distance between the class distributions of two label arrays."""
    pa = np.bincount(a, minlength=n_classes) / max(len(a), 1)
    pb = np.bincount(b, minlength=n_classes) / max(len(b), 1)
    return float(0.5 * np.abs(pa - pb).sum())


def _most_relevant(item: SampleItem) -> int:
    return int(item.ids[int(np.argmax(np.abs(item.relevance)))])


def cluster_dominance(items: Sequence[SampleItem], labels: np.ndarray, k: int
                      ) -> tuple[int, float]:
    """(word id, fraction): the word that is most often the most relevant one (by |relevance|)
    of the cluster's explanations, and how often it is."""
    members = np.flatnonzero(labels == k)
    if not len(members):
        return -1, 0.0
    words = np.array([_most_relevant(items[int(i)]) for i in members])
    uniq, counts = np.unique(words, return_counts=True)
    j = int(np.argmax(counts))
    return int(uniq[j]), float(counts[j] / len(members))


def clever_hans(stats: WordStats, items: Sequence[SampleItem], model: Any, *,
                min_count: int, share_min: float, association_max: float, shift_min: float,
                cluster_labels: np.ndarray | None = None, cluster_min: float = 0.5,
                threads: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(flagged, checked): every candidate with its numbers; flagged = those that pass both
    conditions. Candidates are found with ``stats`` (all explanations) and, when given,
    ``cluster_labels`` of the sample ``items``; distances are measured on ``items``."""
    names = stats.class_names
    C = len(names)
    share = stats.share()
    # One record per (word, class), whichever way it became a candidate.
    records: dict[tuple[int, int], dict[str, Any]] = {}

    def record(w: int, c: int) -> dict[str, Any]:
        if (w, c) not in records:
            records[(w, c)] = {"word_id": w, "class_id": c, "share": float(share[c, w]),
                               "count": int(stats.count[c, w]), "top": int(stats.top[c, w]),
                               "decides": False, "clusters": []}
        return records[(w, c)]

    for c in range(C):
        decides = stats.top[c] >= max(MIN_SENTENCES, 0.01 * stats.sentences[c])
        dominates = (share[c] >= share_min) & (stats.count[c] >= min_count)
        for w in np.flatnonzero(decides | dominates):
            record(int(w), c)["decides"] = True
    if cluster_labels is not None and len(items):
        floor = max(10, int(0.01 * len(items)))
        for k in range(int(cluster_labels.max()) + 1):
            members = np.flatnonzero(cluster_labels == k)
            if len(members) < floor:
                continue
            word, fraction = cluster_dominance(items, cluster_labels, k)
            if fraction >= cluster_min:
                # The class the cluster is predicted as: the one a shortcut would push to.
                cls = int(np.bincount([items[int(i)].prediction for i in members],
                                      minlength=C).argmax())
                record(word, cls)["clusters"].append({"cluster": k, "size": len(members),
                                                    "fraction": fraction})
    index = _WordIndex(items)
    labelled = bool(items) and all(it.label is not None for it in items)
    cache: dict[int, dict[str, Any]] = {}
    checked = []
    for r in records.values():
        w = r.pop("word_id")
        if w not in cache:
            cache[w] = _association(items, index.sentences(w), w, model, C, labelled,
                                    shift_min, threads)
        a = cache[w]
        r = {"word": stats.words[w], "class": names[r.pop("class_id")], **r, **a}
        r["flagged"] = bool(a["association"] is not None and a["association"] <= association_max
                            and a["prediction_shift"] - a["association"] >= shift_min)
        r["reason"] = _reason(r, association_max, shift_min)
        checked.append(r)
    checked.sort(key=lambda r: (not r["flagged"], -r["share"]))
    return [r for r in checked if r["flagged"]], checked


class _WordIndex:
    """Which sample sentences contain a word (one pass over the sample, then lookups)."""

    def __init__(self, items: Sequence[SampleItem]) -> None:
        self.n = len(items)
        lengths = np.fromiter((len(it.ids) for it in items), dtype=np.int64, count=self.n)
        ids = np.concatenate([it.ids for it in items]) if items else np.zeros(0, np.int32)
        owner = np.repeat(np.arange(self.n), lengths)
        order = np.argsort(ids, kind="stable")
        self.ids, self.owner = ids[order], owner[order]

    def sentences(self, w: int) -> np.ndarray:
        """Boolean mask over the sample: the sentences that contain word w."""
        a, b = np.searchsorted(self.ids, [w, w + 1])
        has = np.zeros(self.n, dtype=bool)
        has[self.owner[a:b]] = True
        return has


def _association(items: Sequence[SampleItem], has: np.ndarray, w: int, model: Any, C: int,
                 labelled: bool, shift_min: float, threads: int | None) -> dict[str, Any]:
    """Class distributions of the sample's sentences with and without word w, w left out."""
    with_w = np.flatnonzero(has)
    rest = np.flatnonzero(~has)
    out: dict[str, Any] = {"sentences": len(with_w), "association": None,
                           "judged_by": None, "prediction_shift": None}
    if len(with_w) < MIN_SENTENCES or len(rest) < MIN_SENTENCES:
        return out
    predicted = np.array([it.prediction for it in items])
    out["prediction_shift"] = total_variation(predicted[with_w], predicted[rest], C)
    if labelled:
        label = np.array([it.label for it in items])
        judged_with, judged_rest = label[with_w], label[rest]
        out["judged_by"] = "labels"
    elif out["prediction_shift"] < shift_min:
        # Condition 2 fails whatever the association: spare the deletion pass.
        return out
    else:
        # A random subset suffices: at 2000 sentences the distance is within ~0.03.
        if len(with_w) > MAX_DELETIONS:
            rng = np.random.default_rng(w)
            with_w = np.sort(rng.choice(with_w, MAX_DELETIONS, replace=False))
        chosen = [items[int(i)] for i in with_w]
        deleted = [np.flatnonzero(it.ids == w).tolist() for it in chosen]
        scores = model.predict([it.ids for it in chosen], deleted=deleted, threads=threads)
        judged_with, judged_rest = np.asarray(scores).argmax(axis=1), predicted[rest]
        out["judged_by"] = "model without the word"
    out["association"] = total_variation(judged_with, judged_rest, C)
    return out


def _reason(r: dict[str, Any], association_max: float, shift_min: float) -> str:
    what = []
    if r["decides"]:
        what.append(f"is the most relevant word of {r['top']} explanations of {r['class']!r} "
                    f"and carries {100 * r['share']:.1f}% of the relevance for it")
    for k in r["clusters"]:
        what.append(f"is the most relevant word in {100 * k['fraction']:.0f}% of cluster "
                    f"{k['cluster'] + 1} ({k['size']} explanations, mostly predicted "
                    f"{r['class']!r})")
    said = "; it ".join(what)
    a, shift = r["association"], r["prediction_shift"]
    if shift is None:
        return (f"{said}; not judged: fewer than {MIN_SENTENCES} sentences with or without it "
                f"in the sample")
    judge = "labelled" if r["judged_by"] == "labels" else "predicted with the word deleted"
    if r["flagged"]:
        return (f"{said}. The sentences containing it, {judge}, fall into the classes like all "
                f"the others (association {a:.2f} <= {association_max:g}), yet the model "
                f"predicts them differently (shift {shift:.2f}): it carries no sentiment of "
                f"its own, and the model uses it as a shortcut")
    if a is not None and a > association_max:
        return (f"{said}; its sentences, {judge}, lean to some classes more than the others "
                f"(association {a:.2f} > {association_max:g}): it carries sentiment")
    if a is None:
        return (f"{said}; it does not decide alone: the model predicts its sentences much like "
                f"all others (shift {shift:.2f} < {shift_min:g})")
    return (f"{said}; it does not decide alone: shift {shift:.2f} - association {a:.2f} < "
            f"{shift_min:g}")
