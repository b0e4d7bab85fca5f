"""Explain a corpus and analyse the explanations: word statistics, SpRAy, Clever-Hans flags."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model import batches
from . import flags as _flags
from .stats import PRIOR_COUNT, Sample, SampleItem, WordStats

__all__ = ["Analysis", "AnalysisError", "Row", "analyze", "analyze_rows"]

MIN_CLUSTERING = 10  # fewer explanations than this are not clustered
MAX_ERRORS_KEPT = 20


class AnalysisError(ValueError):
    """The corpus cannot be analysed (nothing in it, or nothing explainable)."""


@dataclass
class Row:
    """One input of a corpus: a text (or tokens), an optional class label, or a read error."""

    line: int | None
    text: Any
    label: Any = None
    error: str | None = None


@dataclass
class Analysis:
    """The result of :func:`analyze`; ``to_dict()`` is the JSON, ``to_html()`` the report."""

    stats: WordStats
    sample: Sample
    class_names: list[str]
    settings: dict[str, Any]
    lines: int
    errors: list[dict[str, Any]]
    skipped: int
    flagged: list[dict[str, Any]]
    checked: list[dict[str, Any]]
    spray: Any = None                 # spray.SprayResult, or None
    spray_skipped: str | None = None  # why there are no clusters
    clusters: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.stats.n

    def class_tables(self) -> dict[str, dict[str, Any]]:
        s = self.stats
        out = {}
        for c, name in enumerate(self.class_names):
            share = s.share()[c]
            for_, against = s.ranked(c, self.settings["min_count"], self.settings["top_words"])
            out[name] = {
                "sentences": int(s.sentences[c]),
                "predicted": int(s.predicted[c]),
                "for": [_entry(s, c, w, share) for w in for_],
                "against": [_entry(s, c, w, share) for w in against],
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything the report shows, JSON-ready (schema: docs/analysis.md)."""
        sp = self.spray
        return {
            "n": self.n,
            "lines": self.lines,
            "skipped": self.skipped,
            "errors": self.errors,
            "explained": self.settings["explained"],
            "settings": dict(self.settings),
            "flagged": [_public(f) for f in self.flagged],
            "checked": [_public(f) for f in self.checked],
            "classes": self.class_tables(),
            "sample": {"size": len(self.sample.items), "of": self.sample.seen,
                       "sampled": self.sample.sampled},
            "spray": None if sp is None else {
                "n": len(sp.labels),
                "n_clusters": sp.n_clusters,
                "chosen_by": sp.chosen_by,
                "eigenvalues": [float(v) for v in sp.eigenvalues],
                "n_neighbors": sp.n_neighbors,
                "features": len(sp.columns),
                "map_points": 0 if sp.map2d is None else len(sp.map_index),
                "notes": list(sp.notes),
            },
            "spray_skipped": self.spray_skipped,
            "clusters": self.clusters,
            "notes": list(self.notes),
        }

    def to_html(self, *, title: str | None = None, subtitle: str | None = None) -> str:
        from .report import render_report

        return render_report(self, title=title, subtitle=subtitle)


def _entry(s: WordStats, c: int, w: int, share: np.ndarray) -> dict[str, Any]:
    count = int(s.count[c, w])
    return {"word": s.words[w], "count": count,
            "mean": float(s.total[c, w] / count) if count else 0.0,
            "total": float(s.total[c, w]), "top": int(s.top[c, w]),
            "score": float(s.total[c, w] / (count + PRIOR_COUNT)), "share": float(share[w])}


def _public(record: dict[str, Any]) -> dict[str, Any]:
    r = dict(record)
    # Clusters are numbered from 1 in the report and the JSON.
    r["clusters"] = [{**k, "cluster": int(k["cluster"]) + 1} for k in r["clusters"]]
    return r


# --------------------------------------------------------------------------- the run


def analyze(model: Any, texts: Iterable[Any], labels: Iterable[Any] | None = None,
            **options: Any) -> Analysis:
    """Explain every text and analyse the explanations.

    ``texts``: strings (or token lists) -- any iterable, read once, lazily. ``labels``: the
    true class of each text (name or index; ``None`` for unknown), in step with ``texts``;
    a labelled text is explained for its label, the others for their predicted class.
    Options: see :func:`analyze_rows`.
    """
    if labels is None:
        rows: Iterator[Row] = (Row(k, t) for k, t in enumerate(texts, 1))
    else:
        rows = _zip_rows(texts, labels)
    return analyze_rows(model, rows, **options)


