"""atlas deploy: a single new commit with the site and .nojekyll on a branch of a (bare) remote."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from atlas.deploy import deploy
from ssl_attention.errors import AtlasError


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def _site(root: Path, text: str) -> Path:
    site = root / "site"
    (site / "atlas-data").mkdir(parents=True, exist_ok=True)
    (site / "index.html").write_text(f"<html>{text}</html>")
    (site / "atlas-data" / "m.png").write_bytes(b"\x89PNG fake")
    return site


def test_deploy_pushes_one_commit_with_nojekyll(tmp_path):
    remote = tmp_path / "remote.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    sha = deploy(_site(tmp_path / "a", "first"), str(remote), branch="gh-pages", message="first build")
    assert _git("rev-parse", "gh-pages", cwd=remote) == sha
    files = set(_git("ls-tree", "-r", "--name-only", "gh-pages", cwd=remote).splitlines())
    assert files == {".nojekyll", "index.html", "atlas-data/m.png"}
    assert _git("log", "--format=%s", "gh-pages", cwd=remote) == "first build"

    second = deploy(_site(tmp_path / "b", "second"), str(remote))
    assert second != sha and _git("rev-parse", "gh-pages", cwd=remote) == second
    assert _git("rev-list", "--count", "gh-pages", cwd=remote) == "1"  # replaced, not stacked
    assert _git("show", "gh-pages:index.html", cwd=remote) == "<html>second</html>"


def test_deploy_errors_are_one_line(tmp_path):
    with pytest.raises(AtlasError, match="no built site"):
        deploy(tmp_path / "missing", str(tmp_path / "remote.git"))
    with pytest.raises(AtlasError) as info:
        deploy(_site(tmp_path, "x"), str(tmp_path / "no-such-remote.git"))
    assert str(info.value).startswith("git push failed:") and "\n" not in str(info.value)
