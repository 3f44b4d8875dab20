"""Which folders a build may write into and delete (issue 28): the marker alone makes a build folder, only
the marked work folder beside a site is removed, no link is followed out of OUT, a site is replaced only
while it holds the site this build folder wrote (CNAME and .nojekyll carried), one build per site folder,
a project's pages apart from OUT and without links out of them, and a full disk said in one line.

Real files, real symbolic links and real processes; the helpers are those of test_data_safety.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atlas.cli import _os_error_line, app
from ssl_attention.errors import AtlasError
from tests.fixtures.interrupt import _stop, clean_env
from tests.fixtures.trees import tree as _tree
from tests.test_data_safety import _args, _images, _refused, tmpfs  # noqa: F401 (tmpfs: a fixture)

runner = CliRunner()


def _built(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- 1: only the marker makes a build folder ----------------------------------------------------


def test_a_folder_with_a_maps_manifest_but_no_marker_is_not_a_build_folder(tiny_checkpoints, tmp_path):
    """The issue's folder P: a maps/manifest.json of its own, a holiday photo, notes and a CSV."""
    images, out = _images(tmp_path / "imgs"), tmp_path / "P"
    files = {"maps/manifest.json": b'{"x":1}', "images/holiday.jpg": (images / "coffee.jpg").read_bytes(),
             "docs/notes.md": b"n\n", "metrics/mine.csv": b"a\n"}
    for rel, data in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    args = _args(tiny_checkpoints["dinov2"], images, out, site=True)
    _refused(args, "not empty and not an atlas build folder (no .atlas-build)")
    _refused([*args, "--force"], "docs, images, maps, metrics already there", "never replaces")
    assert _tree(out) == files


# --- 2: beside --site-dir, only the build's marked work folder ----------------------------------


def test_only_the_marked_work_folder_beside_a_site_dir_is_used_and_cleared(tiny_checkpoints, tmp_path):
    images, out, home = _images(tmp_path / "imgs"), tmp_path / "out", tmp_path / "h"
    mine = {".www.old/cv.html": b"<p>my old site</p>", ".www.partial/draft.md": b"# draft",
            ".www2.atlas/notes.txt": b"mine, not atlas'"}
    for rel, data in mine.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_bytes(data)
    args = _args(tiny_checkpoints["dinov2"], images, out, "--site-dir", str(home / "www"), site=True)
    _built(args)
    _built(args)  # the rebuild replaces www through the work folder
    assert _tree(home / ".www.old") == {"cv.html": mine[".www.old/cv.html"]}
    assert _tree(home / ".www.partial") == {"draft.md": mine[".www.partial/draft.md"]}
    assert _listing(home) == [".www.atlas", ".www.old", ".www.partial", ".www2.atlas", "www"]
    assert _listing(home / ".www.atlas") == [".atlas-site-work", "lock"]  # no partial or old site left
    assert (home / "www" / "index.html").is_file()
    # a .NAME.atlas folder without the marker is the user's: refused, left alone, nothing written
    other = tmp_path / "out2"
    _refused(_args(tiny_checkpoints["dinov2"], images, other, "--site-dir", str(home / "www2"), site=True),
             f"{home / '.www2.atlas'}: already there and not an atlas site work folder")
    assert _tree(home / ".www2.atlas") == {"notes.txt": mine[".www2.atlas/notes.txt"]}
    assert not (home / "www2").exists() and not other.exists()


