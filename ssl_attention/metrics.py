"""Alignment of one raw attention map with the expert boxes of its image.

Geometry: a map ``[gh, gw]`` belongs to a model whose input is ``gh*patch x gw*patch`` pixels; the whole
image (``W x H`` as the user sees it) was resized to that input, never cropped. Boxes are rescaled from
image pixels to input pixels and their union rasterised with :func:`~ssl_attention.annotations.box_mask`;
each map cell is the ``patch x patch`` block of input pixels under it. Metrics (names as exported):

* ``iou@p`` (p in 10, 15, 20, 25, 30, 40, 50): IoU between the pixels of the top-p % cells
  (:func:`~ssl_attention.thresholds.top_percent_mask`, the page's threshold view) and the box union.
* ``iou_mass@60``: the same for the cells of the mass rule
  (:func:`~ssl_attention.thresholds.mass_threshold_mask`).
* ``coverage``: share of the attention mass inside the box union, each cell's mass spread uniformly
  over its pixels; the mass is the map with NaN/negative values set to 0 (see ``mass_values``).
* ``pointing`` / ``pointing@15px``: whether the centre of the argmax cell, in original image pixels,
  lies in the box union (half-open boxes, like :func:`box_mask`) / within 15 px (Euclidean) of a box.
  With tied maxima the score is the share of tied cells that hit, i.e. the expected hit rate when the
  tie is broken at random (0 or 1 for a unique maximum).
* ``box_iou@p``, ``box_coverage``: the same IoU / coverage against each single box (label breakdown).

Edge cases (never an exception for map values):

* NaN ranks as ``-inf`` and carries no mass; ``+inf`` ranks first and, when present, carries all mass.
* A map without any value above ``-inf`` (all NaN / ``-inf``) gives NaN for every metric.
* A map without positive mass (e.g. all zeros) gives NaN ``coverage``/``iou_mass``; its ranking
  metrics are still computed with the tie-break rules, exactly as the page shows them.
* An image without boxes gives no scores at all (an empty list: rows are absent, not NaN).
* Boxes are clamped to the image first, so parts outside the image never count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ssl_attention.annotations import Box, box_mask, clamp_box, rescale_boxes
from ssl_attention.thresholds import (
    DEFAULT_MASS,
    descending_rows,
    mass_threshold_mask,
    mass_threshold_masks,
    mass_value_rows,
    top_k,
)

DEFAULT_PERCENTS: tuple[float, ...] = (10, 15, 20, 25, 30, 40, 50)
DEFAULT_TOLERANCE_PX = 15.0
GAUSSIAN_SIGMA = 0.25  # centre-Gaussian baseline: sigma = this fraction of the grid height / width


@dataclass(frozen=True)
class MetricConfig:
    """Which metrics to compute; the defaults are the ones documented on the metrics page."""

    percents: tuple[float, ...] = DEFAULT_PERCENTS
    mass: float = DEFAULT_MASS
    tolerance_px: float = DEFAULT_TOLERANCE_PX
    box_percents: tuple[float, ...] = (25,)

    def names(self) -> list[str]:
        """Names of the whole-image metrics, in output order."""
        return [
            *(f"iou@{p:g}" for p in self.percents),
            f"iou_mass@{self.mass * 100:g}",
            "coverage",
            "pointing",
            f"pointing@{self.tolerance_px:g}px",
        ]

    def box_names(self) -> list[str]:
        """Names of the per-box metrics, in output order."""
        return [*(f"box_iou@{p:g}" for p in self.box_percents), "box_coverage"]


@dataclass(frozen=True)
class Score:
    """One metric value; ``box`` and ``label`` only for per-box metrics.

    ``box`` indexes ``Target.boxes`` (the input boxes minus those empty after clamping).
    """

    metric: str
    value: float
    box: int | None = None
    label: str = ""


@dataclass(frozen=True, eq=False)
class Target:
    """The boxes of one image registered to one model's grid (build with :func:`make_target`)."""

    boxes: tuple[Box, ...]  # clamped, in original image pixels
    grid: tuple[int, int]  # (gh, gw)
    patch: int
    union_counts: np.ndarray  # [gh*gw] box-union pixels (input resolution) per cell, row-major
    box_counts: np.ndarray  # [n_boxes, gh*gw] the same for each single box
    hit: np.ndarray  # [gh*gw] bool: cell centre inside the box union (original pixels)
    hit_tolerant: np.ndarray  # [gh*gw] bool: cell centre within the tolerance of a box
    config: MetricConfig = field(default_factory=MetricConfig)

    @property
    def n_cells(self) -> int:
        """Number of map cells."""
        return self.grid[0] * self.grid[1]

    @property
    def cell_pixels(self) -> int:
        """Input pixels per cell."""
        return self.patch * self.patch


