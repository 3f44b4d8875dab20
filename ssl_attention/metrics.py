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
* ``mse``, ``kl``, ``emd`` (lower is better): the whole map against a soft ground truth made from the boxes
  (:mod:`ssl_attention.soft_metrics`); ``emd`` only for the first ``transport`` maps of a stack.

Edge cases (never an exception for map values):

* NaN ranks as ``-inf`` and carries no mass; ``+inf`` ranks first and, when present, carries all mass.
* A map without any value above ``-inf`` (all NaN / ``-inf``) gives NaN for every metric.
* A map without positive mass (e.g. all zeros) gives NaN ``coverage``/``iou_mass``; its ranking
  metrics are still computed with the tie-break rules, exactly as the page shows them.
* An image without boxes gives no scores at all (an empty list: rows are absent, not NaN).
* Boxes are clamped to the image first, so parts outside the image never count.

The metrics are registered in ``METRICS`` (read it through :func:`all_metrics`), as the methods are in
``ssl_attention.methods``: each ``Metric`` entry has its exported name, how a stack of maps is scored
(``score``, reading the parts every metric shares off a :class:`MapStack`), its direction and its chance
level (``chance``: the value of the uniform baseline). The column order of :func:`score_maps`, the names of
:class:`MetricConfig` and the uniform baseline all follow the registry; adding a metric is one entry plus
its score and chance functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from ssl_attention.annotations import Box, box_mask, clamp_box, rescale_boxes
from ssl_attention.soft_metrics import SoftTarget
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
        """Names of the whole-image metrics, in output order (the registry's)."""
        return [name for metric in all_metrics() if not metric.per_box for name, _ in metric.columns(self)]

    def box_names(self) -> list[str]:
        """Names of the per-box metrics, in output order (the registry's)."""
        return [name for metric in all_metrics() if metric.per_box for name, _ in metric.columns(self)]


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
    image_size: tuple[int, int] = (0, 0)  # (W, H) of the image as seen: the soft metrics' geometry

    @cached_property
    def soft(self) -> SoftTarget:
        """The soft ground truth of the boxes on this grid (``ssl_attention.soft_metrics``)."""
        return SoftTarget(self.boxes, self.image_size, self.grid)

    @property
    def n_cells(self) -> int:
        """Number of map cells."""
        return self.grid[0] * self.grid[1]

    @property
    def cell_pixels(self) -> int:
        """Input pixels per cell."""
        return self.patch * self.patch


def usable_boxes(boxes: Sequence[Box], image_size: tuple[int, int]) -> list[Box]:
    """``boxes`` clamped to the image ``(W, H)``, those left with no area dropped (a target's boxes)."""
    width, height = image_size
    return [c for c in (clamp_box(b, width, height) for b in boxes) if c.w > 0 and c.h > 0]


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
    clamped = usable_boxes(boxes, (width, height))
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
        image_size=(width, height),
    )


@dataclass(frozen=True)
class MapGeometry:
    """Where a model's maps lie on one image: the image's size ``(W, H)``, the map grid ``(gh, gw)`` and the
    input pixels per cell side."""

    image_size: tuple[int, int]
    grid: tuple[int, int]
    patch: int

    def target(self, boxes: Sequence[Box], config: MetricConfig | None = None) -> Target:
        """:func:`make_target` of ``boxes`` on this geometry."""
        return make_target(boxes, self.image_size, self.grid, self.patch, config)


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


# ----------------------------------------------------------------------------- the registry