def test_a_site_caught_between_the_two_renames_is_put_back_and_rebuilt(tiny_checkpoints, tmp_path):
    """A kill between ``www -> .www.atlas/old`` and ``partial -> www`` leaves no www: the next build puts the
    old site back (with the user's CNAME), then replaces it as usual; the half-built site is removed."""
    images, out, home = _images(tmp_path / "imgs"), tmp_path / "out", tmp_path / "h"
    args = _args(tiny_checkpoints["dinov2"], images, out, "--site-dir", str(home / "www"), site=True)
    _built(args)
    built = _tree(home / "www")
    (home / "www" / "CNAME").write_text("atlas.example.org\n")
    work = home / ".www.atlas"
    (home / "www").rename(work / "old")
    (work / "partial" / "atlas").mkdir(parents=True)
    (work / "partial" / "atlas" / "half.html").write_text("<p>half")
    _built(args)
    assert _tree(home / "www") == {**built, "CNAME": b"atlas.example.org\n"}
    assert _listing(work) == [".atlas-site-work", "lock"]


# --- 3: no link out of OUT is followed ------------------------------------------------------------


def test_links_in_the_build_folder_are_refused_and_nothing_is_touched(tiny_checkpoints, tmp_path):
    """OUT/images linking to the --images folder (a build would replace the photos by re-encoded copies),
    OUT/metrics and OUT/maps/d linking to folders of the user (a build would prune their files), the lock
    file linking to a file of the user (it would be truncated): each refused in one line, exit 2."""
    images = _images(tmp_path / "imgs", ("coffee.jpg", "horse.png"))
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.csv").write_text("a,b\n")
    (elsewhere / "thesis.tex").write_text("\\documentclass{article}")
    args = _args(tiny_checkpoints["dinov2"], images, out)
    _built(args)
    originals, theirs = _tree(images), _tree(elsewhere)
    shutil.rmtree(out / "images")
    cases = [("images", images), ("metrics", elsewhere), ("maps/d", elsewhere),
             (".atlas-lock", elsewhere / "thesis.tex")]
    for name, target in cases:
        link = out / name
        moved = link.with_name(link.name + ".moved")
        if link.exists():
            link.rename(moved)
        link.symlink_to(target)
        before = _tree(out)
        _refused(args, f"{link} is a symbolic link (to {target})", "never writes or deletes through a link")
        assert _tree(images) == originals and _tree(elsewhere) == theirs and _tree(out) == before, name
        assert _listing(images) == ["coffee.jpg", "horse.png"]  # no re-encoded horse.jpg beside them
        link.unlink()
        if moved.exists():
            moved.rename(link)
    _built(args)  # the links gone, the folder builds again


# --- 4: a site folder is replaced only while it holds the site this build wrote -------------------


def test_a_site_dir_refilled_by_the_user_is_not_replaced(tiny_checkpoints, tmp_path):
    images, out, www = _images(tmp_path / "imgs"), tmp_path / "out", tmp_path / "www"
    args = _args(tiny_checkpoints["dinov2"], images, out, "--site-dir", str(www), site=True)
    _built(args)
    shutil.rmtree(www)
    www.mkdir()
    (www / "cv.html").write_text("cv")
    _refused(args, "not the site this build folder wrote there (cv.html is not from it)", "CNAME and .nojekyll")
    assert _tree(www) == {"cv.html": b"cv"}
    # a file added inside the default site OUT/site: refused, naming the folder it is in
    default = _args(tiny_checkpoints["dinov2"], images, out, site=True)
    _built(default)
    (out / "site" / "atlas" / "mine.html").write_text("<p>mine</p>")
    _refused(default, f"--site-dir {out / 'site'}: not the site this build folder wrote there",
             "atlas: files were added or removed inside it")
    assert (out / "site" / "atlas" / "mine.html").read_text() == "<p>mine</p>"


def test_cname_and_nojekyll_added_to_the_site_are_kept_across_builds(tiny_checkpoints, tmp_path):
    images, out = _images(tmp_path / "imgs"), tmp_path / "out"
    args = _args(tiny_checkpoints["dinov2"], images, out, site=True)
    _built(args)
    site = _tree(out / "site")
    assert not [name for name in site if "atlas-site" in name or name in ("CNAME", ".nojekyll", "lock")]
    (out / "site" / "CNAME").write_text("atlas.example.org\n")
    (out / "site" / ".nojekyll").write_bytes(b"")
    for _ in range(2):
        _built(args)
        assert _tree(out / "site") == {**site, "CNAME": b"atlas.example.org\n", ".nojekyll": b""}


