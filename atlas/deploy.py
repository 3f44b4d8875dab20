"""Publish a built site to a branch of a git remote (e.g. ``gh-pages``) as one new commit.

Safety (site_src/robust-builds.md, "Publishing safely"):

- git runs in a private temporary repository with a cleaned environment: the caller's ``GIT_*``
  variables (``GIT_DIR``, ``GIT_INDEX_FILE``, ``GIT_WORK_TREE`` ... as set inside a git hook) are
  dropped, except those in ``_TRANSPORT_VARS`` that only say how to reach and log in to the remote
  or where the user's config is. Global and system config stay in effect (credential helpers,
  ``url.*.insteadOf``, proxies), but the settings that could run code or change the committed files
  are overridden on the command line (``_CONFIG``; hooks, template and attributes pointed at an empty
  folder; ``add --force`` past ignore files).
- A local remote (a path or ``file://``) has its receive-pack and upload-pack run on this machine, with the
  caller's environment: they are started without the caller's global and system config (``_SERVER_SIDE``),
  so the user's global ``core.hooksPath`` hooks and ``uploadpack.packObjectsHook`` do not run inside the
  remote; the remote repository's own config and hooks apply, as on a server.
- A remote branch is replaced only when its tip was made by ``atlas deploy`` (``TRAILER`` in the
  message) or is absent, unless ``force``; the push is a ``--force-with-lease`` on the tip that was
  checked, so a branch that changes meanwhile is not lost either.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ssl_attention.errors import AtlasError

TRAILER_KEY = "Atlas-Deploy"
TRAILER = f"{TRAILER_KEY}: 1"

# GIT_* variables kept from the caller: how to reach the remote and log in, and where the user's own
# global/system config is (for its credential helpers); nothing that names a repository, index or work tree.
_TRANSPORT_VARS = frozenset({
    "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_ASKPASS", "GIT_TERMINAL_PROMPT", "GIT_PROXY_COMMAND",
    "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "GIT_SSL_CERT", "GIT_SSL_KEY", "GIT_SSL_NO_VERIFY",
    "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM",
})
_CONFIG = {
    "user.name": "Attention Atlas",
    "user.email": "atlas@localhost",
    "commit.gpgsign": "false",
    "core.autocrlf": "false",  # publish the files byte for byte
    "core.fsmonitor": "false",  # runs a command otherwise
}

# How receive-pack / upload-pack of a local remote are started (through the shell, by git): with the remote
# repository's own config only, as a server would run them, not with the caller's global and system config.
_SERVER_SIDE = "GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 git"


def git_environment() -> dict[str, str]:
    """The caller's environment without its ``GIT_*`` variables (which pick a repository, index, work tree ...),
    except those in ``_TRANSPORT_VARS``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _TRANSPORT_VARS}


