"""How alike the heads' maps are across the dataset, and a deterministic clustering of the heads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def head_similarity(maps: np.ndarray) -> np.ndarray:
    """Pearson correlation between heads of their maps across the dataset.

    ``maps``: ``[K heads, N images, ...cells]``. Each map is first standardised on its own image
    (z-score; non-finite cells get the map's finite mean, a constant map becomes all zeros), then each
    head's maps are concatenated and correlated. A head whose maps are all constant has correlation 0
    with every other head (1 with itself). Returns ``[K, K]``.
    """
    maps = np.asarray(maps, dtype=np.float64)
    k, n = maps.shape[:2]
    return similarity_from_gram(head_gram(maps.reshape(k, n, -1).transpose(1, 0, 2)[:, None])[0])


def head_gram(maps: np.ndarray) -> np.ndarray:
    """``[L, K, K]`` sums over images of the products of the heads' standardised maps (see
    ``head_similarity``), from ``[N images, L layers, K heads, ...cells]`` maps: the per-image sums add
    up, so a dataset's Gram matrices are built one image at a time (``similarity_from_gram``)."""
    maps = np.asarray(maps, dtype=np.float64)
    z = maps.reshape(*maps.shape[:3], -1).copy()
    finite = np.isfinite(z)
    counts = finite.sum(axis=3, keepdims=True)
    fill = np.where(finite, z, 0).sum(axis=3, keepdims=True) / np.maximum(counts, 1)
    z = np.where(finite, z, fill)
    z -= z.mean(axis=3, keepdims=True)
    sd = z.std(axis=3, keepdims=True)
    z = np.divide(z, sd, out=np.zeros_like(z), where=sd > 0)
    return np.einsum("nlkc,nljc->lkj", z, z)


def similarity_from_gram(gram: np.ndarray) -> np.ndarray:
    """The ``[K, K]`` head correlation of ``head_similarity`` from the heads' summed Gram matrix.

    The standardised maps have mean 0, so their Gram matrix gives the Pearson correlation directly.
    """
    norm = np.sqrt(np.clip(np.diag(gram), 0, None))
    safe = np.where(norm > 0, norm, 1)
    corr = gram / np.outer(safe, safe)
    corr[norm == 0, :] = 0
    corr[:, norm == 0] = 0
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


@dataclass(frozen=True)
class Clustering:
    """Agglomerative clustering: ``merges[i] = (a, b, distance, size)`` like scipy's linkage matrix
    (cluster ``K + i`` is born at step ``i``), ``labels`` per head, ``order`` = dendrogram leaf order."""

    merges: np.ndarray
    labels: np.ndarray
    order: list[int]


def cluster_heads(similarity: np.ndarray, n_clusters: int) -> Clustering:
    """Average-linkage clustering of heads on the distance ``1 - similarity`` (NaN similarity -> 0).

    Deterministic: each step merges the closest pair of clusters, ties -> the pair with the lowest
    ``(i, j)`` in the order the clusters were created. ``labels`` come from stopping at
    ``n_clusters`` clusters, numbered 0.. by their smallest member head.
    """
    sim = np.nan_to_num(np.asarray(similarity, dtype=np.float64), nan=0.0)
    k = sim.shape[0]
    if not 1 <= n_clusters <= max(k, 1):
        raise ValueError(f"n_clusters must be in [1, {k}], got {n_clusters}")
    upper = np.triu_indices(k, 1)
    d = np.full((max(2 * k - 1, 1),) * 2, np.inf)  # distances between cluster ids (the upper triangle of 1 - sim)
    d[upper] = d[upper[::-1]] = 1.0 - sim[upper]
    members: dict[int, list[int]] = {i: [i] for i in range(k)}
    alive = list(range(k))  # cluster ids in creation order (ascending)
    merges, labels = [], None
    for step in range(k - 1):
        if len(alive) == n_clusters:
            labels = _labels(members, alive, k)
        ids = np.array(alive)
        pairs = d[np.ix_(ids, ids)]
        pairs[np.tril_indices(len(ids))] = np.inf  # each pair once, (earlier, later)
        i, j = divmod(int(np.argmin(pairs)), len(ids))  # the first minimum in row-major order: ties -> lowest (i, j)
        a, b, new = alive[i], alive[j], k + step
        size_a, size_b = len(members[a]), len(members[b])
        others = ids[(ids != a) & (ids != b)]
        d[new, others] = d[others, new] = (size_a * d[a, others] + size_b * d[b, others]) / (size_a + size_b)
        members[new] = members.pop(a) + members.pop(b)
        alive = [c for c in alive if c not in (a, b)] + [new]
        merges.append((a, b, d[a, b], size_a + size_b))
    if labels is None:
        labels = _labels(members, alive, k)
    order = members[alive[0]] if len(alive) == 1 else [i for c in alive for i in members[c]]
    return Clustering(np.array(merges, dtype=np.float64).reshape(-1, 4), labels, order)


def _labels(members: dict[int, list[int]], alive: list[int], k: int) -> np.ndarray:
    labels = np.empty(k, dtype=np.int64)
    for number, c in enumerate(sorted(alive, key=lambda c: min(members[c]))):
        labels[members[c]] = number
    return labels


def feature_distances(features: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[K, K]`` between heads described by ``features`` ``[K heads, F]``.

    Each feature is first standardised across the heads (z-score; a constant or non-finite feature
    contributes 0), so that e.g. a distance in pixels and an entropy in nats weigh the same.
    """
    f = np.asarray(features, dtype=np.float64)
    finite = np.isfinite(f)
    count = finite.sum(axis=0)
    mean = np.where(finite, f, 0).sum(axis=0) / np.maximum(count, 1)
    centred = np.where(finite, f - mean, 0.0)
    sd = np.sqrt((centred**2).sum(axis=0) / np.maximum(count, 1))
    z = np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)
    diff = z[:, None, :] - z[None, :, :]
    return np.sqrt((diff**2).sum(axis=2))


def cluster_by_features(features: np.ndarray, n_clusters: int) -> Clustering:
    """Average-linkage clustering (``cluster_heads``) of heads on ``feature_distances(features)``."""
    return cluster_heads(1.0 - feature_distances(features), n_clusters)
