"""The post-compute stages' process pool: results in the items' order, the worker count, bad settings."""

from __future__ import annotations

import os

import pytest

from atlas.pool import parallel_map, worker_count
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
