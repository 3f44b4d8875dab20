"""Typed read model of the metrics stage's ``summary.json`` (layout: the metrics docs page).

:meth:`Summary.from_json` parses the file's dict once into frozen dataclasses; JSON ``null`` (an
undefined value) becomes NaN. Means with their CI reuse :class:`ssl_attention.aggregate.Estimate`
and ranked heads :class:`ssl_attention.aggregate.HeadRank`, the types the summary was written from.
``Summary()`` is the empty summary of a build without metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from atlas.core.variants import VariantPair
from atlas.metrics.deltas import Delta
from ssl_attention.aggregate import CONFIDENCE, DEFAULT_BOX_METRIC, DEFAULT_PRIMARY, Estimate, HeadRank

MISSING = Estimate(math.nan, math.nan, math.nan, 0)  # a metric the summary has no value for


def _float(v: Any) -> float:
    """A JSON number as float; ``null`` -> NaN."""
    return float(v) if v is not None else math.nan


def _matrix(rows: Any) -> tuple[tuple[float, ...], ...]:
    """A JSON list of rows of numbers as float tuples; ``null`` -> NaN."""
    return tuple(tuple(_float(v) for v in row) for row in rows)


def _estimate(d: Mapping[str, Any]) -> Estimate:
    """``{mean, lo, hi, n}`` (nulls -> NaN, no ``n`` -> 0)."""
    return Estimate(_float(d.get("mean")), _float(d.get("lo")), _float(d.get("hi")), int(d.get("n", 0)))


@dataclass(frozen=True)
class SummaryEntry:
    """One map kind (or baseline: ``layer`` None, ``head`` empty) of one model with every metric."""

    model: str
    method: str
    layer: int | None
    head: str  # ``fused``, a head number, or empty for a baseline
    metrics: dict[str, Estimate]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SummaryEntry:
        metrics = {name: _estimate(e or {}) for name, e in d["metrics"].items()}
        return cls(d["model"], d["method"], d["layer"], d["head"], metrics)

    def stat(self, metric: str) -> Estimate:
        """The entry's estimate of ``metric``; :data:`MISSING` where it has none."""
        return self.metrics.get(metric, MISSING)


@dataclass(frozen=True)
class LayerHeadTable:
    """Mean ``metric`` of one model x method: ``values[i][j]`` of ``layers[i]`` and ``heads[j]``."""

    model: str
    method: str
    metric: str
    layers: tuple[int, ...]
    heads: tuple[str, ...]  # head numbers, and ``fused``
    values: tuple[tuple[float, ...], ...]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LayerHeadTable:
        layers, heads = tuple(d["layers"]), tuple(d["heads"])
        return cls(d["model"], d["method"], d["metric"], layers, heads, _matrix(d["values"]))

    def column(self, head: str) -> list[tuple[int, float]] | None:
        """``(layer, value)`` of one head (or ``fused``) per layer; None when the table has no such column."""
        if head not in self.heads:
            return None
        col = self.heads.index(head)
        return [(layer, row[col]) for layer, row in zip(self.layers, self.values, strict=True)]


@dataclass(frozen=True)
class LabelHeadTable(LayerHeadTable):
    """The box metric of one model x method on the boxes of one ``label``, per layer x head (``head_labels``)."""

    label: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LabelHeadTable:
        layers, heads = tuple(d["layers"]), tuple(d["heads"])
        return cls(d["model"], d["method"], d["metric"], layers, heads, _matrix(d["values"]), d["label"])


@dataclass(frozen=True)
class TagStat:
    """The leaderboard entries (``SummaryEntry``) over the images of one tag; ``few``: fewer than 3 images."""

    tag: str
    n_images: int
    few: bool
    entries: tuple[SummaryEntry, ...]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TagStat:
        entries = tuple(SummaryEntry.from_json(e) for e in d["entries"])
        return cls(d["tag"], int(d["n_images"]), bool(d["few"]), entries)


@dataclass(frozen=True)
class Ranking:
    """The heads (all layers) of one model x method ranked by ``metric``, best first."""

    model: str
    method: str
    metric: str
    heads: tuple[HeadRank, ...]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Ranking:
        heads = tuple(
            HeadRank(h["layer"], h["head"], _float(h["mean_rank"]), int(h["top1"]), int(h["top3"])) for h in d["heads"]
        )
        return cls(d["model"], d["method"], d["metric"], heads)