class MapStack:
    """A stack of maps ``[K, gh, gw]`` scored against one target: the parts the metrics share, each
    computed once (on first use). Regions: 0 is the union of the boxes, ``b + 1`` the box ``b`` alone."""

    def __init__(self, maps: np.ndarray, target: Target, transport: int | None = None) -> None:
        self.target = target
        self.k, self.n = maps.shape[0], target.n_cells
        self.transport = self.k if transport is None else min(transport, self.k)  # leading maps scored by emd
        self.flat = maps.reshape(self.k, self.n)
        rank = np.asarray(self.flat, dtype=np.float32).copy()
        rank[np.isnan(rank)] = -np.inf
        self.rank = rank  # NaN ranks as -inf
        self.order = descending_rows(rank)
        self.best = np.take_along_axis(rank, self.order[:, :1], axis=1)  # [K, 1] each map's maximum

    @cached_property
    def counts(self) -> np.ndarray:
        """[1 + boxes, cells] input pixels of each region under each cell."""
        return np.vstack([self.target.union_counts[None, :], self.target.box_counts]).astype(np.int64)

    @cached_property
    def areas(self) -> np.ndarray:
        """[1 + boxes] input pixels of each region."""
        return self.counts.sum(axis=1)

    @cached_property
    def cumulative(self) -> np.ndarray:
        """[1 + boxes, K, cells read] region pixels under the first j + 1 cells in rank order (as deep as
        the top-p rules of the config read)."""
        cfg = self.target.config
        deepest = max(top_k(self.n, p) for p in (*cfg.percents, *cfg.box_percents))
        return np.cumsum(self.counts[:, self.order[:, :deepest]], axis=2)

    @cached_property
    def weights(self) -> np.ndarray:
        """[K, cells] the mass of each cell (``mass_value_rows``)."""
        return mass_value_rows(self.flat)

    @cached_property
    def positive(self) -> np.ndarray:
        """[K] whether the map has positive mass."""
        return self.weights.sum(axis=1) > 0

    @cached_property
    def coverage(self) -> np.ndarray:
        """[K, 1 + boxes] share of the mass inside each region (NaN without positive mass)."""
        total, positive = self.weights.sum(axis=1), self.positive
        coverage = np.full((self.k, self.counts.shape[0]), math.nan)
        # einsum, not ``@``: no BLAS threads (which oversubscribe the cores when the stage runs one process
        # per core) and the same sums whatever the stack size
        inside = np.einsum("kn,bn->kb", self.weights[positive], self.counts.astype(np.float64))
        coverage[positive] = inside / self.target.cell_pixels / total[positive, None]
        return coverage

    @cached_property
    def maxima(self) -> np.ndarray:
        """[K, cells] the cells tied at each map's maximum."""
        return self.rank == self.best


MetricScore = Callable[[MapStack, int, Any], np.ndarray]  # (stack, region, parameter value) -> float64 [K]
MetricChance = Callable[[Target, int, Any], float]  # (target, region, parameter value) -> the chance level


@dataclass(frozen=True)
class Metric:
    """One alignment metric, as the scorer, the exports and the pages know it.

    ``name`` is the exported name; a metric with a ``param`` (a ``MetricConfig`` field) has one column per
    value of that field, named by filling the value into ``name`` (``"{:g}"``; ``"{percent:g}"`` for the
    value x 100). ``score`` scores a whole stack against one region; ``chance`` is its value for a uniform
    map whose cells are picked at random (the ``uniform`` baseline).
    """

    name: str
    score: MetricScore
    chance: MetricChance
    description: str = ""
    higher_is_better: bool = True
    per_box: bool = False  # scored against each box alone (regions 1, 2, ...), not the union of the boxes
    param: str = ""  # the MetricConfig field whose values it is computed at ("": one column)

    def columns(self, config: MetricConfig) -> list[tuple[str, Any]]:
        """(exported name, parameter value) of each of its columns under ``config``."""
        if not self.param:
            return [(self.name, None)]
        values = getattr(config, self.param)
        values = tuple(values) if isinstance(values, tuple | list) else (values,)
        return [(self.name.format(value, percent=value * 100), value) for value in values]


def _region_area(target: Target, region: int) -> float:
    """Share of the input pixels inside ``region`` (the box-area fraction)."""
    counts = target.union_counts if region == 0 else target.box_counts[region - 1]
    return counts.sum() / (target.n_cells * target.cell_pixels)


def top_percent_iou(stack: MapStack, region: int, percent: float) -> np.ndarray:
    """IoU of the top ``percent`` % cells with the region."""
    kept = top_k(stack.n, percent)
    inter = stack.cumulative[region, :, kept - 1]
    return inter / (kept * stack.target.cell_pixels + stack.areas[region] - inter)


def top_percent_chance(target: Target, region: int, percent: float) -> float:
    """:func:`chance_iou` of the share of cells the top-p rule keeps."""
    n = target.n_cells
    return chance_iou(_region_area(target, region), top_k(n, percent) / n)