def _zip_rows(texts: Iterable[Any], labels: Iterable[Any]) -> Iterator[Row]:
    it_t, it_l = iter(texts), iter(labels)
    k = 0
    for k, t in enumerate(it_t, 1):
        try:
            label = next(it_l)
        except StopIteration:
            raise ValueError(f"fewer labels than texts: no label for text {k}") from None
        yield Row(k, t, label)
    if next(it_l, _END) is not _END:
        raise ValueError(f"more labels than texts ({k} texts)")


_END = object()


def analyze_rows(model: Any, rows: Iterable[Row], *, min_count: int = 5, top_words: int = 12,
                 clusters: int | None = None, spray: bool = True, sample_size: int = 20000,
                 features: int = 500, map_points: int = 3000, n_neighbors: int = 10,
                 share_min: float = 0.10, association_max: float = 0.15, shift_min: float = 0.5,
                 seed: int = 0, batch_size: int = 256, threads: int | None = None,
                 rule: str = "signal-take-all", eps: float = 1e-3, bias_factor: float = 0.0,
                 progress: Callable[[int], None] | None = None) -> Analysis:
    """The analysis of a stream of :class:`Row`.

    min_count: a word enters a class's for/against table when seen that often in the class.
    top_words: table length. clusters: SpRAy cluster count (None: from the eigengap).
    spray: False skips the clustering (no scipy/scikit-learn needed). sample_size: at most
    this many explanations (a uniform random sample) are clustered and used for the flags'
    distances. features: word types per SpRAy vector. map_points: explanations on the t-SNE
    map. share_min, association_max, shift_min: the Clever-Hans thresholds
    (:mod:`textlrp.analysis.flags`).
    rule, eps, bias_factor: the LRP parameters. progress: called with the number of rows done.
    """
    _check_options(min_count=min_count, top_words=top_words, sample_size=sample_size,
                   features=features, n_neighbors=n_neighbors, batch_size=batch_size)
    if clusters is not None and (isinstance(clusters, bool) or int(clusters) != clusters
                                 or clusters < 1):
        raise ValueError(f"clusters must be a positive integer or None, got {clusters!r}")
    for name, v in (("share_min", share_min), ("association_max", association_max),
                    ("shift_min", shift_min)):
        if not 0 <= v <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {v!r}")
    if spray:
        from .spray import require

        require()
    names = [str(c) for c in model.class_names]
    words = (list(model.vocab) if model.vocab is not None
             else [str(i) for i in range(model.vocab_size)])
    stats = WordStats(words, names)
    sample = Sample(sample_size, seed=seed)
    opts = {"method": "lrp", "rule": rule, "eps": eps, "bias_factor": bias_factor,
            "keep_embedding": False}
    errors: list[dict[str, Any]] = []
    counter = {"lines": 0, "skipped": 0, "labelled": 0}

    def fail(line: int | None, message: str) -> None:
        counter["skipped"] += 1
        if len(errors) < MAX_ERRORS_KEPT:
            errors.append({"line": line, "error": message})

    def consume(pairs: list[tuple[Row, Any, int | None]]) -> None:
        good = []
        for row, exp, label in pairs:
            if not hasattr(exp, "relevance"):
                fail(row.line, exp.error)
            elif not (np.all(np.isfinite(exp.relevance))):
                fail(row.line, "relevance overflowed to inf/NaN; try a larger eps")
            else:
                good.append((row, exp, label))
        if not good:
            return
        counter["labelled"] += sum(label is not None for _, _, label in good)
        stats.add([e.ids for _, e, _ in good], [e.relevance for _, e, _ in good],
                  [e.target for _, e, _ in good], [e.prediction for _, e, _ in good])
        for row, exp, label in good:
            k = sample.slot()
            if k is not None:
                text = row.text if isinstance(row.text, str) else None
                sample.items[k] = SampleItem(row.line, text, exp.tokens, exp.ids, exp.relevance,
                                             exp.target, exp.prediction, label)
        if progress is not None:
            progress(len(pairs))

    with warnings.catch_warnings():
        # The engine warns about non-finite relevance; such lines are recorded as errors.
        warnings.filterwarnings("ignore", message=".*overflowed", category=RuntimeWarning)
        # Tokenising is Python (holds the GIL), the engine is C++ (releases it): a worker
        # tokenises the next chunk while the engine explains this one.
        with ThreadPoolExecutor(max_workers=1) as pool:
            chunks = batches(rows, batch_size)
            first = next(chunks, None)
            job = None if first is None else pool.submit(_tokenized, model, first)
            while job is not None:
                chunk, inputs = job.result()
                following = next(chunks, None)
                job = None if following is None else pool.submit(_tokenized, model, following)
                counter["lines"] += len(chunk)
                ready = [k for k, r in enumerate(chunk) if r.error is None]
                for r in chunk:
                    if r.error is not None:
                        fail(r.line, r.error)
                if progress is not None and len(ready) < len(chunk):
                    progress(len(chunk) - len(ready))
                labels = [_label(model, chunk[k]) for k in ready]
                consume(_explain(model, [chunk[k] for k in ready], [inputs[k] for k in ready],
                                 labels, opts, threads))

    if counter["lines"] == 0:
        raise AnalysisError("the corpus is empty: there is no line to analyse")
    if stats.n == 0:
        reasons = "; ".join(f"line {e['line']}: {e['error']}" for e in errors[:3])
        raise AnalysisError(f"none of the {counter['lines']} lines could be explained "
                            f"({reasons})")
    labelled = counter["labelled"]
    explained = ("label" if labelled == stats.n else
                 "predicted class" if labelled == 0 else "label where given, else predicted class")
    settings = {"explained": explained, "method": "lrp", "rule": rule, "eps": eps,
                "bias_factor": bias_factor, "min_count": min_count, "prior_count": PRIOR_COUNT,
                "top_words": top_words, "share_min": share_min,
                "association_max": association_max, "shift_min": shift_min,
                "sample_size": sample_size, "features": features, "n_neighbors": n_neighbors,
                "clusters": clusters, "seed": seed}
    result = Analysis(stats=stats, sample=sample, class_names=names, settings=settings,
                      lines=counter["lines"], errors=errors, skipped=counter["skipped"],
                      flagged=[], checked=[])
    if sample.sampled:
        result.notes.append(f"clusters and the flags' distances are computed on a uniform random "
                            f"sample of {len(sample.items)} of the {sample.seen} explanations")
    cluster_labels = None
    if spray:
        cluster_labels = _run_spray(result, clusters=clusters, features=features,
                                    map_points=map_points, n_neighbors=n_neighbors, seed=seed,
                                    threads=threads)
    result.flagged, result.checked = _flags.clever_hans(
        stats, sample.items, model, min_count=min_count, share_min=share_min,
        association_max=association_max, shift_min=shift_min, cluster_labels=cluster_labels,
        threads=threads)
    return result


