"""Text grounding: per box label, the map of that label's prompt scored against that label's boxes only.

For a model whose gradient maps (relevance, ViT Grad-CAM) are per prompt, each image contributes one
score per label among its boxes: the map of the prompt asking for the label (``label_of_prompt``)
against the union of the boxes with that label, at the usual metrics (IoU of the top p % of pixels,
pointing game). The summary gives per label, and over all (image, label) pairs, the mean with its
bootstrap CI.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ssl_attention.aggregate.statistics import bootstrap_ci
from ssl_attention.annotations import Box
from ssl_attention.metrics import MapGeometry, metric_columns, score_maps
from ssl_attention.prompts import label_of_prompt

GROUNDING_METRICS = ("iou@25", "pointing")
ALL_LABELS = ""  # the label of the row over every (image, label) pair


@dataclass(frozen=True)
class GroundingRow:
    """One score: the map of ``prompt`` on ``image`` against the boxes labelled ``label``."""

    image: str
    model: str
    method: str
    label: str
    prompt: str
    metric: str
    value: float


def prompts_by_label(targets: Sequence[str], labels: Iterable[str]) -> dict[str, int]:
    """label -> index of its prompt among ``targets`` (labels no prompt asks for are left out)."""
    out: dict[str, int] = {}
    labels = sorted(set(labels))
    for index, prompt in enumerate(targets):
        label = label_of_prompt(prompt, labels)
        if label is not None and label not in out:
            out[label] = index
    return out


def ground_image(image: str, model: str, method: str, maps: np.ndarray, targets: Sequence[str],
                 boxes: Sequence[Box], geometry: MapGeometry) -> list[GroundingRow]:
    """The grounding rows of one image: ``maps`` [targets, gh, gw] lying on the image as ``geometry`` says."""
    rows = []
    for label, index in sorted(prompts_by_label(targets, [b.label for b in boxes]).items()):
        target = geometry.target([b for b in boxes if b.label == label])
        columns = metric_columns(target)
        values = score_maps(maps[index:index + 1], target, transport=0)[0]  # no emd: not a grounding metric
        for (metric, box, _), value in zip(columns, values.tolist(), strict=True):
            if box is None and metric in GROUNDING_METRICS:
                rows.append(GroundingRow(image, model, method, label, targets[index], metric, float(value)))
    return rows


def summarise_grounding(rows: Sequence[GroundingRow]) -> list[dict[str, Any]]:
    """Per model x method: one entry per label and one over all labels (``label`` ""), each metric's
    mean over images with its bootstrap CI (``{mean, lo, hi, n}``, NaN as None)."""
    groups: dict[tuple[str, str, str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        for key in ((row.model, row.method, row.label, row.prompt), (row.model, row.method, ALL_LABELS, "")):
            groups[key][row.metric].append(row.value)
    out = []
    for (model, method, label, prompt), metrics in sorted(groups.items()):
        estimates = {}
        for metric in GROUNDING_METRICS:
            e = bootstrap_ci(metrics.get(metric, []))
            estimates[metric] = {k: (None if v != v else v) for k, v in
                                 (("mean", e.mean), ("lo", e.lo), ("hi", e.hi))} | {"n": e.n}
        out.append({"model": model, "method": method, "label": label, "prompt": prompt, "metrics": estimates})
    return out
