"""The head-anatomy pages: per ViT, its heads' attention distance, entropy and sink mass, its high-norm
tokens and prefix-token norms; and one index with every model's attention distance by layer.

Reads :mod:`atlas.site.anatomy_data`; ``anatomy_index_page`` and ``anatomy_model_pages`` are the builders of
their page kinds (``atlas.site.pages.kinds``), with the tables and charts of ``AnatomyPages``.
Every dot and table cell of a head links to the head's permalink (``layout.head_url``); every number in a
chart is also in a table.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from markupsafe import Markup

from atlas.core import layout
from atlas.core.manifest import ModelEntry
from atlas.site.anatomy_charts import HeadDot, head_dot_chart
from atlas.site.anatomy_data import ModelAnatomy
from atlas.site.pages.metric_pages import heat_bin, shown_ci
from atlas.site.pages.writer import AtlasPages, Page, PageWriter
from atlas.site.svg_charts import PALETTE, Interval, Series, interval_chart, line_chart
from ssl_attention.aggregate import Estimate
from ssl_attention.aggregate.anatomy import HIGH_NORM_Z

# statistic -> (page label, decimals shown)
LABELS = {
    "distance": ("attention distance (px)", 1),
    "entropy": ("attention entropy (nats)", 2),
    "prefix_mass": ("prefix mass (attention sink)", 3),
}


def _value(v: float, decimals: int) -> str:
    return f"{v:.{decimals}f}" if math.isfinite(v) else "–"


def estimate_text(e: Estimate, decimals: int) -> str:
    """``mean [lo, hi]`` (the interval only from ``MIN_CI_N`` images on)."""
    lo, hi = shown_ci(e)
    ci = f" [{_value(lo, decimals)}, {_value(hi, decimals)}]" if math.isfinite(lo) else ""
    return _value(e.mean, decimals) + ci


def prefix_names(model: ModelEntry) -> list[str]:
    """Names of the prefix tokens in their order: ``CLS`` (if any), then ``reg 0``, ``reg 1``..."""
    names = ["CLS"] if model.has_cls else []
    names += [f"reg {r}" for r in range(model.prefix_tokens - len(names))]
    return names


def cluster_list(a: ModelAnatomy) -> list[dict[str, Any]]:
    """The statistic clusters of a model: their number, colour, heads and mean distance / entropy."""
    members: dict[int, list[int]] = defaultdict(list)
    for index, cluster in enumerate(a.clusters):
        members[cluster].append(index)
    heads = a.model.heads

    def mean_of(name: str, indices: list[int]) -> str:
        values = [a.heads[name][i // heads][i % heads].mean for i in indices]
        return _value(sum(values) / len(values), LABELS[name][1])

    return [
        {
            "number": cluster,
            "colour": PALETTE[cluster % len(PALETTE)],
            "heads": [f"l{i // heads:02d} h{i % heads:02d}" for i in indices],
            "distance": mean_of("distance", indices),
            "entropy": mean_of("entropy", indices),
        }
        for cluster, indices in sorted(members.items())
    ]


class AnatomyPages:
    """The tables and charts of the anatomy pages of one build."""

    def __init__(self, writer: PageWriter, anatomy: dict[str, ModelAnatomy]) -> None:
        self.writer, self.anatomy = writer, anatomy

    def head_href(self, src: str, model: ModelEntry, layer: int, head: int) -> str:
        return self.writer.url(src, layout.head_url(model.slug, layer, head))

    def heat_table(self, src: str, a: ModelAnatomy, name: str) -> dict[str, Any]:
        """One statistic's layer x head table in the metric pages' heat-table layout (``mx.heat_table``)."""
        label, decimals = LABELS[name]
        table = a.heads[name]
        finite = [e.mean for row in table for e in row if math.isfinite(e.mean)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
        rows = [
            {
                "layer": layer,
                "cells": [
                    {
                        "value": _value(e.mean, decimals),
                        "bin": heat_bin(e.mean, lo, hi),
                        "head": str(head),
                        "href": self.head_href(src, a.model, layer, head),
                        "best": False,
                        "label": f"layer {layer} head {head} {label}",
                    }
                    for head, e in enumerate(row)
                ],
            }
            for layer, row in enumerate(table)
        ]
        return {
            "method": name, "title": label, "heads": [str(h) for h in range(a.model.heads)], "rows": rows,
            "lo": _value(lo, decimals), "hi": _value(hi, decimals),
        }

    def distance_chart(self, src: str, a: ModelAnatomy) -> Markup:
        model = a.model
        dots = []
        for layer, row in enumerate(a.heads["distance"]):
            for head, e in enumerate(row):
                lo, hi = shown_ci(e)
                cluster = a.clusters[layer * model.heads + head] if a.clusters else 0
                text = f"layer {layer} head {head}: {estimate_text(e, 1)} px" + (
                    f", cluster {cluster}" if a.clusters else ""
                )
                dots.append(HeadDot(layer, head, e.mean, lo, hi, PALETTE[cluster % len(PALETTE)],
                                    self.head_href(src, model, layer, head), text))
        return head_dot_chart(
            dots, layers=model.layers, heads=model.heads, y_label="mean attention distance (px)",
            title=f"{model.name}: mean attention distance of every head against its layer",
        )

    def high_norm(self, a: ModelAnatomy) -> dict[str, Any] | None:
        if not a.high_norm:
            return None
        rows = [
            Interval(f"layer {layer}", e.mean, *shown_ci(e), colour=PALETTE[5]) for layer, e in enumerate(a.high_norm)
        ]
        return {
            "chart": interval_chart(rows, bars=True, x_label="share of patch tokens that are high-norm",
                                    title=f"{a.model.name}: share of high-norm patch tokens per layer"),
            "rows": [
                {"layer": layer, "share": estimate_text(e, 3), "median": estimate_text(m, 1)}
                for layer, (e, m) in enumerate(zip(a.high_norm, a.patch_norm, strict=True))
            ],
        }

    def prefix(self, a: ModelAnatomy) -> dict[str, Any] | None:
        """The prefix tokens' norms per layer against the median patch norm (CLS and registers apart)."""
        if not a.prefix_norm:
            return None
        names = prefix_names(a.model)
        series = [
            Series(name, tuple((float(layer), row[t].mean) for layer, row in enumerate(a.prefix_norm)),
                   PALETTE[t % len(PALETTE)])
            for t, name in enumerate(names)
        ]
        median = tuple((float(layer), e.mean) for layer, e in enumerate(a.patch_norm))
        series.append(Series("median patch token", median, "currentColor"))
        chart = line_chart(series, title=f"{a.model.name}: hidden-state norm of the prefix tokens per layer",
                           x_label="layer", y_label="mean L2 norm")
        rows = [
            {
                "layer": layer,
                "norms": [estimate_text(e, 1) for e in row],
                "median": estimate_text(a.patch_norm[layer], 1),
            }
            for layer, row in enumerate(a.prefix_norm)
        ]
        return {"names": names, "chart": chart, "rows": rows}


