"""Per-image scores of every head for the head viewer: alignment (the primary metric, per head method) and
the head statistics of the npz (``distance``, ``entropy``, ``prefix_mass``).

One model's scores are ``values[layer, score, head, image]`` (float32, NaN where an image has no value,
e.g. no boxes). The site gets one file per head (``atlas.core.layout.head_scores``: ``[score, image]``,
little-endian float32), so a head viewer loads only the head it shows, and the file count grows with
models × layers × heads, never with images. ``order`` is the sort the viewer shows (``head.mjs`` sorts the same way).

The sort by a box label (``LabelSort``, the links of the head x label matrix) has one file per label, not a row
per head file: a label is on some images only, so it keeps the values of those images only, for every head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atlas.core import layout
from atlas.core.manifest import ImageEntry, ModelEntry
from atlas.metrics.data import HEAD_SORT_METRICS, MetricsData
from atlas.site.catalog import Catalog
from ssl_attention.methods import get_method

# head statistics the viewer shows (names of npz arrays [layers, heads]), with their unit
STATISTICS: tuple[tuple[str, str, str], ...] = (
    ("entropy", "attention entropy", "nats"),
    ("distance", "attention distance", "px"),
    ("prefix_mass", "prefix mass (sink)", ""),
)


LABEL_SORT = "label:"  # the head viewer's sort by a box label: ``label:<label>`` (head_labels.mjs)


@dataclass(frozen=True)
class Score:
    """One sortable score of the head viewer."""

    key: str  # "iou:<method>", "<metric>:<method>" (HEAD_SORT_METRICS) or a statistic's name
    label: str
    unit: str
    descending: bool  # its default order: highest first (alignment) or lowest first (entropy: concentrated)
    method: str = ""  # the map method of an alignment score

    def page_data(self) -> dict:
        return {"key": self.key, "label": self.label, "unit": self.unit, "desc": self.descending,
                "method": self.method}


@dataclass(frozen=True)
class LabelSort:
    """The box metric of every head on the images with boxes of one ``label`` (``head_labels``' labels only):
    per image, the head's metric averaged over the label's boxes in it. Images without the label have none."""

    label: str
    methods: tuple[str, ...]
    images: tuple[int, ...]  # indices into ``HeadScores.images``, ascending
    values: np.ndarray  # float32 [methods, layers, heads, images]

    def file_bytes(self) -> bytes:
        """The site file (``atlas.core.layout.head_label_scores``): uint32 ``images``, then float32 ``values``."""
        return (np.asarray(self.images, dtype="<u4").tobytes()
                + np.ascontiguousarray(self.values, dtype="<f4").tobytes())

    def page_data(self) -> dict:
        return {"label": self.label, "methods": list(self.methods), "images": len(self.images)}


@dataclass(frozen=True)
class HeadScores:
    """Every head's per-image scores of one model (images in catalog order, those the model has)."""

    model: ModelEntry
    images: tuple[ImageEntry, ...]
    scores: tuple[Score, ...]
    values: np.ndarray  # float32 [layers, scores, heads, images]
    labels: tuple[LabelSort, ...] = ()  # the sorts by a box label, by label
    box_metric: str = ""  # the labels' metric (summary.json's ``box_metric``)

    def means(self) -> list[list[list[float | None]]]:
        """Mean over images per ``[score][layer][head]`` (None where no image has a value)."""
        with np.errstate(invalid="ignore"):
            counts = np.isfinite(self.values).sum(axis=3)
            sums = np.nansum(self.values.astype(np.float64), axis=3)
            means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        return [[[_json(v) for v in means[layer, s]] for layer in range(means.shape[0])]
                for s in range(means.shape[1])]

    def head_bytes(self, layer: int, head: int) -> bytes:
        """The site file of one head: little-endian float32 ``[score, image]``."""
        return np.ascontiguousarray(self.values[layer, :, head], dtype="<f4").tobytes()


def _json(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def order(values: np.ndarray, descending: bool) -> list[int]:
    """Image indices sorted by ``values`` (highest first if ``descending``), NaN last, ties by index.

    The same order as ``sortedImages`` in ``templates/assets/atlas/head.mjs``.
    """
    finite = [i for i in range(len(values)) if math.isfinite(float(values[i]))]
    finite.sort(key=lambda i: (-float(values[i]) if descending else float(values[i]), i))
    return finite + [i for i in range(len(values)) if not math.isfinite(float(values[i]))]


def head_scores(catalog: Catalog, model: ModelEntry, metrics: MetricsData | None) -> HeadScores:
    """The per-image scores of ``model``'s heads (a model with per-head maps)."""
    images = tuple(i for i in catalog.images if i.id in model.maps)
    primary = metrics.primary if metrics is not None else ""
    scores = [
        Score(f"iou:{method}", f"{primary} of {get_method(method).label}", "", True, method)
        for method in model.head_methods if metrics is not None
    ]
    scores += [Score(name, label, unit, False) for name, label, unit in STATISTICS if name in model.statistics]
    soft = {metric: metrics.head_values(model.name, metric) for metric in HEAD_SORT_METRICS} if metrics else {}
    scores += [Score(f"{metric}:{method}", f"{metric} of {get_method(method).label} (lower is better)", "", False,
                     method) for metric, found in soft.items() for method in model.head_methods if method in found]
    values = np.full((model.layers, len(scores), model.heads, len(images)), np.nan, dtype=np.float32)
    per_method = metrics.head_values(model.name) if metrics is not None else {}
    stat_rows = {s.key: k for k, s in enumerate(scores) if not s.method}
    for n, image in enumerate(images):
        if stat_rows:
            with np.load(catalog.maps_file(model, image.id)) as npz:
                for name, k in stat_rows.items():
                    if name in npz.files:
                        stat = npz[name]
                        values[: stat.shape[0], k, : stat.shape[1], n] = stat[: model.layers, : model.heads]
        for k, score in enumerate(scores):
            source = soft.get(score.key.split(":")[0], per_method) if score.method else {}
            found = source.get(score.method, {}).get(image.id) if score.method else None
            if found is not None:
                layers, heads = min(found.shape[0], model.layers), min(found.shape[1], model.heads)
                values[:layers, k, :heads, n] = found[:layers, :heads]
    labels = _label_sorts(metrics.label_values(model.name), model, images) if metrics is not None else ()
    return HeadScores(model=model, images=images, scores=tuple(scores), values=values, labels=labels,
                      box_metric=metrics.summary.box_metric if metrics is not None else "")


def _label_sorts(found: dict[str, list[tuple[str, str, np.ndarray]]], model: ModelEntry,
                 images: tuple[ImageEntry, ...]) -> tuple[LabelSort, ...]:
    """One ``LabelSort`` per label of ``found`` (``MetricsData.label_values``) with a value on ``images``."""
    at = {image.id: n for n, image in enumerate(images)}
    by_label: dict[str, dict[str, dict[int, np.ndarray]]] = {}
    for method, pairs in found.items():
        if method in model.head_methods:
            for label, image, grid in pairs:
                if image in at:
                    by_label.setdefault(label, {}).setdefault(method, {})[at[image]] = grid
    out = []
    for label in sorted(by_label):
        methods = tuple(m for m in model.head_methods if m in by_label[label])
        kept = sorted({n for m in methods for n in by_label[label][m]})
        values = np.full((len(methods), model.layers, model.heads, len(kept)), np.nan, dtype=np.float32)
        for i, method in enumerate(methods):
            for j, n in enumerate(kept):
                grid = by_label[label][method].get(n)
                if grid is not None:
                    layers, heads = min(grid.shape[0], model.layers), min(grid.shape[1], model.heads)
                    values[i, :layers, :heads, j] = grid[:layers, :heads]
        out.append(LabelSort(label, methods, tuple(kept), values))
    return tuple(out)


def write_head_scores(all_scores: list[HeadScores], site_dir: Path) -> None:
    """The per-head score files of every head viewer into ``site_dir``."""
    for hs in all_scores:
        for layer in range(hs.model.layers):
            for head in range(hs.model.heads):
                path = site_dir / layout.head_scores(hs.model.slug, layer, head)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(hs.head_bytes(layer, head))  # into the partial site, swapped in when complete
        for index, sort in enumerate(hs.labels):
            path = site_dir / layout.head_label_scores(hs.model.slug, index)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(sort.file_bytes())
