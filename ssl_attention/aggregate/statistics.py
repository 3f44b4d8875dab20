"""Means over images with bootstrap CIs, best layers and heads, layer x head tables, rankings, labels."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ssl_attention.aggregate.rows import FUSED, Index, MetricRow
from ssl_attention.metrics import higher_is_better

DEFAULT_PRIMARY = "iou@25"
DEFAULT_BOX_METRIC = "box_iou@25"
N_BOOT = 2000
CONFIDENCE = 0.95
SEED = 0


@dataclass(frozen=True)
class Estimate:
    """Mean over ``n`` images (NaN ignored) with its bootstrap confidence interval ``[lo, hi]``."""

    mean: float
    lo: float
    hi: float
    n: int


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


def _mean(values: Iterable[float]) -> float:
    v = np.asarray(list(values), dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _argmax_first(values: Sequence[float], higher: bool = True) -> int | None:
    """Position of the largest finite value (the smallest unless ``higher``); ties -> first position. None if
    no finite value."""
    best = None
    for i, v in enumerate(values):
        if math.isfinite(v) and (best is None or (v > values[best] if higher else v < values[best])):
            best = i
    return best


def _head_sort_key(head: str) -> tuple[int, int]:
    return (1, 0) if not head.isdigit() else (0, int(head))


def best_layer(
    index: Index, model: str, method: str, metric: str = DEFAULT_PRIMARY
) -> tuple[int, float] | None:
    """``(layer, mean)`` of the fused map with the best mean ``metric`` (the highest, or the lowest for a
    metric registered as lower-is-better); ties -> lowest layer."""
    layers = sorted(k[2] for k in index if k[:2] == (model, method) and k[3] == FUSED and k[4] == metric)
    means = [_mean(index[(model, method, layer, FUSED, metric)].values()) for layer in layers]
    i = _argmax_first(means, higher_is_better(metric))
    return None if i is None else (layers[i], means[i])


def best_head(
    index: Index, model: str, method: str, metric: str = DEFAULT_PRIMARY
) -> tuple[int, str, float] | None:
    """``(layer, head, mean)`` of the single head with the best mean (as ``best_layer``); ties -> lowest
    (layer, head).

    None for methods without heads (rollout, Grad-CAM).
    """
    keys = sorted(
        (k for k in index if k[:2] == (model, method) and k[3].isdigit() and k[4] == metric),
        key=lambda k: (k[2], int(k[3])),
    )
    means = [_mean(index[k].values()) for k in keys]
    i = _argmax_first(means, higher_is_better(metric))
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


def _image_row(values: Mapping[str, float], images: list[str]) -> list[float]:
    """``values`` of each of ``images`` (NaN where missing); read in one go where the images are its own."""
    if list(values) == images:
        return list(values.values())
    return [values.get(img, math.nan) for img in images]


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

    Per image the heads are ranked by ``metric``, best first (descending, or ascending for a metric
    registered as lower-is-better); tied values share the average of their ranks; a missing or NaN value
    ranks last (tied with the other missing ones). ``mean_rank`` averages over the images; ``top1`` /
    ``top3`` count the images where fewer than 1 / 3 heads are strictly better. Sorted by mean rank, then
    (layer, head).
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
    values = np.array([_image_row(index[k], images) for k in keys])  # [heads, images]
    values = np.where(np.isfinite(values), values if higher_is_better(metric) else -values, -np.inf)
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
