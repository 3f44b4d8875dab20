"""Two breakdowns of ``summary.json`` (issue 27): the head x label matrix and the leaderboard per tag.

* ``head_labels``: per model x method and label, the layer x head table (shaped like ``tables``: head numbers
  then ``fused``) of the box metric: each map's per-box values averaged over the label's boxes within an
  image, then over the images (NaN ignored, as the per-label summary does); at most ``MAX_HEAD_LABELS``
  labels per model x method, those on the most images. ``label_head_values`` keeps the per-image step of
  those labels (the head viewer's sort by a label: ``atlas.site.head_scores.LabelSort``).
* ``tags``: per image tag (WikiChurches styles, COCO image tags), every leaderboard entry's primary and
  lower-is-better (threshold-free) metrics over the images with that tag, with bootstrap CIs; ``few``
  marks tags with fewer than :data:`FEW_IMAGES` images.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from atlas.metrics.rows import ScoreBlock, _csv_value
from ssl_attention.aggregate import BASELINES, FUSED, Index, bootstrap_ci
from ssl_attention.metrics import higher_is_better

FEW_IMAGES = 3  # a tag with fewer images is flagged (its means say little)
MAX_HEAD_LABELS = 100  # head_labels keeps, per model x method, the labels on the most images (156 values each)


def _head_key(head: str) -> tuple[int, int]:
    return (1, 0) if not head.isdigit() else (0, int(head))


def _json(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _label_means(block: ScoreBlock, metric: str) -> dict[str, np.ndarray]:
    """Per label: the mean over its boxes in this image of ``metric``, for each map ``[maps]`` (NaN ignored)."""
    at: dict[str, list[int]] = {}
    for j, (name, box, label) in enumerate(block.columns):
        if box is not None and name == metric:
            at.setdefault(label, []).append(j)
    out = {}
    for label, cols in at.items():
        values = block.values[:, cols]
        finite = np.isfinite(values)
        count = finite.sum(axis=1)
        total = np.where(finite, values, 0.0).sum(axis=1)
        out[label] = np.divide(total, count, out=np.full(len(total), math.nan), where=count > 0)
    return out


def head_labels(blocks_of: Mapping[str, Sequence[ScoreBlock]], metric: str) -> list[dict[str, Any]]:
    """The ``head_labels`` section: one entry per (model, method, label) in that order (labels sorted)."""
    out = []
    for model, blocks in blocks_of.items():
        sums: dict[tuple[str, str], dict[tuple[int, str], list[float]]] = {}  # (method, label) -> map -> [sum, n]
        images: dict[tuple[str, str], int] = {}  # (method, label) -> images with boxes of the label
        for b in blocks:
            if b.method in BASELINES:
                continue
            for label, means in _label_means(b, metric).items():
                images[(b.method, label)] = images.get((b.method, label), 0) + 1
                cells = sums.setdefault((b.method, label), {})
                for (layer, head), v in zip(b.keys, means.tolist(), strict=True):
                    if layer is not None and math.isfinite(v):
                        cell = cells.setdefault((layer, head), [0.0, 0])
                        cell[0] += v
                        cell[1] += 1
                    elif layer is not None:
                        cells.setdefault((layer, head), [0.0, 0])
        for method, label in _frequent(images):
            cells = sums[(method, label)]
            layers = sorted({layer for layer, _ in cells})
            heads = sorted({head for _, head in cells}, key=_head_key)
            values = [[_json(cells[(layer, head)][0] / cells[(layer, head)][1])
                       if (layer, head) in cells and cells[(layer, head)][1] else None for head in heads]
                      for layer in layers]
            out.append({"model": model, "method": method, "metric": metric, "label": label,
                        "layers": layers, "heads": heads, "values": values})
    return out


def label_head_values(blocks: Sequence[ScoreBlock], metric: str, kept: Collection[tuple[str, str]]
                      ) -> dict[str, tuple[list[str], list[str], np.ndarray]]:
    """Per method with per-head maps: the (label, image) pairs of the ``kept`` (method, label) pairs (those
    ``head_labels`` lists) and float32 ``[pairs, layers, heads]``: each head's ``metric`` averaged over the
    label's boxes in that image, the values ``head_labels`` then averages over the images."""
    found: dict[str, list[tuple[str, str, list[tuple[int, int, float]]]]] = {}
    for b in blocks:
        heads = [(i, layer, int(head)) for i, (layer, head) in enumerate(b.keys)
                 if layer is not None and head.isdigit()]
        if not heads or b.method in BASELINES:
            continue
        for label, means in sorted(_label_means(b, metric).items()):
            if (b.method, label) in kept:
                cells = [(layer, head, float(means[i])) for i, layer, head in heads]
                found.setdefault(b.method, []).append((label, b.image, cells))
    out = {}
    for method, pairs in found.items():
        layers = 1 + max(layer for _, _, cells in pairs for layer, _, _ in cells)
        count = 1 + max(head for _, _, cells in pairs for _, head, _ in cells)
        values = np.full((len(pairs), layers, count), np.nan, dtype=np.float32)
        for n, (_, _, cells) in enumerate(pairs):
            for layer, head, v in cells:
                values[n, layer, head] = v
        out[method] = ([label for label, _, _ in pairs], [image for _, image, _ in pairs], values)
    return out