@dataclass(frozen=True)
class LabelStat:
    """The box metric of one leaderboard entry on the boxes of one label."""

    model: str
    method: str
    layer: int | None
    head: str
    label: str
    stat: Estimate

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LabelStat:
        return cls(d["model"], d["method"], d["layer"], d["head"], d["label"], _estimate(d))


@dataclass(frozen=True)
class Similarity:
    """Correlation of the heads' maps at one layer, with a clustering (``clusters[head]``, ``order``)."""

    model: str
    method: str
    layer: int
    similarity: tuple[tuple[float, ...], ...]  # [head][head]
    clusters: tuple[int, ...]  # cluster number per head
    order: tuple[int, ...]  # heads in the clustering's order

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Similarity:
        clusters, order = tuple(d["clusters"]), tuple(d["order"])
        return cls(d["model"], d["method"], d["layer"], _matrix(d["similarity"]), clusters, order)


@dataclass(frozen=True)
class GroundingStat:
    """Text grounding of one model x method on one label (``label`` "": over all labels)."""

    model: str
    method: str
    label: str
    prompt: str
    metrics: dict[str, Estimate]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> GroundingStat:
        metrics = {name: _estimate(e or {}) for name, e in d["metrics"].items()}
        return cls(d["model"], d["method"], d["label"], d.get("prompt", ""), metrics)

    def stat(self, metric: str) -> Estimate:
        """The estimate of ``metric``; :data:`MISSING` where there is none."""
        return self.metrics.get(metric, MISSING)


@dataclass(frozen=True)
class HeldOutFigure:
    """One choice (a layer's fused map, or a single head) with its mean of the held-out metric and CI."""

    layer: int
    head: str
    stat: Estimate

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> HeldOutFigure:
        return cls(int(d["layer"]), str(d["head"]), _estimate(d))


@dataclass(frozen=True)
class HeldOutEntry:
    """One model x method of ``--select-on``: chosen and scored on every image (``in_sample``, the leaderboard's
    figure) beside chosen on the selection part and scored on the held-out part (``held_out``)."""

    model: str
    method: str
    metric: str
    in_sample: HeldOutFigure
    held_out: HeldOutFigure

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> HeldOutEntry:
        return cls(d["model"], d["method"], d["metric"], HeldOutFigure.from_json(d["in_sample"]),
                   HeldOutFigure.from_json(d["held_out"]))


@dataclass(frozen=True)
class HeldOut:
    """``summary.json``'s ``held_out`` key (``atlas.metrics.held_out``): the split and its entries."""

    fraction: float
    split: str
    metric: str
    n_selection: int
    n_held_out: int
    leaderboard: tuple[HeldOutEntry, ...]
    best_heads: tuple[HeldOutEntry, ...]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> HeldOut:
        return cls(float(d["fraction"]), str(d["split"]), str(d["metric"]), int(d["n_selection"]),
                   int(d["n_held_out"]), tuple(HeldOutEntry.from_json(e) for e in d["leaderboard"]),
                   tuple(HeldOutEntry.from_json(e) for e in d["best_heads"]))