def _check_options(**values: int) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _label(model: Any, row: Row) -> int | None:
    if row.label is None:
        return None
    try:
        return int(model.class_index(row.label))
    except (ValueError, TypeError):
        where = f"line {row.line}: " if row.line is not None else ""
        raise ValueError(f"{where}unknown class {row.label!r} in the labels; the model's classes "
                         f"are {', '.join(map(repr, model.class_names))}") from None


def _tokenized(model: Any, chunk: list[Row]) -> tuple[list[Row], list[Any]]:
    """The chunk and its inputs as token lists (a text the tokenizer fails on stays as it
    is, for the model to record the error)."""
    inputs = []
    for row in chunk:
        x = row.text
        if row.error is None and isinstance(x, str):
            try:
                x = model.tokenize(x)
            except (ValueError, TypeError, LookupError):
                pass
        inputs.append(x)
    return chunk, inputs


def _explain(model: Any, rows: list[Row], inputs: list[Any], labels: list[int | None],
             opts: dict[str, Any], threads: int | None) -> list[tuple[Row, Any, int | None]]:
    """Explain a chunk, each row for its label (or its prediction): one engine call per
    distinct target, errors recorded per row."""
    out: list[Any] = [None] * len(rows)
    for target in dict.fromkeys(labels):
        idx = [k for k, lab in enumerate(labels) if lab == target]
        results = list(model.explain_corpus([inputs[k] for k in idx], batch_size=len(idx),
                                            threads=threads, errors="record", target=target,
                                            **opts))
        for k, res in zip(idx, results):
            out[k] = res
    return [(row, res, lab) for row, res, lab in zip(rows, out, labels)]


