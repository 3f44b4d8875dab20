"""atlas deploy: a single new commit with the site and .nojekyll on a branch of a (bare) remote."""

from __future__ import annotations

import os
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


def test_deploy_errors_are_one_line_with_all_of_gits_message(tmp_path):
    with pytest.raises(AtlasError, match="no built site"):
        deploy(tmp_path / "missing", str(tmp_path / "remote.git"))
    with pytest.raises(AtlasError) as info:
        deploy(_site(tmp_path, "x"), str(tmp_path / "no-such-remote.git"))
    text = str(info.value)
    assert text.startswith("git ls-remote failed:") and "\n" not in text
    # git's whole error, not only its last line ("and the repository exists.")
    assert "does not appear to be a git repository" in text and "Could not read from remote repository" in text


def _user_repo(root: Path) -> Path:
    """A user's repository with one commit on main, a staged change and a gitignore'd *.png."""
    repo = root / "user"
    repo.mkdir(parents=True)
    _git("init", "-q", "-b", "main", cwd=repo)
    (repo / "code.py").write_text("print('mine')\n")
    _git("add", "code.py", cwd=repo)
    _git("-c", "user.name=U", "-c", "user.email=u@x", "commit", "-q", "-m", "my code", cwd=repo)
    (repo / "staged.py").write_text("x = 1\n")
    _git("add", "staged.py", cwd=repo)
    return repo


def _repo_state(repo: Path) -> tuple[str, ...]:
    git_dir = repo / ".git"
    return (_git("symbolic-ref", "HEAD", cwd=repo), _git("for-each-ref", cwd=repo),
            _git("ls-files", "--stage", cwd=repo), (git_dir / "index").read_bytes().hex(),
            (git_dir / "config").read_text(), _git("count-objects", cwd=repo))


def test_deploy_ignores_the_callers_git_environment(tmp_path, monkeypatch):
    """As inside a git hook: GIT_DIR, GIT_WORK_TREE and GIT_INDEX_FILE point at the user's repository."""
    user = _user_repo(tmp_path)
    before = _repo_state(user)
    remote = tmp_path / "remote.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    monkeypatch.setenv("GIT_DIR", str(user / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(user))
    monkeypatch.setenv("GIT_INDEX_FILE", str(user / ".git" / "index"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(user / ".git" / "objects"))
    sha = deploy(_site(tmp_path / "a", "first"), str(remote))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
        monkeypatch.delenv(name)
    assert _repo_state(user) == before
    assert _git("rev-parse", "gh-pages", cwd=remote) == sha
    files = set(_git("ls-tree", "-r", "--name-only", "gh-pages", cwd=remote).splitlines())
    assert files == {".nojekyll", "index.html", "atlas-data/m.png"}


def test_deploy_runs_no_user_hooks_or_filters_and_ignores_their_gitignore_and_autocrlf(tmp_path, monkeypatch):
    home = tmp_path / "home"
    hooks = home / "hooks"
    hooks.mkdir(parents=True)
    marker = tmp_path / "hook-ran"
    for hook in ("pre-commit", "commit-msg", "post-commit", "pre-push", "reference-transaction"):
        (hooks / hook).write_text(f"#!/bin/sh\necho {hook} >> '{marker}'\nexit 1\n")
        (hooks / hook).chmod(0o755)
    (home / "ignore").write_text("*.png\n*.html\n")
    (home / "attributes").write_text("*.html text\n*.png filter=boom\n")
    (home / ".gitconfig").write_text(
        f"[core]\n\thooksPath = {hooks}\n\texcludesFile = {home / 'ignore'}\n\tautocrlf = true\n"
        f"\tattributesFile = {home / 'attributes'}\n[init]\n\ttemplateDir = /nonexistent\n"
        f"[filter \"boom\"]\n\tclean = \"echo filter >> '{marker}'; cat\"\n\trequired = true\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True, env={"PATH": os.environ["PATH"]})
    site = _site(tmp_path / "a", "crlf")
    (site / "index.html").write_bytes(b"<html>\r\nline\n</html>")
    deploy(site, str(remote))
    assert not marker.exists()
    files = set(_git("ls-tree", "-r", "--name-only", "gh-pages", cwd=remote).splitlines())
    assert files == {".nojekyll", "index.html", "atlas-data/m.png"}
    blob = subprocess.run(["git", "cat-file", "blob", "gh-pages:index.html"], cwd=remote, capture_output=True,
                          check=True).stdout
    assert blob == b"<html>\r\nline\n</html>"


def test_deploy_keeps_the_users_ssh_transport(tmp_path, monkeypatch):
    """GIT_SSH_COMMAND (and the rest of the transport settings) still reach git for the push."""
    remote = tmp_path / "remote.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    log = tmp_path / "ssh.log"
    fake_ssh = tmp_path / "fake-ssh"  # "ssh HOST COMMAND" run locally, so the remote is reached "over ssh"
    fake_ssh.write_text(f"#!/bin/sh\necho \"$1\" >> '{log}'\nexec sh -c \"$2\"\n")
    fake_ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(fake_ssh))
    monkeypatch.setenv("GIT_SSH_VARIANT", "simple")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "nowhere"))  # dropped
    sha = deploy(_site(tmp_path / "a", "ssh"), f"pages.example:{remote}")
    monkeypatch.delenv("GIT_DIR")
    assert _git("rev-parse", "gh-pages", cwd=remote) == sha
    assert set(log.read_text().split()) == {"pages.example"}


