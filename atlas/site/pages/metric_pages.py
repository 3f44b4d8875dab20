"""The atlas' metric pages: the leaderboard and one metrics page per model, plus the exported files.

Reads :class:`atlas.metrics.data.MetricsData` (``BUILD/metrics``); ``leaderboard_page`` and
``model_metrics_pages`` are the builders of their page kinds (``atlas.site.pages.kinds``), assembled from the
tables and charts of ``MetricPages``.
Plots are inline SVG from :mod:`atlas.site.svg_charts`; every number in a plot is also in a table.
"""

from __future__ import annotations

import math
import shutil
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from atlas.core import layout
from atlas.core.manifest import ImageEntry, ModelEntry
from atlas.metrics.data import MetricsData
from atlas.metrics.summary import (
    MISSING,
    GroundingStat,
    LabelStat,
    LayerHeadTable,
    Similarity,
    Summary,
    SummaryEntry,
)
from atlas.site.pages.held_out_table import held_out_context
from atlas.site.pages.writer import AtlasPages, Page, PageWriter
from atlas.site.svg_charts import PALETTE, Interval, RefLine, Series, interval_chart, line_chart, matrix_chart
from ssl_attention.aggregate import FUSED, Estimate
from ssl_attention.grounding import GROUNDING_METRICS
from ssl_attention.methods import method_names
from ssl_attention.metrics import higher_is_better

BASELINE_LABELS = {"uniform": "uniform (chance-level IoU)", "centre_gaussian": "centre Gaussian"}
BASELINE_COLOURS = {"uniform": "#888888", "centre_gaussian": "#D55E00"}
HEAT_BINS = 10
RANKING_ROWS = 10
# A page lists at most this many box labels (those with the most images) and charts fewer: 50,000 distinct
# labels made a 42 MB leaderboard. summary.json, offered on the same page, has every label.
MAX_LABEL_ROWS = 500
MAX_CHART_LABELS = 40


def method_colour(method: str) -> str:
    """A method's colour in the charts: the palette colour of its place in the method registry."""
    names = method_names()
    return PALETTE[names.index(method) % len(PALETTE)] if method in names else PALETTE[-1]


def fmt(v: float | None) -> str:
    """A metric value as shown on the pages: 3 decimals, or an en dash when undefined."""
    return f"{v:.3f}" if v is not None and math.isfinite(v) else "–"


MIN_CI_N = 3  # fewer images: the tables show n and no interval (a bootstrap of 1 or 2 values says nothing)


def shown_ci(e: Estimate) -> tuple[float, float]:
    """The confidence interval the pages show for ``e``: NaNs below ``MIN_CI_N`` images."""
    return (e.lo, e.hi) if e.n >= MIN_CI_N else (math.nan, math.nan)


def ci_text(e: Estimate) -> str:
    """An estimate's confidence interval as shown in the tables; empty when undefined or below ``MIN_CI_N``."""
    lo, hi = shown_ci(e)
    return f"[{fmt(lo)}, {fmt(hi)}]" if math.isfinite(lo) else ""


def heat_bin(v: float, lo: float, hi: float) -> int | None:
    """Colour class ``0..HEAT_BINS-1`` of ``v`` on the scale ``[lo, hi]``; None for NaN."""
    if not math.isfinite(v):
        return None
    if hi <= lo:
        return HEAT_BINS // 2
    return min(HEAT_BINS - 1, int(HEAT_BINS * (v - lo) / (hi - lo)))


SUMMARY_SITE_FILE = f"{layout.DATA_DIR}/metrics/summary.json"


def copy_metric_files(metrics: MetricsData | None, site_dir: Path) -> None:
    """Copy ``summary.json`` into the site (the per-image rows stay in the build folder)."""
    target = site_dir / layout.DATA_DIR / "metrics"
    if target.exists():
        shutil.rmtree(target)
    if metrics is None:
        return
    target.mkdir(parents=True)
    shutil.copy2(metrics.files["summary"], site_dir / SUMMARY_SITE_FILE)


def panel_data(metrics: MetricsData | None, image: ImageEntry, models: list[ModelEntry]) -> dict[str, Any] | None:
    """The image page's metric panel data (``atlas.metrics.rows.image_panel``); None without boxes or metrics."""
    if metrics is None or not image.boxes:
        return None
    names = metrics.metric_names()
    return {
        "names": names,
        "primary": metrics.primary,
        "baselines": BASELINE_LABELS,
        "models": {
            m.slug: metrics.panels[m.name][image.id]
            for m in models
            if image.id in metrics.panels.get(m.name, {})
        },
    }