def _frequent(images: Mapping[tuple[str, str], int]) -> list[tuple[str, str]]:
    """(method, label) pairs, sorted, keeping per method the ``MAX_HEAD_LABELS`` labels on the most images
    (ties: by label)."""
    kept = []
    for method in sorted({m for m, _ in images}):
        labels = sorted((label for m, label in images if m == method), key=lambda x: (-images[(method, x)], x))
        kept += [(method, label) for label in sorted(labels[:MAX_HEAD_LABELS])]
    return kept


def _estimate(values: list[float]) -> dict[str, Any]:
    e = bootstrap_ci(values)
    return {"mean": _json(e.mean), "lo": _json(e.lo), "hi": _json(e.hi), "n": e.n}


def _tag_metrics(names: Sequence[str], primary: str) -> list[str]:
    """The metrics of the tag breakdown: the primary and the lower-is-better (threshold-free) ones, which
    the leaderboard's tag table shows (a bootstrap per tag, entry and metric: not every metric)."""
    return [m for m in names if m == primary or not higher_is_better(m)]


def tag_breakdown(index: Index, leaderboard: Sequence[Mapping[str, Any]],
                  tags_of: Mapping[str, Sequence[str]], primary: str) -> list[dict[str, Any]]:
    """The ``tags`` section: per tag (sorted) of the scored images ``tags_of`` (image -> its tags), its image
    count, ``few`` and each leaderboard entry's ``primary`` and lower-is-better metrics over the tag's images."""
    images_of: dict[str, list[str]] = {}
    for image in sorted(tags_of):
        for tag in tags_of.get(image, ()):
            images_of.setdefault(tag, []).append(image)
    out = []
    for tag in sorted(images_of):
        images = images_of[tag]
        entries = []
        for e in leaderboard:
            key = (e["model"], e["method"], e["layer"], e.get("head", FUSED))
            metrics = {}
            for name in _tag_metrics(e["metrics"], primary):
                values = index.get((*key, name), {})
                metrics[name] = _estimate([values[i] for i in images if i in values])
            entries.append({"model": e["model"], "method": e["method"], "layer": e["layer"],
                            "head": e.get("head", FUSED), "metrics": metrics})
        out.append({"tag": tag, "n_images": len(images), "few": len(images) < FEW_IMAGES, "entries": entries})
    return out


def box_panel(blocks: Sequence[ScoreBlock]) -> dict[str, Any] | None:
    """The image page's per-box metrics of one model on one image (``panels.json``'s ``boxes``): ``{"names":
    [box metric], "labels": [label of each box], "methods": {method: [per layer: [per box: [values]]]}}`` of
    the fused maps, values as the panel rounds them (None for NaN); None without boxes."""
    maps = [b for b in blocks if b.method not in BASELINES]
    if not maps:
        return None
    first = maps[0].columns
    names = list(dict.fromkeys(name for name, box, _ in first if box is not None))
    labels: dict[int, str] = {box: label for _, box, label in first if box is not None}
    if not labels:
        return None
    methods: dict[str, list] = {}
    for b in sorted(maps, key=lambda b: b.method):
        at = {(name, box): j for j, (name, box, _) in enumerate(b.columns) if box is not None}
        fused = {layer: i for i, (layer, head) in enumerate(b.keys) if head == FUSED and layer is not None}
        if not fused:
            continue
        per_layer: list = [None] * (max(fused) + 1)
        for layer, i in fused.items():
            per_layer[layer] = [[_csv_value(b.values[i, at[(name, box)]]) if (name, box) in at else None
                                 for name in names] for box in sorted(labels)]
        methods[b.method] = per_layer
    return {"names": names, "labels": [labels[box] for box in sorted(labels)], "methods": methods}