# --- 5: one build at a time per site folder --------------------------------------------------------


def test_two_builds_with_different_out_and_one_site_dir_run_one_at_a_time(tiny_checkpoints, tmp_path):
    """Build A is stopped (SIGSTOP) in its site stage; build B, another --out with the same --site-dir, runs
    to its end meanwhile: it exits 2 naming A's PID and touches nothing; A, continued, publishes a complete
    site, the same as a clean build of the same inputs."""
    images, www, env = _images(tmp_path / "imgs"), tmp_path / "www", clean_env()
    ckpt = tiny_checkpoints["dinov2"]

    def atlas(out: Path) -> list[str]:
        return [sys.executable, "-m", "atlas", *_args(ckpt, images, out, "--site-dir", str(www), site=True)]

    errors = tmp_path / "a.err"
    with errors.open("w") as stderr:
        first = subprocess.Popen(atlas(tmp_path / "o1"), env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "o1" / "docs").is_dir():  # the site stage has begun
            assert first.poll() is None and time.monotonic() < deadline, errors.read_text()
            time.sleep(0.005)
        assert _stop(first), "build A ended before it could be stopped in its site stage"
        second = subprocess.run(atlas(tmp_path / "o2"), env=env, capture_output=True, text=True, timeout=300)
        line = " ".join(second.stderr.split())
        assert second.returncode == 2 and second.stderr.strip().count("\n") == 0, second.stderr
        assert f"--site-dir {www}: another atlas build (PID {first.pid}) is writing this site" in line, line
        assert not (tmp_path / "o2").exists()
        os.kill(first.pid, signal.SIGCONT)
        assert first.wait(timeout=300) == 0, errors.read_text()
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGCONT)
            first.kill()
            first.wait()
    _built(_args(ckpt, images, tmp_path / "clean", site=True))
    assert _tree(www) == _tree(tmp_path / "clean" / "site")


# --- 11 and 18: the project's pages folder ---------------------------------------------------------


def _project(root: Path, pages: str) -> Path:
    _images(root / "imgs")
    config = root / "atlas.toml"
    config.write_text(f'images = "imgs"\npages = "{pages}"\n')
    return config


def test_a_pages_folder_that_holds_or_lies_inside_out_is_refused(tiny_checkpoints, tmp_path):
    """``pages = "."`` would copy the build folder into itself (it recursed without end)."""
    model = ["--model", f"d={tiny_checkpoints['dinov2']}", "--weights", "pretrained", "--image-size", "32"]
    config = _project(tmp_path / "P", ".")
    _refused(["build", "--config", str(config), *model],
             f"--out {tmp_path / 'P' / 'build'} lies inside the pages folder (pages in atlas.toml)")
    assert not (tmp_path / "P" / "build").exists()
    (tmp_path / "Q" / "build" / "mine").mkdir(parents=True)
    (tmp_path / "Q" / "build" / "mine" / "index.md").write_text("# mine\n")
    config = _project(tmp_path / "Q", "build/mine")
    _refused(["build", "--config", str(config), *model], "holds the pages folder (pages in atlas.toml)")
    assert _tree(tmp_path / "Q" / "build") == {"mine/index.md": b"# mine\n"}


