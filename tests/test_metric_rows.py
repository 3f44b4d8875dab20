"""The columnar metrics stage gives the numbers of the row-by-row stage it replaced: the same rows, summary
and image panels, checked against a reference written here the old way (one ``score_map`` per map, one
``MetricRow`` per value, ``summarise`` over the rows, panels from the CSV-rounded values)."""

from __future__ import annotations

import gzip
import io
import json
import math
from dataclasses import replace

import numpy as np
import pytest

import atlas.metrics.rows as metric_rows
from atlas.core.manifest import Manifest
from atlas.metrics.rows import ScoreBlock, columns, read_rows, write_rows
from ssl_attention.aggregate import (
    BASELINES,
    FUSED,
    MetricRow,
    best_layer,
    cluster_heads,
    head_similarity,
    index_rows,
    rows_from_scores,
    summarise,
    write_metrics_csv,
)
from ssl_attention.methods import get_method
from ssl_attention.metrics import baseline_scores, make_target, score_map


def _reference_rows(build) -> tuple[list[MetricRow], dict]:
    """Every row of the fake build, map by map, as the row-by-row stage wrote them; and per-head maps."""
    manifest = Manifest.load(build / "maps")
    rows, per_head = [], {}
    for model in manifest.models:
        per_head[model.name] = {}
        for image in sorted((i for i in manifest.images if i.boxes and i.id in model.maps), key=lambda i: i.id):
            target = make_target(list(image.boxes), (image.width, image.height), model.grid, model.patch_size)
            for method, scores in baseline_scores(target).items():
                rows += rows_from_scores(image.id, model.name, method, None, "", scores)
            with np.load(build / "maps" / model.maps[image.id]) as data:
                for method in model.methods:
                    arrays = get_method(method)
                    fused = data[arrays.fused_array]
                    for layer in range(fused.shape[0]):
                        rows += rows_from_scores(image.id, model.name, method, layer, FUSED,
                                                 score_map(fused[layer], target))
                    if arrays.head_array in data:
                        heads = data[arrays.head_array]
                        per_head[model.name].setdefault(method, []).append(heads)
                        for layer in range(heads.shape[0]):
                            for head in range(heads.shape[1]):
                                scores = [s if s.metric != "emd" else replace(s, value=math.nan)  # fused only
                                          for s in score_map(heads[layer, head], target)]
                                rows += rows_from_scores(image.id, model.name, method, layer, head, scores)
    stacked = {m: {k: np.stack(v, axis=2) for k, v in d.items()} for m, d in per_head.items()}
    return rows, stacked


def _reference_panel(rows: list[MetricRow], model: str, image: str, names: list[str], primary: str) -> dict:
    """The image panel as the site built it from the CSV: whole-image values rounded by ``%.7g``."""
    maps: dict = {}
    for r in rows:
        if r.model == model and r.image == image and r.box is None:
            value = float(f"{r.value:.7g}") if math.isfinite(r.value) else math.nan
            maps.setdefault((r.method, r.layer, r.head), {})[r.metric] = value

    def values(key):
        return [v if math.isfinite(v := maps.get(key, {}).get(n, math.nan)) else None for n in names]

    methods: dict = {}
    for method, layer in sorted({(k[0], k[1]) for k in maps if k[0] not in BASELINES}):
        per_layer = methods.setdefault(method, [])
        per_layer += [{"f": [None] * len(names)}] * (layer + 1 - len(per_layer))
        entry = {"f": values((method, layer, FUSED))}
        best, best_value, every = None, -math.inf, {}
        for head in sorted((k[2] for k in maps if k[:2] == (method, layer) and k[2].isdigit()), key=int):
            v = maps[(method, layer, head)].get(primary, math.nan)
            every[int(head)] = v if math.isfinite(v) else None
            if math.isfinite(v) and v > best_value:
                best, best_value = head, v
        if best is not None:
            entry.update(h=int(best), b=values((method, layer, best)))
        if every:
            entry["p"] = [every.get(h) for h in range(max(every) + 1)]
        per_layer[layer] = entry
    baselines = {b: values((b, None, "")) for b in BASELINES if (b, None, "") in maps}
    return {"baselines": baselines, "methods": methods}


def _same_rows(a: list[MetricRow], b: list[MetricRow]) -> bool:
    def key(r):
        return (r.image, r.model, r.method, r.layer, r.head, r.metric, r.box, r.label)

    return [key(r) for r in a] == [key(r) for r in b] and np.array_equal(
        [r.value for r in a], [r.value for r in b], equal_nan=True)