def make_target(
    boxes: Sequence[Box],
    image_size: tuple[int, int],
    grid: tuple[int, int],
    patch: int,
    config: MetricConfig | None = None,
) -> Target:
    """Register ``boxes`` (image pixels, image ``(W, H)``) to a ``grid = (gh, gw)`` of ``patch``-px cells."""
    config = config or MetricConfig()
    width, height = image_size
    gh, gw = grid
    clamped = [c for c in (clamp_box(b, width, height) for b in boxes) if c.w > 0 and c.h > 0]
    resized = rescale_boxes(clamped, (width, height), (gw * patch, gh * patch))
    box_counts = np.array(
        [_cell_counts(box_mask([b], gw * patch, gh * patch), patch) for b in resized], dtype=np.int64
    ).reshape(len(resized), gh * gw)
    union = _cell_counts(box_mask(resized, gw * patch, gh * patch), patch)
    cx = ((np.arange(gw) + 0.5) * width / gw)[None, :].repeat(gh, 0).ravel()
    cy = ((np.arange(gh) + 0.5) * height / gh)[:, None].repeat(gw, 1).ravel()
    return Target(
        boxes=tuple(clamped),
        grid=(gh, gw),
        patch=patch,
        union_counts=union,
        box_counts=box_counts,
        hit=_points_in_boxes(cx, cy, clamped, 0.0, strict=True),
        hit_tolerant=_points_in_boxes(cx, cy, clamped, config.tolerance_px, strict=False),
        config=config,
    )


