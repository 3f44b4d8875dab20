"""The first install: what ``make atlas``, ``make test`` and ``make serve`` run, and the dependency floors
that ``bench/floors.py`` built the sample with."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.floors import floors

ROOT = Path(__file__).resolve().parents[1]


def _make_plan(folder: Path, target: str) -> str:
    """What ``make -n TARGET`` would run in ``folder`` (a copy of the Makefile, with .venv set up)."""
    result = subprocess.run(["make", "-n", target], cwd=folder, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def make_folder(tmp_path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("no make")
    shutil.copy(ROOT / "Makefile", tmp_path)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_make_atlas_installs_no_extra_and_make_test_installs_them(make_folder):
    plan = _make_plan(make_folder, "atlas")
    assert "pip install -e .\n" in plan and "[test]" not in plan and "[bench]" not in plan
    assert "atlas build --out build" in plan
    test_plan = _make_plan(make_folder, "test")
    assert "pip install -e '.[test]'" in test_plan and "pytest" in test_plan


def test_make_serve_builds_only_when_there_is_no_site(make_folder):
    (make_folder / ".venv").mkdir()
    (make_folder / ".venv" / ".installed-stamp").touch()  # set up (newer than pyproject.toml)
    assert "atlas build" in _make_plan(make_folder, "serve")
    (make_folder / "build" / "site").mkdir(parents=True)
    (make_folder / "build" / "site" / "index.html").write_text("<html></html>")
    plan = _make_plan(make_folder, "serve")
    assert "atlas build" not in plan and "atlas serve --site-dir build/site" in plan


def test_the_floors_of_pyproject_are_those_bench_floors_built_every_default_model_with():
    """pyproject.toml's floors of transformers, timm, mkdocs and mkdocs-material are the versions of the
    newest bench/results/*-floors.json, which built every default model with nothing skipped."""
    runs = sorted((ROOT / "bench" / "results").glob("*-floors.json"))
    assert runs, "no bench/results/*-floors.json: run bench/floors.py"
    result = json.loads(runs[-1].read_text())
    assert result["ok"] and result["problems"] == []
    assert len(result["built_models"]) == 7
    for package, floor in floors().items():
        assert result["installed"][package] in (floor, floor + ".0"), (package, floor, result["installed"][package])
    text = (ROOT / "pyproject.toml").read_text()
    for ceiling in ('"mkdocs>=1.6,<2"', '"mkdocs-material>=9.7.7,<10"'):
        assert ceiling in text
    torch_floor = re.search(r'"torch>=([0-9.]+)"', text)[1]
    assert tuple(map(int, torch_floor.split("."))) >= (2, 6)  # transformers >= 5.20 refuses an older torch
