"""``atlas build`` end to end on the bundled sample with tiny models, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from atlas.cli import app
from atlas.dataset.stage import sample_paths
from ssl_attention.images import load_image
from ssl_attention.maps import compute_maps
from ssl_attention.methods import all_statistics
from ssl_attention.models import ModelRequest, load_model
from ssl_attention.preprocess import to_tensor

runner = CliRunner()


def _models(tiny_checkpoints) -> list[str]:
    pairs = {"dinov2": "dinov2_registers", "dinov3": "dinov3", "mae": "mae", "clip": "clip", "siglip": "siglip",
             "siglip2": "siglip2_naflex", "vit": "timm_vit", "resnet50": "timm_resnet"}
    args = []
    for name, key in pairs.items():
        args += ["--model", f"{name}={tiny_checkpoints[key]}"]
    return args


@pytest.fixture(scope="module")
def sample_build(tiny_checkpoints, tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    started = time.perf_counter()
    result = runner.invoke(app, ["build", *_models(tiny_checkpoints), "--weights", "pretrained",
                                 "--image-size", "32", "--out", str(out), "--batch-size", "5"])
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    return out, result, seconds


def test_sample_build_writes_the_export_contract(sample_build, tiny_checkpoints):
    out, _, seconds = sample_build
    print(f"sample build with tiny models: {seconds:.1f} s")  # timed in bench/, never asserted here
    site = out / "site"
    assert (site / "index.html").is_file() and (site / "atlas" / "leaderboard" / "index.html").is_file()
    manifest = json.loads((out / "maps" / "manifest.json").read_text())
    images_dir, _ = sample_paths()
    ids = sorted(p.stem for p in images_dir.iterdir())
    assert sorted(img["id"] for img in manifest["images"]) == ids
    for ident in ids:
        page = (site / "atlas" / "images" / ident / "index.html").read_text()
        assert "random weights" not in page.lower()  # every model here ran with its saved weights
    assert all((out / img["display"]).is_file() for img in manifest["images"])
    assert any(img["boxes"] for img in manifest["images"])
    sample_tags = {t for img in manifest["images"] for t in img["tags"]}
    assert {"people", "animals", "science", "greyscale"} <= sample_tags  # the sample's COCO image tags
    gallery = (site / "atlas" / "index.html").read_text()
    assert all(f'<option value="{t}">{t}</option>' in gallery for t in sample_tags)
    models = {m["name"]: m for m in manifest["models"]}
    assert set(models) == {"dinov2", "dinov3", "mae", "clip", "siglip", "siglip2", "vit", "resnet50"}
    assert models["dinov2"]["prefix_tokens"] == 3 and models["dinov2"]["num_registers"] == 2
    assert models["siglip"]["has_cls"] is False and models["siglip"]["methods"] == ["mean", "rollout", "probe"]
    assert models["resnet50"]["methods"] == ["gradcam"]
    assert all(m["weights"] == "pretrained" for m in manifest["models"])
    for model in manifest["models"]:
        assert sorted(model["maps"]) == ids
        layers, heads, grid = model["layers"], model["heads"], tuple(model["grid"])
        with np.load(out / "maps" / model["maps"]["chelsea"], allow_pickle=False) as data:
            if model["kind"] == "cnn":
                assert data["gradcam"].shape == (4, *grid)
                continue
            assert data["mean"].shape == (layers, heads, *grid) and data["mean"].dtype == np.float32
            assert data["rollout"].shape == (layers, *grid)
            assert ("cls" in data) == model["has_cls"]


def test_sample_build_prints_the_budget_line_and_records_it(sample_build):
    out, result, _ = sample_build  # runs before the --no-site rebuild below rewrites report.json
    line = next(line for line in result.output.splitlines() if line.startswith("Site budget:"))
    budget = json.loads((out / "report.json").read_text())["site_budget"]
    files = [p for p in (out / "site").rglob("*") if p.is_file()]
    assert budget["files"] == len(files) and budget["bytes"] == sum(p.stat().st_size for p in files)
    manifest = json.loads((out / "maps" / "manifest.json").read_text())
    assert budget["pairs"] == sum(len(m["maps"]) for m in manifest["models"])
    assert budget["bytes_per_pair"] == round(budget["bytes"] / budget["pairs"])
    assert f"{budget['files']:,} files" in line and "% of GitHub Pages' 1 GB" in line
    assert budget["warning"] is None and "warning" not in result.output.lower()
    assert not list((out / "site" / "atlas-data" / "maps").rglob("*.f32"))  # no per-layer map files


def test_cached_maps_equal_a_direct_library_call(sample_build, tiny_checkpoints):
    """The npz of (dinov2, coffee) holds exactly what ssl_attention computes for that image."""
    out, _, _ = sample_build
    model = load_model(ModelRequest("dinov2", str(tiny_checkpoints["dinov2_registers"])), weights="pretrained",
                       image_size=(32, 32))
    images_dir, _ = sample_paths()
    expected = compute_maps(model, to_tensor([load_image(images_dir / "coffee.jpg")], model.preprocessing))
    with np.load(out / "maps" / "dinov2" / "coffee.npz", allow_pickle=False) as data:
        for name, values in expected.items():
            np.testing.assert_allclose(data[name], values[0], atol=1e-6)


def test_rebuild_reuses_the_cache_and_is_byte_identical(sample_build, tiny_checkpoints):
    out, _, _ = sample_build
    before = {p: p.read_bytes() for p in sorted((out / "maps").rglob("*")) if p.is_file()}
    result = runner.invoke(app, ["build", *_models(tiny_checkpoints), "--weights", "pretrained",
                                 "--image-size", "32", "--out", str(out), "--no-site"])
    assert result.exit_code == 0, result.output
    after = {p: p.read_bytes() for p in sorted((out / "maps").rglob("*")) if p.is_file()}
    assert before == after
    manifest = json.loads((out / "maps" / "manifest.json").read_text())
    assert len(manifest["models"]) == 8


def test_random_weights_are_labelled(tiny_checkpoints, tmp_path):
    result = runner.invoke(app, ["build", "--model", f"d={tiny_checkpoints['dinov2']}", "--weights", "random",
                                 "--image-size", "16", "--out", str(tmp_path), "--no-site"])
    assert result.exit_code == 0, result.output
    assert "RANDOM" in result.output
    manifest = json.loads((tmp_path / "maps" / "manifest.json").read_text())
    assert manifest["models"][0]["weights"] == "random"
    assert "RANDOM" in manifest["models"][0]["note"]


def _one_line_error(args: list[str], expected: str) -> None:
    result = runner.invoke(app, ["build", *args, "--no-site"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_unknown_model_name():
    _one_line_error(["--model", "dinov9"], "unknown model 'dinov9'")


def test_unreadable_checkpoint(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    _one_line_error(["--model", f"x={broken}", "--out", str(tmp_path / "out")], str(broken))


def test_missing_local_weights(tmp_path, tiny_checkpoints):
    import shutil

    copy = tmp_path / "noweights"
    shutil.copytree(tiny_checkpoints["dinov2"], copy)
    (copy / "model.safetensors").unlink()
    _one_line_error(["--model", f"x={copy}", "--weights", "pretrained", "--out", str(tmp_path / "out")],
                    "cannot load weights")


def test_rollout_per_head_is_refused(tmp_path):
    _one_line_error(["--method", "rollout", "--heads", "--out", str(tmp_path)], "rollout has no per-head maps")


def test_gradcam_on_a_vit_is_refused(tmp_path, tiny_checkpoints):
    _one_line_error(["--model", f"v={tiny_checkpoints['vit']}", "--method", "gradcam", "--out", str(tmp_path)],
                    "Grad-CAM is implemented for CNNs only")


def test_cls_on_siglip_is_refused(tmp_path, tiny_checkpoints):
    _one_line_error(["--model", f"s={tiny_checkpoints['siglip']}", "--method", "cls", "--out", str(tmp_path)],
                    "no CLS token")


def test_bad_options(tmp_path):
    _one_line_error(["--weights", "maybe"], "--weights must be pretrained, random or auto")
    _one_line_error(["--image-size", "big"], "--image-size")


@pytest.mark.parametrize("size", ["20000", "1025", "224x1025", "99999999999999999999"])
def test_absurd_image_size_is_refused_before_any_model_loads(tmp_path, size):
    """An input side above MAX_INPUT_SIDE (1024 px) would exhaust memory in attention: one line, exit 2."""
    _one_line_error(["--image-size", size, "--images", str(tmp_path / "unread"), "--out", str(tmp_path)],
                    "at most 1024 px per side")
    assert not (tmp_path / "maps").exists()
    _one_line_error(["--images", str(tmp_path / "nowhere"), "--out", str(tmp_path)], "not a directory")


def test_console_script_prints_no_traceback(tmp_path):
    """The installed `atlas` command: exit code 2 and one line on stderr."""
    atlas = Path(sys.executable).with_name("atlas")
    proc = subprocess.run([str(atlas), "build", "--model", "nope"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown model 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_sample_build_scores_every_map_against_the_boxes(sample_build):
    """OUT/metrics/<model>.parquet holds, for a given map, exactly what ssl_attention.metrics computes."""
    from atlas.metrics.rows import SUFFIX, read_rows
    from ssl_attention.annotations import Box
    from ssl_attention.metrics import make_target, metric_columns, score_maps

    out, _, _ = sample_build
    manifest = json.loads((out / "maps" / "manifest.json").read_text())
    image = next(img for img in manifest["images"] if img["id"] == "chelsea")
    model = next(m for m in manifest["models"] if m["name"] == "dinov3")
    all_rows = read_rows(out / "metrics" / f"dinov3{SUFFIX}")
    rows = [r for r in all_rows if r.image == "chelsea"]
    with np.load(out / "maps" / model["maps"]["chelsea"], allow_pickle=False) as data:
        head_map = data["mean"][1, 2]
    boxes = [Box(*b["bbox"], label=b["label"]) for b in image["boxes"]]
    target = make_target(boxes, (image["width"], image["height"]), tuple(model["grid"]), model["patch_size"])
    values = score_maps(head_map[None], target, transport=0)[0]  # a head's map: no emd (fused maps only)
    expected = {(metric, box): v for (metric, box, _), v in zip(metric_columns(target), values, strict=True)}
    got = {(r.metric, r.box): r.value for r in rows if (r.method, r.layer, r.head) == ("mean", 1, "2")}
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6, nan_ok=True)
    summary = json.loads((out / "metrics" / "summary.json").read_text())
    assert {e["model"] for e in summary["leaderboard"]} == {m["name"] for m in manifest["models"]}
    assert not [r for r in all_rows if r.image == "hubble_deep_field"]  # no boxes: no rows


@pytest.mark.parametrize(("argv", "expected"), [
    (["build", "--batch-size", "0"], "--batch-size"),
    (["build", "--bogus"], "No such option: --bogus"),
    (["frobnicate"], "No such command"),
    (["deploy"], "Missing option '--remote'"),
    (["build", "--annotations", "/nonexistent/boxes.json"], "annotation file not found"),
])
def test_usage_errors_are_one_line(argv, expected, capsys):
    from atlas.cli import main

    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], captured.err


def _small_build(tiny_checkpoints, out: Path, models: dict[str, str], *args: str):
    """A --no-site build of the sample images with tiny models ``{name: tiny checkpoint key}``."""
    argv = ["build", "--weights", "pretrained", "--image-size", "16", "--out", str(out), "--no-site", *args]
    for name, key in models.items():
        argv += ["--model", f"{name}={tiny_checkpoints[key]}" if key else name]
    return runner.invoke(app, argv)


def _arrays(out: Path, model: str, image: str = "chelsea") -> set[str]:
    """The map arrays of a cached npz (without ``meta``, the statistics, see test_head_statistics.py, and the
    query-patch rows, which the sample exports by default, see test_query_rows.py)."""
    with np.load(out / "maps" / model / f"{image}.npz", allow_pickle=False) as data:
        return set(data.files) - {"meta", "query_rows", "query_scale"} - {s.name for s in all_statistics()} \
            - {"features", "features_scale", "box_similarity"}  # see test_features.py


def test_heads_without_method_keeps_heads_where_they_exist(tiny_checkpoints, tmp_path):
    """--heads alone is the default: per-head cls/mean, fused rollout, Grad-CAM; --no-heads drops the heads."""
    models = {"d": "dinov2_registers", "r": "timm_resnet"}
    result = _small_build(tiny_checkpoints, tmp_path / "heads", models, "--heads")
    assert result.exit_code == 0, result.output
    assert _arrays(tmp_path / "heads", "d") == {"cls", "cls_fused", "mean", "mean_fused", "rollout"}
    assert _arrays(tmp_path / "heads", "r") == {"gradcam", "gradcam_class"}
    result = _small_build(tiny_checkpoints, tmp_path / "fused", models, "--no-heads")
    assert result.exit_code == 0, result.output
    assert _arrays(tmp_path / "fused", "d") == {"cls_fused", "mean_fused", "rollout"}


def test_explicit_headless_method_with_heads_is_refused(tmp_path):
    _one_line_error(["--method", "cls", "--method", "rollout", "--heads", "--out", str(tmp_path)],
                    "rollout has no per-head maps")
    _one_line_error(["--method", "gradcam", "--heads", "--out", str(tmp_path)], "gradcam has no per-head maps")


def test_unknown_method_is_refused_before_any_model_loads(tmp_path):
    """A bad --method is named with the valid ones, even beside a valid one and a checkpoint that cannot load."""
    args = ["--model", f"x={tmp_path / 'nowhere'}", "--model", "y=/nonexistent", "--out", str(tmp_path)]
    _one_line_error([*args, "--method", "cls", "--method", "foo"], "--method: unknown method 'foo'; methods are "
                    "cls, mean, rollout, gradcam")
    assert not (tmp_path / "report.json").exists()


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_a_model_without_the_method_is_skipped_when_others_have_it(tiny_checkpoints, tmp_path):
    """--method cls: siglip (no CLS token) and the CNN are skipped with one line each; --strict exits 1."""
    models = {"s": "siglip", "d": "dinov2_registers", "r": "timm_resnet"}
    result = _small_build(tiny_checkpoints, tmp_path, models, "--method", "cls", "--strict")
    assert result.exit_code == 1, result.output
    skipped = _report(tmp_path)["skipped"]
    assert [line for line in skipped if line.startswith("model ")] == [
        next(line for line in skipped if line.startswith("model s ") and "no CLS token" in line),
        next(line for line in skipped if line.startswith("model r ") and "CNN without attention" in line),
    ]
    assert result.output.count("no CLS token") == 1
    manifest = json.loads((tmp_path / "maps" / "manifest.json").read_text())
    assert [(m["name"], m["methods"]) for m in manifest["models"]] == [("d", ["cls"])]


def test_a_model_with_some_of_the_methods_computes_those(tiny_checkpoints, tmp_path):
    """--method cls --method mean on siglip: mean is computed, cls is named once as not computed."""
    models = {"s": "siglip", "d": "dinov2_registers"}
    result = _small_build(tiny_checkpoints, tmp_path, models, "--method", "cls", "--method", "mean")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "maps" / "manifest.json").read_text())
    assert [(m["name"], m["methods"]) for m in manifest["models"]] == [("s", ["mean"]), ("d", ["cls", "mean"])]
    assert _arrays(tmp_path, "s") == {"mean", "mean_fused"}
    assert result.output.count("no CLS token") == 1
    assert [line for line in _report(tmp_path)["skipped"] if "no CLS token" in line] == [
        "model s: cls not computed (it has no CLS token); computing mean"
    ]
    again = _small_build(tiny_checkpoints, tmp_path, models, "--method", "cls", "--method", "mean")
    assert again.exit_code == 0 and again.output.count("no CLS token") == 1  # the same from the cache
    assert "model not loaded" in again.output


def test_unknown_model_among_several_is_skipped(tiny_checkpoints, tmp_path):
    result = _small_build(tiny_checkpoints, tmp_path, {"dinov9": "", "d": "dinov2_registers"}, "--strict")
    assert result.exit_code == 1, result.output
    assert result.output.count("unknown model 'dinov9'") == 1
    assert [line for line in _report(tmp_path)["skipped"] if "dinov9" in line] == [
        next(line for line in _report(tmp_path)["skipped"] if line.startswith("unknown model 'dinov9'"))
    ]
    manifest = json.loads((tmp_path / "maps" / "manifest.json").read_text())
    assert [m["name"] for m in manifest["models"]] == ["d"]


def test_only_unknown_models_is_an_error(tmp_path):
    _one_line_error(["--model", "dinov9", "--model", "dinov8", "--out", str(tmp_path)], "unknown model 'dinov9'")


def test_no_model_with_the_method_is_an_error(tiny_checkpoints, tmp_path):
    args = ["--model", f"s={tiny_checkpoints['siglip']}", "--model", f"r={tiny_checkpoints['timm_resnet']}",
            "--method", "cls", "--image-size", "16", "--weights", "pretrained", "--out", str(tmp_path)]
    _one_line_error(args, "no model could be built: model s (SiglipVisionModel) does not support cls")


def test_metrics_are_exactly_those_of_the_last_build(tiny_checkpoints, tmp_path):
    """A dropped model leaves no rows file behind; a rebuild without boxes leaves no metrics at all."""
    from atlas.metrics.data import HEADS_SUFFIX, load_metrics
    from atlas.metrics.rows import SUFFIX

    both = {"d": "dinov2_registers", "s": "siglip"}
    assert _small_build(tiny_checkpoints, tmp_path, both).exit_code == 0
    metrics = tmp_path / "metrics"
    assert sorted(p.name for p in metrics.iterdir()) == [f"d{HEADS_SUFFIX}", f"d{SUFFIX}", "panels.json",
                                                         f"s{HEADS_SUFFIX}", f"s{SUFFIX}", "summary.json"]
    (metrics / f"old-model{SUFFIX}").write_text("stale\n")
    result = _small_build(tiny_checkpoints, tmp_path, {"d": "dinov2_registers"})
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in metrics.iterdir()) == [f"d{HEADS_SUFFIX}", f"d{SUFFIX}", "panels.json",
                                                         "summary.json"]
    summary = json.loads((metrics / "summary.json").read_text())
    assert {e["model"] for e in summary["leaderboard"]} == {"d"}
    images_dir, _ = sample_paths()
    result = _small_build(tiny_checkpoints, tmp_path, {"d": "dinov2_registers"}, "--images", str(images_dir))
    assert result.exit_code == 0, result.output
    assert not metrics.exists() and load_metrics(tmp_path) is None


def test_image_page_names_the_grad_cam_target_of_the_build(sample_build):
    out, _, _ = sample_build
    with np.load(out / "maps" / "resnet50" / "chelsea.npz", allow_pickle=False) as data:
        target = int(json.loads(str(data["meta"]))["gradcam_class"])
        assert int(data["gradcam_class"]) == target
    page = (out / "site" / "atlas" / "images" / "chelsea" / "index.html").read_text()
    assert f"Grad-CAM target, the top-1 class logit: resnet50: class {target}." in page


@pytest.mark.browser
def test_sample_site_shows_exactly_the_cached_maps_in_the_browser(sample_build, browser):
    """The real sample build (tiny models) in headless Chromium: tiles are the cached maps, toggles need no
    request, no console error, no failed or foreign request (the fake-build browser tests cover every control)."""
    from atlas.site.render import to_indices
    from tests.fixtures.site_fixtures import checked_page
    from tests.fixtures.site_server import serve_site
    from tests.test_site_browser import _canvas_indices, _heat, _wait_painted, _wait_until

    out, _, _ = sample_build
    with np.load(out / "maps" / "dinov2" / "chelsea.npz") as data:
        cls, cls_fused = data["cls"], data["cls_fused"]
    assert cls.shape[-2] * cls.shape[-1] >= 4 and (to_indices(cls[1, 1]) != to_indices(cls[1, 0])).any()  # telling
    with np.load(out / "maps" / "resnet50" / "chelsea.npz") as data:
        gradcam = data["gradcam"]
    with serve_site(out / "site") as url, checked_page(browser) as page:
        page.goto(url + "atlas/images/chelsea/#models=dinov2,resnet50&method=cls&layer=1&view=heads")
        page.wait_for_selector(".atlas-root[data-atlas-ready]")
        _wait_painted(page)
        assert (_canvas_indices(page, _heat("dinov2", "chelsea", "cls", 1, "fused")) == to_indices(cls_fused[1])).all()
        assert (_canvas_indices(page, _heat("dinov2", "chelsea", "cls", 1, "h01")) == to_indices(cls[1, 1])).all()
        requests: list[str] = []
        page.on("request", lambda r: r.url.endswith("/favicon.png") or requests.append(r.url))
        page.keyboard.press("ArrowRight")
        layer2 = _heat("dinov2", "chelsea", "cls", 2, "h00") + "[data-ready]"
        _wait_until(page, f"() => document.querySelector({json.dumps(layer2)}) !== null")
        assert (_canvas_indices(page, layer2) == to_indices(cls[2, 0])).all()
        assert requests == []  # the layer's tiles come from the sprite sheets already loaded
        page.goto(url + "atlas/images/chelsea/#models=resnet50&method=gradcam&layer=3")
        page.wait_for_selector(".atlas-root[data-atlas-ready]")
        _wait_painted(page)
        shown = _canvas_indices(page, _heat("resnet50", "chelsea", "gradcam", 3, "fused"))
        assert (shown == to_indices(gradcam[3])).all()


def test_a_reserved_model_name_is_refused(tiny_checkpoints, tmp_path):
    """`index` would overwrite the Models index and the Leaderboard: alone an error, among several skipped."""
    checkpoint = str(tiny_checkpoints["dinov2_registers"])
    _one_line_error(["--model", f"index={checkpoint}", "--out", str(tmp_path / "alone")],
                    "model name 'index' is reserved for the site's own pages (reserved names: index)")
    assert not (tmp_path / "alone" / "maps").exists()
    result = _small_build(tiny_checkpoints, tmp_path, {"index": "dinov2_registers", "d": "dinov2_registers"},
                          "--strict")
    assert result.exit_code == 1, result.output
    assert [line for line in _report(tmp_path)["skipped"] if "index" in line] == [
        "model name 'index' is reserved for the site's own pages (reserved names: index); choose another NAME"
    ]
    manifest = json.loads((tmp_path / "maps" / "manifest.json").read_text())
    assert [m["name"] for m in manifest["models"]] == ["d"]


@pytest.mark.parametrize("name", ["", "../up", "a/b", ".hidden", "..", "a\\b", "Index", " index/.."])
def test_a_model_name_that_is_no_safe_path_component_is_refused(tmp_path, name):
    _one_line_error(["--model", f"{name}=facebook/dinov2-base", "--out", str(tmp_path)], "is invalid")
    assert not (tmp_path / "maps").exists()


# -- every option is checked before any model runs (issue 28, items 10 and 12) ---------------------------------

def _no_model_may_run(monkeypatch) -> None:
    """Make the models stage fail the test if it is ever reached."""
    import atlas.build

    def refuse(*args, **kwargs):
        raise AssertionError("the models stage started: an option was checked too late")

    monkeypatch.setattr(atlas.build, "ModelStage", refuse)


@pytest.mark.parametrize(("args", "env", "expected"), [
    (["--colormap", "magma"], {}, "--colormap must be viridis, inferno or turbo, got 'magma'"),
    (["--colormap", "magma", "--no-site"], {}, "--colormap must be viridis, inferno or turbo, got 'magma'"),
    (["--device", "gpu9"], {}, "--device must be auto, cpu, cuda or mps, got 'gpu9'"),
    (["--ray", "head:0"], {}, "--ray: expected auto, local or HOST:PORT with a port from 1 to 65535"),
    (["--ray", "ray://head:10001"], {}, "--ray: expected auto, local or HOST:PORT"),
    ([], {"SOURCE_DATE_EPOCH": "yesterday"}, "SOURCE_DATE_EPOCH must be a whole number, got 'yesterday'"),
    ([], {"SOURCE_DATE_EPOCH": "١٧٠٠٠٠٠٠٠٠"}, "SOURCE_DATE_EPOCH must be a whole number"),
    ([], {"SOURCE_DATE_EPOCH": "99999999999"}, "SOURCE_DATE_EPOCH must be a whole number from 0 to 4,294,967,295"),
    ([], {"ATLAS_WORKERS": "٣"}, "ATLAS_WORKERS must be a whole number, got '٣'"),
])
def test_a_bad_option_stops_the_build_before_any_model_runs(tiny_checkpoints, tmp_path, monkeypatch, args, env,
                                                           expected):
    """A bad value of any option is one line and exit code 2 before the build folder is touched, the images
    are read or a model is loaded, whether or not that option would matter only in a later stage."""
    images = tmp_path / "imgs"
    images.mkdir()
    Image.fromarray(np.full((32, 32, 3), 128, dtype=np.uint8)).save(images / "grey.png")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _no_model_may_run(monkeypatch)
    out = tmp_path / "out"
    result = runner.invoke(app, ["build", "--model", f"d={tiny_checkpoints['dinov2_registers']}", "--weights",
                                 "random", "--images", str(images), "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert not out.exists()  # nothing written: no marker, no images, no maps


HUGE = "9" * 5000  # beyond Python's int-string limit (4300 digits)


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--site-images", "²", "--site-images: '²' is neither a positive number of images nor an existing file"),
    ("--site-images", HUGE, "--site-images: '999999999999999999999999'... (5000 characters): at most "),
    ("--query-layers", "²", "--query-layers: '²' is not none, last, all or a comma list of layer numbers"),
    ("--query-layers", "8,²", "--query-layers: '8,²' is not none, last"),
    ("--query-layers", HUGE, "--query-layers: layer '999999999999999999999999'... (5000 characters) is above"),
    ("--query-layers", "1001", "--query-layers: layer '1001' is above the maximum of 1,000"),
    ("--image-size", "²x²", "--image-size: image size must be N or HxW in digits 0-9, got '²x²'"),
    ("--image-size", "٣٢", "--image-size: image size must be N or HxW in digits 0-9"),
    ("--image-size", HUGE, "--image-size: image size must be at most 1024 px per side"),
    ("--batch-size", "²", "'²' is not a whole number (digits 0-9); --batch-size takes a whole number from 1 to"),
    ("--batch-size", "3_0", "'3_0' is not a whole number (digits 0-9); --batch-size"),
    ("--batch-size", "+3", "'+3' is not a whole number (digits 0-9); --batch-size"),
    ("--batch-size", "99999", "'99999' is above the maximum of 1,024; --batch-size"),
    ("--batch-size", HUGE, "--batch-size takes a whole number from 1 to 1,024"),
    ("--target-class", "٣", "'٣' is not a whole number (digits 0-9); --target-class"),
    ("--target-class", HUGE, "--target-class takes a whole number from 0 to 1,000,000"),
    ("--ray-cpus", "²", "--ray-cpus takes a whole number from 1 to 4,096"),
    ("--ray", f"head:{HUGE}", "--ray: expected auto, local or HOST:PORT"),
])
def test_numbers_are_ascii_digits_within_bounds(tmp_path, capsys, option, value, expected):
    """`isdigit()` accepts '²' and int() Arabic-Indic digits, '_' and signs; a 5,000-digit number exceeds
    Python's int-string limit. Each is one line naming the option, exit code 2, before anything runs."""
    from atlas.cli import main

    out = tmp_path / "out"
    assert main(["build", option, value, "--images", str(tmp_path / "unread"), "--out", str(out), "--no-site"]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], captured.err
    assert len(lines[0]) < 400  # the 5,000 digits are not echoed
    assert not out.exists()
