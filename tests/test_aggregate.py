"""Dataset aggregates on small hand-made row sets."""

import json
import math

import numpy as np
import pytest

from ssl_attention.aggregate import (
    CSV_COLUMNS,
    MetricRow,
    best_head,
    best_layer,
    bootstrap_ci,
    cluster_heads,
    head_ranking,
    head_similarity,
    index_rows,
    label_breakdown,
    layer_head_table,
    read_metrics_csv,
    rows_from_scores,
    summarise,
    write_metrics_csv,
    write_summary_json,
)
from ssl_attention.aggregate.clustering import head_gram, similarity_from_gram
from ssl_attention.metrics import Score


def row(image, layer, head, value, metric="iou@25", model="m", method="cls", box=None, label=""):
    return MetricRow(image, model, method, layer, str(head), metric, value, box, label)


def test_bootstrap_constant_values_and_edge_cases():
    e = bootstrap_ci([2.0, 2.0, 2.0])
    assert (e.mean, e.lo, e.hi, e.n) == (2, 2, 2, 3)
    one = bootstrap_ci([0.7])
    assert (one.mean, one.lo, one.hi, one.n) == (0.7, 0.7, 0.7, 1)
    empty = bootstrap_ci([math.nan])
    assert empty.n == 0 and math.isnan(empty.mean) and math.isnan(empty.lo)
    assert bootstrap_ci([1.0, math.nan, 3.0, math.inf]).mean == 2.0  # non-finite values are ignored


def test_bootstrap_interval_matches_normal_theory_and_is_deterministic():
    values = [0.0] * 50 + [1.0] * 50
    # mean 0.5, standard error sqrt(0.25 / 100) = 0.05 -> 95 % CI about 0.5 -/+ 1.96 * 0.05
    e = bootstrap_ci(values)
    assert e.mean == 0.5 and e.n == 100
    assert e.lo == pytest.approx(0.402, abs=0.02) and e.hi == pytest.approx(0.598, abs=0.02)
    spread = list(np.linspace(0, 1, 37) ** 2)
    assert bootstrap_ci(spread) == bootstrap_ci(spread)  # seeded: deterministic
    assert bootstrap_ci(spread, seed=1) != bootstrap_ci(spread)  # ... and the seed matters


def test_best_layer_best_head_and_table():
    rows = [
        # fused means: layer 0 -> 0.3, layer 1 -> (0.5 + 0.7) / 2 = 0.6, layer 2 -> 0.6 (tie: layer 1 wins)
        row("a", 0, "fused", 0.3), row("b", 0, "fused", 0.3),
        row("a", 1, "fused", 0.5), row("b", 1, "fused", 0.7),
        row("a", 2, "fused", 0.6), row("b", 2, "fused", math.nan),
        # heads: (0, 0) -> 0.2, (0, 1) -> 0.9 (image b missing), (1, 0) -> 0.4, (1, 1) -> 0.1
        row("a", 0, 0, 0.2), row("b", 0, 0, 0.2), row("a", 0, 1, 0.9),
        row("a", 1, 0, 0.3), row("b", 1, 0, 0.5), row("a", 1, 1, 0.1), row("b", 1, 1, 0.1),
        row("a", 1, 1, 0.99, metric="coverage"),  # another metric: must not leak in
    ]  # fmt: skip
    index = index_rows(rows)
    assert best_layer(index, "m", "cls") == (1, pytest.approx(0.6))
    assert best_head(index, "m", "cls") == (0, "1", pytest.approx(0.9))
    assert best_head(index, "m", "rollout") is None
    layers, heads, table = layer_head_table(index, "m", "cls")
    assert layers == [0, 1, 2] and heads == ["0", "1", "fused"]
    expected = [[0.2, 0.9, 0.3], [0.4, 0.1, 0.6], [math.nan, math.nan, 0.6]]
    np.testing.assert_allclose(table, expected)


def test_head_ranking_with_ties_and_missing_values():
    rows = [
        # image a: h0 = 0.9, h1 = 0.5, h2 = 0.5 -> ranks 1, 2.5, 2.5 (tie shares ranks 2 and 3)
        row("a", 0, 0, 0.9), row("a", 0, 1, 0.5), row("a", 0, 2, 0.5),
        # image b: h0 = NaN (last), h1 = 0.1, h2 = 0.8 -> ranks 3, 2, 1
        row("b", 0, 0, math.nan), row("b", 0, 1, 0.1), row("b", 0, 2, 0.8),
    ]  # fmt: skip
    ranking = head_ranking(index_rows(rows), "m", "cls")
    got = {r.head: (r.mean_rank, r.top1, r.top3) for r in ranking}
    # mean ranks: h0 (1 + 3) / 2 = 2, h1 (2.5 + 2) / 2 = 2.25, h2 (2.5 + 1) / 2 = 1.75
    # top-1: h0 on a (nobody better), h2 on b; h1 never. Top-3: always (only 3 heads).
    assert got == {"0": (2.0, 1, 2), "1": (2.25, 0, 2), "2": (1.75, 1, 2)}
    assert [r.head for r in ranking] == ["2", "0", "1"]


