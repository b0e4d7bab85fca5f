"""Spectral Relevance Analysis (SpRAy, Lapuschkin et al. 2019) of text explanations.

Each explanation becomes a fixed-size vector: its relevance summed per word type over the
``K`` word types with the most relevance in the whole corpus (sum of |relevance|), plus one
column for all other words, divided by the sentence's total |relevance| (so a sentence's
entries sum in absolute value to at most 1: long and short sentences, confident and hesitant
predictions are comparable; the sign says for or against the explained class). Word types
are chosen by relevance and not by frequency so that the columns are the words the model
uses, not "the", "a" and ",".

From these vectors: a symmetric k-nearest-neighbour graph (Euclidean distance, connectivity
weights, as scikit-learn's spectral clustering builds it), the smallest eigenvalues of its
normalised Laplacian (scipy's ARPACK), the number of clusters from the largest
gap between consecutive eigenvalues (unless given), spectral clustering as Ng, Jordan & Weiss
(2002): k-means (scikit-learn) on the row-normalised first eigenvectors, and a 2-D t-SNE map
(scikit-learn) of a truncated SVD of the vectors.

scipy and scikit-learn are the ``analysis`` extra; this module imports them when called.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .stats import SampleItem

__all__ = ["SprayResult", "feature_matrix", "require", "spray"]

MAX_CLUSTERS = 12  # the automatic choice looks at gaps up to here


def require() -> None:
    """Raise ImportError with the install hint when scipy or scikit-learn is missing."""
    try:
        import scipy  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"SpRAy clustering needs scipy and scikit-learn ({exc.name} is "
                          f"missing): pip install 'textlrp[analysis]'") from None


@dataclass
class SprayResult:
    """Cluster labels of the sample's explanations and what was computed on the way."""

    labels: np.ndarray            # cluster of each sample item, 0..k-1 (largest cluster first)
    eigenvalues: np.ndarray       # smallest eigenvalues of the normalised Laplacian, ascending
    n_clusters: int
    chosen_by: str                # "eigengap" or "user"
    columns: np.ndarray           # word ids of the feature columns (the last column: others)
    X: Any                        # the feature matrix (scipy CSR), one row per sample item
    map2d: np.ndarray | None      # t-SNE coordinates of map_index items
    map_index: np.ndarray         # which sample items are on the map
    n_neighbors: int
    notes: list[str] = field(default_factory=list)


def feature_matrix(items: Sequence[SampleItem], columns: np.ndarray, vocab_size: int) -> Any:
    """CSR matrix [len(items), len(columns) + 1] of per-sentence normalised relevance."""
    from scipy import sparse

    K = len(columns)
    col_of = np.full(vocab_size, K, dtype=np.int64)   # every other word: the last column
    col_of[columns] = np.arange(K)
    lengths = np.fromiter((len(it.ids) for it in items), dtype=np.int64, count=len(items))
    if not items:
        return sparse.csr_matrix((0, K + 1))
    ids = np.concatenate([it.ids for it in items]).astype(np.int64)
    rel = np.concatenate([it.relevance for it in items]).astype(np.float64)
    rows = np.repeat(np.arange(len(items)), lengths)
    norm = np.bincount(rows, weights=np.abs(rel), minlength=len(items))
    values = rel / np.where(norm > 0, norm, 1.0)[rows]
    X = sparse.csr_matrix((values, (rows, col_of[ids])), shape=(len(items), K + 1))
    X.sum_duplicates()
    return X


def spray(items: Sequence[SampleItem], columns: np.ndarray, vocab_size: int, *,
          n_clusters: int | None = None, n_neighbors: int = 10, n_eigenvalues: int = 30,
          map_points: int = 3000, seed: int = 0, threads: int | None = None) -> SprayResult:
    """Cluster the sample's explanations; ``n_clusters=None`` reads it off the eigengap.
    ``threads`` caps the native thread pools (BLAS, OpenMP) of the numerical libraries."""
    require()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        return _spray(items, columns, vocab_size, n_clusters=n_clusters,
                      n_neighbors=n_neighbors, n_eigenvalues=n_eigenvalues,
                      map_points=map_points, seed=seed)


