"""Paired statistics of declared variants (``--base VARIANT=BASE``): how far each head moved, beyond noise?

For every pair, method, layer, head (and ``fused``) and whole-image metric of the registry
(``ssl_attention.metrics``): over the images both models scored (in image-id order), the per-image
difference ``variant - base``; its mean (``delta``) with a paired percentile-bootstrap CI (the images are
resampled, the project's settings ``N_BOOT``, ``CONFIDENCE`` and ``SEED`` through
``ssl_attention.aggregate.bootstrap_columns``), ``n``, the two means, and ``improved``: the share of images
where the variant is strictly better (higher, or lower for a lower-is-better metric). Identical maps give
``delta = lo = hi = 0`` exactly. Written to ``OUT/metrics/deltas.csv`` (``DELTA_COLUMNS``) and to
``summary.json`` (``variants``, ``deltas``, ``ranking_deltas``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from atlas.core.variants import VariantPair
from ssl_attention.aggregate import FUSED, Index
from ssl_attention.aggregate.anatomy import bootstrap_columns
from ssl_attention.aggregate.rows import BASELINES
from ssl_attention.metrics import MetricConfig, higher_is_better

DELTA_COLUMNS = ("variant", "base", "method", "layer", "head", "metric", "n", "base_mean", "variant_mean", "delta",
                 "lo", "hi", "improved")
DELTAS_FILE = "deltas.csv"
MIN_CI_N = 3  # fewer images: no CI is said to exclude 0 (the pages' own floor, atlas.site.pages.metric_pages)
SHIFT_ROWS = 20  # images listed per pair and method under "largest shifts"


@dataclass(frozen=True)
class Delta:
    """One row of ``deltas.csv``: the paired difference of one map kind and metric of a pair."""

    variant: str
    base: str
    method: str
    layer: int
    head: str  # "fused" or a head number
    metric: str
    n: int
    base_mean: float
    variant_mean: float
    delta: float
    lo: float
    hi: float
    improved: float  # share of the n images where the variant is better

    def as_json(self) -> dict[str, Any]:
        """The row as ``summary.json``'s ``deltas`` list holds it (NaN as null)."""
        return {name: _json(getattr(self, name)) for name in DELTA_COLUMNS}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Delta:
        """A row of ``summary.json``'s ``deltas`` (null -> NaN)."""
        floats = {name: math.nan if d.get(name) is None else float(d[name])
                  for name in ("base_mean", "variant_mean", "delta", "lo", "hi", "improved")}
        return cls(d["variant"], d["base"], d["method"], int(d["layer"]), str(d["head"]), d["metric"], int(d["n"]),
                   **floats)

    @property
    def excludes_zero(self) -> bool:
        """True when the CI lies wholly above or below 0 (a shift beyond the bootstrap's noise)."""
        return (self.lo > 0 or self.hi < 0) and self.n >= MIN_CI_N


