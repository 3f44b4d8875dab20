"""Dataset-level summaries of the per-map metrics, and the CSV / JSON writers.

The unit of data is :class:`MetricRow`: one value per image x model x method x layer x head x metric
(plus box index and label for per-box metrics). Baselines are rows with ``method`` in
:data:`BASELINES`, ``layer = None`` and ``head = ""``. All statistics ignore NaN values; means over
images come with a percentile-bootstrap 95 % confidence interval (seeded, so deterministic).
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ssl_attention.metrics import Score

FUSED = "fused"
BASELINES = ("uniform", "centre_gaussian")
CSV_COLUMNS = ("image", "model", "method", "layer", "head", "metric", "box", "label", "value")
DEFAULT_PRIMARY = "iou@25"
DEFAULT_BOX_METRIC = "box_iou@25"
N_BOOT = 2000
CONFIDENCE = 0.95
SEED = 0

# (model, method, layer, head, metric) -> {image: value}
Key = tuple[str, str, "int | None", str, str]
Index = dict[Key, dict[str, float]]


@dataclass(frozen=True)
class MetricRow:
    """One exported value. ``head`` is a head number as text, ``"fused"``, or ``""`` for baselines."""

    image: str
    model: str
    method: str
    layer: int | None
    head: str
    metric: str
    value: float
    box: int | None = None
    label: str = ""


@dataclass(frozen=True)
class Estimate:
    """Mean over ``n`` images (NaN ignored) with its bootstrap confidence interval ``[lo, hi]``."""

    mean: float
    lo: float
    hi: float
    n: int


def rows_from_scores(
    image: str, model: str, method: str, layer: int | None, head: int | str, scores: Iterable[Score]
) -> list[MetricRow]:
    """Rows for the scores of one map; ``head`` is an int, ``"fused"``, or ``""`` (baselines)."""
    return [
        MetricRow(image, model, method, layer, str(head), s.metric, float(s.value), s.box, s.label)
        for s in scores
    ]


# ----------------------------------------------------------------------------- statistics


def bootstrap_ci(
    values: Sequence[float], *, n_boot: int = N_BOOT, confidence: float = CONFIDENCE, seed: int = SEED
) -> Estimate:
    """Mean of the finite ``values`` with a percentile bootstrap CI (resampling values with replacement).

    Deterministic for a given ``seed``. No finite value: all NaN, ``n = 0``; one value: ``lo = hi = mean``.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return Estimate(float(v.mean()), float(lo), float(hi), int(v.size))


def index_rows(rows: Iterable[MetricRow]) -> Index:
    """Whole-image rows (no box) grouped as ``(model, method, layer, head, metric) -> {image: value}``."""
    index: Index = defaultdict(dict)
    for r in rows:
        if r.box is None:
            index[(r.model, r.method, r.layer, r.head, r.metric)][r.image] = r.value
    return dict(index)