def _spray(items: Sequence[SampleItem], columns: np.ndarray, vocab_size: int, *,
           n_clusters: int | None, n_neighbors: int, n_eigenvalues: int, map_points: int,
           seed: int) -> SprayResult:
    from scipy import sparse
    from scipy.sparse import csgraph
    from scipy.sparse.linalg import eigsh
    from sklearn import config_context
    from sklearn.cluster import KMeans
    from sklearn.neighbors import kneighbors_graph

    n = len(items)
    if n_clusters is not None and n_clusters > n:
        raise ValueError(f"{n_clusters} clusters need at least as many explanations; "
                         f"there are {n}")
    if n < 3:
        raise ValueError(f"clustering needs at least 3 explanations, there are {n}")
    notes: list[str] = []
    X = feature_matrix(items, columns, vocab_size)
    k_nn = max(1, min(n_neighbors, n - 1))
    # scikit-learn computes the distances in blocks of up to 1 GB by default (2.2 GB peak
    # at 20,000 explanations); 64 MB blocks are as fast here and keep the peak near 100 MB.
    with config_context(working_memory=64):
        G = kneighbors_graph(X, n_neighbors=k_nn, mode="connectivity", include_self=False)
    A = (0.5 * (G + G.T)).tocsr()
    L = csgraph.laplacian(A, normed=True)
    m = max(2, min(n_eigenvalues, n - 1))
    if n <= 400:
        # Small graphs: the dense solver is exact and faster than ARPACK's iterations.
        vals, vecs = np.linalg.eigh(L.toarray())
        vals, vecs = vals[:m], vecs[:, :m]
    else:
        # The smallest eigenvalues of L are the largest of I - L (the normalised adjacency):
        # Lanczos finds those with matrix-vector products alone. A wide Krylov space (ncv)
        # makes it converge in seconds on the clustered top of the spectrum; shift-invert
        # would factorise L, whose fill-in costs minutes at 20,000 nodes.
        M = (sparse.identity(n, format="csr") - L).tocsr()
        vals, vecs = eigsh(M, k=m, which="LA", ncv=min(n, max(4 * m, 60)),
                           v0=np.random.default_rng(seed).uniform(-1, 1, n))
        vals = 1.0 - vals
    order = np.argsort(vals)
    vals = np.clip(vals[order], 0.0, None)
    vecs = vecs[:, order]
    if n_clusters is None:
        top = min(MAX_CLUSTERS, m - 1)
        gaps = np.diff(vals[: top + 1])          # gaps[i] = vals[i+1] - vals[i]
        # k clusters <-> k eigenvalues below the gap; at least 2 clusters.
        k = int(np.argmax(gaps[1:])) + 2 if top >= 2 else 2
        chosen_by = "eigengap"
    else:
        k, chosen_by = int(n_clusters), "user"
    if k == 1:
        labels = np.zeros(n, dtype=np.int64)
    else:
        emb = vecs[:, :k]
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        with warnings.catch_warnings():
            # k-means warns when it finds fewer distinct points than clusters; the cluster
            # table then shows the empty or tiny clusters, which is the honest answer.
            warnings.simplefilter("ignore")
            labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(emb)
    labels = _by_size(labels)
    components = csgraph.connected_components(A, directed=False)[0]
    if components > 1:
        notes.append(f"the {k_nn}-nearest-neighbour graph has {components} connected components "
                     f"(each gives an eigenvalue 0)")
    map_index, map2d = _tsne(X, n, map_points, seed)
    if map2d is not None and len(map_index) < n:
        notes.append(f"the map shows a random {len(map_index)} of the {n} clustered explanations")
    return SprayResult(labels=labels, eigenvalues=vals, n_clusters=int(labels.max()) + 1,
                       chosen_by=chosen_by, columns=np.asarray(columns), X=X, map2d=map2d,
                       map_index=map_index, n_neighbors=k_nn, notes=notes)


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by decreasing size (ties by first member); no empty numbers."""
    uniq, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda i: (-counts[i], first[i]))
    new = np.empty(int(uniq.max()) + 1, dtype=np.int64)
    for rank, i in enumerate(order):
        new[uniq[i]] = rank
    return new[labels]


def _tsne(X: Any, n: int, map_points: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    index = np.arange(n) if n <= map_points else np.sort(rng.choice(n, map_points, replace=False))
    if len(index) < 5 or map_points <= 0:
        return index[:0], None
    Xm = X[index]
    dims = min(50, Xm.shape[1] - 1, len(index) - 1)
    Z = TruncatedSVD(n_components=dims, random_state=seed).fit_transform(Xm) if dims >= 2 \
        else Xm.toarray()
    perplexity = float(min(30.0, (len(index) - 1) / 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. sklearn's FutureWarnings about defaults
        # 500 iterations (250 of them early exaggeration) settle the map's layout; the
        # default 1000 doubles the time for little visible change.
        coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                      max_iter=500).fit_transform(Z)
    return index, coords
