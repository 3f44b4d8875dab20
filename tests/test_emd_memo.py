"""The earth mover's distances are solved once, while the maps are written (issue 27's post-compute target).

The models stage's sink solves each pair's EMD problems (every scored method's fused maps and the two
baselines) and keeps them beside the npz (``atlas.metrics.emd_memo``); the metrics stage then finds every
problem solved. A memo answers only for the same distribution against the same soft ground truth, so the
rows are the same bytes with or without it, a memo kept for other boxes is ignored, and a damaged one is
solved again.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from atlas.cli import app
from atlas.core.manifest import Manifest
from atlas.metrics import compute_metrics
from atlas.metrics.emd_memo import load_memo, memo_path, save_memo, scored_against_boxes
from atlas.metrics.rows import SUFFIX, read_rows
from ssl_attention.annotations import Box
from ssl_attention.methods import get_method
from ssl_attention.metrics import MapGeometry, baseline_scores, score_maps
from ssl_attention.soft_metrics import SoftTarget
from tests.fixtures.trees import build_args, tree
from tests.test_soft_metrics import reference_emd, reference_g

runner = CliRunner()
BOXES = (Box(10, 20, 60, 40, label="a"), Box(100, 5, 30, 90, label="b"))
SIZE, GRID = (160, 120), (6, 8)


def _maps(seed: int, k: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).random((k, *GRID)).astype(np.float32) ** 3


def test_a_memo_answers_only_for_the_same_map_and_ground_truth(tmp_path):
    maps = _maps(0).reshape(4, -1)
    soft = SoftTarget(BOXES, SIZE, GRID)
    first = soft.emd(maps)
    g = reference_g(list(BOXES), SIZE, GRID)
    assert first == pytest.approx([reference_emd(m.reshape(GRID), g, SIZE) for m in maps], rel=1e-6, abs=1e-9)
    assert soft.solved == 4
    assert np.array_equal(soft.emd(maps), first) and soft.solved == 4  # asked again: nothing solved

    npz = tmp_path / "m" / "img.npz"
    save_memo(npz, soft)
    again = SoftTarget(BOXES, SIZE, GRID)
    load_memo(npz, again)
    assert np.array_equal(again.emd(maps), first) and again.solved == 0
    other = _maps(1).reshape(4, -1)  # other maps: solved, not answered
    want = [reference_emd(m.reshape(GRID), g, SIZE) for m in other]
    assert again.emd(other) == pytest.approx(want, rel=1e-6, abs=1e-9)
    assert again.solved == 4

    moved = SoftTarget((BOXES[0],), SIZE, GRID)  # other boxes: another key, the memo is not used
    load_memo(npz, moved)
    assert not moved.memo
    g_moved = reference_g([BOXES[0]], SIZE, GRID)
    assert moved.emd(maps) == pytest.approx([reference_emd(m.reshape(GRID), g_moved, SIZE) for m in maps],
                                            rel=1e-6, abs=1e-9)
    memo_path(npz).write_bytes(b"PK\x03\x04 not an npz")  # damaged: solved again, no error
    broken = SoftTarget(BOXES, SIZE, GRID)
    load_memo(npz, broken)
    assert not broken.memo and np.array_equal(broken.emd(maps), first)


@pytest.fixture(scope="module")
def memo_build(tiny_checkpoints, tmp_path_factory):
    out = tmp_path_factory.mktemp("emd-memo")
    models = {"d": tiny_checkpoints["dinov2"], "r": tiny_checkpoints["timm_resnet"]}
    result = runner.invoke(app, build_args(out, models))
    assert result.exit_code == 0, result.output
    return out


def _pairs(out):
    manifest = Manifest.load(out / "maps")
    images = {image.id: image for image in manifest.images}
    for model in manifest.models:
        for image_id, rel in sorted(model.maps.items()):
            if images[image_id].boxes:
                yield model, images[image_id], out / "maps" / rel


def test_the_sink_leaves_the_metrics_stage_nothing_to_solve(memo_build):
    checked = 0
    for model, image, npz in _pairs(memo_build):
        assert memo_path(npz).is_file(), npz
        target = MapGeometry((image.width, image.height), model.grid_of(image.id), model.patch_size).target(
            list(image.boxes))
        load_memo(npz, target.soft)
        with np.load(npz) as data:
            for method in model.methods:
                if scored_against_boxes(model, method):
                    fused = data[get_method(method).fused_array]
                    score_maps(fused, target, transport=fused.shape[0])
                    checked += fused.shape[0]
        baseline_scores(target)
        assert target.soft.solved == 0, f"{npz.name}: {target.soft.solved} problems left to the metrics stage"
    assert checked > 20


def test_rows_are_the_same_bytes_without_the_memos_and_a_kept_value_is_used(memo_build):
    metrics = memo_build / "metrics"
    before = tree(metrics)
    memos = {memo: memo.read_bytes() for memo in (memo_path(npz) for _, _, npz in _pairs(memo_build))}
    for memo in memos:
        memo.unlink()
    compute_metrics(memo_build)  # every problem solved by the metrics stage itself ...
    assert tree(metrics) == before
    assert {memo: memo.read_bytes() for memo in memos} == memos  # ... and kept, the sink's bytes

    model, image, npz = next(_pairs(memo_build))  # a kept value is what the rows show: nothing is solved twice
    soft = SoftTarget(MapGeometry((image.width, image.height), model.grid_of(image.id),
                                  model.patch_size).target(list(image.boxes)).boxes, (image.width, image.height),
                      model.grid_of(image.id))
    load_memo(npz, soft)
    soft.memo = dict.fromkeys(soft.memo, 42.0)
    save_memo(npz, soft)
    compute_metrics(memo_build)
    emd = [r.value for r in read_rows(metrics / f"{model.name}{SUFFIX}")
           if r.image == image.id and r.metric == "emd" and r.head == "fused"]
    assert emd and all(v == 42.0 or math.isnan(v) for v in emd) and 42.0 in emd
