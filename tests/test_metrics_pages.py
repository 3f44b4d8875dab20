"""The metric results in the built site: leaderboard, layer x head heat tables, per-image panels, exports.

Expected values are recomputed here from ``summary.json`` and the tidy CSVs, independently of the page code.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from atlas.core import layout
from atlas.metrics.data import load_metrics
from atlas.metrics.stage import compute_metrics
from atlas.site.catalog import load_catalog
from atlas.site.pages import MAX_DRAWN_BOXES, write_all_pages
from atlas.site.stage import SiteReport
from tests.fixtures.fake_maps import write_fake_build


class _Rows(HTMLParser):
    """Every table row of a page: ``(table attrs, row attrs, [(cell attrs, text, [hrefs])])``."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[dict, dict, list[tuple[dict, str, list[str]]]]] = []
        self._table: dict = {}
        self._cell: tuple[dict, list[str], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._table = a
        elif tag == "tr":
            self.rows.append((self._table, a, []))
        elif tag in ("td", "th") and self.rows:
            self._cell = (a, [], [])
            self.rows[-1][2].append(self._cell)
        elif tag == "a" and self._cell is not None:
            self._cell[2].append(a.get("href", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[1].append(data)


def _rows(
    path: Path, table_class: str, method: str | None = None
) -> list[tuple[dict, list[tuple[dict, str, list[str]]]]]:
    """Rows of the tables with ``table_class`` (and ``data-method``), cell texts whitespace-normalised."""
    parser = _Rows()
    parser.feed(path.read_text(encoding="utf-8"))
    return [
        (row, [(a, " ".join("".join(text).split()), hrefs) for a, text, hrefs in cells])
        for table, row, cells in parser.rows
        if table_class in table.get("class", "").split() and method in (None, table.get("data-method"))
    ]


def _fmt(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.3f}"


def _csv(build: Path, model: str) -> list[dict[str, str]]:
    """A model's metric rows (Parquet, or gzip CSV) as the text the CSV export had in each column."""
    from atlas.metrics.rows import SUFFIX, read_rows

    def text(v: int | None) -> str:
        return "" if v is None else str(v)

    return [{"image": r.image, "model": r.model, "method": r.method, "layer": text(r.layer), "head": r.head,
             "metric": r.metric, "box": text(r.box), "label": r.label,
             "value": f"{r.value:.7g}" if math.isfinite(r.value) else ""}
            for r in read_rows(build / "metrics" / f"{model}{SUFFIX}")]


def test_leaderboard_shows_the_summary(built_site: SiteReport, fake_build: Path):
    summary = json.loads((fake_build / "metrics" / "summary.json").read_text())
    html_file = built_site.site_dir / "atlas" / "leaderboard" / "index.html"
    rows = {(r["data-model"], r["data-method"]): cells for r, cells in _rows(html_file, "atlas-leaderboard") if r}
    expected = summary["leaderboard"] + summary["baselines"]
    assert len(rows) == len(expected) and len(summary["leaderboard"]) == 6  # 3 + 2 + 1 model x method
    for entry in expected:
        cells = {a["data-metric"]: text for a, text, _ in rows[(entry["model"], entry["method"])] if "data-metric" in a}
        assert cells.pop("grounding:iou@25") == "–"  # the text grounding column: no per-prompt maps here
        assert set(cells) == set(entry["metrics"])
        for metric, e in entry["metrics"].items():
            interval = f" [{_fmt(e['lo'])}, {_fmt(e['hi'])}]" if e["n"] >= 3 else ""  # none below 3 images
            assert cells[metric] == _fmt(e["mean"]) + interval, (entry, metric)
        layer_cell = rows[(entry["model"], entry["method"])][2][1]
        assert layer_cell == ("–" if entry["layer"] is None else str(entry["layer"]))
    html = html_file.read_text(encoding="utf-8")
    assert "Numbers of random-weight models are meaningless" in html and "atlas-random-banner" in html
    assert html.count('<svg class="atlas-chart') >= 4  # CI chart, one layer chart per model, label chart
    assert f"{summary['n_images']} images with boxes" in html
    for label in ("uniform (chance-level IoU)", "centre Gaussian"):
        assert label in html


def test_heat_table_cells_link_to_head_pages_with_the_csv_mean(built_site: SiteReport, fake_build: Path):
    site = built_site.site_dir
    html_file = site / "atlas" / "leaderboard" / "dinov2" / "index.html"
    assert len(_rows(html_file, "atlas-heat-table")) == 2 * (1 + 3)  # cls and mean: header + 3 layers
    rows = _rows(html_file, "atlas-heat-table", "cls")
    cells = {
        (a["data-layer"], a["data-head"]): (text, hrefs)
        for _, cs in rows
        for a, text, hrefs in cs
        if a.get("data-head")
    }
    assert len(cells) == 3 * 5  # 3 layers x (4 heads + fused)
    values = [
        float(r["value"])
        for r in _csv(fake_build, "dinov2")
        if (r["method"], r["layer"], r["head"], r["metric"], r["box"]) == ("cls", "1", "2", "iou@25", "") and r["value"]
    ]
    text, hrefs = cells[("1", "2")]
    assert text.split()[0] == _fmt(sum(values) / len(values))
    target = urlsplit(hrefs[0])
    assert target.fragment == "l01-h02&method=cls"  # the head viewer's permalink of that head
    resolved = (html_file.parent / target.path).resolve()
    assert resolved == (site / "atlas" / "heads" / "dinov2").resolve()
    assert (resolved / "index.html").is_file()
    summary = json.loads((fake_build / "metrics" / "summary.json").read_text())
    best = next(b for b in summary["best_heads"] if (b["model"], b["method"]) == ("dinov2", "cls"))
    starred = [k for k, (t, _) in cells.items() if "★" in t]
    assert starred == [(str(best["layer"]), best["head"])]
    html = html_file.read_text(encoding="utf-8")
    assert "Head ranking" in html and "Cluster 0:" in html and "atlas-matrix-chart" in html


def test_exported_files_are_linked_and_copied(built_site: SiteReport, fake_build: Path):
    site = built_site.site_dir
    assert (site / "atlas-data" / "metrics" / "summary.json").read_bytes() == (
        fake_build / "metrics" / "summary.json"
    ).read_bytes()
    html = (site / "atlas" / "leaderboard" / "index.html").read_text(encoding="utf-8")
    assert 'href="../../atlas-data/metrics/summary.json"' in html
    # the per-image rows stay in the build folder: the site publishes the summary only
    assert sorted(p.name for p in (site / "atlas-data" / "metrics").iterdir()) == ["summary.json"]


def test_image_without_boxes_says_metrics_are_skipped(tmp_path: Path):
    write_fake_build(tmp_path)
    manifest_path = tmp_path / "maps" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    next(i for i in manifest["images"] if i["id"] == "church_01")["boxes"] = []
    manifest_path.write_text(json.dumps(manifest))
    compute_metrics(tmp_path)
    docs = tmp_path / "docs"
    write_all_pages(load_catalog(tmp_path), docs, metrics=load_metrics(tmp_path))
    church = (docs / layout.image_page("church_01")).read_text(encoding="utf-8")
    astronaut = (docs / layout.image_page("astronaut")).read_text(encoding="utf-8")
    assert "No boxes: metrics skipped." in church and 'data-role="metrics"' not in church
    assert '"metrics":null' in church
    assert "No boxes" not in astronaut and 'data-role="metrics"' in astronaut
    assert all(r["image"] != "church_01" for r in _csv(tmp_path, "dinov2"))


def test_pages_without_metrics_say_so(tmp_path: Path):
    write_fake_build(tmp_path)
    docs = tmp_path / "docs"
    write_all_pages(load_catalog(tmp_path), docs)
    assert "has no alignment metrics" in (docs / layout.LEADERBOARD_PAGE).read_text(encoding="utf-8")
    assert "No metrics in this build" in (docs / layout.image_page("astronaut")).read_text(encoding="utf-8")


def _panel(page, model: str) -> dict[tuple[str, str], str]:
    cells = page.eval_on_selector_all(
        f".atlas-metric-panel[data-model={model}] td",
        "els => els.map(e => [e.closest('tr').dataset.metric, e.dataset.col, e.textContent])",
    )
    return {(metric, col): text for metric, col, text in cells}


@pytest.mark.browser
def test_image_panel_shows_the_csv_values_of_the_selected_view(page, site_url, fake_build):
    rows = [r for r in _csv(fake_build, "dinov2") if r["image"] == "astronaut" and not r["box"]]

    def value(method: str, layer: str, head: str, metric: str) -> float:
        found = [
            r["value"]
            for r in rows
            if (r["method"], r["layer"], r["head"], r["metric"]) == (method, layer, head, metric)
        ]
        assert len(found) == 1
        return float(found[0]) if found[0] else math.nan

    page.goto(site_url + "atlas/images/astronaut/#method=cls&layer=2")
    page.wait_for_selector(".atlas-metric-panel[data-model=dinov2]")
    page.check("input[name=method][value=mean]")  # toggle the method, then the layer
    page.fill("input[name=layer]", "1")
    page.dispatch_event("input[name=layer]", "change")
    page.wait_for_selector(".atlas-metric-panel[data-model=dinov2] caption:text('mean · layer 1')")
    shown = _panel(page, "dinov2")
    heads = [str(h) for h in range(4)]
    best = max(heads, key=lambda h: (value("mean", "1", h, "iou@25"), -int(h)))
    for metric in ("iou@10", "iou@25", "iou@50", "iou_mass@60", "coverage", "pointing", "pointing@15px"):
        assert abs(float(shown[(metric, "fused")]) - value("mean", "1", "fused", metric)) <= 5e-4, metric
        assert abs(float(shown[(metric, "best")]) - value("mean", "1", best, metric)) <= 5e-4, metric
        assert abs(float(shown[(metric, "uniform")]) - value("uniform", "", "", metric)) <= 5e-4, metric
    header = page.text_content(".atlas-metric-panel[data-model=dinov2] th[data-col=best]")
    assert header == f"best head h{int(best):02d}"
    assert re.search(r"resnet50", page.text_content("[data-role=metrics]") or "") is None  # no mean maps: no table


class _CountedList(list):
    """A list that counts how often it is iterated."""

    iterations = 0

    def __iter__(self):
        type(self).iterations += 1
        return super().__iter__()


def test_label_entries_are_read_once_not_once_per_label(tmp_path: Path):
    # labels_of used to scan every label entry once per (label, model): 20,000 labels took 139 s
    write_fake_build(tmp_path)
    compute_metrics(tmp_path)
    metrics = load_metrics(tmp_path)
    assert metrics is not None and len(metrics.summary.labels) > 2
    _CountedList.iterations = 0
    summary = dataclasses.replace(metrics.summary, labels=_CountedList(metrics.summary.labels))
    metrics = dataclasses.replace(metrics, summary=summary)
    write_all_pages(load_catalog(tmp_path), tmp_path / "docs", metrics=metrics)
    assert _CountedList.iterations == 1


def test_image_page_draws_at_most_max_drawn_boxes_and_says_so(tmp_path: Path):
    write_fake_build(tmp_path)
    manifest_path = tmp_path / "maps" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    church = next(i for i in manifest["images"] if i["id"] == "church_01")
    many = MAX_DRAWN_BOXES + 250
    church["boxes"] = [{"label": f"part{k}", "bbox": [k % 50, 1, 5, 5]} for k in range(many)]
    manifest_path.write_text(json.dumps(manifest))
    compute_metrics(tmp_path)
    docs = tmp_path / "docs"
    write_all_pages(load_catalog(tmp_path), docs, metrics=load_metrics(tmp_path))
    page = (docs / layout.image_page("church_01")).read_text(encoding="utf-8")
    assert page.count("<rect ") == MAX_DRAWN_BOXES
    assert f"showing the first {MAX_DRAWN_BOXES} of {many} boxes" in page
    assert f"part{MAX_DRAWN_BOXES - 1}<" in page and f"part{MAX_DRAWN_BOXES}<" not in page
    labels = {r.label for r in load_metrics(tmp_path).summary.labels if r.model == "dinov2"}
    assert {f"part{k}" for k in range(many)} <= labels  # the metrics use every box
    astronaut = (docs / layout.image_page("astronaut")).read_text(encoding="utf-8")
    assert "showing the first" not in astronaut


def test_metric_pages_list_at_most_max_label_rows_and_say_so(tmp_path: Path):
    """50,000 distinct labels made a 42 MB leaderboard (47 s to load): the pages list the labels with the
    most images, say how many there are, and stay small; the summary keeps every label."""
    from atlas.site.pages.metric_pages import MAX_CHART_LABELS, MAX_LABEL_ROWS

    write_fake_build(tmp_path)
    compute_metrics(tmp_path)
    metrics = load_metrics(tmp_path)
    assert metrics is not None
    frequent = {f"frequent{k:02d}" for k in range(30)}  # on more images than any other label
    added = [
        dataclasses.replace(entry, label=label, stat=dataclasses.replace(entry.stat, n=9 if label in frequent else 1))
        for entry in {(e.model, e.method): e for e in metrics.summary.labels}.values()
        for label in [*frequent, *(f"part{k:05d}" for k in range(50_000 - len(frequent)))]
    ]
    summary = dataclasses.replace(metrics.summary, labels=[*metrics.summary.labels, *added])
    total = len({e.label for e in summary.labels})
    assert total > 50_000
    docs = tmp_path / "docs"
    write_all_pages(load_catalog(tmp_path), docs, metrics=dataclasses.replace(metrics, summary=summary))

    for src in (layout.LEADERBOARD_PAGE, layout.metrics_page("dinov2")):
        page = docs / src
        assert page.stat().st_size < 1_000_000, src  # 42 MB and 15 MB before
        rows = [cells[0][1] for row, cells in _rows(page, "atlas-label-table") if "data-label" in row]
        assert len(rows) == MAX_LABEL_ROWS and rows == sorted(rows), src
        assert frequent <= set(rows), src  # the labels with the most images first
        text = page.read_text(encoding="utf-8")
        assert f"Showing the {MAX_LABEL_ROWS} labels with the most images, of {total} labels" in text, src
    leaderboard = (docs / layout.LEADERBOARD_PAGE).read_text(encoding="utf-8")
    assert f"The chart shows the {MAX_CHART_LABELS} labels with the most images, of {total} labels" in leaderboard
    chart = leaderboard.split('data-role="label-chart-capped"')[1].split("</figure>")[0]  # the label chart
    assert all(f">{label} · " in chart for label in frequent) and "part49000" not in chart

    small = tmp_path / "small"  # a few labels: everything listed, no note
    write_all_pages(load_catalog(tmp_path), small, metrics=metrics)
    assert "labels with the most images" not in (small / layout.LEADERBOARD_PAGE).read_text(encoding="utf-8")


def test_intervals_are_shown_from_three_images_on():
    """n = 1 or 2 shows the mean and n only: a bootstrap of one or two values is no interval."""
    from atlas.site.pages.metric_pages import MIN_CI_N, ci_text
    from ssl_attention.aggregate import Estimate

    assert MIN_CI_N == 3
    assert ci_text(Estimate(0.101, 0.101, 0.101, 1)) == ""
    assert ci_text(Estimate(0.2, 0.1, 0.3, 2)) == ""
    assert ci_text(Estimate(0.2, 0.1, 0.3, 3)) == "[0.100, 0.300]"