def mass_iou(stack: MapStack, region: int, mass: float) -> np.ndarray:
    """IoU of the cells of the mass rule with the region (NaN without positive mass)."""
    kept = mass_threshold_masks(stack.weights, mass, (stack.rank, stack.order))
    counts, cell = stack.counts[region], stack.target.cell_pixels
    inter = (kept * counts[None, :]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / (kept.sum(axis=1) * cell + counts.sum() - inter)
    return np.where(stack.positive, iou, math.nan)


def mass_chance(target: Target, region: int, mass: float) -> float:
    """:func:`chance_iou` of the share of cells the mass rule keeps of a constant map."""
    n = target.n_cells
    return chance_iou(_region_area(target, region), mass_threshold_mask(np.ones(n), mass).sum() / n)


def coverage(stack: MapStack, region: int, _value: Any = None) -> np.ndarray:
    """Share of the attention mass inside the region."""
    return stack.coverage[:, region]


def coverage_chance(target: Target, region: int, _value: Any = None) -> float:
    """The region's share of the pixels."""
    return _region_area(target, region)


def pointing(stack: MapStack, _region: int, _value: Any = None) -> np.ndarray:
    """Share of the tied maxima whose cell centre lies in a box (``Target.hit``)."""
    return (stack.maxima & stack.target.hit).sum(1) / stack.maxima.sum(1)


def pointing_chance(target: Target, _region: int, _value: Any = None) -> float:
    """Share of the cell centres in a box (every cell of a constant map is a tied maximum)."""
    return float(target.hit.mean())


def pointing_near(stack: MapStack, _region: int, _tolerance: float) -> np.ndarray:
    """Share of the tied maxima whose cell centre lies within the tolerance of a box (``Target.hit_tolerant``:
    the target was made with the config's ``tolerance_px``)."""
    return (stack.maxima & stack.target.hit_tolerant).sum(1) / stack.maxima.sum(1)


def pointing_near_chance(target: Target, _region: int, _tolerance: float) -> float:
    """Share of the cell centres within the tolerance of a box."""
    return float(target.hit_tolerant.mean())


def soft_mse(stack: MapStack, _region: int, _value: Any = None) -> np.ndarray:
    """Mean squared difference of the min-max normalised map and the soft ground truth."""
    return stack.target.soft.mse(stack.flat)


def soft_kl(stack: MapStack, _region: int, _value: Any = None) -> np.ndarray:
    """KL divergence of the map's distribution from the soft ground truth's."""
    return stack.target.soft.kl(stack.flat)


def soft_emd(stack: MapStack, _region: int, _value: Any = None) -> np.ndarray:
    """Earth mover's distance to the soft ground truth: the first ``stack.transport`` maps (the fused maps
    of a method, see ``score_maps``), NaN for the others."""
    out = np.full(stack.k, math.nan)
    out[: stack.transport] = stack.target.soft.emd(stack.flat[: stack.transport])
    return out


def _constant_chance(score: Callable[[MapStack, int, Any], np.ndarray]) -> MetricChance:
    """The chance level of a metric that reads the map's values: its value for a constant map."""
    return lambda target, region, value: float(score(MapStack(constant_map(target.grid)[None], target), region,
                                                     value)[0])


METRICS: tuple[Metric, ...] = (
    Metric("iou@{:g}", top_percent_iou, top_percent_chance, "IoU of the top p % cells with the boxes",
           param="percents"),
    Metric("iou_mass@{percent:g}", mass_iou, mass_chance, "IoU of the mass-rule cells with the boxes",
           param="mass"),
    Metric("coverage", coverage, coverage_chance, "share of the attention mass inside the boxes"),
    Metric("pointing", pointing, pointing_chance, "the maximum's cell centre lies in a box"),
    Metric("pointing@{:g}px", pointing_near, pointing_near_chance, "the maximum's cell centre lies near a box",
           param="tolerance_px"),
    Metric("mse", soft_mse, _constant_chance(soft_mse), "mean squared difference from the soft ground truth",
           higher_is_better=False),
    Metric("kl", soft_kl, _constant_chance(soft_kl), "KL divergence of the map from the soft ground truth",
           higher_is_better=False),
    Metric("emd", soft_emd, _constant_chance(soft_emd), "earth mover's distance to the soft ground truth",
           higher_is_better=False),
    Metric("box_iou@{:g}", top_percent_iou, top_percent_chance, "IoU of the top p % cells with one box",
           per_box=True, param="box_percents"),
    Metric("box_coverage", coverage, coverage_chance, "share of the attention mass inside one box", per_box=True),
)


def all_metrics() -> tuple[Metric, ...]:
    """Every registered metric, in the registry's order (the order of the columns, rows and tables).

    Read the table through this function, never by importing ``METRICS``: a test or a plugin may extend it.
    """
    return METRICS


def metric_named(name: str, config: MetricConfig | None = None) -> Metric | None:
    """The registered metric that exports the column ``name`` under ``config`` (default: the defaults)."""
    config = config or MetricConfig()
    return next((m for m in all_metrics() if any(n == name for n, _ in m.columns(config))), None)


def higher_is_better(name: str) -> bool:
    """Whether a larger value of the metric column ``name`` is better (True for a name the registry lacks)."""
    metric = metric_named(name)
    return metric is None or metric.higher_is_better


# ----------------------------------------------------------------------------- scoring


class Column(NamedTuple):
    """One column of :func:`score_maps`: a registered metric at one parameter value and one region."""

    metric: Metric
    value: Any  # the metric's parameter value (None without a parameter)
    region: int  # 0: the union of the boxes, b + 1: box b
    name: str
    box: int | None = None
    label: str = ""


def columns_of(target: Target) -> list[Column]:
    """The columns of :func:`score_maps`: the whole-image metrics, then each box's (none without boxes)."""
    if not target.boxes:
        return []
    cfg, metrics = target.config, all_metrics()
    whole = [Column(m, value, 0, name) for m in metrics if not m.per_box for name, value in m.columns(cfg)]
    return whole + [Column(m, value, b + 1, name, b, box.label) for b, box in enumerate(target.boxes)
                    for m in metrics if m.per_box for name, value in m.columns(cfg)]


def score_map(m: np.ndarray, target: Target) -> list[Score]:
    """All metrics of the raw map ``m`` (shape ``target.grid``) against the target's boxes.

    Returns ``[]`` for an image without boxes; see the module doc for NaN/inf and tie behaviour.
    """
    m = np.asarray(m)
    if m.shape != target.grid:
        raise ValueError(f"map shape {m.shape} does not match the grid {target.grid}")
    return _scores(target, score_maps(m[None], target)[0])


def score_maps(maps: np.ndarray, target: Target, *, transport: int | None = None) -> np.ndarray:
    """The metrics of a stack of maps ``[K, gh, gw]`` at once: float64 ``[K, columns]``.

    Columns follow :func:`metric_columns` (whole-image metrics, then each box's metrics); an image
    without boxes gives zero columns. Same values as :func:`score_map`, vectorised over the stack:
    one sort per map, and top-p intersections read off cumulative box-pixel counts in that order.
    ``transport``: how many leading maps get an ``emd`` (the costly one; None: all), NaN for the rest.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[1:] != target.grid:
        raise ValueError(f"maps of shape {maps.shape} do not match [K, {target.grid[0]}, {target.grid[1]}]")
    if not target.boxes:
        return np.empty((maps.shape[0], 0))
    stack = MapStack(maps, target, transport)
    columns = [c.metric.score(stack, c.region, c.value) for c in columns_of(target)]
    values = np.stack(columns, axis=1).astype(np.float64)
    values[stack.best[:, 0] == -np.inf] = math.nan  # no value above -inf: all NaN / -inf
    return values


def metric_columns(target: Target) -> list[tuple[str, int | None, str]]:
    """(metric, box index or None, box label) of each column of :func:`score_maps` (none without boxes)."""
    return [(c.name, c.box, c.label) for c in columns_of(target)]


def _scores(target: Target, values: np.ndarray) -> list[Score]:
    return [Score(metric, float(v), box, label)
            for (metric, box, label), v in zip(metric_columns(target), values, strict=True)]


def uniform_scores(target: Target) -> list[Score]:
    """Baseline "uniform / random": a constant map whose cells are picked at random, i.e. each metric's
    registered chance level (IoUs: :func:`chance_iou` of the share of cells the rule keeps; coverage: the
    box-area fraction; pointing: the share of cell centres that hit, as every cell is a tied maximum)."""
    values = [c.metric.chance(target, c.region, c.value) for c in columns_of(target)]
    return _scores(target, np.asarray(values, dtype=np.float64))


def constant_map(grid: tuple[int, int]) -> np.ndarray:
    """Baseline map "uniform": every cell 1 (the metrics' chance levels read it where they read values)."""
    return np.ones(grid)


def baseline_maps(grid: tuple[int, int]) -> np.ndarray:
    """``[2, gh, gw]``: the maps of the two baselines, "uniform" and "centre_gaussian"."""
    return np.stack([constant_map(grid), centre_gaussian_map(grid)])


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