def _commit_on(remote: Path, branch: str, root: Path, message: str) -> str:
    """Push a user's commit (with a parent) to ``branch`` of ``remote``; return its sha."""
    work = root / f"work-{branch}"
    work.mkdir(parents=True)
    _git("init", "-q", cwd=work)
    for text in ("v1", "v2"):
        (work / "code.py").write_text(text)
        _git("add", "code.py", cwd=work)
        _git("-c", "user.name=U", "-c", "user.email=u@x", "commit", "-q", "-m", message, cwd=work)
    _git("push", "-q", str(remote), f"HEAD:refs/heads/{branch}", cwd=work)
    return _git("rev-parse", "HEAD", cwd=work)


def test_deploy_refuses_to_replace_a_branch_it_did_not_make(tmp_path):
    remote = tmp_path / "remote.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    code = _commit_on(remote, "main", tmp_path, "my code\n\nSigned-off-by: U <u@x>")
    site = _site(tmp_path / "a", "x")
    with pytest.raises(AtlasError) as info:
        deploy(site, str(remote), branch="main")
    text = str(info.value)
    assert "refusing to replace branch 'main'" in text and code[:12] in text and "--force" in text
    assert "\n" not in text
    assert _git("rev-parse", "main", cwd=remote) == code
    assert _git("for-each-ref", "--format=%(refname)", cwd=remote) == "refs/heads/main"

    sha = deploy(site, str(remote), branch="main", force=True)
    assert _git("rev-parse", "main", cwd=remote) == sha
    assert _git("log", "-1", "--format=%B", "main", cwd=remote) == "Publish Attention Atlas site\n\nAtlas-Deploy: 1"
    again = deploy(site, str(remote), branch="main", message="again")  # now ours: replaced without --force
    assert again != sha and _git("rev-parse", "main", cwd=remote) == again


def test_deploy_never_passes_the_remote_or_branch_to_git_as_an_option(tmp_path):
    marker = tmp_path / "pwned"
    site = _site(tmp_path / "a", "x")
    for remote in (f"--upload-pack=touch {marker}", f"--receive-pack=touch {marker}", "-h", ""):
        with pytest.raises(AtlasError, match="must not begin with '-'"):
            deploy(site, remote)
    remote = tmp_path / "remote.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    for branch in ("-f", "--force", "a..b", "", "x y"):
        with pytest.raises(AtlasError, match="not a valid git branch name"):
            deploy(site, str(remote), branch=branch)
    assert not marker.exists() and _git("for-each-ref", cwd=remote) == ""


def test_deploy_takes_a_relative_remote_path_from_the_current_folder(tmp_path, monkeypatch):
    _git("init", "-q", "--bare", "remote.git", cwd=tmp_path)
    monkeypatch.chdir(tmp_path)
    sha = deploy(_site(tmp_path / "a", "x"), "remote.git")
    assert _git("rev-parse", "gh-pages", cwd=tmp_path / "remote.git") == sha


def test_deploy_creates_an_absent_branch_even_when_a_longer_ref_ends_with_its_name(tmp_path):
    remote = tmp_path / "remote.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    code = _commit_on(remote, "x/refs/heads/gh-pages", tmp_path, "my code")  # ls-remote's pattern matches it
    sha = deploy(_site(tmp_path / "a", "x"), str(remote))
    assert _git("rev-parse", "refs/heads/gh-pages", cwd=remote) == sha
    assert _git("rev-parse", "refs/heads/x/refs/heads/gh-pages", cwd=remote) == code



REMOTE_HOOKS = ("pre-receive", "update", "post-receive", "post-update", "reference-transaction")


def test_a_local_remote_runs_none_of_the_users_global_hooks(tmp_path, monkeypatch):
    """git runs receive-pack and upload-pack of a path remote on this machine, where they read the caller's
    global config: its core.hooksPath hooks and uploadpack.packObjectsHook must not run there. The remote's
    own hooks do, as they would on a server."""
    home = tmp_path / "home"
    hooks = home / "global-hooks"
    hooks.mkdir(parents=True)
    marker = tmp_path / "global-hook-ran"
    for hook in REMOTE_HOOKS:
        (hooks / hook).write_text(f"#!/bin/sh\necho \"{hook} $PWD\" >> '{marker}'\nexit 0\n")
        (hooks / hook).chmod(0o755)
    pack_hook = home / "pack-hook"
    pack_hook.write_text(f"#!/bin/sh\necho pack-objects >> '{marker}'\nexec \"$@\"\n")
    pack_hook.chmod(0o755)
    config = home / "gitconfig"
    config.write_text(f"[core]\n\thooksPath = {hooks}\n[uploadpack]\n\tpackObjectsHook = {pack_hook}\n")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True, env={"PATH": os.environ["PATH"]})
    own = tmp_path / "remote-hook-ran"
    (remote / "hooks" / "post-receive").write_text(f"#!/bin/sh\necho post-receive >> '{own}'\n")
    (remote / "hooks" / "post-receive").chmod(0o755)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    # the global config is real: a push by plain git runs its hooks in the remote
    probe = tmp_path / "probe.git"
    subprocess.run(["git", "init", "-q", "--bare", str(probe)], check=True)
    user = _user_repo(tmp_path)
    _git("push", "-q", str(probe), "main", cwd=user)
    assert "pre-receive" in marker.read_text()
    marker.unlink()

    for text in ("first", "second"):  # the second reads the remote's tip (ls-remote, fetch) before it pushes
        deploy(_site(tmp_path / text, text), str(remote))
    deploy(_site(tmp_path / "url", "url"), remote.as_uri())  # file:// is a local transport too
    assert not marker.exists(), marker.read_text()
    assert own.read_text().split() == ["post-receive"] * 3
    assert _git("show", "gh-pages:index.html", cwd=remote) == "<html>url</html>"
