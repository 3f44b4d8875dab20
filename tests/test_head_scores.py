"""The head viewer's per-image scores (atlas/head_scores.py) against the npz statistics and the metric CSV."""

from __future__ import annotations

import json
import math

import numpy as np

from atlas.core import layout
from atlas.metrics.data import load_metrics
from atlas.metrics.rows import SUFFIX, read_rows
from atlas.metrics.stage import compute_metrics
from atlas.site.catalog import load_catalog
from atlas.site.head_scores import head_scores, order
from tests.fixtures.fake_maps import write_fake_build


def test_scores_are_the_npz_statistics_and_the_rows_alignment(tmp_path):
    write_fake_build(tmp_path)
    manifest_path = tmp_path / "maps" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    next(i for i in manifest["images"] if i["id"] == "church_01")["boxes"] = []  # no boxes: no IoU
    manifest_path.write_text(json.dumps(manifest))
    compute_metrics(tmp_path)
    catalog = load_catalog(tmp_path)
    dinov2 = next(m for m in catalog.models if m.name == "dinov2")
    scores = head_scores(catalog, dinov2, load_metrics(tmp_path))
    keys = [s.key for s in scores.scores]
    assert keys == ["iou:cls", "iou:mean", "entropy", "distance", "prefix_mass", "mse:cls", "mse:mean", "kl:cls",
                    "kl:mean"]  # issue 27: the viewer also sorts by the threshold-free metrics
    assert scores.values.shape == (3, 9, 4, 3) and scores.values.dtype == np.float32
    rows = {(r.image, r.method, str(r.layer), r.head): r.value
            for r in read_rows(tmp_path / "metrics" / f"dinov2{SUFFIX}") if r.metric == "iou@25" and r.box is None}
    soft = {(r.metric, r.image, r.method, str(r.layer), r.head): r.value
            for r in read_rows(tmp_path / "metrics" / f"dinov2{SUFFIX}") if r.metric in ("mse", "kl")}
    for n, image in enumerate(scores.images):
        npz = np.load(catalog.maps_file(dinov2, image.id))
        for k, key in enumerate(keys):
            for layer in range(3):
                for head in range(4):
                    got = scores.values[layer, k, head, n]
                    if key.startswith("iou:"):
                        want = rows.get((image.id, key[4:], str(layer), str(head)))
                        if want is None:
                            assert math.isnan(got) and image.id == "church_01"
                        else:
                            assert got == np.float32(want)
                    elif key.startswith(("mse:", "kl:")):
                        metric, method = key.split(":")
                        want = soft.get((metric, image.id, method, str(layer), str(head)))
                        no_boxes = math.isnan(got) and image.id == "church_01"
                        assert no_boxes if want is None else got == np.float32(want)
                    else:
                        assert got == npz[key][layer, head]
    # the site file of a head: float32 [score, image], little-endian
    back = np.frombuffer(scores.head_bytes(2, 3), dtype="<f4").reshape(9, 3)
    assert np.array_equal(back, scores.values[2, :, 3], equal_nan=True)
    assert layout.head_scores("dinov2", 2, 3) == "atlas-data/heads/dinov2/l02-h03.f32"
    means = scores.means()
    assert means[2][1][3] == np.mean(scores.values[1, 2, 3].astype(np.float64))


def test_order_highest_or_lowest_first_nan_last_ties_by_index():
    v = np.array([0.5, np.nan, 0.9, 0.5, 0.1], dtype=np.float32)
    assert order(v, True) == [2, 0, 3, 4, 1]
    assert order(v, False) == [4, 0, 3, 2, 1]


def test_label_sorts_are_the_per_box_rows_averaged_per_label(tmp_path):
    """Issue 27 item 5: the head viewer's sort by a box label holds, for the labels head_labels lists, each head's
    box metric averaged over that label's boxes in each image, for the images with that label only."""
    write_fake_build(tmp_path)
    compute_metrics(tmp_path)
    catalog, metrics = load_catalog(tmp_path), load_metrics(tmp_path)
    dinov2 = next(m for m in catalog.models if m.name == "dinov2")
    scores = head_scores(catalog, dinov2, metrics)
    box_metric = metrics.summary.box_metric
    sums: dict[tuple, list[float]] = {}
    for r in read_rows(tmp_path / "metrics" / f"dinov2{SUFFIX}"):
        if r.metric == box_metric and r.box is not None and r.head.isdigit() and math.isfinite(r.value):
            sums.setdefault((r.label, r.method, r.image, r.layer, int(r.head)), []).append(r.value)
    listed = {(e["label"], e["method"]) for e in json.loads((tmp_path / "metrics" / "summary.json").read_text())[
        "head_labels"] if e["model"] == "dinov2" and any(h.isdigit() for h in e["heads"])}
    assert {(s.label, m) for s in scores.labels for m in s.methods} == listed and len(listed) >= 3
    ids = [image.id for image in scores.images]
    for sort in scores.labels:
        assert sort.values.shape == (len(sort.methods), 3, 4, len(sort.images))
        assert sorted({key[2] for key in sums if key[0] == sort.label}) == sorted(ids[n] for n in sort.images)
        for i, method in enumerate(sort.methods):
            for j, n in enumerate(sort.images):
                for layer in range(3):
                    for head in range(4):
                        found = sums.get((sort.label, method, ids[n], layer, head), [])
                        want = np.float32(np.mean(np.array(found, dtype=np.float64))) if found else np.nan
                        assert np.array_equal(sort.values[i, layer, head, j], want, equal_nan=True)
        raw = sort.file_bytes()  # the site file: uint32 image indices, then float32 [methods, layers, heads, k]
        k = len(sort.images)
        assert np.frombuffer(raw[: 4 * k], "<u4").tolist() == list(sort.images)
        assert np.array_equal(np.frombuffer(raw[4 * k:], "<f4").reshape(sort.values.shape), sort.values, equal_nan=True)
    assert layout.head_label_scores("dinov2", 2) == "atlas-data/heads/dinov2/labels/2.bin"