class _Repo:
    """A private repository in ``tmp``: git dir ``tmp/repo.git``, work tree ``tmp/site``; no hooks, no template."""

    def __init__(self, tmp: Path) -> None:
        self.empty = tmp / "empty"
        self.empty.mkdir()
        self.work = tmp / "site"
        self.work.mkdir()
        self.options = [f"--git-dir={tmp / 'repo.git'}", f"--work-tree={self.work}",
                        "-c", f"core.hooksPath={self.empty}", "-c", f"core.attributesFile={self.empty / 'none'}"]
        for key, value in _CONFIG.items():
            self.options += ["-c", f"{key}={value}"]
        self.env = git_environment()

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``git args`` here; with ``check``, a failure raises one line with all of git's error output."""
        try:
            result = subprocess.run(["git", *self.options, *args], cwd=self.work, env=self.env,
                                    capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise AtlasError("git is not installed; `atlas deploy` needs the git command") from None
        if check and result.returncode != 0:
            raise AtlasError(f"git {args[0]} failed: {git_error(result)}")
        return result


def git_error(result: subprocess.CompletedProcess) -> str:
    """All non-empty lines of git's error output, joined into one line."""
    lines = [line.strip() for line in (result.stderr or result.stdout or "").splitlines() if line.strip()]
    return " | ".join(lines) or f"exit status {result.returncode}"


def _check_arguments(remote: str, branch: str, repo: _Repo) -> None:
    if not remote.strip() or remote.startswith("-"):
        raise AtlasError(f"--remote {remote!r}: a remote must be a URL or a path and must not begin with '-'")
    if repo.git("check-ref-format", "--branch", branch, check=False).returncode != 0:
        raise AtlasError(f"--branch {branch!r}: not a valid git branch name")


def _server_side(remote: str, program: str) -> list[str]:
    """``--upload-pack``/``--receive-pack`` (``program``) for a local remote, whose ``program`` runs here;
    nothing for a remote reached over the network (its server runs its own)."""
    return [f"--{program}={_SERVER_SIDE} {program}"] if _is_local(remote) else []


def _remote_tip(repo: _Repo, remote: str, branch: str) -> str | None:
    """The sha of ``branch`` on ``remote``; None when the branch does not exist there."""
    ref = f"refs/heads/{branch}"
    for line in repo.git("ls-remote", *_server_side(remote, "upload-pack"), "--", remote, ref).stdout.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref:  # the pattern also matches e.g. refs/heads/x/refs/heads/BRANCH
            return sha
    return None


def _check_replaceable(repo: _Repo, remote: str, branch: str, tip: str) -> None:
    """Refuse (AtlasError) when the remote tip ``tip`` is not a commit of ``atlas deploy``."""
    repo.git("fetch", "-q", "--depth=1", "--no-tags", *_server_side(remote, "upload-pack"), "--", remote,
             f"refs/heads/{branch}")
    trailer = repo.git("log", "-1", f"--format=%(trailers:key={TRAILER_KEY},valueonly)", "FETCH_HEAD").stdout
    if trailer.strip() != "1":
        raise AtlasError(
            f"refusing to replace branch {branch!r} of {remote}: its tip {tip[:12]} was not made by "
            f"`atlas deploy` (no '{TRAILER}' line in its message), so it may hold other history; "
            "choose another --branch, or pass --force to replace it anyway"
        )


def _is_path(remote: str) -> bool:
    """Whether ``remote`` is a local path, as git tells them from ``host:path`` and URLs."""
    scheme_or_host, colon, _ = remote.partition(":")
    return "://" not in remote and (not colon or "/" in scheme_or_host)


def _is_local(remote: str) -> bool:
    """Whether git reaches ``remote`` on this machine (a path or a ``file://`` URL)."""
    return _is_path(remote) or remote.lower().startswith("file://")


def _local_path(remote: str) -> str:
    """A local path made absolute, since git runs in a temporary folder."""
    return str(Path(remote).resolve()) if _is_path(remote) else remote


def deploy(site_dir: Path, remote: str, branch: str = "gh-pages", message: str | None = None,
           force: bool = False) -> str:
    """Push ``site_dir`` (plus ``.nojekyll``) to ``branch`` of ``remote`` as a single new commit.

    The branch is replaced by a parentless commit, so the published history never grows with old
    heatmaps, but only if the branch is absent or its tip was made by ``atlas deploy``; ``force``
    replaces any branch. ``remote`` is a URL or a path. Returns the commit sha.
    """
    site_dir = Path(site_dir)
    if not (site_dir / "index.html").is_file():
        raise AtlasError(f"{site_dir}: no built site here (index.html missing); run `atlas build` first")
    with tempfile.TemporaryDirectory(prefix="atlas-deploy-") as tmp:
        repo = _Repo(Path(tmp))
        _check_arguments(remote, branch, repo)
        remote = _local_path(remote)
        repo.git("init", "-q", f"--template={repo.empty}")
        if force:
            lease = "--force"
        else:
            tip = _remote_tip(repo, remote, branch)
            if tip is not None:
                _check_replaceable(repo, remote, branch, tip)
            lease = f"--force-with-lease=refs/heads/{branch}:{tip or ''}"
        shutil.copytree(site_dir, repo.work, dirs_exist_ok=True)  # only now: refusals come first, and fast
        (repo.work / ".nojekyll").touch()
        repo.git("add", "--all", "--force", "--", ".")
        repo.git("commit", "-q", "--no-verify", "-m", message or "Publish Attention Atlas site", "-m", TRAILER)
        sha = repo.git("rev-parse", "HEAD").stdout.strip()
        repo.git("push", "-q", "--no-verify", lease, *_server_side(remote, "receive-pack"), "--", remote,
                 f"HEAD:refs/heads/{branch}")
    return sha