def anatomy_model_pages(site: AtlasPages) -> Iterator[Page]:
    """One anatomy page per ViT that has head statistics."""
    view = AnatomyPages(site, site.anatomy)
    for a in site.anatomy.values():
        yield anatomy_model_page(view, a)


def anatomy_model_page(view: AnatomyPages, a: ModelAnatomy) -> Page:
    model = a.model
    src = layout.anatomy_page(model.slug)
    tables = [view.heat_table(src, a, n) for n in LABELS if n in a.heads]
    sink = [
        {"layer": layer, "value": estimate_text(e, 3)} for layer, e in enumerate(a.layers.get("prefix_mass", []))
    ]
    context = {
        "model": model,
        "n_images": len(a.images),
        "distance_chart": view.distance_chart(src, a) if "distance" in a.heads else None,
        "clusters": cluster_list(a) if a.clusters else [],
        "tables": tables,
        "sink": sink,
        "registers": model.num_registers,
        "high_norm": view.high_norm(a),
        "prefix": view.prefix(a),
        "z_cut": HIGH_NORM_Z,
        "index_href": view.writer.url(src, layout.ANATOMY_PAGE),
        "model_href": view.writer.url(src, layout.model_page(model.slug)),
        "docs_href": view.writer.docs_url(src, "methods.md"),
    }
    return Page(src, f"{model.name} head anatomy", context)


def anatomy_index_page(site: AtlasPages) -> Iterator[Page]:
    """The anatomy index (always, saying so when no model has statistics): every model's attention distance
    and share of high-norm tokens per layer."""
    src = layout.ANATOMY_PAGE
    rows = list(site.anatomy.values())
    series = [
        Series(a.model.name, tuple((float(layer), e.mean) for layer, e in enumerate(a.layers["distance"])),
               PALETTE[i % len(PALETTE)])
        for i, a in enumerate(rows)
        if "distance" in a.layers
    ]
    share = [
        Series(a.model.name, tuple((float(layer), e.mean) for layer, e in enumerate(a.high_norm)),
               PALETTE[i % len(PALETTE)])
        for i, a in enumerate(rows)
        if a.high_norm
    ]
    models = [
        {
            "name": a.model.name, "href": site.url(src, layout.anatomy_page(a.model.slug)),
            "random": a.model.random, "n": len(a.images),
            "distance": [estimate_text(e, 1) for e in a.layers.get("distance", [])],
        }
        for a in rows
    ]
    context = {
        "models": models,
        "without": [m.name for m in site.catalog.models if m.name not in site.anatomy],
        "distance_chart": line_chart(series, title="Mean attention distance per layer, every model",
                                     x_label="layer", y_label="mean attention distance (px)")
        if series else None,
        "share_chart": line_chart(share, title="Share of high-norm patch tokens per layer, every model",
                                  x_label="layer", y_label="share of patch tokens")
        if share else None,
        "depth": max((len(m["distance"]) for m in models), default=0),
        "docs_href": site.docs_url(src, "methods.md"),
    }
    yield Page(src, "Head anatomy", context)
