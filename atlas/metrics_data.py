"""The metrics stage's output (``BUILD/metrics``) as read by the site stage.

``summary.json`` (parsed into :class:`atlas.metrics_summary.Summary`) feeds the leaderboard and the
per-model metric pages; the per-model CSVs feed the per-image metric panel (fused map and best head
of every layer, plus the image's baselines).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlas.metrics_summary import Summary
from ssl_attention.aggregate import BASELINES, FUSED
from ssl_attention.metrics import MetricConfig

METRICS_DIR = "metrics"
SUMMARY_FILE = "summary.json"


@dataclass
class ImageScores:
    """Whole-image scores of one model on one image: ``maps[(method, layer, head)] = {metric: value}``."""

    maps: dict[tuple[str, int | None, str], dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricsData:
    """Everything the pages need from ``BUILD/metrics``."""

    summary: Summary
    files: dict[str, Path]  # model name (or ``summary``) -> exported file
    scores: dict[str, dict[str, ImageScores]]  # model name -> image id -> scores

    @property
    def primary(self) -> str:
        return self.summary.primary

    def metric_names(self) -> list[str]:
        """Whole-image metric names in the documented order (then any other names in the summary)."""
        known = MetricConfig().names()
        seen = {m for e in self.summary.leaderboard for m in e.metrics}
        return [m for m in known if m in seen or not seen] + sorted(seen - set(known))


def load_metrics(build_dir: Path) -> MetricsData | None:
    """Read ``build_dir/metrics``; None when the metrics stage did not run (no summary)."""
    out = Path(build_dir) / METRICS_DIR
    summary_path = out / SUMMARY_FILE
    if not summary_path.is_file():
        return None
    summary = Summary.from_json(json.loads(summary_path.read_text(encoding="utf-8")))
    files: dict[str, Path] = {"summary": summary_path}
    scores: dict[str, dict[str, ImageScores]] = {}
    for path in sorted(out.glob("*.csv")):
        for model, per_image in _read_scores(path).items():
            scores.setdefault(model, {}).update(per_image)
            files[model] = path
    return MetricsData(summary=summary, files=files, scores=scores)


def _read_scores(path: Path) -> dict[str, dict[str, ImageScores]]:
    """Whole-image rows of one tidy CSV (per-box rows skipped), grouped by model and image."""
    out: dict[str, dict[str, ImageScores]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        columns = {name: i for i, name in enumerate(next(reader, []))}
        get = [columns[c] for c in ("image", "model", "method", "layer", "head", "metric", "box", "value")]
        for row in reader:
            image, model, method, layer, head, metric, box, value = (row[i] for i in get)
            if box:
                continue
            scores = out.setdefault(model, {}).setdefault(image, ImageScores())
            key = (method, int(layer) if layer else None, head)
            scores.maps.setdefault(key, {})[metric] = float(value) if value else math.nan
    return out


def _json_value(v: float) -> float | None:
    """The CSV value as it is (rounding again here would round twice on the page), None for NaN."""
    return v if math.isfinite(v) else None


def best_head_of(scores: ImageScores, method: str, layer: int, metric: str) -> str | None:
    """The head of ``layer`` with the highest ``metric`` on this image; ties -> lowest head number."""
    best, best_value = None, -math.inf
    heads = sorted((k[2] for k in scores.maps if k[:2] == (method, layer) and k[2].isdigit()), key=int)
    for head in heads:
        v = scores.maps[(method, layer, head)].get(metric, math.nan)
        if math.isfinite(v) and v > best_value:
            best, best_value = head, v
    return best


def image_panel(scores: ImageScores, names: list[str], primary: str) -> dict[str, Any]:
    """Compact JSON of one model on one image for the image page's metric panel (``image/panel.mjs``).

    ``{"baselines": {name: [values]}, "methods": {method: [{"f": [values], "h": head, "b": [values]}
    per layer]}}``; values follow ``names``; ``h``/``b`` only where the method has heads.
    """

    def values(key: tuple[str, int | None, str]) -> list[float | None]:
        found = scores.maps.get(key, {})
        return [_json_value(found.get(n, math.nan)) for n in names]

    methods: dict[str, list[dict[str, Any]]] = {}
    for method, layer in sorted({(k[0], k[1]) for k in scores.maps if k[0] not in BASELINES}):
        per_layer = methods.setdefault(method, [])
        per_layer += [{"f": [None] * len(names)}] * (layer + 1 - len(per_layer))
        entry: dict[str, Any] = {"f": values((method, layer, FUSED))}
        head = best_head_of(scores, method, layer, primary)
        if head is not None:
            entry.update(h=int(head), b=values((method, layer, head)))
        per_layer[layer] = entry
    baselines = {b: values((b, None, "")) for b in BASELINES if (b, None, "") in scores.maps}
    return {"baselines": baselines, "methods": methods}
