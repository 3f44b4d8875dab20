"""The post-compute stages' process pool: results in the items' order, the worker count, bad settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from atlas.core.pool import parallel_map, worker_count
from ssl_attention.errors import AtlasError


def _pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def test_results_come_in_order_from_other_processes():
    done = []
    results = list(parallel_map(_pid_and_square, range(40), workers=2, on_done=lambda: done.append(1)))
    assert [r for _, r in results] == [x * x for x in range(40)]
    assert len(done) == 40
    assert {pid for pid, _ in results} - {os.getpid()}  # computed by workers, not here


def test_one_worker_runs_here(monkeypatch):
    monkeypatch.setenv("ATLAS_WORKERS", "1")
    assert worker_count() == 1
    assert {pid for pid, _ in parallel_map(_pid_and_square, range(5))} == {os.getpid()}


def test_bad_worker_setting_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("ATLAS_WORKERS", "many")
    with pytest.raises(AtlasError, match="ATLAS_WORKERS must be a whole number, got 'many'"):
        worker_count()


def test_workers_die_with_a_killed_build_and_do_not_hold_its_lock(tmp_path):
    """A build killed while its pool works leaves no worker running and its folder free (the workers
    die with it and never hold the build lock)."""
    import signal
    import subprocess
    import sys
    import time

    from atlas.core.out_dir import locked

    script = f"""
import os, time
from pathlib import Path
from atlas.core.out_dir import locked
from atlas.core.pool import parallel_map

def slow(x):
    Path({str(tmp_path)!r}, f"worker-{{os.getpid()}}").touch()
    time.sleep(60)

with locked(Path({str(tmp_path / "out")!r})):
    list(parallel_map(slow, range(16), workers=2))  # chunks of 4: both workers busy
"""
    build = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd())
    try:
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("worker-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
        assert len(workers) == 2
    finally:
        build.send_signal(signal.SIGKILL)
        build.wait(10)
    def running(pid: int) -> bool:
        try:
            return "zombie" not in Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if running(pid)]
    with locked(tmp_path / "out"):  # free again
        pass


def test_a_bad_worker_setting_stops_the_build_before_any_model_runs(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from atlas.cli import app

    monkeypatch.setenv("ATLAS_WORKERS", "two")
    result = CliRunner().invoke(app, ["build", "--model", "resnet50", "--weights", "random", "--no-site",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "ATLAS_WORKERS must be a whole number, got 'two'" in result.output
    assert not (tmp_path / "out").exists()  # nothing computed, no folder made