def _mean(values: Iterable[float]) -> float:
    v = np.asarray(list(values), dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _argmax_first(values: Sequence[float]) -> int | None:
    """Position of the largest finite value; ties -> first position. None if no finite value."""
    best = None
    for i, v in enumerate(values):
        if math.isfinite(v) and (best is None or v > values[best]):
            best = i
    return best


def _head_sort_key(head: str) -> tuple[int, int]:
    return (1, 0) if not head.isdigit() else (0, int(head))


def best_layer(
    index: Index, model: str, method: str, metric: str = DEFAULT_PRIMARY
) -> tuple[int, float] | None:
    """``(layer, mean)`` of the fused map with the highest mean ``metric``; ties -> lowest layer."""
    layers = sorted(k[2] for k in index if k[:2] == (model, method) and k[3] == FUSED and k[4] == metric)
    means = [_mean(index[(model, method, layer, FUSED, metric)].values()) for layer in layers]
    i = _argmax_first(means)
    return None if i is None else (layers[i], means[i])


def best_head(
    index: Index, model: str, method: str, metric: str = DEFAULT_PRIMARY
) -> tuple[int, str, float] | None:
    """``(layer, head, mean)`` of the single head with the highest mean; ties -> lowest (layer, head).

    None for methods without heads (rollout, Grad-CAM).
    """
    keys = sorted(
        (k for k in index if k[:2] == (model, method) and k[3].isdigit() and k[4] == metric),
        key=lambda k: (k[2], int(k[3])),
    )
    means = [_mean(index[k].values()) for k in keys]
    i = _argmax_first(means)
    return None if i is None else (keys[i][2], keys[i][3], means[i])


def layer_head_table(
    index: Index, model: str, method: str, metric: str = DEFAULT_PRIMARY
) -> tuple[list[int], list[str], np.ndarray]:
    """Mean ``metric`` per layer x head: ``(layers, heads, table[len(layers), len(heads)])``.

    ``heads`` are the head numbers in order, then ``"fused"`` if present; missing cells are NaN.
    """
    keys = [k for k in index if k[:2] == (model, method) and k[4] == metric and k[2] is not None]
    layers = sorted({k[2] for k in keys})
    heads = sorted({k[3] for k in keys}, key=_head_sort_key)
    table = np.full((len(layers), len(heads)), np.nan)
    for k in keys:
        table[layers.index(k[2]), heads.index(k[3])] = _mean(index[k].values())
    return layers, heads, table


@dataclass(frozen=True)
class HeadRank:
    """How a head ranks against the other heads across images (rank 1 = best)."""

    layer: int
    head: str
    mean_rank: float
    top1: int
    top3: int


def head_ranking(
    index: Index, model: str, method: str, metric: str = DEFAULT_PRIMARY, layer: int | None = None
) -> list[HeadRank]:
    """Rank the single heads (all layers, or one ``layer``) on every image, best first.

    Per image the heads are ranked by ``metric`` descending; tied values share the average of their
    ranks; a missing or NaN value ranks last (tied with the other missing ones). ``mean_rank`` averages
    over the images; ``top1`` / ``top3`` count the images where fewer than 1 / 3 heads are strictly
    better. Sorted by mean rank, then (layer, head).
    """
    keys = sorted(
        (
            k
            for k in index
            if k[:2] == (model, method) and k[3].isdigit() and k[4] == metric and layer in (None, k[2])
        ),
        key=lambda k: (k[2], int(k[3])),
    )
    images = sorted({img for k in keys for img in index[k]})
    if not keys or not images:
        return []
    values = np.array([[index[k].get(img, math.nan) for img in images] for k in keys])  # [heads, images]
    values = np.where(np.isfinite(values), values, -np.inf)
    better = (values[None, :, :] > values[:, None, :]).sum(axis=1)  # heads strictly better, per image
    ties = (values[None, :, :] == values[:, None, :]).sum(axis=1)  # including itself
    ranks = better + (ties + 1) / 2
    out = [
        HeadRank(k[2], k[3], float(ranks[i].mean()), int((better[i] < 1).sum()), int((better[i] < 3).sum()))
        for i, k in enumerate(keys)
    ]
    return sorted(out, key=lambda h: (h.mean_rank, h.layer, int(h.head)))


def label_breakdown(
    rows: Iterable[MetricRow],
    metric: str = DEFAULT_BOX_METRIC,
    *,
    select: Mapping[tuple[str, str], tuple[int | None, str]] | None = None,
    ci: bool = True,
) -> dict[tuple[str, str, int | None, str, str], Estimate]:
    """Per-box ``metric`` by label: ``(model, method, layer, head, label) -> Estimate``.

    Boxes of one label in one image are averaged first, so the CI resamples images (boxes of an image
    are not independent). ``select`` restricts each ``(model, method)`` to one ``(layer, head)``.
    """
    per_image: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.box is None or r.metric != metric:
            continue
        if select is not None and select.get((r.model, r.method)) != (r.layer, r.head):
            continue
        per_image[(r.model, r.method, r.layer, r.head, r.label)][r.image].append(r.value)
    out = {}
    for key in sorted(per_image, key=lambda k: tuple(str(x) for x in k)):
        values = [_mean(v) for v in per_image[key].values()]
        out[key] = bootstrap_ci(values) if ci else Estimate(_mean(values), math.nan, math.nan, len(values))
    return out


# ----------------------------------------------------------------------------- head similarity


def head_similarity(maps: np.ndarray) -> np.ndarray:
    """Pearson correlation between heads of their maps across the dataset.

    ``maps``: ``[K heads, N images, ...cells]``. Each map is first standardised on its own image
    (z-score; non-finite cells get the map's finite mean, a constant map becomes all zeros), then each
    head's maps are concatenated and correlated. A head whose maps are all constant has correlation 0
    with every other head (1 with itself). Returns ``[K, K]``.
    """
    maps = np.asarray(maps, dtype=np.float64)
    k, n = maps.shape[:2]
    z = maps.reshape(k, n, -1).copy()
    finite = np.isfinite(z)
    counts = finite.sum(axis=2, keepdims=True)
    fill = np.where(finite, z, 0).sum(axis=2, keepdims=True) / np.maximum(counts, 1)
    z = np.where(finite, z, fill)
    z -= z.mean(axis=2, keepdims=True)
    sd = z.std(axis=2, keepdims=True)
    z = np.divide(z, sd, out=np.zeros_like(z), where=sd > 0).reshape(k, -1)
    z -= z.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(z, axis=1)
    safe = np.where(norm > 0, norm, 1)
    corr = (z @ z.T) / np.outer(safe, safe)
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
    dist = 1.0 - sim
    members: dict[int, list[int]] = {i: [i] for i in range(k)}
    alive = list(range(k))  # cluster ids in creation order
    d = {(a, b): dist[a, b] for a in range(k) for b in range(a + 1, k)}
    merges, labels = [], None
    for step in range(k - 1):
        if len(alive) == n_clusters:
            labels = _labels(members, alive, k)
        a, b = min(((a, b) for i, a in enumerate(alive) for b in alive[i + 1 :]), key=lambda p: d[p])
        new = k + step
        size_a, size_b = len(members[a]), len(members[b])
        for c in alive:
            if c not in (a, b):
                d[(c, new)] = (size_a * d[_pair(a, c)] + size_b * d[_pair(b, c)]) / (size_a + size_b)
        members[new] = members.pop(a) + members.pop(b)
        alive = [c for c in alive if c not in (a, b)] + [new]
        merges.append((a, b, d[(a, b)], size_a + size_b))
    if labels is None:
        labels = _labels(members, alive, k)
    order = members[alive[0]] if len(alive) == 1 else [i for c in alive for i in members[c]]
    return Clustering(np.array(merges, dtype=np.float64).reshape(-1, 4), labels, order)


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def _labels(members: dict[int, list[int]], alive: list[int], k: int) -> np.ndarray:
    labels = np.empty(k, dtype=np.int64)
    for number, c in enumerate(sorted(alive, key=lambda c: min(members[c]))):
        labels[members[c]] = number
    return labels


# ----------------------------------------------------------------------------- export


def write_metrics_csv(rows: Iterable[MetricRow], path: Path) -> None:
    """Tidy CSV with :data:`CSV_COLUMNS`; ``layer``/``box`` empty when None, NaN values empty."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            value = f"{r.value:.7g}" if math.isfinite(r.value) else ""
            writer.writerow(
                [r.image, r.model, r.method, _blank(r.layer), r.head, r.metric, _blank(r.box), r.label, value]
            )


def read_metrics_csv(path: Path) -> list[MetricRow]:
    """Read a CSV written by :func:`write_metrics_csv` back into rows (empty value -> NaN)."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return [_row_of(d) for d in csv.DictReader(f)]


def _row_of(d: dict[str, str]) -> MetricRow:
    value = float(d["value"]) if d["value"] else math.nan
    layer, box = _int_or_none(d["layer"]), _int_or_none(d["box"])
    return MetricRow(
        d["image"], d["model"], d["method"], layer, d["head"], d["metric"], value, box, d["label"]
    )


def _blank(v: int | None) -> str:
    return "" if v is None else str(v)


def _int_or_none(s: str) -> int | None:
    return int(s) if s else None


def _estimate_json(e: Estimate) -> dict[str, Any]:
    return {name: _json_float(v) for name, v in asdict(e).items()}


def _json_float(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _entry(index: Index, model: str, method: str, layer: int | None, head: str) -> dict[str, Any]:
    """One map kind's every metric with its CI, as JSON."""
    names = sorted(k[4] for k in index if k[:4] == (model, method, layer, head))
    metrics = {
        m: _estimate_json(bootstrap_ci(list(index[(model, method, layer, head, m)].values()))) for m in names
    }
    return {"model": model, "method": method, "layer": layer, "head": head, "metrics": metrics}


def _table_json(index: Index, model: str, method: str, metric: str) -> dict[str, Any]:
    layers, heads, table = layer_head_table(index, model, method, metric)
    values = [[_json_float(float(v)) for v in row] for row in table]
    return {
        "model": model,
        "method": method,
        "metric": metric,
        "layers": layers,
        "heads": heads,
        "values": values,
    }


def summarise(
    rows: Sequence[MetricRow], primary: str = DEFAULT_PRIMARY, box_metric: str = DEFAULT_BOX_METRIC
) -> dict[str, Any]:
    """The JSON summary (see the metrics docs page for its layout).

    ``leaderboard``: per model x method the fused map of the best layer by ``primary``, every metric
    with its CI; ``best_heads``: the same for the best single head; ``baselines``; ``tables``: layer x
    head means of ``primary``; ``head_ranking``; ``labels``: ``box_metric`` per label for the
    leaderboard entries. NaN is written as null.
    """
    index = index_rows(rows)
    pairs = sorted({k[:2] for k in index if k[1] not in BASELINES})
    leaderboard, best_heads, ranking, select = [], [], [], {}
    for model, method in pairs:
        layer = best_layer(index, model, method, primary)
        if layer is not None:
            select[(model, method)] = (layer[0], FUSED)
            leaderboard.append(_entry(index, model, method, layer[0], FUSED))
        head = best_head(index, model, method, primary)
        if head is not None:
            best_heads.append(_entry(index, model, method, head[0], head[1]))
            ranks = [asdict(h) for h in head_ranking(index, model, method, primary)]
            ranking.append({"model": model, "method": method, "metric": primary, "heads": ranks})
    baselines = sorted({k[:2] for k in index if k[1] in BASELINES})
    labels = label_breakdown(rows, box_metric, select=select)
    return {
        "format_version": 1,
        "primary_metric": primary,
        "box_metric": box_metric,
        "confidence": CONFIDENCE,
        "n_boot": N_BOOT,
        "seed": SEED,
        "n_images": len({r.image for r in rows}),
        "leaderboard": leaderboard,
        "best_heads": best_heads,
        "baselines": [_entry(index, model, method, None, "") for model, method in baselines],
        "tables": [_table_json(index, model, method, primary) for model, method in pairs],
        "head_ranking": ranking,
        "labels": [
            {"model": k[0], "method": k[1], "layer": k[2], "head": k[3], "label": k[4], **_estimate_json(e)}
            for k, e in labels.items()
        ],
    }


def write_summary_json(summary: Mapping[str, Any], path: Path) -> None:
    """Write :func:`summarise`'s dict as strict JSON (no NaN tokens), pretty-printed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n", encoding="utf-8")
