"""Interrupted builds resume to the same bytes; clean builds are byte-identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from atlas.cli import app

runner = CliRunner()


def _args(tiny_checkpoints, out: Path) -> list[str]:
    return ["build", "--model", f"dinov2={tiny_checkpoints['dinov2_registers']}",
            "--model", f"siglip={tiny_checkpoints['siglip']}", "--model", f"resnet={tiny_checkpoints['timm_resnet']}",
            "--weights", "pretrained", "--image-size", "32", "--batch-size", "1", "--out", str(out), "--no-site"]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_clean_builds_are_byte_identical(tiny_checkpoints, tmp_path):
    for name in ("a", "b"):
        result = runner.invoke(app, _args(tiny_checkpoints, tmp_path / name))
        assert result.exit_code == 0, result.output
    first, second = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []
    assert any(k.endswith(".npz") for k in first) and "maps/manifest.json" in first


def test_torn_cache_files_are_recomputed(tiny_checkpoints, tmp_path):
    """A truncated npz (a crash mid-write without our atomic rename) and a stray temp file are repaired."""
    out = tmp_path / "out"
    assert runner.invoke(app, _args(tiny_checkpoints, out)).exit_code == 0
    clean = _tree(out)
    victim = out / "maps" / "dinov2" / "coffee.npz"
    victim.write_bytes(victim.read_bytes()[:100])
    (out / "maps" / "dinov2" / ".rocket.npz.tmp").write_bytes(b"partial")
    result = runner.invoke(app, _args(tiny_checkpoints, out))
    assert result.exit_code == 0, result.output
    assert _tree(out) == clean


def test_sigkill_at_any_point_then_resume(tiny_checkpoints, tmp_path):
    """Kill the real process once some maps exist; running again finishes with the clean build's bytes."""
    clean = tmp_path / "clean"
    assert runner.invoke(app, _args(tiny_checkpoints, clean)).exit_code == 0
    out = tmp_path / "out"
    atlas = [sys.executable, "-m", "atlas", *_args(tiny_checkpoints, out)]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    for signal_to_send in (signal.SIGKILL, signal.SIGINT):
        proc = subprocess.Popen(atlas, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(out.glob("maps/*/*.npz"))) >= 3:
                proc.send_signal(signal_to_send)
                break
            time.sleep(0.01)
        proc.wait(timeout=60)
    result = subprocess.run(atlas, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "reused" in result.stdout
    assert _tree(out) == _tree(clean)