@dataclass(frozen=True)
class Summary:
    """``summary.json`` as typed data; the defaults are those of a build without metrics."""

    primary: str = DEFAULT_PRIMARY
    box_metric: str = DEFAULT_BOX_METRIC
    confidence: float = CONFIDENCE
    n_boot: int = 0
    n_images: int = 0
    leaderboard: tuple[SummaryEntry, ...] = ()
    best_heads: tuple[SummaryEntry, ...] = ()
    baselines: tuple[SummaryEntry, ...] = ()
    tables: tuple[LayerHeadTable, ...] = ()
    head_ranking: tuple[Ranking, ...] = ()
    labels: tuple[LabelStat, ...] = ()
    text_grounding: tuple[GroundingStat, ...] = ()
    head_similarity: tuple[Similarity, ...] = ()
    held_out: HeldOut | None = None  # only with --select-on
    head_labels: tuple[LabelHeadTable, ...] = ()
    tags: tuple[TagStat, ...] = ()
    variants: tuple[VariantPair, ...] = ()  # declared variants (--base) and their paired statistics
    deltas: tuple[Delta, ...] = ()
    ranking_deltas: tuple[Mapping[str, Any], ...] = ()
    image_shifts: tuple[Mapping[str, Any], ...] = ()
    box_similarity: tuple[Mapping[str, Any], ...] = ()  # atlas.metrics.box_features.summarise_box_similarity

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Summary:
        """Parse the dict of ``summary.json``; a missing section is empty."""

        def section(key: str, parse: Callable[[Mapping[str, Any]], Any]) -> tuple:
            return tuple(parse(d) for d in data.get(key, []))

        return cls(
            primary=str(data.get("primary_metric", DEFAULT_PRIMARY)),
            box_metric=str(data.get("box_metric", DEFAULT_BOX_METRIC)),
            confidence=float(data.get("confidence", CONFIDENCE)),
            n_boot=int(data.get("n_boot", 0)),
            n_images=int(data.get("n_images", 0)),
            leaderboard=section("leaderboard", SummaryEntry.from_json),
            best_heads=section("best_heads", SummaryEntry.from_json),
            baselines=section("baselines", SummaryEntry.from_json),
            tables=section("tables", LayerHeadTable.from_json),
            head_ranking=section("head_ranking", Ranking.from_json),
            labels=section("labels", LabelStat.from_json),
            head_similarity=section("head_similarity", Similarity.from_json),
            text_grounding=section("text_grounding", GroundingStat.from_json),
            held_out=HeldOut.from_json(data["held_out"]) if data.get("held_out") else None,
            head_labels=section("head_labels", LabelHeadTable.from_json),
            tags=section("tags", TagStat.from_json),
            variants=section("variants", lambda d: VariantPair(d["variant"], d["base"])),
            deltas=section("deltas", Delta.from_json),
            ranking_deltas=section("ranking_deltas", dict),
            image_shifts=section("image_shifts", dict),
            box_similarity=section("box_similarity", dict),
        )

    def grounding_of(self, model: str) -> tuple[GroundingStat, ...]:
        """The text-grounding entries of ``model`` (per method: over all labels first, then per label)."""
        return tuple(g for g in self.text_grounding if g.model == model)

    def leaderboard_of(self, model: str) -> tuple[SummaryEntry, ...]:
        return tuple(e for e in self.leaderboard if e.model == model)

    def best_heads_of(self, model: str) -> tuple[SummaryEntry, ...]:
        return tuple(e for e in self.best_heads if e.model == model)

    def baselines_of(self, model: str) -> tuple[SummaryEntry, ...]:
        return tuple(e for e in self.baselines if e.model == model)

    def tables_of(self, model: str, metric: str | None = None) -> tuple[LayerHeadTable, ...]:
        """The layer x head tables of ``model`` for ``metric`` (default: the primary metric)."""
        return tuple(t for t in self.tables if t.model == model and t.metric == (metric or self.primary))

    def rankings_of(self, model: str, metric: str | None = None) -> tuple[Ranking, ...]:
        """The head rankings of ``model`` (by one ``metric`` if given; every metric otherwise)."""
        return tuple(r for r in self.head_ranking if r.model == model and metric in (None, r.metric))

    def head_labels_of(self, model: str) -> tuple[LabelHeadTable, ...]:
        """The head x label tables of ``model`` (per method, labels sorted)."""
        return tuple(t for t in self.head_labels if t.model == model)

    def similarities_of(self, model: str) -> tuple[Similarity, ...]:
        return tuple(s for s in self.head_similarity if s.model == model)

    def labels_of(self, model: str, method: str) -> Mapping[str, LabelStat]:
        """The per-label box metric of one model x method's leaderboard entry, by label (summary order)."""
        return self._labels.get((model, method), {})

    @cached_property
    def _labels(self) -> dict[tuple[str, str], dict[str, LabelStat]]:
        """``labels`` indexed by ``(model, method)`` and label, built once on first use."""
        index: dict[tuple[str, str], dict[str, LabelStat]] = {}
        for e in self.labels:
            index.setdefault((e.model, e.method), {})[e.label] = e
        return index
