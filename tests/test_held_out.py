"""``--select-on FRACTION`` (issue 25, item 3): the best layer and head chosen on a selection part of the images,
scored on the held-out rest (``atlas.metrics.held_out``; summary.json's ``held_out``).

The held-out figures are checked against a computation made here from the per-image rows of the Parquet files
(split by SHA-256 of the image id, argmax on the selection part, mean and same-seed bootstrap on the rest).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from atlas.cli import app
from atlas.metrics.held_out import split_images
from atlas.metrics.stage import compute_metrics
from atlas.project import load_project
from ssl_attention.aggregate import bootstrap_ci
from ssl_attention.errors import AtlasError
from tests.fixtures.fake_maps import write_fake_build
from tests.test_cli import _no_model_may_run

runner = CliRunner()
FRACTION = 0.5
MODELS = ("dinov2", "siglip")


def _selected(image_id: str, fraction: float) -> bool:
    """The documented split, written out again: SHA-256 of the id, first 8 bytes big-endian, over 2**64."""
    return int(hashlib.sha256(image_id.encode("utf-8")).hexdigest()[:16], 16) / 2**64 < fraction


@pytest.fixture(scope="module")
def held_build(tmp_path_factory) -> Path:
    """A fake build of 24 images (some without boxes, some skipped) with its metrics and ``--select-on 0.5``."""
    build = tmp_path_factory.mktemp("held")
    write_fake_build(build, images=24, models=MODELS)
    compute_metrics(build, select_on=FRACTION)
    return build


def _primary_rows(build: Path, model: str, metric: str) -> dict[tuple[str, int, str], dict[str, float]]:
    """``(method, layer, head) -> {image: value}`` of the whole-image ``metric`` rows of ``model``'s Parquet file."""
    out: dict[tuple[str, int, str], dict[str, float]] = {}
    for r in pq.read_table(build / "metrics" / f"{model}.parquet").to_pylist():
        if r["metric"] == metric and r["box"] is None and r["layer"] is not None:
            value = math.nan if r["value"] is None else r["value"]
            out.setdefault((r["method"], r["layer"], r["head"]), {})[r["image"]] = value
    return out


def _expected(values: dict[tuple[int, str], dict[str, float]], selection: set[str]) -> tuple[tuple[int, str], dict]:
    """The choice with the highest mean (NaN ignored; ties: lowest layer, head) on ``selection``, and its mean and
    bootstrap CI over the other images (in image-id order)."""
    def mean_on(images: dict[str, float]) -> float:
        v = np.array([x for i, x in images.items() if i in selection and math.isfinite(x)])
        return v.mean() if v.size else -math.inf

    order = sorted(values, key=lambda k: (k[0], -1 if k[1] == "fused" else int(k[1])))
    best = max(order, key=lambda k: (mean_on(values[k]), -order.index(k)))
    images = values[best]
    e = bootstrap_ci([images[i] for i in sorted(images) if i not in selection])
    return best, {"mean": e.mean, "lo": e.lo, "hi": e.hi, "n": e.n}


def test_held_out_figures_equal_a_computation_from_the_rows(held_build):
    summary = json.loads((held_build / "metrics" / "summary.json").read_text(encoding="utf-8"))
    held = summary["held_out"]
    manifest = json.loads((held_build / "maps" / "manifest.json").read_text(encoding="utf-8"))
    boxed = sorted(i["id"] for i in manifest["images"] if i["boxes"])
    selection = {i for i in boxed if _selected(i, FRACTION)}
    assert (held["fraction"], held["metric"]) == (FRACTION, summary["primary_metric"])
    assert (held["n_selection"], held["n_held_out"]) == (len(selection), len(boxed) - len(selection))
    assert 0 < len(selection) < len(boxed)
    checked = 0
    for part, heads in (("leaderboard", False), ("best_heads", True)):
        in_sample = {(e["model"], e["method"]): e for e in summary[part]}
        assert {(e["model"], e["method"]) for e in held[part]} == set(in_sample)
        for entry in held[part]:
            rows = _primary_rows(held_build, entry["model"], held["metric"])
            values = {(layer, head): v for (method, layer, head), v in rows.items()
                      if method == entry["method"] and (head != "fused") == heads}
            (layer, head), figure = _expected(values, selection)
            got = entry["held_out"]
            assert (got["layer"], got["head"]) == (layer, head), entry
            assert {k: got[k] for k in ("mean", "lo", "hi", "n")} == pytest.approx(figure, rel=1e-12), entry
            # the in-sample figure is the leaderboard's own (chosen and scored on every image)
            board = in_sample[(entry["model"], entry["method"])]
            assert (entry["in_sample"]["layer"], entry["in_sample"]["head"]) == (board["layer"], board["head"])
            assert {k: entry["in_sample"][k] for k in ("mean", "lo", "hi", "n")} == board["metrics"][held["metric"]]
            checked += 1
    assert checked >= 6
    # at least one choice differs between the two parts: the held-out figure is not the in-sample one renamed
    assert any(e["held_out"]["layer"] != e["in_sample"]["layer"] or e["held_out"]["head"] != e["in_sample"]["head"]
               for e in held["best_heads"])


