"""Publish a built site to a branch of a git remote (e.g. ``gh-pages``) as one new commit."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ssl_attention.errors import AtlasError


def _git(args: list[str], cwd: Path) -> str:
    env_free = [
        "-c",
        "user.name=Attention Atlas",
        "-c",
        "user.email=atlas@localhost",
        "-c",
        "commit.gpgsign=false",
    ]
    try:
        result = subprocess.run(["git", *env_free, *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise AtlasError("git is not installed; `atlas deploy` needs the git command") from None
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        detail = lines[-1].strip() if lines else f"exit status {result.returncode}"
        raise AtlasError(f"git {args[0]} failed: {detail}")
    return result.stdout.strip()


def deploy(site_dir: Path, remote: str, branch: str = "gh-pages", message: str | None = None) -> str:
    """Push ``site_dir`` (plus ``.nojekyll``) to ``branch`` of ``remote`` as a single new commit.

    The branch is replaced (force push of a parentless commit), so the published history never
    grows with old heatmaps. ``remote`` is a URL or a path. Returns the commit sha.
    """
    site_dir = Path(site_dir)
    if not (site_dir / "index.html").is_file():
        raise AtlasError(f"{site_dir}: no built site here (index.html missing); run `atlas build` first")
    with tempfile.TemporaryDirectory(prefix="atlas-deploy-") as tmp:
        work = Path(tmp) / "site"
        shutil.copytree(site_dir, work)
        (work / ".nojekyll").touch()
        _git(["init", "-q"], work)
        _git(["checkout", "-q", "--orphan", branch], work)
        _git(["add", "-A"], work)
        _git(["commit", "-q", "-m", message or "Publish Attention Atlas site"], work)
        sha = _git(["rev-parse", "HEAD"], work)
        _git(["push", "-q", "--force", remote, f"HEAD:refs/heads/{branch}"], work)
    return sha