def test_label_breakdown_averages_boxes_within_an_image_first():
    rows = [
        row("a", 3, "fused", 0.2, "box_iou@25", box=0, label="window"),
        row("a", 3, "fused", 0.4, "box_iou@25", box=1, label="window"),
        row("b", 3, "fused", 0.9, "box_iou@25", box=0, label="window"),
        row("b", 3, "fused", 0.5, "box_iou@25", box=1, label="tower"),
        row("b", 4, "fused", 0.0, "box_iou@25", box=1, label="tower"),
    ]
    out = label_breakdown(rows, "box_iou@25", select={("m", "cls"): (3, "fused")})
    # window: image a -> (0.2 + 0.4) / 2 = 0.3, image b -> 0.9: mean 0.6 over 2 images (not 1.5 / 3)
    assert out[("m", "cls", 3, "fused", "window")].mean == pytest.approx(0.6)
    assert out[("m", "cls", 3, "fused", "window")].n == 2
    assert out[("m", "cls", 3, "fused", "tower")].mean == 0.5
    assert len(out) == 2  # layer 4 is not selected


def test_head_similarity():
    rng = np.random.default_rng(0)
    x = rng.random((3, 2, 2))  # 3 images of 2 x 2 maps
    y = rng.random((3, 2, 2))
    scale = np.array([1.0, 10.0, 0.1])[:, None, None]  # per-image scale: removed by the z-scoring
    maps = np.stack([x, 2 * x * scale + 1, -x, np.ones_like(x), y])
    maps[4, 0, 0, 0] = np.nan  # a NaN cell must not poison the row
    sim = head_similarity(maps)
    assert sim.shape == (5, 5)
    assert sim[0, 1] == pytest.approx(1.0)  # affine per image -> identical z-scores
    assert sim[0, 2] == pytest.approx(-1.0)
    assert sim[3, 0] == 0 and sim[3, 3] == 1  # constant maps: no correlation
    assert np.isfinite(sim).all() and np.allclose(sim, sim.T)


def test_head_similarity_is_the_correlation_of_concatenated_z_scores():
    rng = np.random.default_rng(3)
    maps = rng.random((4, 6, 3, 5))  # 4 heads, 6 images of 3 x 5
    maps[1] += 0.5 * maps[0]  # correlated heads
    z = (maps - maps.mean(axis=(2, 3), keepdims=True)) / maps.std(axis=(2, 3), keepdims=True)
    expected = np.corrcoef(z.reshape(4, -1))
    assert np.allclose(head_similarity(maps), expected, atol=1e-12)


def test_head_gram_of_a_dataset_is_the_sum_of_its_images():
    rng = np.random.default_rng(4)
    maps = rng.random((5, 2, 3, 4, 4))  # 5 images, 2 layers, 3 heads, 4 x 4
    maps[2, 1, 0] = 7.0  # a constant map contributes zeros
    whole = head_gram(maps)
    assert np.allclose(whole, sum(head_gram(maps[i:i + 1]) for i in range(5)), atol=1e-12)
    for layer in range(2):  # and gives head_similarity of that layer
        assert np.allclose(similarity_from_gram(whole[layer]), head_similarity(maps[:, layer].transpose(1, 0, 2, 3)),
                           atol=1e-12)


def _average_linkage_pairwise(similarity: np.ndarray, n_clusters: int):
    """Average linkage written pair by pair (the reference): merges, labels and leaf order."""
    dist = 1.0 - np.nan_to_num(similarity, nan=0.0)
    k = len(dist)
    members = {i: [i] for i in range(k)}
    alive, labels, merges = list(range(k)), None, []
    d = {(a, b): dist[a, b] for a in range(k) for b in range(a + 1, k)}

    def label_now():
        out = np.empty(k, dtype=np.int64)
        for number, c in enumerate(sorted(alive, key=lambda c: min(members[c]))):
            out[members[c]] = number
        return out

    for step in range(k - 1):
        if len(alive) == n_clusters:
            labels = label_now()
        a, b = min(((a, b) for i, a in enumerate(alive) for b in alive[i + 1:]), key=lambda p: d[p])
        size_a, size_b = len(members[a]), len(members[b])
        for c in alive:
            if c not in (a, b):
                d[(c, k + step)] = (size_a * d[tuple(sorted((a, c)))] + size_b * d[tuple(sorted((b, c)))]) / (
                    size_a + size_b)
        members[k + step] = members.pop(a) + members.pop(b)
        alive = [c for c in alive if c not in (a, b)] + [k + step]
        merges.append((a, b, d[(a, b)], size_a + size_b))
    labels = label_now() if labels is None else labels
    order = members[alive[0]] if len(alive) == 1 else [i for c in alive for i in members[c]]
    return np.array(merges).reshape(-1, 4), labels, order