def _cell_counts(mask: np.ndarray, patch: int) -> np.ndarray:
    """Number of True pixels in each ``patch x patch`` block, row-major over the cells."""
    h, w = mask.shape
    return mask.reshape(h // patch, patch, w // patch, patch).sum(axis=(1, 3)).ravel().astype(np.int64)


def _points_in_boxes(
    px: np.ndarray, py: np.ndarray, boxes: Sequence[Box], tolerance: float, *, strict: bool
) -> np.ndarray:
    """Per point: inside a half-open box (``strict``) or within ``tolerance`` of a closed box."""
    hit = np.zeros(px.shape, dtype=bool)
    for b in boxes:
        if strict:
            hit |= (b.x <= px) & (px < b.x2) & (b.y <= py) & (py < b.y2)
        else:
            dx = np.maximum(np.maximum(b.x - px, px - b.x2), 0.0)
            dy = np.maximum(np.maximum(b.y - py, py - b.y2), 0.0)
            hit |= np.hypot(dx, dy) <= tolerance
    return hit


# ----------------------------------------------------------------------------- scoring


def score_map(m: np.ndarray, target: Target) -> list[Score]:
    """All metrics of the raw map ``m`` (shape ``target.grid``) against the target's boxes.

    Returns ``[]`` for an image without boxes; see the module doc for NaN/inf and tie behaviour.
    """
    m = np.asarray(m)
    if m.shape != target.grid:
        raise ValueError(f"map shape {m.shape} does not match the grid {target.grid}")
    return _scores(target, score_maps(m[None], target)[0])


def score_maps(maps: np.ndarray, target: Target) -> np.ndarray:
    """The metrics of a stack of maps ``[K, gh, gw]`` at once: float64 ``[K, columns]``.

    Columns follow :func:`metric_columns` (whole-image metrics, then each box's metrics); an image
    without boxes gives zero columns. Same values as :func:`score_map`, vectorised over the stack:
    one sort per map, and top-p intersections read off cumulative box-pixel counts in that order.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[1:] != target.grid:
        raise ValueError(f"maps of shape {maps.shape} do not match [K, {target.grid[0]}, {target.grid[1]}]")
    k, n, cfg, cell = maps.shape[0], target.n_cells, target.config, target.cell_pixels
    if not target.boxes:
        return np.empty((k, 0))
    flat = maps.reshape(k, n)
    rank = np.asarray(flat, dtype=np.float32).copy()
    rank[np.isnan(rank)] = -np.inf
    order = descending_rows(rank)
    best = np.take_along_axis(rank, order[:, :1], axis=1)
    counts = np.vstack([target.union_counts[None, :], target.box_counts]).astype(np.int64)  # [1+B, n]
    areas = counts.sum(axis=1)
    deepest = max(top_k(n, p) for p in (*cfg.percents, *cfg.box_percents))  # the top-p rules read no further
    cumulative = np.cumsum(counts[:, order[:, :deepest]], axis=2)  # [1+B, K, deepest]: box pixels, first j+1 cells

    def top_iou(p: float, which: int) -> np.ndarray:
        kept = top_k(n, p)
        inter = cumulative[which, :, kept - 1]
        return inter / (kept * cell + areas[which] - inter)

    weights = mass_value_rows(flat)
    total = weights.sum(axis=1)
    positive = total > 0
    coverage = np.full((k, counts.shape[0]), math.nan)
    # einsum, not ``@``: no BLAS threads (which oversubscribe the cores when the stage runs one process
    # per core) and the same sums whatever the stack size
    inside = np.einsum("kn,bn->kb", weights[positive], counts.astype(np.float64))
    coverage[positive] = inside / cell / total[positive, None]
    maxima = rank == best
    columns = [top_iou(p, 0) for p in cfg.percents]
    columns += [_mass_iou(weights, positive, counts[0], cell, cfg.mass, (rank, order)), coverage[:, 0]]
    columns += [(maxima & target.hit).sum(1) / maxima.sum(1), (maxima & target.hit_tolerant).sum(1) / maxima.sum(1)]
    for b in range(len(target.boxes)):
        columns += [top_iou(p, b + 1) for p in cfg.box_percents]
        columns.append(coverage[:, b + 1])
    values = np.stack(columns, axis=1).astype(np.float64)
    values[best[:, 0] == -np.inf] = math.nan  # no value above -inf: all NaN / -inf
    return values


def metric_columns(target: Target) -> list[tuple[str, int | None, str]]:
    """(metric, box index or None, box label) of each column of :func:`score_maps` (none without boxes)."""
    if not target.boxes:
        return []
    cfg = target.config
    columns: list[tuple[str, int | None, str]] = [(name, None, "") for name in cfg.names()]
    for b, box in enumerate(target.boxes):
        columns += [(name, b, box.label) for name in cfg.box_names()]
    return columns


def _mass_iou(weights: np.ndarray, positive: np.ndarray, counts: np.ndarray, cell: int, mass: float,
              sorted_as: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """IoU of the mass-rule cells of each row of ``weights`` (NaN for rows without positive mass)."""
    kept = mass_threshold_masks(weights, mass, sorted_as)
    inter = (kept * counts[None, :]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / (kept.sum(axis=1) * cell + counts.sum() - inter)
    return np.where(positive, iou, math.nan)


def _scores(target: Target, values: np.ndarray) -> list[Score]:
    return [Score(metric, float(v), box, label)
            for (metric, box, label), v in zip(metric_columns(target), values, strict=True)]


def uniform_scores(target: Target) -> list[Score]:
    """Baseline "uniform / random": a constant map whose cells are picked at random.

    IoUs use :func:`chance_iou` with the selected fraction of the same rule (``k/n`` for top-p, the
    share kept by the mass rule on a constant map); coverage is the box-area fraction; pointing is the
    share of cell centres that hit (every cell is a tied maximum).
    """
    if not target.boxes:
        return []
    cfg, n = target.config, target.n_cells
    pixels = n * target.cell_pixels
    mass_fraction = mass_threshold_mask(np.ones(n), cfg.mass).sum() / n

    def area(counts: np.ndarray) -> float:
        return counts.sum() / pixels

    values = [chance_iou(area(target.union_counts), top_k(n, p) / n) for p in cfg.percents]
    values += [chance_iou(area(target.union_counts), mass_fraction), area(target.union_counts)]
    values += [float(target.hit.mean()), float(target.hit_tolerant.mean())]
    for counts in target.box_counts:
        values += [chance_iou(area(counts), top_k(n, p) / n) for p in cfg.box_percents]
        values.append(area(counts))
    return _scores(target, np.asarray(values, dtype=np.float64))


def centre_gaussian_map(grid: tuple[int, int], sigma: float = GAUSSIAN_SIGMA) -> np.ndarray:
    """Baseline map: ``exp(-(dy^2/sy^2 + dx^2/sx^2)/2)`` around the grid centre, ``s = sigma * size``.

    ``dy = r + 0.5 - gh/2``, ``dx = c + 0.5 - gw/2`` in cells (float32, like real maps).
    """
    gh, gw = grid
    dy = (np.arange(gh) + 0.5 - gh / 2) / (sigma * gh)
    dx = (np.arange(gw) + 0.5 - gw / 2) / (sigma * gw)
    return np.exp(-0.5 * (dy[:, None] ** 2 + dx[None, :] ** 2)).astype(np.float32)


def baseline_scores(target: Target) -> dict[str, list[Score]]:
    """Scores of the baselines on this image: ``uniform`` and ``centre_gaussian``."""
    return {
        "uniform": uniform_scores(target),
        "centre_gaussian": score_map(centre_gaussian_map(target.grid), target),
    }


def chance_iou(box_fraction: float, selected_fraction: float) -> float:
    """IoU expected when a fraction ``s`` of the cells is picked at random; ``a`` = box-area fraction.

    Each cell is picked with probability ``s``, so ``E[|S ∩ B|] = s|B|``; ``|S| = sN`` is fixed, hence
    ``E[|S ∪ B|] = sN + |B| - s|B|``. The ratio of the expectations, ``s·a / (s + a - s·a)``, is the
    chance level (exact when ``a`` is 0 or 1 or ``s`` is 1; within a few per cent otherwise).
    NaN when both fractions are 0.
    """
    a, s = float(box_fraction), float(selected_fraction)
    union = s + a - s * a
    return s * a / union if union > 0 else math.nan