def test_links_that_leave_the_pages_folder_are_refused(tiny_checkpoints, tmp_path):
    root = tmp_path / "P"
    config = _project(root, "pages")
    pages = root / "pages"
    pages.mkdir()
    (pages / "index.md").write_text("# Home\n")
    (pages / "about.md").write_text("# About us\n")
    secret = tmp_path / "secret.md"
    secret.write_text("# not for the web\n")
    model = ["--model", f"d={tiny_checkpoints['dinov2']}", "--weights", "pretrained", "--image-size", "32"]
    build = ["build", "--config", str(config), *model]
    cases = [("notes.md", secret, "outside the pages folder"), ("up", tmp_path, "outside the pages folder"),
             ("gone.md", pages / "missing.md", "dangling"), ("loop", pages, "a symbolic link to a folder")]
    for name, target, problem in cases:
        (pages / name).symlink_to(target)
        _refused(build, f"pages: {pages / name}: a symbolic link", problem)
        assert not (root / "build").exists()
        (pages / name).unlink()
    (pages / "copy.md").symlink_to(pages / "about.md")  # a link inside the folder is published as its file
    _built(build)
    assert "About us" in (root / "build" / "site" / "copy" / "index.html").read_text()


# --- 18: a full disk on a first build ---------------------------------------------------------------


def test_a_full_disk_on_a_first_build_is_one_line_naming_the_file(tiny_checkpoints, tmp_path, tmpfs):  # noqa: F811
    """1 MB runs out while the docs are copied (shutil.copytree used to raise a list of every failed copy)."""
    subprocess.run(["mount", "-o", "remount,size=1m", str(tmpfs)], check=True)
    out = tmpfs / "out"
    line = _refused(_args(tiny_checkpoints["dinov2"], _images(tmp_path / "imgs"), out, site=True),
                    "No space left on device")
    where = line.removeprefix("error: ").rsplit(": No space left on device", 1)[0]
    assert Path(where).is_relative_to(out) and "[(" not in line and "Errno" not in line, line


def test_a_failed_copy_stops_with_the_error_of_the_file_it_could_not_write(tmp_path):
    """The same without a tmpfs: the first failed copy ends the copy, and the CLI line names that file."""
    from atlas.core.atomic import copy_tree

    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    for name in ("a.md", "b.md", "sub/c.md"):
        (source / name).write_text(name)
    tried = []

    def full(src: str, dst: str) -> None:
        tried.append(dst)
        raise OSError(errno.ENOSPC, "No space left on device", src, None, dst)

    with pytest.raises(OSError) as caught:
        copy_tree(source, tmp_path / "dst", copy_function=full)
    assert len(tried) == 1 and not isinstance(caught.value, shutil.Error)
    assert _os_error_line(caught.value, "--out x") == f"{tried[0]}: No space left on device"
    listed = shutil.Error([(str(source / "a.md"), str(tmp_path / "dst" / "a.md"),
                            "[Errno 28] No space left on device: 'a' -> 'b'")] * 2)
    assert _os_error_line(listed, "--out x") == f"{tmp_path / 'dst' / 'a.md'}: No space left on device"


def test_a_work_folder_a_killed_build_left_unmarked_is_taken_and_a_foreign_one_is_not(tmp_path):
    """Killed between making ``.www.atlas`` and marking it, a build leaves it empty (or with a torn marker):
    the next build marks it and goes on; one holding anything else, or a link, is the user's."""
    from atlas.core.site_folder import WORK_MARKER, open_work_dir

    (tmp_path / ".a.atlas").mkdir()
    (tmp_path / ".b.atlas").mkdir()
    (tmp_path / ".b.atlas" / f".{WORK_MARKER}.tmp").write_text('{"atl')
    for name in ("a", "b"):
        work = open_work_dir(tmp_path / name)
        assert (work / WORK_MARKER).is_file() and open_work_dir(tmp_path / name) == work
    (tmp_path / ".c.atlas").mkdir()
    (tmp_path / ".c.atlas" / "mine.txt").write_text("mine")
    (tmp_path / ".d.atlas").symlink_to(tmp_path / ".a.atlas")
    for name in ("c", "d"):
        with pytest.raises(AtlasError, match="not an atlas site work folder"):
            open_work_dir(tmp_path / name)
    assert _listing(tmp_path / ".c.atlas") == ["mine.txt"] and not (tmp_path / "c").exists()