def test_cluster_heads_equals_the_pairwise_algorithm_ties_included():
    rng = np.random.default_rng(5)
    for trial in range(40):
        k = int(rng.integers(2, 30))
        values = rng.choice([0.1, 0.3, 0.5, 0.9], size=(k, k)) if trial % 2 else rng.random((k, k))  # ties
        sim = np.triu(values, 1) + np.triu(values, 1).T + np.eye(k)
        if trial % 5 == 0:
            sim[0, 1] = sim[1, 0] = np.nan
        n = int(rng.integers(1, k + 1))
        got = cluster_heads(sim, n)
        merges, labels, order = _average_linkage_pairwise(sim, n)
        assert np.array_equal(got.merges, merges) and np.array_equal(got.labels, labels) and got.order == order


def test_cluster_heads_average_linkage():
    sim = np.array(
        [
            [1.0, 0.9, 0.1, 0.1],
            [0.9, 1.0, 0.1, 0.1],
            [0.1, 0.1, 1.0, 0.8],
            [0.1, 0.1, 0.8, 1.0],
        ]
    )
    c = cluster_heads(sim, 2)
    # distances 1 - sim: (0, 1) at 0.1 merge first -> cluster 4; (2, 3) at 0.2 -> cluster 5;
    # average linkage 4-5: mean of four 0.9 distances = 0.9
    np.testing.assert_allclose(c.merges, [[0, 1, 0.1, 2], [2, 3, 0.2, 2], [4, 5, 0.9, 4]], atol=1e-12)
    assert c.labels.tolist() == [0, 0, 1, 1]
    assert sorted(c.order) == [0, 1, 2, 3]
    assert cluster_heads(sim, 4).labels.tolist() == [0, 1, 2, 3]
    assert cluster_heads(sim, 1).labels.tolist() == [0, 0, 0, 0]


def test_cluster_heads_ties_merge_the_lowest_pair_first():
    # every distance equal: (0, 1) first, then cluster 3 = {0, 1} with 2 (both at distance 1)
    c = cluster_heads(np.eye(3), 2)
    assert c.merges[0][:2].tolist() == [0, 1]
    assert c.labels.tolist() == [0, 0, 1]
    with pytest.raises(ValueError):
        cluster_heads(np.eye(3), 0)


def test_csv_round_trip(tmp_path):
    scores = [Score("iou@25", 0.125), Score("coverage", math.nan)]
    rows = rows_from_scores("img", "dinov2", "cls", 11, 3, scores)
    rows += rows_from_scores("img", "dinov2", "uniform", None, "", [Score("box_iou@25", 0.5, 0, "tower")])
    path = tmp_path / "metrics" / "metrics.csv"
    write_metrics_csv(rows, path)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert lines[1] == "img,dinov2,cls,11,3,iou@25,,,0.125"
    assert lines[2] == "img,dinov2,cls,11,3,coverage,,,"  # NaN -> empty
    assert lines[3] == "img,dinov2,uniform,,,box_iou@25,0,tower,0.5"
    back = read_metrics_csv(path)
    assert back[0] == rows[0] and back[2] == rows[2]
    assert math.isnan(back[1].value)


def test_summary_is_strict_json(tmp_path):
    rows = []
    for image, v in (("a", 0.2), ("b", 0.4)):
        rows += [row(image, 0, "fused", v), row(image, 1, "fused", v + 0.1), row(image, 1, 0, v + 0.3)]
        rows += [row(image, 1, 1, math.nan), row(image, None, "", 0.05, method="uniform")]
        rows += [row(image, 1, "fused", 0.5, "box_iou@25", box=0, label="tower")]
    summary = summarise(rows)
    assert summary["n_images"] == 2
    (entry,) = summary["leaderboard"]
    assert (entry["layer"], entry["head"]) == (1, "fused")
    assert entry["metrics"]["iou@25"]["mean"] == pytest.approx(0.4)  # (0.3 + 0.5) / 2
    assert summary["best_heads"][0]["head"] == "0"
    assert summary["baselines"][0]["method"] == "uniform"
    assert summary["tables"][0]["values"][1][1] is None  # head 1 of layer 1 is all NaN -> null
    assert summary["labels"][0]["label"] == "tower" and summary["labels"][0]["mean"] == 0.5
    path = tmp_path / "summary.json"
    write_summary_json(summary, path)
    text = path.read_text()
    assert "NaN" not in text
    assert json.loads(text) == json.loads(json.dumps(summary))
