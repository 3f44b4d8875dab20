"""The metrics stage's output (``BUILD/metrics``) as read by the site stage.

``summary.json`` (parsed into :class:`atlas.metrics.summary.Summary`) feeds the leaderboard and the
per-model metric pages; ``panels.json`` the per-image metric panels (fused map and best head of every
layer, plus the image's baselines), computed by the metrics stage (``atlas.metrics.rows.image_panel``).
The per-image rows (``<model>.parquet`` or ``.csv.gz``) stay in the build folder: the site does not
read or publish them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from atlas.core.build_dir import BuildDir
from atlas.metrics.summary import Summary
from ssl_attention.metrics import MetricConfig

PANELS_FILE = "panels.json"
HEADS_SUFFIX = ".heads.npz"  # per model: the primary metric of every head on every image (the head viewer)
HEAD_SORT_METRICS = ("mse", "kl")  # the head viewer's other sorts: arrays ``<method>@<metric>`` of that file
# the head viewer's sort by a box label: per method, the box metric of every head on each (label, image) pair
# of head_labels' labels (``atlas.metrics.breakdowns.label_head_values``): ``<method>@label_values``
# float32 [pairs, layers, heads], ``<method>@label_names`` and ``<method>@label_images`` (the pairs)
LABEL_ARRAYS = ("@label_values", "@label_names", "@label_images")


def panel_metric_names(seen: set[str]) -> list[str]:
    """Whole-image metric names in the documented order (then any other names ``seen`` in the summary)."""
    known = MetricConfig().names()
    return [m for m in known if m in seen or not seen] + sorted(seen - set(known))


@dataclass(frozen=True)
class MetricsData:
    """Everything the pages need from ``BUILD/metrics``."""

    summary: Summary
    files: dict[str, Path]  # ``summary`` -> summary.json
    panels: dict[str, dict[str, dict[str, Any]]]  # model name -> image id -> panel JSON
    heads: dict[str, Path] = field(default_factory=dict)  # model name -> its HEADS_SUFFIX file

    def head_values(self, model: str, metric: str | None = None) -> dict[str, dict[str, np.ndarray]]:
        """Per method with heads: image id -> the primary metric (or one of ``HEAD_SORT_METRICS``) of every
        head ``[layers, heads]``."""
        path = self.heads.get(model)
        if path is None:
            return {}
        suffix = f"@{metric}" if metric else ""
        with np.load(path, allow_pickle=False) as data:
            return {name.removesuffix(suffix): dict(zip(data[f"images_{name.removesuffix(suffix)}"].tolist(),
                                                        np.moveaxis(data[name], 2, 0), strict=True))
                    for name in data.files if not name.startswith("images_")
                    and (name.endswith(suffix) if suffix else "@" not in name)}

    def label_values(self, model: str) -> dict[str, list[tuple[str, str, np.ndarray]]]:
        """Per method with heads: ``(label, image id, [layers, heads])`` of every (label, image) pair of the
        labels ``head_labels`` lists: each head's box metric averaged over the label's boxes in the image."""
        path = self.heads.get(model)
        if path is None:
            return {}
        values, names, images = LABEL_ARRAYS
        with np.load(path, allow_pickle=False) as data:
            methods = [name.removesuffix(values) for name in data.files if name.endswith(values)]
            return {m: list(zip(data[m + names].tolist(), data[m + images].tolist(), data[m + values], strict=True))
                    for m in methods}

    @property
    def primary(self) -> str:
        return self.summary.primary

    def metric_names(self) -> list[str]:
        """Whole-image metric names in the documented order (then any other names in the summary)."""
        return panel_metric_names({m for e in self.summary.leaderboard for m in e.metrics})


def load_metrics(build_dir: Path) -> MetricsData | None:
    """Read ``build_dir/metrics``; None when the metrics stage did not run (no summary)."""
    paths = BuildDir(Path(build_dir))
    out, summary_path = paths.metrics, paths.summary
    if not summary_path.is_file():
        return None
    summary = Summary.from_json(json.loads(summary_path.read_text(encoding="utf-8")))
    panels_path = out / PANELS_FILE
    panels = json.loads(panels_path.read_text(encoding="utf-8")) if panels_path.is_file() else {}
    heads = {p.name[: -len(HEADS_SUFFIX)]: p for p in out.glob(f"*{HEADS_SUFFIX}")}
    return MetricsData(summary=summary, files={"summary": summary_path}, panels=panels, heads=heads)


def write_head_values(heads: dict[str, tuple[list[str], np.ndarray]], path: Path,
                      labels: dict[str, tuple[list[str], list[str], np.ndarray]] | None = None) -> None:
    """Write ``atlas.metrics.rows.head_values`` of one model (read back by ``MetricsData.head_values``) and
    its ``labels`` (``atlas.metrics.breakdowns.label_head_values``, read back by ``MetricsData.label_values``)."""
    arrays = {}
    for method, (names, images, values) in (labels or {}).items():
        for suffix, array in zip(LABEL_ARRAYS, (values, np.array(names, dtype=str), np.array(images, dtype=str)),
                                 strict=True):
            arrays[method + suffix] = array
    for method, (images, values) in heads.items():
        arrays[method] = values
        if "@" not in method:  # ``<method>@<metric>``: the method's images
            arrays[f"images_{method}"] = np.array(images, dtype=str)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


