"""The metric pages' parts of issue 27, added to the leaderboard's and model pages' context: each metric's
direction, the threshold-free metrics' charts with their baselines, the tag table, the head ranking by a
chosen metric and the head x label chooser. The builders wrap those of ``metric_pages``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from atlas.metrics.summary import LabelHeadTable, SummaryEntry, TagStat
from atlas.site.head_scores import LABEL_SORT
from atlas.site.pages.metric_pages import MetricPages, ci_text, fmt
from atlas.site.pages.metric_pages import leaderboard_page as metric_leaderboard_page
from atlas.site.pages.metric_pages import model_metrics_page as metric_model_page
from atlas.site.pages.writer import AtlasPages, Page
from ssl_attention.metrics import higher_is_better

SOFT_METRICS = ("mse", "kl", "emd")  # threshold-free, against the soft ground truth
MAX_CHOOSER_LABELS = 40  # the head x label chooser offers the labels with the most images


def lower_is_better(names: list[str]) -> list[str]:
    """The metric names (of ``names``) registered as lower-is-better."""
    return [n for n in names if not higher_is_better(n)]


def _stat_cell(entry: SummaryEntry, metric: str) -> dict[str, Any]:
    e = entry.stat(metric)
    return {"metric": metric, "mean": fmt(e.mean), "ci": ci_text(e), "n": e.n, "primary": False}


def _best(entries: tuple[SummaryEntry, ...], metric: str) -> SummaryEntry | None:
    """The entry with the best finite mean ``metric`` (its direction); ties: the first."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    finite = [e for e in entries if math.isfinite(e.stat(metric).mean)]
    return max(finite, key=lambda e: sign * e.stat(metric).mean, default=None)


def tag_rows(view: MetricPages, tags: tuple[TagStat, ...]) -> list[dict[str, Any]]:
    """One row per tag: its image count, whether it has few images, and its best leaderboard entry by the
    primary metric with the primary and threshold-free metrics."""
    metrics = [view.primary, *(m for m in SOFT_METRICS if m in view.names)]
    rows = []
    for t in tags:
        best = _best(t.entries, view.primary)
        rows.append({
            "tag": t.tag, "n": t.n_images, "few": t.few,
            "entry": None if best is None else f"{best.model} · {best.method} · layer {best.layer}",
            "cells": [_stat_cell(best, m) for m in metrics] if best else [],
        })
    return rows


def leaderboard_parts(view: MetricPages) -> dict[str, Any]:
    """The leaderboard's issue-27 context."""
    soft = [m for m in SOFT_METRICS if m in view.names]
    return {
        "lower_is_better": lower_is_better(view.names),
        "soft_metrics": soft,
        "soft_charts": [c for c in (view.ci_chart(m) for m in soft) if c is not None],
        "tag_metrics": [view.primary, *soft],
        "tags": tag_rows(view, view.summary.tags),
    }


def ranking_choices(view: MetricPages, src: str, model: str) -> list[dict[str, Any]]:
    """The head ranking of ``model`` by each metric it was ranked by (the primary first)."""
    metrics = list(dict.fromkeys(r.metric for r in view.summary.rankings_of(model)))
    return [{"metric": m, "lower": not higher_is_better(m), "tables": view.ranking(src, model, m)}
            for m in metrics]


def _best_head(table: LabelHeadTable) -> tuple[int, str, float] | None:
    """(layer, head, value) of the best single head of a head x label table; None without a finite value."""
    sign = 1.0 if higher_is_better(table.metric) else -1.0
    cells = [(layer, head, v) for layer, row in zip(table.layers, table.values, strict=True)
             for head, v in zip(table.heads, row, strict=True) if head.isdigit() and math.isfinite(v)]
    return max(cells, key=lambda c: (sign * c[2], -c[0], -int(c[1])), default=None)


def label_choices(view: MetricPages, src: str, model: str, head_methods: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per label (at most ``MAX_CHOOSER_LABELS``, those with the most images): each method's heat table of
    the box metric and its best head, each head linked to the head viewer sorted by the label's box metric."""
    tables = [t for t in view.summary.head_labels_of(model) if t.method in head_methods]
    images: dict[str, int] = {}  # label -> images of the model's leaderboard entries (summary's index, no scan)
    for method in head_methods:
        for label, stat in view.summary.labels_of(model, method).items():
            images[label] = max(images.get(label, 0), stat.stat.n)
    labels = sorted({t.label for t in tables}, key=lambda label: (-images.get(label, 0), label))
    chosen = sorted(labels[:MAX_CHOOSER_LABELS])
    out = []
    for label in chosen:
        methods = []
        sort = LABEL_SORT + label  # the head viewer sorts the images by this label's box metric (head_scores.LabelSort)
        for t in (t for t in tables if t.label == label):
            best = _best_head(t)
            href = view.head_href(src, model, t.method, best[0], int(best[1]), sort) if best else None
            methods.append({
                "method": t.method,
                "table": view.heat_table(src, t, (best[0], best[1]) if best else None, sort),
                "best": None if best is None else {"layer": best[0], "head": int(best[1]), "value": fmt(best[2]),
                                                   "href": href},
            })
        out.append({"label": label, "methods": methods})
    return out


def leaderboard_page(site: AtlasPages) -> Iterator[Page]:
    """``metric_pages.leaderboard_page`` with the issue-27 parts."""
    view = MetricPages(site, site.metrics)
    for page in metric_leaderboard_page(site):
        page.context.update(leaderboard_parts(view))
        yield page


def model_metrics_pages(site: AtlasPages) -> Iterator[Page]:
    """``metric_pages.model_metrics_page`` of every model, with the ranking and label choosers."""
    view = MetricPages(site, site.metrics)
    for model in site.catalog.models:
        page = metric_model_page(view, model)
        page.context.update({
            "lower_is_better": lower_is_better(view.names),
            "soft_layer_charts": [c for c in (view.layer_chart(model.name, m) for m in SOFT_METRICS) if c is not None],
            "rank_choices": ranking_choices(view, page.src, model.name),
            "label_choices": label_choices(view, page.src, model.name, tuple(model.head_methods)),
        })
        yield page
