"""The sdist and the wheel work as a new user gets them: installed non-editable, run far from the source tree.

The sdist is built from a copy of the source tree, the wheel from the unpacked sdist (both offline, with
the setuptools of this environment), and the wheel is installed with ``--no-deps`` into a fresh venv
without pip. Its dependencies (torch, MkDocs, ...) are made visible through a ``.pth`` file naming this
environment's site-packages: a plain path line, so that folder's own ``.pth`` files (among them the
editable install's finder) are not run and ``atlas`` can only come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_IMAGES = ROOT / "ssl_attention" / "sample_data" / "images"
_NOT_ANYWHERE = shutil.ignore_patterns(".git", ".venv", ".cache", "*.egg-info", "__pycache__", ".pytest_cache",
                                       ".ruff_cache", ".whl")
_NOT_AT_TOP = {"build", "site", "tests", "bench"}  # top-level outputs and checks; atlas/site/ is a package


def _not_sources(folder: str, names: list[str]) -> set[str]:
    """``copytree``'s ignore: the checkout's outputs and caches, not the packages' folders of the same name."""
    top = {n for n in names if n in _NOT_AT_TOP} if Path(folder) == ROOT else set()
    return set(_NOT_ANYWHERE(folder, names)) | top


def _env() -> dict[str, str]:
    """This environment without PYTHONPATH (which would import the source tree), offline."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "200"}


def _run(args: list, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def _build_hook(hook: str, source: Path, out: Path) -> Path:
    """Run a PEP 517 hook of setuptools (this environment's, no download) in ``source``; the file it built."""
    code = f"import sys, setuptools.build_meta as b; print(b.{hook}(sys.argv[1]))"
    name = _run([sys.executable, "-c", code, out], cwd=source).stdout.strip().splitlines()[-1]
    return out / name


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("dist")
    shutil.copytree(ROOT, tmp / "src", ignore=_not_sources)
    (tmp / "dist").mkdir()
    sdist = _build_hook("build_sdist", tmp / "src", tmp / "dist")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        archive.extractall(tmp / "unpacked", filter="data")
    top = sdist.name.removesuffix(".tar.gz")
    for member in ("templates/overrides/atlas.html", "site_src/index.md", "mkdocs.yml"):
        assert f"{top}/{member}" in names, member
    return _build_hook("build_wheel", tmp / "unpacked" / top, tmp / "dist")


def test_wheel_carries_the_site_sources(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for member in ("atlas/_bundled/mkdocs.yml", "atlas/_bundled/templates/pages/gallery.html",
                   "atlas/_bundled/templates/project/workflow.yml", "atlas/_bundled/site_src/glossary.md",
                   "ssl_attention/sample_data/annotations.json"):
        assert member in names, member


def test_installed_wheel_inits_and_builds_an_atlas_elsewhere(wheel, tiny_checkpoints, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel],
         cwd=tmp_path)
    site_packages = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              cwd=tmp_path).stdout.strip())
    (site_packages / "shared-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    work = tmp_path / "work"  # unrelated to the source tree
    shutil.copytree(SAMPLE_IMAGES, work / "imgs", ignore=lambda d, names: sorted(names)[2:])
    where = _run([python, "-c", "import atlas; print(atlas.__file__)"], cwd=work).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    atlas = venv / "bin" / "atlas"
    assert _run([atlas, "--version"], cwd=work).stdout.split()[-1] == "0.1.0"
    assert "init" in _run([python, "-m", "atlas", "--help"], cwd=work).stdout

    _run([atlas, "init", "proj", "--images", "imgs"], cwd=work)
    result = _run([atlas, "build", "--model", f"tiny={tiny_checkpoints['dinov2']}"], cwd=work / "proj")
    index = (work / "proj" / "build" / "site" / "index.html").read_text(encoding="utf-8")
    assert "<title>proj</title>" in index, result.stdout
    assert (work / "proj" / "build" / "site" / "attention-atlas" / "methods" / "index.html").is_file()
