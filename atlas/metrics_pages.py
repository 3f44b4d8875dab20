"""The atlas' metric pages: the leaderboard and one metrics page per model, plus the exported files.

Reads :class:`atlas.metrics_data.MetricsData` (``BUILD/metrics``) and renders through the
:class:`atlas.pages.PageWriter` of the build, so the pages share its banner, data block and URLs.
Plots are inline SVG from :mod:`atlas.svg_charts`; every number in a plot is also in a table.
"""

from __future__ import annotations

import math
import shutil
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from atlas import layout
from atlas.manifest import ImageEntry, ModelEntry
from atlas.metrics_data import MetricsData, image_panel
from atlas.svg_charts import PALETTE, Interval, RefLine, Series, interval_chart, line_chart, matrix_chart
from ssl_attention.methods import method_names

if TYPE_CHECKING:
    from atlas.pages import PageWriter

BASELINE_LABELS = {"uniform": "uniform (chance-level IoU)", "centre_gaussian": "centre Gaussian"}
BASELINE_COLOURS = {"uniform": "#888888", "centre_gaussian": "#D55E00"}
HEAT_BINS = 10
RANKING_ROWS = 10


def method_colour(method: str) -> str:
    """A method's colour in the charts: the palette colour of its place in the method registry."""
    names = method_names()
    return PALETTE[names.index(method) % len(PALETTE)] if method in names else PALETTE[-1]


def fmt(v: float | None) -> str:
    """A metric value as shown on the pages: 3 decimals, or an en dash when undefined."""
    return f"{v:.3f}" if v is not None and math.isfinite(v) else "–"


def _num(v: Any) -> float:
    return float(v) if v is not None else math.nan


def heat_bin(v: float, lo: float, hi: float) -> int | None:
    """Colour class ``0..HEAT_BINS-1`` of ``v`` on the scale ``[lo, hi]``; None for NaN."""
    if not math.isfinite(v):
        return None
    if hi <= lo:
        return HEAT_BINS // 2
    return min(HEAT_BINS - 1, int(HEAT_BINS * (v - lo) / (hi - lo)))


def metric_file(model_slug: str) -> str:
    """Site path of one model's exported CSV."""
    return f"{layout.DATA_DIR}/metrics/{model_slug}.csv"


SUMMARY_SITE_FILE = f"{layout.DATA_DIR}/metrics/summary.json"


def copy_metric_files(metrics: MetricsData | None, models: tuple[ModelEntry, ...], site_dir: Path) -> None:
    """Copy the exported CSVs (renamed to the model slugs) and ``summary.json`` into the site."""
    target = site_dir / layout.DATA_DIR / "metrics"
    if target.exists():
        shutil.rmtree(target)
    if metrics is None:
        return
    target.mkdir(parents=True)
    shutil.copy2(metrics.files["summary"], site_dir / SUMMARY_SITE_FILE)
    for model in models:
        if model.name in metrics.files:
            shutil.copy2(metrics.files[model.name], site_dir / metric_file(model.slug))


def panel_data(metrics: MetricsData | None, image: ImageEntry, models: list[ModelEntry]) -> dict[str, Any] | None:
    """The image page's metric panel data (see ``image_panel``); None without boxes or metrics."""
    if metrics is None or not image.boxes:
        return None
    names = metrics.metric_names()
    return {
        "names": names,
        "primary": metrics.primary,
        "baselines": BASELINE_LABELS,
        "models": {
            m.slug: image_panel(metrics.scores[m.name][image.id], names, metrics.primary)
            for m in models
            if image.id in metrics.scores.get(m.name, {})
        },
    }