class MetricPages:
    """The tables and charts of the leaderboard and the per-model metric pages of one build."""

    def __init__(self, writer: PageWriter, metrics: MetricsData | None) -> None:
        self.writer, self.metrics = writer, metrics
        self.models = {m.name: m for m in writer.catalog.models}
        self.summary = metrics.summary if metrics else Summary()
        self.names = metrics.metric_names() if metrics else []
        self.primary = self.summary.primary

    # -- shared pieces -------------------------------------------------------------------------
    def model_ref(self, src: str, name: str) -> dict[str, Any]:
        model = self.models.get(name)
        slug = model.slug if model else layout.slug(name)
        return {
            "name": name,
            "slug": slug,
            "random": bool(model and model.weights == "random"),
            "href": self.writer.url(src, layout.metrics_page(slug)) if model else None,
        }

    def cells(self, entry: SummaryEntry) -> list[dict[str, Any]]:
        """One table cell per metric name: mean and CI as text, plus the raw numbers."""
        out = []
        for name in self.names:
            e = entry.stat(name)
            out.append(
                {"metric": name, "mean": fmt(e.mean), "ci": ci_text(e), "n": e.n, "primary": name == self.primary}
            )
        return out

    def row(self, entry: SummaryEntry, label: str) -> dict[str, Any]:
        """A leaderboard row: one summary entry (a map kind or a baseline) with every metric."""
        return {
            "method": entry.method,
            "label": label,
            "layer": entry.layer,
            "baseline": entry.layer is None,
            "n": entry.stat(self.primary).n,
            "cells": self.cells(entry),
            "grounding": self.grounding_cells(self.grounding_overall(entry.model, entry.method))[:1],
        }

    def grounding_cells(self, g: GroundingStat | None) -> list[dict[str, Any]]:
        """One cell per text-grounding metric (dashes without an entry)."""
        out = []
        for name in GROUNDING_METRICS:
            e = g.stat(name) if g is not None else MISSING
            cell = {"metric": f"grounding:{name}", "mean": fmt(e.mean), "ci": ci_text(e), "n": e.n, "primary": False}
            out.append(cell)
        return out

    def grounding_tables(self, model: str) -> list[dict[str, Any]]:
        """Per method, the text-grounding rows of ``model``: all labels first, then each label."""
        tables: dict[str, list[dict[str, Any]]] = {}
        for g in self.summary.grounding_of(model):
            rows = tables.setdefault(g.method, [])
            row = {"label": g.label or "all labels", "prompt": g.prompt, "n": g.stat(GROUNDING_METRICS[0]).n,
                   "cells": self.grounding_cells(g), "overall": not g.label}
            rows.insert(0, row) if not g.label else rows.append(row)
        return [{"method": method, "rows": rows} for method, rows in tables.items()]

    def grounding_overall(self, model: str, method: str) -> GroundingStat | None:
        """The all-labels text-grounding entry of one model x method, if any."""
        return next((g for g in self.summary.grounding_of(model) if g.method == method and not g.label), None)

    def baseline_means(self, model: str, metric: str) -> dict[str, float]:
        return {b.method: b.stat(metric).mean for b in self.summary.baselines_of(model)}

    def baseline_refs(self, model: str, metric: str | None = None) -> tuple[RefLine, ...]:
        means = self.baseline_means(model, metric or self.primary)
        return tuple(RefLine(BASELINE_LABELS[k], v, BASELINE_COLOURS[k]) for k, v in sorted(means.items()))

    def layer_chart(self, model: str, metric: str | None = None) -> Markup | None:
        """Mean ``metric`` (default: the primary) of the fused map per layer, one line per method, baselines
        dashed."""
        metric = metric or self.primary
        series = []
        for table in self.summary.tables_of(model, metric):
            fused = table.column(FUSED)
            if fused is None:
                continue
            points = tuple((float(layer), v) for layer, v in fused)
            series.append(Series(table.method, points, method_colour(table.method)))
        if not series:
            return None
        kind = self.models[model].kind if model in self.models else "vit"
        return line_chart(
            series,
            title=f"{model}: mean {metric} of the fused map per {'stage' if kind == 'cnn' else 'layer'}",
            x_label="stage" if kind == "cnn" else "layer",
            y_label=f"mean {metric}" + ("" if higher_is_better(metric) else " (lower is better)"),
            refs=self.baseline_refs(model, metric),
        )

    def label_table(self, columns: list[tuple[str, Mapping[str, LabelStat]]]) -> dict[str, Any]:
        """Rows = labels (at most ``MAX_LABEL_ROWS``: ``top_labels``); one column per
        ``(title, {label: summary label entry})``; ``total``: how many labels there are."""
        labels, total = top_labels(columns, MAX_LABEL_ROWS)
        rows = []
        for label in labels:
            cells = []
            for _, entries in columns:
                found = entries.get(label)
                e = found.stat if found else MISSING
                cells.append({"mean": fmt(e.mean), "ci": ci_text(e), "n": e.n})
            rows.append({"label": label, "cells": cells})
        return {"columns": [title for title, _ in columns], "rows": rows, "total": total}

    def labels_of(self, model: str, method: str) -> Mapping[str, LabelStat]:
        """The box-metric entries of one leaderboard entry, by label."""
        return self.summary.labels_of(model, method)

    def downloads(self, src: str) -> list[tuple[str, str]]:
        if self.metrics is None:
            return []
        files = [("summary.json (every table of this page)", SUMMARY_SITE_FILE)]
        return [(label, self.writer.url(src, path)) for label, path in files]

    # -- leaderboard ---------------------------------------------------------------------------
    def best_entries(self) -> dict[str, SummaryEntry]:
        """Per model, its leaderboard entry with the best mean primary metric (ties: first)."""
        best: dict[str, SummaryEntry] = {}
        sign = 1.0 if higher_is_better(self.primary) else -1.0
        for e in self.summary.leaderboard:
            v = e.stat(self.primary).mean
            old = best.get(e.model)
            if math.isfinite(v) and (old is None or sign * v > sign * old.stat(self.primary).mean):
                best[e.model] = e
        return best

    def leaderboard_groups(self, src: str) -> dict[str, dict[str, Any]]:
        """The leaderboard's rows per model: its map kinds, its per-prompt maps, then its baselines."""
        groups: dict[str, dict[str, Any]] = {}
        for e in self.summary.leaderboard:
            group = groups.setdefault(e.model, {"model": self.model_ref(src, e.model), "rows": []})
            group["rows"].append(self.row(e, e.method))
        for g in self.summary.text_grounding:  # per-prompt maps: scored by text grounding only
            if not g.label:
                group = groups.setdefault(g.model, {"model": self.model_ref(src, g.model), "rows": []})
                entry = SummaryEntry(g.model, g.method, None, "", {})
                n = g.stat(GROUNDING_METRICS[0]).n
                group["rows"].append(self.row(entry, g.method) | {"baseline": False, "n": n})
        for b in self.summary.baselines:
            if b.model in groups:
                groups[b.model]["rows"].append(self.row(b, BASELINE_LABELS.get(b.method, b.method)))
        return groups

    def best_head_rows(self, src: str) -> list[dict[str, Any]]:
        """The best head of each model and method, with every metric."""
        return [
            {
                "model": self.model_ref(src, e.model),
                "method": e.method,
                "layer": e.layer,
                "head": int(e.head),
                "href": self.head_href(src, e.model, e.method, e.layer, int(e.head)),
                "cells": self.cells(e),
            }
            for e in self.summary.best_heads
        ]

    def ci_chart(self, metric: str | None = None) -> Markup | None:
        """Every leaderboard entry's mean ``metric`` (default: the primary) with its confidence interval,
        baselines as ticks."""
        metric = metric or self.primary
        direction = "" if higher_is_better(metric) else "lower is better; "
        rows = [
            Interval(
                f"{e.model} · {e.method} · l{e.layer}",
                s.mean,
                *shown_ci(s),
                colour=method_colour(e.method),
                refs=self.baseline_refs(e.model, metric),
            )
            for e in self.summary.leaderboard
            for s in [e.stat(metric)]
        ]
        return interval_chart(
            rows,
            title=f"Mean {metric} with 95% CI per model and method",
            x_label=f"mean {metric} ({direction}dashed ticks: baselines)",
        ) if rows else None

    def label_parts(self) -> dict[str, Any]:
        """The box metric per label of each model's best entry: as a table, and as a chart (None: no labels)
        of at most ``MAX_CHART_LABELS`` labels, with how many it shows of how many (the leaderboard's context)."""
        best = self.best_entries()
        label_columns = [
            (f"{model} ({e.method}, layer {e.layer})", self.labels_of(model, e.method)) for model, e in best.items()
        ]
        chart_labels, label_total = top_labels(label_columns, MAX_CHART_LABELS)
        label_rows = [
            Interval(f"{label} · {model}", e.stat.mean, *shown_ci(e.stat), colour=PALETTE[i % len(PALETTE)])
            for label in chart_labels
            for i, (model, _) in enumerate(best.items())
            for e in [self.labels_of(model, best[model].method).get(label)]
            if e
        ]
        chart = interval_chart(
            label_rows,
            bars=True,
            title=f"Mean {self.summary.box_metric} per label and model",
            x_label="mean box IoU",
        ) if label_rows else None
        return {"labels": self.label_table(label_columns), "label_chart": chart,
                "label_chart_shown": len(chart_labels), "label_total": label_total}

    def head_href(self, src: str, model: str, method: str, layer: int, head: int, sort: str = "") -> str | None:
        """The head viewer at this head and method; ``sort``: its sort (e.g. ``label:<label>``), if not the default."""
        info = self.models.get(model)
        if info is None or method not in info.head_methods or not (0 <= head < info.heads):
            return None
        anchor = layout.head_anchor(layer, head)
        state = urlencode({"method": method, **({"sort": sort} if sort else {})})
        return self.writer.url(src, layout.head_viewer(info.slug)) + f"#{anchor}&{state}"

    # -- per-model page ------------------------------------------------------------------------
    def heat_table(self, src: str, table: LayerHeadTable, best: tuple[int | None, str] | None,
                   sort: str = "") -> dict[str, Any]:
        """A layer x head table's cells, each head's linked to the head viewer; ``sort``: the viewer's sort for
        every link of the table, which ``choosers.mjs`` adds to them (``data-head-sort``: not in every href)."""
        model, method = table.model, table.method
        finite = [v for row in table.values for v in row if math.isfinite(v)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
        rows = []
        for layer, row in zip(table.layers, table.values, strict=True):
            cells = []
            for head, v in zip(table.heads, row, strict=True):
                is_head = head.isdigit()
                cells.append(
                    {
                        "value": fmt(v),
                        "bin": heat_bin(v, lo, hi),
                        "head": head,
                        "href": self.head_href(src, model, method, layer, int(head)) if is_head else None,
                        "best": best == (layer, head),
                        "label": f"layer {layer} head {head}" if is_head else f"layer {layer} fused",
                    }
                )
            rows.append({"layer": layer, "cells": cells})
        return {"method": method, "heads": table.heads, "rows": rows, "lo": fmt(lo), "hi": fmt(hi), "sort": sort}

    def ranking(self, src: str, name: str, metric: str | None = None) -> list[dict[str, Any]]:
        """Per method, the first ``RANKING_ROWS`` heads of the model ``name`` by mean rank of ``metric``
        (default: the primary)."""
        return [
            {
                "method": r.method,
                "total": len(r.heads),
                "heads": [
                    {
                        **asdict(h),
                        "href": self.head_href(src, name, r.method, h.layer, int(h.head)),
                        "mean_rank": f"{h.mean_rank:.2f}",
                    }
                    for h in r.heads[:RANKING_ROWS]
                ],
            }
            for r in self.summary.rankings_of(name, metric or self.primary)
        ]

    def similarity(self, s: Similarity) -> dict[str, Any]:
        order = s.order
        labels = [f"h{h:02d}" for h in order]
        values = [[s.similarity[i][j] for j in order] for i in order]
        groups = [s.clusters[h] for h in order]
        clusters: dict[int, list[str]] = defaultdict(list)
        for h in order:
            clusters[s.clusters[h]].append(f"h{h:02d}")
        title = f"{s.model} {s.method} layer {s.layer}: correlation of the heads' maps"
        return {
            "method": s.method,
            "layer": s.layer,
            "chart": matrix_chart(values, labels, groups, title=title),
            "clusters": sorted(clusters.items()),
        }


def top_labels(columns: list[tuple[str, Mapping[str, LabelStat]]], limit: int) -> tuple[list[str], int]:
    """The labels of ``columns`` a page shows, in alphabetical order, and how many there are in all: every
    label up to ``limit``, else the ``limit`` labels with the most images (most in any column; ties by name)."""
    images: dict[str, int] = {}
    for _, entries in columns:
        for label, entry in entries.items():
            images[label] = max(images.get(label, 0), entry.stat.n)
    if len(images) <= limit:
        return sorted(images), len(images)
    ranked = sorted(images, key=lambda label: (-images[label], label))
    return sorted(ranked[:limit]), len(images)


def leaderboard_page(site: AtlasPages) -> Iterator[Page]:
    """The leaderboard: every model's map kinds and baselines with every metric, the best heads, the charts."""
    view = MetricPages(site, site.metrics)
    src = layout.LEADERBOARD_PAGE
    groups = view.leaderboard_groups(src)
    summary = view.summary
    context = {
        "has_metrics": view.metrics is not None,
        "names": view.names,
        "primary": view.primary,
        "box_metric": summary.box_metric,
        "n_images": summary.n_images,
        "confidence": round(100 * summary.confidence),
        "n_boot": summary.n_boot,
        "groups": list(groups.values()),
        "grounding_metric": GROUNDING_METRICS[0],
        "best_heads": view.best_head_rows(src),
        "ci_chart": view.ci_chart(),
        "layer_charts": [c for c in (view.layer_chart(m) for m in groups) if c is not None],
        **view.label_parts(),
        "model_pages": [view.model_ref(src, m.name) for m in site.catalog.models],
        "docs_href": site.docs_url(src, "metrics.md"),
        "downloads": view.downloads(src),
        "held_out": held_out_context(summary.held_out, lambda name: view.model_ref(src, name),
                                     lambda e: {"mean": fmt(e.mean), "ci": ci_text(e)}),
        "box_similarity": box_similarity_rows(view, src),
    }
    yield Page(src, "Leaderboard", context)


def box_similarity_rows(view: MetricPages, src: str) -> list[dict]:
    """Per model with box similarity: the box metric's mean over boxes at each layer and the best layer."""
    summary = view.summary
    chosen = [s for s in summary.box_similarity if s["metric"] == summary.box_metric and s["model"] in view.models]
    depth = max((len(s["layers"]) for s in chosen), default=0)  # one column per layer of the deepest model
    return [{"model": view.model_ref(src, s["model"]), "layers": [*s["layers"], *[None] * (depth - len(s["layers"]))],
             "best": s["best_layer"], "boxes": s["boxes"]} for s in chosen]


def model_metrics_pages(site: AtlasPages) -> Iterator[Page]:
    """One metrics page per model: its layer x head tables, head ranking, head similarity and label table."""
    view = MetricPages(site, site.metrics)
    for model in site.catalog.models:
        yield model_metrics_page(view, model)


def model_metrics_page(view: MetricPages, model: ModelEntry) -> Page:
    src = layout.metrics_page(model.slug)
    name = model.name
    summary = view.summary
    best_heads = {e.method: (e.layer, e.head) for e in summary.best_heads_of(name)}
    tables = [
        view.heat_table(src, t, best_heads.get(t.method))
        for t in summary.tables_of(name)
        if t.method in model.head_methods
    ]
    methods = [e.method for e in summary.leaderboard_of(name)]
    context = {
        "model": model,
        "has_metrics": view.metrics is not None and bool(methods),
        "primary": view.primary,
        "box_metric": summary.box_metric,
        "layer_chart": view.layer_chart(name),
        "tables": tables,
        "ranking": view.ranking(src, name),
        "similarity": [view.similarity(s) for s in summary.similarities_of(name)],
        "labels": view.label_table([(m, view.labels_of(name, m)) for m in methods]),
        "grounding": view.grounding_tables(name),
        "grounding_metrics": GROUNDING_METRICS,
        "leaderboard_href": view.writer.url(src, layout.LEADERBOARD_PAGE),
        "model_href": view.writer.url(src, layout.model_page(model.slug)),
        "downloads": view.downloads(src),
        "bins": HEAT_BINS,
    }
    return Page(src, f"{name} metrics", context)