def test_the_split_is_stable_under_adding_images(tmp_path):
    """Each image's side depends on its own id: a build with more images keeps every earlier image's side."""
    small, large = tmp_path / "small", tmp_path / "large"
    write_fake_build(small, images=12, models=("dinov2",))
    write_fake_build(large, images=30, models=("dinov2",))
    for build in (small, large):
        compute_metrics(build, select_on=0.3)
    few = [f"img_{n:05d}" for n in range(12)]
    more = [f"img_{n:05d}" for n in range(30)]
    sel_few, held_few = split_images(few, 0.3)
    sel_more, _ = split_images(more, 0.3)
    assert set(sel_few) == set(sel_more) & set(few) and set(held_few) == set(few) - set(sel_more)
    assert set(sel_few) == {i for i in few if _selected(i, 0.3)}
    for build, ids in ((small, few), (large, more)):
        manifest = json.loads((build / "maps" / "manifest.json").read_text(encoding="utf-8"))
        boxed = {i["id"] for i in manifest["images"] if i["boxes"]}
        held = json.loads((build / "metrics" / "summary.json").read_text(encoding="utf-8"))["held_out"]
        assert held["n_selection"] == sum(_selected(i, 0.3) for i in boxed & set(ids))
        assert held["n_held_out"] == len(boxed) - held["n_selection"]


def test_without_select_on_the_summary_has_no_held_out_key(fake_build):
    summary = json.loads((fake_build / "metrics" / "summary.json").read_text(encoding="utf-8"))
    assert "held_out" not in summary


def _two_boxed_images(folder: Path) -> tuple[Path, Path, list[str]]:
    images = folder / "imgs"
    images.mkdir()
    ids = ["north", "south"]
    for i, name in enumerate(ids):
        Image.fromarray(np.full((32, 32, 3), 60 * i, dtype=np.uint8)).save(images / f"{name}.png")
    boxes = {"images": [{"id": i, "file_name": f"{name}.png", "width": 32, "height": 32} for i, name in enumerate(ids)],
             "annotations": [{"id": i, "image_id": i, "bbox": [4, 4, 16, 16], "category_id": 1} for i in range(2)],
             "categories": [{"id": 1, "name": "thing"}]}
    annotations = folder / "boxes.json"
    annotations.write_text(json.dumps(boxes), encoding="utf-8")
    return images, annotations, ids


def _positions(ids: list[str]) -> list[float]:
    return sorted(int(hashlib.sha256(i.encode()).hexdigest()[:16], 16) / 2**64 for i in ids)


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2", "nan", "half", "٠.٥", "SIDE:selection", "SIDE:held"])
def test_a_bad_fraction_is_one_line_exit_2_before_any_model_runs(tmp_path, monkeypatch, value):
    images, annotations, ids = _two_boxed_images(tmp_path)
    low, high = _positions(ids)
    if value.startswith("SIDE:"):  # a valid number that leaves one side without images
        value = f"{low / 2:.12g}" if value == "SIDE:selection" else f"{(high + 1) / 2:.12g}"
        expected = "each side needs at least 1 image"
    else:
        expected = f"--select-on: expected a fraction between 0 and 1 (both excluded), such as 0.5; got {value!r}"
    _no_model_may_run(monkeypatch)
    out = tmp_path / "out"
    result = runner.invoke(app, ["build", "--model", "dinov2", "--weights", "random", "--images", str(images),
                                 "--annotations", str(annotations), "--out", str(out), "--select-on", value])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert not (out / "maps").exists()


def test_select_on_key_of_atlas_toml(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "atlas.toml").write_text('images = "images"\nselect_on = 0.25\n', encoding="utf-8")
    assert load_project(tmp_path / "atlas.toml").build["select_on"] == 0.25
    for bad in ("1", "0", "true", '"0.5"'):
        (tmp_path / "atlas.toml").write_text(f'images = "images"\nselect_on = {bad}\n', encoding="utf-8")
        with pytest.raises(AtlasError, match=r"atlas.toml: select_on: expected a number between 0 and 1"):
            load_project(tmp_path / "atlas.toml")


def test_atlas_build_select_on_writes_the_held_out_estimate(tiny_checkpoints, tmp_path):
    """The flag reaches the metrics stage through the CLI: one image on each side of the split."""
    images, annotations, ids = _two_boxed_images(tmp_path)
    low, high = _positions(ids)
    fraction = f"{(low + high) / 2:.12g}"
    out = tmp_path / "out"
    result = runner.invoke(app, ["build", "--model", f"d={tiny_checkpoints['dinov2_registers']}", "--weights", "random",
                                 "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                                 "--no-site", "--select-on", fraction])
    assert result.exit_code == 0, result.output
    held = json.loads((out / "metrics" / "summary.json").read_text(encoding="utf-8"))["held_out"]
    assert (held["fraction"], held["n_selection"], held["n_held_out"]) == (float(fraction), 1, 1)
    assert held["leaderboard"]
    assert all(e["held_out"]["n"] == 1 and e["in_sample"]["n"] == 2 for e in held["leaderboard"])
    assert "Held-out estimate (--select-on" in result.output
    assert "chosen on 1 image, scored on the other 1" in result.output
