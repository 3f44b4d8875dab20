"""Interrupted builds resume to the same bytes; clean builds are byte-identical."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from atlas.cli import app
from tests.fixtures.interrupt import AFTER, BEFORE, MID, clean_env, interrupt, interrupt_mid_stage
from tests.fixtures.trees import build_args, tree

runner = CliRunner()


def _args(tiny_checkpoints, out: Path) -> list[str]:
    models = {"dinov2": tiny_checkpoints["dinov2_registers"], "siglip": tiny_checkpoints["siglip"],
              "resnet": tiny_checkpoints["timm_resnet"]}
    return build_args(out, models, "--batch-size", "1")


def test_two_clean_builds_are_byte_identical(tiny_checkpoints, tmp_path):
    for name in ("a", "b"):
        result = runner.invoke(app, _args(tiny_checkpoints, tmp_path / name))
        assert result.exit_code == 0, result.output
    first, second = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []
    assert any(k.endswith(".npz") for k in first) and "maps/manifest.json" in first


def test_torn_cache_files_are_recomputed(tiny_checkpoints, tmp_path):
    """A truncated npz (a crash mid-write without our atomic rename) and a stray temp file are repaired."""
    out = tmp_path / "out"
    assert runner.invoke(app, _args(tiny_checkpoints, out)).exit_code == 0
    clean = tree(out)
    victim = out / "maps" / "dinov2" / "coffee.npz"
    victim.write_bytes(victim.read_bytes()[:100])
    (out / "maps" / "dinov2" / ".rocket.npz.tmp").write_bytes(b"partial")
    result = runner.invoke(app, _args(tiny_checkpoints, out))
    assert result.exit_code == 0, result.output
    assert tree(out) == clean


def test_sigkill_at_any_point_then_resume(tiny_checkpoints, tmp_path):
    """SIGKILL the real process while it computes maps (some written, the manifest not yet), then SIGINT the
    next run once it has added maps of its own; running again finishes with the clean build's bytes."""
    clean = tmp_path / "clean"
    assert runner.invoke(app, _args(tiny_checkpoints, clean)).exit_code == 0
    out = tmp_path / "out"
    atlas = [sys.executable, "-m", "atlas", *_args(tiny_checkpoints, out)]
    env = clean_env()

    def computing(maps_at_least: int):
        def state() -> str:
            if (out / "maps" / "manifest.json").exists():  # written once every model's maps are there
                return AFTER
            return MID if len(list(out.glob("maps/*/*.npz"))) >= maps_at_least else BEFORE

        return state

    interrupt_mid_stage(atlas, env, out, [computing(3)] * 3)
    cached = len(list(out.glob("maps/*/*.npz")))
    assert interrupt(atlas, env, computing(cached + 1), sig=signal.SIGINT) == MID
    result = subprocess.run(atlas, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "reused" in result.stdout
    assert tree(out) == tree(clean)


def test_fully_cached_rebuild_loads_no_model_until_a_checkpoint_changes(tiny_checkpoints, tmp_path, monkeypatch):
    import atlas.models.stage

    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoints["dinov2"], checkpoint)
    args = ["build", "--model", f"d={checkpoint}", "--image-size", "32", "--out", str(tmp_path / "out"),
            "--no-site"]
    assert runner.invoke(app, args).exit_code == 0
    manifest = (tmp_path / "out" / "maps" / "manifest.json").read_bytes()
    loads = []
    real_load = atlas.models.stage.load_model
    monkeypatch.setattr(atlas.models.stage, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert loads == [] and "model not loaded" in result.output
    assert (tmp_path / "out" / "maps" / "manifest.json").read_bytes() == manifest
    # new weights file (new revision): the model is loaded again and every map recomputed
    weights = checkpoint / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(loads) == 1
    before, after = json.loads(manifest), json.loads((tmp_path / "out" / "maps" / "manifest.json").read_text())
    assert before["models"][0]["revision"] != after["models"][0]["revision"]


def _computed_reused(output: str, model: str) -> tuple[int, int]:
    """(computed, reused) of ``model`` from the CLI's summary table."""
    row = next(line for line in output.splitlines() if line.startswith("│") and f" {model} " in line)
    cells = [c.strip() for c in row.strip("│").split("│")]
    return int(cells[-2]), int(cells[-1])


def test_adding_an_image_or_a_model_computes_only_what_is_new(tiny_checkpoints, tmp_path):
    from atlas.dataset.stage import sample_paths

    images_dir, _ = sample_paths()
    images = tmp_path / "images"
    images.mkdir()
    for name in ("coffee.jpg", "rocket.jpg"):
        shutil.copy(images_dir / name, images)
    base = ["build", "--images", str(images), "--image-size", "32", "--out", str(tmp_path / "out"), "--no-site",
            "--model", f"a={tiny_checkpoints['dinov2']}"]
    assert runner.invoke(app, base).exit_code == 0
    shutil.copy(images_dir / "chelsea.jpg", images)
    result = runner.invoke(app, base)
    assert _computed_reused(result.output, "a") == (1, 2)
    result = runner.invoke(app, [*base, "--model", f"b={tiny_checkpoints['siglip']}"])
    assert _computed_reused(result.output, "a") == (0, 3)
    assert _computed_reused(result.output, "b") == (3, 0)