class MetricPages:
    """Writes the leaderboard and the per-model metric pages of one build."""

    def __init__(self, writer: PageWriter, metrics: MetricsData | None) -> None:
        self.writer, self.metrics = writer, metrics
        self.models = {m.name: m for m in writer.catalog.models}
        self.summary = metrics.summary if metrics else {}
        self.names = metrics.metric_names() if metrics else []
        self.primary = metrics.primary if metrics else "iou@25"

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

    def cells(self, entry: dict[str, Any]) -> list[dict[str, Any]]:
        """One table cell per metric name: mean and CI as text, plus the raw numbers."""
        out = []
        for name in self.names:
            e = entry["metrics"].get(name) or {}
            mean, lo, hi = _num(e.get("mean")), _num(e.get("lo")), _num(e.get("hi"))
            out.append(
                {
                    "metric": name,
                    "mean": fmt(mean),
                    "ci": f"[{fmt(lo)}, {fmt(hi)}]" if math.isfinite(lo) else "",
                    "n": e.get("n", 0),
                    "primary": name == self.primary,
                }
            )
        return out

    def row(self, entry: dict[str, Any], label: str) -> dict[str, Any]:
        """A leaderboard row: one summary entry (a map kind or a baseline) with every metric."""
        return {
            "method": entry["method"],
            "label": label,
            "layer": entry["layer"],
            "baseline": entry["layer"] is None,
            "n": (entry["metrics"].get(self.primary) or {}).get("n", 0),
            "cells": self.cells(entry),
        }

    def baseline_means(self, model: str, metric: str) -> dict[str, float]:
        return {
            b["method"]: _num((b["metrics"].get(metric) or {}).get("mean"))
            for b in self.summary.get("baselines", [])
            if b["model"] == model
        }

    def baseline_refs(self, model: str) -> tuple[RefLine, ...]:
        means = self.baseline_means(model, self.primary)
        return tuple(RefLine(BASELINE_LABELS[k], v, BASELINE_COLOURS[k]) for k, v in sorted(means.items()))

    def layer_chart(self, model: str) -> Markup | None:
        """Mean primary metric of the fused map per layer, one line per method, baselines dashed."""
        series = []
        for table in self.summary.get("tables", []):
            if table["model"] != model or "fused" not in table["heads"]:
                continue
            col = table["heads"].index("fused")
            points = tuple(
                (float(layer), _num(row[col])) for layer, row in zip(table["layers"], table["values"], strict=True)
            )
            series.append(Series(table["method"], points, method_colour(table["method"])))
        if not series:
            return None
        kind = self.models[model].kind if model in self.models else "vit"
        return line_chart(
            series,
            title=f"{model}: mean {self.primary} of the fused map per {'stage' if kind == 'cnn' else 'layer'}",
            x_label="stage" if kind == "cnn" else "layer",
            y_label=f"mean {self.primary}",
            refs=self.baseline_refs(model),
        )

    def label_table(self, columns: list[tuple[str, dict[str, dict]]]) -> dict[str, Any]:
        """Rows = labels; one column per ``(title, {label: summary label entry})``."""
        labels = sorted({label for _, entries in columns for label in entries})
        rows = []
        for label in labels:
            cells = []
            for _, entries in columns:
                e = entries.get(label, {})
                mean, lo, hi = (_num(e.get(x)) for x in ("mean", "lo", "hi"))
                ci = f"[{fmt(lo)}, {fmt(hi)}]" if math.isfinite(lo) else ""
                cells.append({"mean": fmt(mean), "ci": ci, "n": e.get("n", 0)})
            rows.append({"label": label, "cells": cells})
        return {"columns": [title for title, _ in columns], "rows": rows}

    def labels_of(self, model: str, method: str) -> dict[str, dict]:
        """The box-metric entries of one leaderboard entry, by label."""
        return {e["label"]: e for e in self.summary.get("labels", []) if e["model"] == model and e["method"] == method}

    def downloads(self, src: str) -> list[tuple[str, str]]:
        if self.metrics is None:
            return []
        files = [("summary.json (every table of this page)", SUMMARY_SITE_FILE)]
        files += [
            (f"{m.name}.csv (tidy rows)", metric_file(m.slug))
            for m in self.writer.catalog.models
            if m.name in self.metrics.files
        ]
        return [(label, self.writer.url(src, path)) for label, path in files]

    # -- leaderboard ---------------------------------------------------------------------------
    def best_entries(self) -> dict[str, dict]:
        """Per model, its leaderboard entry with the highest mean primary metric (ties: first)."""
        best: dict[str, dict] = {}
        for e in self.summary.get("leaderboard", []):
            v = _num((e["metrics"].get(self.primary) or {}).get("mean"))
            old = best.get(e["model"])
            if math.isfinite(v) and (old is None or v > _num(old["metrics"][self.primary]["mean"])):
                best[e["model"]] = e
        return best

    def leaderboard(self) -> None:
        src = layout.LEADERBOARD_PAGE
        groups: dict[str, dict[str, Any]] = {}
        for e in self.summary.get("leaderboard", []):
            group = groups.setdefault(e["model"], {"model": self.model_ref(src, e["model"]), "rows": []})
            group["rows"].append(self.row(e, e["method"]))
        for b in self.summary.get("baselines", []):
            if b["model"] in groups:
                groups[b["model"]]["rows"].append(self.row(b, BASELINE_LABELS.get(b["method"], b["method"])))
        best_heads = [
            {
                "model": self.model_ref(src, e["model"]),
                "method": e["method"],
                "layer": e["layer"],
                "head": int(e["head"]),
                "href": self.head_href(src, e["model"], e["method"], e["layer"], int(e["head"])),
                "cells": self.cells(e),
            }
            for e in self.summary.get("best_heads", [])
        ]
        rows = [
            Interval(
                f"{e['model']} · {e['method']} · l{e['layer']}",
                *(_num((e["metrics"].get(self.primary) or {}).get(k)) for k in ("mean", "lo", "hi")),
                colour=method_colour(e["method"]),
                refs=self.baseline_refs(e["model"]),
            )
            for e in self.summary.get("leaderboard", [])
        ]
        best = self.best_entries()
        label_columns = [
            (f"{model} ({e['method']}, layer {e['layer']})", self.labels_of(model, e["method"]))
            for model, e in best.items()
        ]
        label_rows = [
            Interval(
                f"{label} · {model}", _num(e["mean"]), _num(e["lo"]), _num(e["hi"]), colour=PALETTE[i % len(PALETTE)]
            )
            for label in sorted({lab for _, entries in label_columns for lab in entries})
            for i, (model, _) in enumerate(best.items())
            for e in [self.labels_of(model, best[model]["method"]).get(label)]
            if e
        ]
        context = {
            "has_metrics": self.metrics is not None,
            "names": self.names,
            "primary": self.primary,
            "box_metric": self.summary.get("box_metric", "box_iou@25"),
            "n_images": self.summary.get("n_images", 0),
            "confidence": round(100 * float(self.summary.get("confidence", 0.95))),
            "n_boot": self.summary.get("n_boot", 0),
            "groups": list(groups.values()),
            "best_heads": best_heads,
            "ci_chart": interval_chart(
                rows,
                title=f"Mean {self.primary} with 95% CI per model and method",
                x_label=f"mean {self.primary} (dashed ticks: baselines)",
            )
            if rows
            else None,
            "layer_charts": [c for c in (self.layer_chart(m) for m in groups) if c is not None],
            "labels": self.label_table(label_columns),
            "label_chart": interval_chart(
                label_rows,
                bars=True,
                title=f"Mean {self.summary.get('box_metric')} per label and model",
                x_label="mean box IoU",
            )
            if label_rows
            else None,
            "model_pages": [self.model_ref(src, m.name) for m in self.writer.catalog.models],
            "docs_href": self.writer.docs_url(src, "metrics.md"),
            "downloads": self.downloads(src),
            "data_json": self.writer.data_json(src, "leaderboard"),
        }
        self.writer.write(src, "pages/leaderboard.html", "Leaderboard", context)

    def head_href(self, src: str, model: str, method: str, layer: int, head: int) -> str | None:
        info = self.models.get(model)
        if info is None or method not in info.head_methods or not (0 <= head < info.heads):
            return None
        return self.writer.url(src, layout.head_page(info.slug, layer, head)) + f"#method={method}"

    # -- per-model page ------------------------------------------------------------------------
    def heat_table(self, src: str, table: dict[str, Any], best: tuple[int, str] | None) -> dict[str, Any]:
        model, method = table["model"], table["method"]
        values = [_num(v) for row in table["values"] for v in row]
        finite = [v for v in values if math.isfinite(v)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
        rows = []
        for layer, row in zip(table["layers"], table["values"], strict=True):
            cells = []
            for head, v in zip(table["heads"], row, strict=True):
                v = _num(v)
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
        return {"method": method, "heads": table["heads"], "rows": rows, "lo": fmt(lo), "hi": fmt(hi)}

    def model_page(self, model: ModelEntry) -> None:
        src = layout.metrics_page(model.slug)
        name = model.name
        best_heads = {
            e["method"]: (e["layer"], e["head"]) for e in self.summary.get("best_heads", []) if e["model"] == name
        }
        tables = [
            self.heat_table(src, t, best_heads.get(t["method"]))
            for t in self.summary.get("tables", [])
            if t["model"] == name and t["method"] in model.head_methods
        ]
        ranking = [
            {
                "method": r["method"],
                "total": len(r["heads"]),
                "heads": [
                    dict(
                        h,
                        href=self.head_href(src, name, r["method"], h["layer"], int(h["head"])),
                        mean_rank=f"{h['mean_rank']:.2f}",
                    )
                    for h in r["heads"][:RANKING_ROWS]
                ],
            }
            for r in self.summary.get("head_ranking", [])
            if r["model"] == name
        ]
        similarity = [self.similarity(s) for s in self.summary.get("head_similarity", []) if s["model"] == name]
        methods = [e["method"] for e in self.summary.get("leaderboard", []) if e["model"] == name]
        context = {
            "model": model,
            "has_metrics": self.metrics is not None
            and any(e["model"] == name for e in self.summary.get("leaderboard", [])),
            "primary": self.primary,
            "box_metric": self.summary.get("box_metric", "box_iou@25"),
            "layer_chart": self.layer_chart(name),
            "tables": tables,
            "ranking": ranking,
            "similarity": similarity,
            "labels": self.label_table([(m, self.labels_of(name, m)) for m in methods]),
            "leaderboard_href": self.writer.url(src, layout.LEADERBOARD_PAGE),
            "model_href": self.writer.url(src, layout.model_page(model.slug)),
            "downloads": [d for d in self.downloads(src) if d[0].startswith(("summary", f"{name}.csv"))],
            "bins": HEAT_BINS,
            "data_json": self.writer.data_json(src, "model-metrics"),
        }
        self.writer.write(src, "pages/model_metrics.html", f"{name} metrics", context)

    def similarity(self, s: dict[str, Any]) -> dict[str, Any]:
        order = s["order"]
        labels = [f"h{h:02d}" for h in order]
        values = [[_num(s["similarity"][i][j]) for j in order] for i in order]
        groups = [s["clusters"][h] for h in order]
        clusters: dict[int, list[str]] = defaultdict(list)
        for h in order:
            clusters[s["clusters"][h]].append(f"h{h:02d}")
        title = f"{s['model']} {s['method']} layer {s['layer']}: correlation of the heads' maps"
        return {
            "method": s["method"],
            "layer": s["layer"],
            "chart": matrix_chart(values, labels, groups, title=title),
            "clusters": sorted(clusters.items()),
        }


def write_metric_pages(writer: PageWriter, metrics: MetricsData | None) -> None:
    """The leaderboard and one metrics page per model (pages say so when there are no metrics)."""
    pages = MetricPages(writer, metrics)
    pages.leaderboard()
    for model in writer.catalog.models:
        pages.model_page(model)
