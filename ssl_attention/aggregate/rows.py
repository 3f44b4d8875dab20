"""The unit of the metrics data: one ``MetricRow`` per exported value, and the index of whole-image rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ssl_attention.metrics import Score

FUSED = "fused"
BASELINES = ("uniform", "centre_gaussian")
CSV_COLUMNS = ("image", "model", "method", "layer", "head", "metric", "box", "label", "value")

# (model, method, layer, head, metric) -> {image: value}
Key = tuple[str, str, "int | None", str, str]
Index = dict[Key, Mapping[str, float]]  # a dict, or any mapping (atlas.metrics.rows.ImageValues)


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


def rows_from_scores(
    image: str, model: str, method: str, layer: int | None, head: int | str, scores: Iterable[Score]
) -> list[MetricRow]:
    """Rows for the scores of one map; ``head`` is an int, ``"fused"``, or ``""`` (baselines)."""
    return [
        MetricRow(image, model, method, layer, str(head), s.metric, float(s.value), s.box, s.label)
        for s in scores
    ]


def index_rows(rows: Iterable[MetricRow]) -> Index:
    """Whole-image rows (no box) grouped as ``(model, method, layer, head, metric) -> {image: value}``."""
    index: Index = defaultdict(dict)
    for r in rows:
        if r.box is None:
            index[(r.model, r.method, r.layer, r.head, r.metric)][r.image] = r.value
    return dict(index)