def test_metrics_stage_numbers_equal_the_row_by_row_reference(fake_build):
    reference, per_head = _reference_rows(fake_build)
    manifest = Manifest.load(fake_build / "maps")
    metrics = fake_build / "metrics"
    published = [r for m in manifest.models for r in read_rows(metrics / f"{m.name}.parquet")]
    assert len(published) == len(reference) > 1000
    assert _same_rows(published, reference)

    summary = json.loads((metrics / "summary.json").read_text())
    expected = json.loads(json.dumps(summarise(reference), allow_nan=False))
    index = index_rows(reference)
    expected["text_grounding"] = []  # the fake models have no prompts (tests/test_relevance_build.py)
    similarity = summary.pop("head_similarity")
    summary.pop("head_labels"), summary.pop("tags")  # the stage's breakdowns: tests/test_soft_breakdowns.py
    assert summary == expected
    reference_similarity = [(m.name, method, best_layer(index, m.name, method)[0], maps)
                            for m in manifest.models for method, maps in per_head[m.name].items()]
    assert len(similarity) == len(reference_similarity) > 0
    for entry, (model, method, layer, maps) in zip(similarity, reference_similarity, strict=True):
        sim = head_similarity(maps[layer])  # the heads' maps stacked over every image, correlated at once
        assert (entry["model"], entry["method"], entry["layer"]) == (model, method, layer)
        assert np.allclose(entry["similarity"], sim, atol=5e-5 + 1e-12)  # published rounded to 4 decimals
        clusters = cluster_heads(sim, min(4, sim.shape[0]))
        assert entry["clusters"] == clusters.labels.tolist() and entry["order"] == list(clusters.order)

    panels = json.loads((metrics / "panels.json").read_text())
    names = [m for m in ("iou@10", "iou@15", "iou@20", "iou@25", "iou@30", "iou@40", "iou@50", "iou_mass@60",
                         "coverage", "pointing", "pointing@15px", "mse", "kl", "emd")]
    checked = 0
    for model in manifest.models:
        for image in (i for i in manifest.images if i.boxes and i.id in model.maps):
            panels[model.name][image.id].pop("boxes")  # the per-box part: tests/test_site_soft_metrics.py
            assert panels[model.name][image.id] == _reference_panel(reference, model.name, image.id, names,
                                                                    summary["primary_metric"]), (model.name, image.id)
            checked += 1
    assert checked >= 5


def test_rows_without_pyarrow_are_the_old_csv_gzipped(tmp_path, monkeypatch):
    block = ScoreBlock("img <1>", "cls", [(0, FUSED), (0, "3")], [("iou@10", None, ""), ("box_iou@10", 0, "a,\"b\"")],
                       np.array([[0.123456789, math.nan], [1e-9, 2.0 / 3.0]]))
    base = ScoreBlock("img <1>", "uniform", [(None, "")], [("iou@10", None, "")], np.array([[0.5]]))
    monkeypatch.setattr(metric_rows, "PARQUET", False)
    path = tmp_path / "m.csv.gz"
    write_rows(columns("m", [base, block]), path)
    rows = [MetricRow("img <1>", "m", "uniform", None, "", "iou@10", 0.5),
            MetricRow("img <1>", "m", "cls", 0, FUSED, "iou@10", 0.123456789),
            MetricRow("img <1>", "m", "cls", 0, FUSED, "box_iou@10", math.nan, 0, "a,\"b\""),
            MetricRow("img <1>", "m", "cls", 0, "3", "iou@10", 1e-9),
            MetricRow("img <1>", "m", "cls", 0, "3", "box_iou@10", 2.0 / 3.0, 0, "a,\"b\"")]
    old = tmp_path / "old.csv"
    write_metrics_csv(rows, old)
    assert gzip.decompress(path.read_bytes()) == old.read_bytes()
    back = read_rows(path)
    assert [r.value for r in back][1:4:2] == [0.1234568, 1e-9] and math.isnan(back[2].value)
    assert [(r.layer, r.box, r.label) for r in back] == [(r.layer, r.box, r.label) for r in rows]


def test_parquet_rows_read_back_exactly(tmp_path):
    pytest.importorskip("pyarrow")
    block = ScoreBlock("i", "mean", [(1, FUSED)], [("iou@10", None, ""), ("box_coverage", 2, "x")],
                       np.array([[math.pi, math.nan]]))
    path = tmp_path / "m.parquet"
    write_rows(columns("m", [block]), path)
    back = read_rows(path)
    assert back[0] == MetricRow("i", "m", "mean", 1, FUSED, "iou@10", math.pi)
    assert (back[1].box, back[1].label, math.isnan(back[1].value)) == (2, "x", True)
    assert io.BytesIO(path.read_bytes()).read(4) == b"PAR1"