def _json(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _metric_order(metrics: Iterable[str]) -> list[str]:
    """The registry's order of the whole-image metrics, then any other name (sorted)."""
    names = set(metrics)
    ordered = [m for m in MetricConfig().names() if m in names]
    return ordered + sorted(names - set(ordered))


def _map_order(key: tuple[int, str]) -> tuple[int, int, int]:
    layer, head = key
    return (layer, 1, 0) if head == FUSED else (layer, 0, int(head))


def pair_deltas(index: Index, pair: VariantPair) -> list[Delta]:
    """Every paired difference of one pair (methods sorted, then layer, heads then fused, then metric)."""
    keys = {k[1:] for k in index if k[0] == pair.base and k[1] not in BASELINES and k[2] is not None}
    keys &= {k[1:] for k in index if k[0] == pair.variant}
    out: list[Delta] = []
    for method in sorted({k[0] for k in keys}):
        maps = sorted({(k[1], k[2]) for k in keys if k[0] == method}, key=_map_order)
        metrics = _metric_order(k[3] for k in keys if k[0] == method)
        columns = [(layer, head, metric) for layer, head in maps for metric in metrics
                   if (method, layer, head, metric) in keys]
        out += _method_deltas(index, pair, method, columns)
    return out


def _method_deltas(index: Index, pair: VariantPair, method: str,
                   columns: Sequence[tuple[int, str, str]]) -> list[Delta]:
    """The rows of one method: both models' values as ``[images, columns]``, differences bootstrapped
    column by column from one set of resamples."""
    base_entries = [index[(pair.base, method, *c)] for c in columns]
    variant_entries = [index[(pair.variant, method, *c)] for c in columns]
    images = sorted({i for e in base_entries for i in e} & {i for e in variant_entries for i in e})
    if not images or not columns:
        return []
    base = np.array([[e.get(i, math.nan) for e in base_entries] for i in images], dtype=np.float64)
    variant = np.array([[e.get(i, math.nan) for e in variant_entries] for i in images], dtype=np.float64)
    paired = np.isfinite(base) & np.isfinite(variant)
    diff = np.where(paired, variant - base, math.nan)
    estimates = bootstrap_columns(diff)
    rows = []
    for j, (layer, head, metric) in enumerate(columns):
        keep = paired[:, j]
        n = int(keep.sum())
        if n == 0:  # a metric this map kind does not have (e.g. emd of a single head): no row
            continue
        d = diff[keep, j]
        better = d > 0 if higher_is_better(metric) else d < 0
        e = estimates[j]
        rows.append(Delta(pair.variant, pair.base, method, layer, head, metric, n, _mean(base[keep, j]),
                          _mean(variant[keep, j]), e.mean, e.lo, e.hi, _mean(better)))
    return rows


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def all_deltas(index: Index, pairs: Sequence[VariantPair]) -> list[Delta]:
    """The rows of every pair, in the declared order."""
    return [row for pair in pairs for row in pair_deltas(index, pair)]


def ranking_deltas(rankings: Sequence[Mapping[str, Any]], pairs: Sequence[VariantPair],
                   primary: str) -> list[dict[str, Any]]:
    """Per pair and method: each head's mean rank (summary's ``head_ranking`` by the ``primary`` metric) in the
    base and in the variant, its position (1 = best) in each, and ``moved = base_mean_rank -
    variant_mean_rank`` (positive: the head ranks better in the variant); heads by base position."""
    by_key = {(r["model"], r["method"]): r for r in rankings if r["metric"] == primary}
    out = []
    for pair in pairs:
        for (model, method), base in by_key.items():
            variant = by_key.get((pair.variant, method))
            if model != pair.base or variant is None:
                continue
            where = {(h["layer"], h["head"]): (pos, h) for pos, h in enumerate(variant["heads"], start=1)}
            heads = []
            for pos, h in enumerate(base["heads"], start=1):
                if (h["layer"], h["head"]) not in where:
                    continue
                vpos, vh = where[(h["layer"], h["head"])]
                heads.append({"layer": h["layer"], "head": h["head"], "base_mean_rank": h["mean_rank"],
                              "variant_mean_rank": vh["mean_rank"], "base_position": pos, "variant_position": vpos,
                              "moved": _json(float(h["mean_rank"]) - float(vh["mean_rank"]))})
            out.append({"variant": pair.variant, "base": pair.base, "method": method, "metric": base["metric"],
                        "heads": heads})
    return out


def largest_shifts(index: Index, pair: VariantPair, metric: str, rows: int = SHIFT_ROWS) -> list[dict[str, Any]]:
    """Per method, the ``rows`` images whose maps moved most on ``metric``: each image's map (layer, head or
    fused) with the largest ``|variant - base|``, largest first (ties: image id, then map order)."""
    out = []
    keys = sorted((k for k in index if k[0] == pair.base and k[4] == metric and k[2] is not None
                   and k[1] not in BASELINES and (pair.variant, *k[1:]) in index),
                  key=lambda k: (k[1], *_map_order(k[2:4])))
    for method in sorted({k[1] for k in keys}):
        best: dict[str, tuple[float, dict[str, Any]]] = {}
        for key in (k for k in keys if k[1] == method):
            base, variant = index[key], index[(pair.variant, *key[1:])]
            for image in base:
                b, v = base[image], variant.get(image, math.nan)
                if math.isfinite(b) and math.isfinite(v) and (image not in best or abs(v - b) > best[image][0]):
                    best[image] = (abs(v - b), {"image": image, "layer": key[2], "head": key[3], "base": b,
                                                "variant": v, "delta": v - b})
        top = sorted(best.values(), key=lambda t: (-t[0], t[1]["image"]))[:rows]
        out.append({"variant": pair.variant, "base": pair.base, "method": method, "metric": metric,
                    "images": [row for _, row in top]})
    return out


def summary_section(index: Index, pairs: Sequence[VariantPair], rankings: Sequence[Mapping[str, Any]],
                    primary: str) -> tuple[dict[str, Any], list[Delta]]:
    """``summary.json``'s keys for the pairs (``variants``, ``deltas``, ``ranking_deltas``, ``image_shifts``)
    and the rows of ``deltas.csv``."""
    rows = all_deltas(index, pairs)
    return {"variants": [p.as_json() for p in pairs], "deltas": [r.as_json() for r in rows],
            "ranking_deltas": ranking_deltas(rankings, pairs, primary),
            "image_shifts": [s for p in pairs for s in largest_shifts(index, p, primary)]}, rows


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(v)
    return v


def write_deltas_csv(rows: Sequence[Delta], path: Path) -> None:
    """``deltas.csv``: ``DELTA_COLUMNS``, one row per paired difference (floats exact, NaN empty)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(DELTA_COLUMNS)
        for row in rows:
            writer.writerow([_csv_value(getattr(row, name)) for name in DELTA_COLUMNS])
