"""The typed read model of ``summary.json`` (atlas.metrics.summary): parsing, nulls, queries."""

import json
import math

import pytest

from atlas.metrics.data import load_metrics
from atlas.metrics.summary import MISSING, Summary
from ssl_attention.aggregate import Estimate, HeadRank, MetricRow, summarise, write_summary_json


def row(image, layer, head, value, metric="iou@25", model="m", method="cls", box=None, label=""):
    return MetricRow(image, model, method, layer, str(head), metric, value, box, label)


def _rows() -> list[MetricRow]:
    rows = []
    for image, v in (("a", 0.2), ("b", 0.4)):
        rows += [row(image, 0, "fused", v), row(image, 1, "fused", v + 0.1), row(image, 1, 0, v + 0.3)]
        rows += [row(image, 1, 1, math.nan), row(image, None, "", 0.05, method="uniform")]
        rows += [row(image, 1, "fused", 0.5, "box_iou@25", box=0, label="tower")]
    return rows


def test_from_json_reads_what_summarise_writes(tmp_path):
    data = summarise(_rows())
    data["head_similarity"] = [
        {"model": "m", "method": "cls", "layer": 1, "similarity": [[1.0, None], [None, 1.0]], "clusters": [2, 1],
         "order": [1, 0]}
    ]  # fmt: skip
    (tmp_path / "metrics").mkdir()
    write_summary_json(data, tmp_path / "metrics" / "summary.json")
    s = load_metrics(tmp_path).summary
    assert isinstance(s, Summary)
    assert (s.primary, s.box_metric, s.confidence, s.n_boot, s.n_images) == ("iou@25", "box_iou@25", 0.95, 2000, 2)
    (entry,) = s.leaderboard
    assert (entry.model, entry.method, entry.layer, entry.head) == ("m", "cls", 1, "fused")
    iou = entry.stat("iou@25")
    assert iou.mean == pytest.approx(0.4) and iou.n == 2  # (0.3 + 0.5) / 2
    assert iou.lo == pytest.approx(0.3) and iou.hi == pytest.approx(0.5)  # 2 values: bootstrap spans them
    assert entry.stat("coverage") is MISSING
    (best,) = s.best_heads
    assert (best.layer, best.head) == (1, "0")
    (base,) = s.baselines_of("m")
    assert (base.method, base.layer, base.head, base.stat("iou@25").mean) == ("uniform", None, "", 0.05)
    assert s.baselines_of("other") == ()
    (table,) = s.tables_of("m")
    assert table.layers == (0, 1) and table.heads == ("0", "1", "fused")
    assert math.isnan(table.values[1][1])  # null (head 1 is all NaN) -> NaN
    assert table.column("fused") == [(0, pytest.approx(0.3)), (1, pytest.approx(0.4))]
    assert table.column("7") is None
    (ranking,) = s.rankings_of("m")
    assert ranking.metric == "iou@25" and all(isinstance(h, HeadRank) for h in ranking.heads)
    assert (ranking.heads[0].layer, ranking.heads[0].head, ranking.heads[0].top1) == (1, "0", 2)
    tower = s.labels_of("m", "cls")["tower"]
    assert (tower.layer, tower.head, tower.stat.mean, tower.stat.n) == (1, "fused", 0.5, 2)  # a box per image
    (sim,) = s.similarities_of("m")
    assert sim.clusters == (2, 1) and sim.order == (1, 0)
    assert sim.similarity[0][0] == 1.0 and math.isnan(sim.similarity[0][1])


def test_nulls_become_nan_and_a_missing_n_zero():
    entry = {"model": "m", "method": "cls", "layer": 0, "head": "fused"}
    data = {
        "leaderboard": [
            {**entry, "metrics": {"iou@25": {"mean": None, "lo": None, "hi": None, "n": 0}, "coverage": None}}
        ],
        "labels": [{**entry, "label": "tower", "mean": 0.25, "lo": None, "hi": None}],
    }
    s = Summary.from_json(data)
    iou = s.leaderboard[0].stat("iou@25")
    assert math.isnan(iou.mean) and math.isnan(iou.lo) and math.isnan(iou.hi) and iou.n == 0
    coverage = s.leaderboard[0].stat("coverage")  # a null metric reads as one without values
    assert math.isnan(coverage.mean) and coverage.n == 0
    tower = s.labels_of("m", "cls")["tower"].stat
    assert tower.mean == 0.25 and math.isnan(tower.lo) and tower.n == 0


def test_empty_summary():
    empty = Summary()
    assert Summary.from_json({}) == empty
    assert (empty.primary, empty.box_metric, empty.confidence, empty.n_boot, empty.n_images) == (
        "iou@25", "box_iou@25", 0.95, 0, 0
    )  # fmt: skip
    assert empty.leaderboard == empty.tables == empty.labels == empty.head_similarity == ()
    assert empty.labels_of("m", "cls") == {} and empty.tables_of("m") == ()


def test_labels_of_groups_by_model_and_method_in_summary_order():
    def label(model, method, name, mean):
        return {"model": model, "method": method, "layer": 0, "head": "fused", "label": name, "mean": mean,
                "lo": mean, "hi": mean, "n": 1}  # fmt: skip

    data = {
        "labels": [
            label("a", "cls", "tower", 0.1), label("b", "cls", "tower", 0.2), label("a", "rollout", "tower", 0.3),
            label("a", "cls", "door", 0.4),
        ]
    }  # fmt: skip
    s = Summary.from_json(json.loads(json.dumps(data)))
    a_cls = s.labels_of("a", "cls")
    assert list(a_cls) == ["tower", "door"]
    assert a_cls["tower"].stat == Estimate(0.1, 0.1, 0.1, 1) and a_cls["door"].stat.mean == 0.4
    assert [e.stat.mean for e in s.labels_of("b", "cls").values()] == [0.2]
    assert [e.stat.mean for e in s.labels_of("a", "rollout").values()] == [0.3]
    assert s.labels_of("b", "rollout") == {}
