"""Scores of ``box_similarity``: each box's similarity maps against that box alone.

For image box ``b`` (manifest order), ``box_similarity[b]`` ``[L, gh, gw]`` is scored with the registry's
per-box metrics (``box_iou@25``, ...) against a target holding box ``b`` only: how well layer l's features
separate the labelled part from the rest of the image. The rows go to the model's metric rows with
method ``box_similarity``, head ``fused`` and the box's index and label; the summary's
``box_similarity`` section holds, per model and metric, the mean over boxes of each layer (and per label)
and the best layer. Neither enters the attention leaderboard, the head tables or the image panels.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from atlas.metrics.rows import ScoreBlock
from ssl_attention.aggregate import FUSED
from ssl_attention.features import BOX_ARRAY
from ssl_attention.metrics import MapGeometry, higher_is_better, metric_columns, score_maps

METHOD = BOX_ARRAY  # the metric rows' method of these scores


def box_similarity_blocks(image_id: str, similarity: np.ndarray, boxes: tuple,
                          geometry: MapGeometry) -> list[ScoreBlock]:
    """One block per box with area: box ``b``'s ``[L, gh, gw]`` maps, the per-box metrics of box ``b``."""
    blocks = []
    for b, box in enumerate(boxes[:len(similarity)]):
        target = geometry.target([box])
        if not target.boxes:  # a box of no area inside the image scores nothing
            continue
        columns = metric_columns(target)
        own = [j for j, (_, index, _) in enumerate(columns) if index is not None]
        values = score_maps(similarity[b], target)[:, own]
        keys = [(layer, FUSED) for layer in range(similarity.shape[1])]
        blocks.append(ScoreBlock(image_id, METHOD, keys, [(columns[j][0], b, box.label) for j in own], values))
    return blocks


def summarise_box_similarity(blocks_of: dict[str, list[ScoreBlock]]) -> list[dict]:
    """Per model and per-box metric: the mean over boxes of each layer, per label too, and the best layer."""
    out = []
    for model, blocks in blocks_of.items():
        mine = [b for b in blocks if b.method == METHOD]
        if not mine:
            continue
        for metric in _metrics(mine):
            per_box, labels = _values(mine, metric)
            stacked = np.stack(per_box)  # [boxes, L]
            mean = _nanmean(stacked)
            out.append({"model": model, "metric": metric, "boxes": len(per_box), "layers": mean,
                        "best_layer": _best(mean, metric),
                        "labels": {label: _nanmean(np.stack(rows)) for label, rows in sorted(labels.items())}})
    return out


def _metrics(blocks: Iterable[ScoreBlock]) -> list[str]:
    names: list[str] = []
    for b in blocks:
        names += [metric for metric, _, _ in b.columns if metric not in names]
    return names


def _values(blocks: list[ScoreBlock], metric: str) -> tuple[list[np.ndarray], dict[str, list[np.ndarray]]]:
    """Each box's per-layer values of ``metric`` (as long as the longest block, NaN-padded), and by label."""
    depth = max(len(b.keys) for b in blocks)
    per_box, labels = [], {}
    for b in blocks:
        for j, (name, _, label) in enumerate(b.columns):
            if name == metric:
                row = np.full(depth, np.nan)
                row[:len(b.keys)] = b.values[:, j]
                per_box.append(row)
                labels.setdefault(label, []).append(row)
    return per_box, labels


def _nanmean(rows: np.ndarray) -> list[float | None]:
    """Column means ignoring NaN, None where a column has no value (JSON-safe)."""
    counts = np.isfinite(rows).sum(axis=0)
    sums = np.where(np.isfinite(rows), rows, 0.0).sum(axis=0)
    return [float(s / c) if c else None for s, c in zip(sums, counts, strict=True)]


def _best(values: list[float | None], metric: str) -> int | None:
    """The layer with the best mean (ties: the lowest layer); None when no layer has a value."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    known = [(sign * v, -layer) for layer, v in enumerate(values) if v is not None]
    return -max(known)[1] if known else None