# --------------------------------------------------------------------------- SpRAy


def _run_spray(result: Analysis, *, clusters: int | None, features: int, map_points: int,
               n_neighbors: int, seed: int, threads: int | None) -> np.ndarray | None:
    from . import spray as _spray

    items = result.sample.items
    n = len(items)
    if clusters is not None and clusters > n:
        result.spray_skipped = (f"no clustering: {clusters} clusters were asked for, but there "
                                f"{'is' if n == 1 else 'are'} only {n} explanation"
                                f"{'' if n == 1 else 's'}")
        return None
    if n < MIN_CLUSTERING:
        result.spray_skipped = (f"no clustering: {n} explanation{'' if n == 1 else 's'}, "
                                f"fewer than the {MIN_CLUSTERING} it needs")
        return None
    mass = result.stats.absolute_mass()
    order = np.argsort(-mass, kind="stable")
    columns = order[: min(features, int(np.sum(mass > 0)))]
    if len(columns) == 0:
        result.spray_skipped = "no clustering: every relevance is 0"
        return None
    sp = _spray.spray(items, columns, len(result.stats.words), n_clusters=clusters,
                      n_neighbors=n_neighbors, map_points=map_points, seed=seed,
                      threads=threads)
    result.spray = sp
    result.clusters = _describe_clusters(result, sp)
    return sp.labels


def _describe_clusters(result: Analysis, sp: Any) -> list[dict[str, Any]]:
    items = result.sample.items
    names = result.class_names
    words = result.stats.words
    X = sp.X
    K = len(sp.columns)
    out = []
    for k in range(sp.n_clusters):
        members = np.flatnonzero(sp.labels == k)
        Xk = X[members]
        centroid = np.asarray(Xk.mean(axis=0)).ravel()
        present = np.asarray((Xk != 0).mean(axis=0)).ravel()
        top_cols = [j for j in np.argsort(-centroid[:K], kind="stable")[:8] if centroid[j] > 0]
        low_cols = [j for j in np.argsort(centroid[:K], kind="stable")[:4] if centroid[j] < 0]
        dominant, fraction = _flags.cluster_dominance(items, sp.labels, k)
        # Examples: the members nearest the centroid (the cluster's typical explanations),
        # one per distinct text.
        d = np.asarray(Xk.multiply(Xk).sum(axis=1)).ravel() - 2 * (Xk @ centroid)
        examples, seen = [], set()
        for i in members[np.argsort(d, kind="stable")]:
            it = items[i]
            key = " ".join(it.tokens)
            if key in seen:
                continue
            seen.add(key)
            examples.append(_example(it, names))
            if len(examples) == 5:
                break
        predicted = np.bincount([items[i].prediction for i in members], minlength=len(names))
        target = np.bincount([items[i].target for i in members], minlength=len(names))
        out.append({
            "cluster": k + 1,
            "size": len(members),
            "share": float(len(members) / len(items)),
            "classes": {names[c]: int(v) for c, v in enumerate(predicted) if v},
            "explained": {names[c]: int(v) for c, v in enumerate(target) if v},
            "words": [{"word": words[int(sp.columns[j])], "mean": float(centroid[j]),
                       "present": float(present[j])} for j in top_cols],
            "against": [{"word": words[int(sp.columns[j])], "mean": float(centroid[j]),
                         "present": float(present[j])} for j in low_cols],
            "dominant": {"word": words[dominant] if dominant >= 0 else None,
                         "fraction": fraction},
            "examples": examples,
        })
    return out


def _example(it: SampleItem, names: list[str]) -> dict[str, Any]:
    return {"line": it.line, "text": it.text, "tokens": list(it.tokens),
            "relevance": [float(r) if math.isfinite(r) else 0.0 for r in it.relevance],
            "target": names[it.target], "prediction": names[it.prediction],
            "label": None if it.label is None else names[it.label]}
