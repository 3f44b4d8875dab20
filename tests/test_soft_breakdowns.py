"""Issue 27: summary.json's ``head_labels`` equals the per-box rows averaged here, ``tags`` the whole-image rows
grouped by tag, and the heads are ranked by every metric (with its direction)."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import numpy as np
import pytest

from atlas.core.manifest import Manifest
from atlas.metrics.data import load_metrics
from atlas.metrics.rows import read_rows
from ssl_attention.aggregate import BASELINES, head_ranking, index_rows
from ssl_attention.metrics import higher_is_better


@pytest.fixture(scope="module")
def published(fake_build):
    manifest = Manifest.load(fake_build / "maps")
    rows = [r for m in manifest.models for r in read_rows(fake_build / "metrics" / f"{m.name}.parquet")]
    summary = json.loads((fake_build / "metrics" / "summary.json").read_text(encoding="utf-8"))
    return manifest, rows, summary


def _mean(values):
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _close(a, b) -> bool:
    return (a is None and math.isnan(b)) or (a is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12))


def test_head_labels_equal_the_per_box_rows_averaged(published):
    _, rows, summary = published
    metric = summary["box_metric"]
    per_image = defaultdict(list)  # (model, method, label, layer, head, image) -> box values
    for r in rows:
        if r.box is not None and r.metric == metric and r.method not in BASELINES:
            per_image[(r.model, r.method, r.label, r.layer, r.head, r.image)].append(r.value)
    per_map = defaultdict(list)
    for (*key, _image), values in per_image.items():
        per_map[tuple(key)].append(_mean(values))
    entries = summary["head_labels"]
    assert {(e["model"], e["method"], e["label"]) for e in entries} == {k[:3] for k in per_map}
    checked = 0
    for e in entries:
        assert e["metric"] == metric
        assert e["heads"][-1] == "fused" or "fused" not in e["heads"]
        for i, layer in enumerate(e["layers"]):
            for j, head in enumerate(e["heads"]):
                assert _close(e["values"][i][j], _mean(per_map[(e["model"], e["method"], e["label"], layer, head)]))
                checked += 1
    assert checked > 100


def test_tags_equal_the_rows_grouped_by_tag(published):
    manifest, rows, summary = published
    tags_of = {i.id: i.tags for i in manifest.images}
    scored = {r.image for r in rows}
    value = {(r.model, r.method, r.layer, r.head, r.metric, r.image): r.value for r in rows if r.box is None}
    tags = summary["tags"]
    expected_tags = sorted({t for image in scored for t in tags_of[image]})
    assert [t["tag"] for t in tags] == expected_tags and len(tags) >= 2
    leaderboard = summary["leaderboard"]
    for t in tags:
        images = sorted(i for i in scored if t["tag"] in tags_of[i])
        assert t["n_images"] == len(images) and t["few"] == (len(images) < 3)
        assert [(e["model"], e["method"], e["layer"]) for e in t["entries"]] == \
            [(e["model"], e["method"], e["layer"]) for e in leaderboard]
        for e in t["entries"]:
            assert set(e["metrics"]) == {summary["primary_metric"], "mse", "kl", "emd"}
            for metric, stat in e["metrics"].items():
                keys = [(e["model"], e["method"], e["layer"], e["head"], metric, i) for i in images]
                values = [value[k] for k in keys if k in value]  # the images this model has
                assert _close(stat["mean"], _mean(values)), (t["tag"], e["model"], metric)
                assert stat["n"] == sum(math.isfinite(v) for v in values)
                if stat["n"]:
                    assert stat["lo"] <= stat["mean"] + 1e-12 and stat["mean"] <= stat["hi"] + 1e-12


def test_heads_ranked_by_every_metric_with_its_direction(published, fake_build):
    _, rows, summary = published
    index = index_rows([r for r in rows if r.box is None])
    by_pair = defaultdict(list)
    for r in summary["head_ranking"]:
        by_pair[(r["model"], r["method"])].append(r["metric"])
    assert by_pair, "no ranking"
    for metrics in by_pair.values():
        assert metrics[0] == summary["primary_metric"]
        assert {"mse", "kl", "coverage"} <= set(metrics) and "emd" not in metrics  # emd: fused maps only
    model, method = next(iter(by_pair))
    for metric in ("mse", "kl"):
        assert not higher_is_better(metric)
        got = next(r for r in summary["head_ranking"] if (r["model"], r["method"], r["metric"]) == (model, method,
                                                                                                      metric))
        ranked = head_ranking(index, model, method, metric)
        assert [(h["layer"], h["head"]) for h in got["heads"]] == [(h.layer, h.head) for h in ranked]
        means = {(h.layer, h.head): np.nanmean(list(index[(model, method, h.layer, h.head, metric)].values()))
                 for h in ranked}
        best = min(means, key=lambda k: means[k])  # lower is better: the best head has the lowest mean, mostly
        assert best in [(h["layer"], h["head"]) for h in got["heads"][:5]]
    loaded = load_metrics(fake_build).summary
    assert loaded.head_labels and loaded.tags
    assert len(loaded.rankings_of(model, summary["primary_metric"])) == len([m for m, _ in by_pair if m == model])


def test_head_labels_keep_the_labels_on_the_most_images(monkeypatch):
    """A dataset with thousands of labels must not write a table per label: the most frequent are kept."""
    import atlas.metrics.breakdowns as breakdowns
    from atlas.metrics.rows import ScoreBlock

    monkeypatch.setattr(breakdowns, "MAX_HEAD_LABELS", 3)
    keys = [(0, "0"), (0, "fused")]
    blocks = []
    for n in range(6):  # label "a" on 6 images, "b" on 5, ... "f" on 1
        labels = "abcdef"[: 6 - n]
        columns = [("box_iou@25", j, label) for j, label in enumerate(labels)]
        blocks.append(ScoreBlock(f"img{n}", "cls", keys, columns, np.full((2, len(columns)), 0.5)))
    entries = breakdowns.head_labels({"m": blocks}, "box_iou@25")
    assert [e["label"] for e in entries] == ["a", "b", "c"]
    assert entries[0]["heads"] == ["0", "fused"] and entries[0]["values"] == [[0.5, 0.5]]
