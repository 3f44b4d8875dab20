"""A build never deletes, overwrites or republishes what the user did not ask for (issue 10).

The build folder is marked as the atlas' own; foreign folders, folders overlapping the inputs and a
second concurrent build are refused in one line (exit 2) before anything is written; a rebuild after
removing inputs equals a clean build; a read-only or full disk is one line and keeps the old site.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atlas.cli import app
from atlas.dataset.stage import sample_paths
from tests.fixtures.interrupt import clean_env
from tests.fixtures.trees import build_args, tree

runner = CliRunner()
SAMPLE_IMAGES, _ = sample_paths()


def _images(folder: Path, names=("coffee.jpg", "rocket.jpg")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(SAMPLE_IMAGES / name, folder / name)
    return folder


def _args(checkpoint: Path, images: Path, out: Path, *extra: str, site: bool = False) -> list[str]:
    return build_args(out, {"d": checkpoint}, *extra, images=images, site=site)


def _refused(args: list[str], *needles: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    for needle in needles:
        assert needle in " ".join(line.split()), line
    return line


def _user_files(root: Path) -> dict[str, bytes]:
    files = {"docs/thesis.md": b"# my thesis\n", "metrics/results.csv": b"a,b\n1,2\n",
             "site/mine.html": b"<p>mine</p>", ".draft.tmp": b"draft", "notes.txt": b"keep me"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


# --- 1: the user's own files in --out -------------------------------------------------------------


def test_a_folder_that_is_not_a_build_folder_is_refused_and_left_alone(tiny_checkpoints, tmp_path):
    images, out = _images(tmp_path / "images"), tmp_path / "mine"
    out.mkdir()
    files = _user_files(out)
    args = _args(tiny_checkpoints["dinov2"], images, out)
    _refused(args, "not an atlas build folder", "--force")
    # --force keeps the files, so it still refuses a folder that holds one of the build's own names
    _refused([*args, "--force"], "docs, metrics, site already there", "never replaces")
    assert tree(out) == files


def test_force_builds_beside_the_users_files_and_deletes_none_of_them(tiny_checkpoints, tmp_path):
    images, out = _images(tmp_path / "images"), tmp_path / "mine"
    out.mkdir()
    files = {".draft.tmp": b"draft", "notes.txt": b"keep me", "sub/.x.tmp": b"x"}
    for rel, data in files.items():
        (out / rel).parent.mkdir(exist_ok=True)
        (out / rel).write_bytes(data)
    args = _args(tiny_checkpoints["dinov2"], images, out)
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    assert (out / ".atlas-build").is_file() and (out / "maps" / "manifest.json").is_file()
    result = runner.invoke(app, args)  # now a build folder: no --force needed, the files still kept
    assert result.exit_code == 0, result.output
    files_now = tree(out)
    assert {rel: files_now.get(rel) for rel in files} == files


def test_a_new_or_empty_folder_needs_no_force(tiny_checkpoints, tmp_path):
    images = _images(tmp_path / "images")
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        result = runner.invoke(app, _args(tiny_checkpoints["dinov2"], images, out))
        assert result.exit_code == 0, result.output
        assert (out / ".atlas-build").is_file()


# --- 2: --out or --site-dir overlapping an input ---------------------------------------------------


def test_outputs_that_overlap_an_input_are_refused_before_anything_is_written(tiny_checkpoints, tmp_path):
    project = tmp_path / "P"
    images = _images(project / "images", ("coffee.jpg", "horse.png"))
    docs_images = _images(project / "docs", ("rocket.jpg",))
    annotations = project / "boxes.json"
    annotations.write_text('{"images": [], "annotations": [], "categories": []}')
    checkpoint = project / "ckpt"
    shutil.copytree(tiny_checkpoints["dinov2"], checkpoint)
    before = tree(project)
    ckpt = str(checkpoint)
    cases = [
        (_args(ckpt, images, project), "--out", "holds --images"),
        (_args(ckpt, docs_images, project), "--out", "holds --images"),
        (_args(ckpt, images, images), "--out", "is --images"),
        (_args(ckpt, images, images / "build"), "--out", "lies inside --images"),
        (_args(ckpt, images, project, "--annotations", str(annotations)), "--out", "holds"),
        (_args(ckpt, images, checkpoint / "out"), "--out", "lies inside the checkpoint of --model d"),
        (_args(ckpt, images, tmp_path / "o2", "--site-dir", str(images), site=True), "--site-dir",
         "is --images"),
        (_args(ckpt, docs_images, tmp_path / "o3", "--site-dir", str(project), site=True), "--site-dir",
         "holds --images"),
    ]
    for args, label, how in cases:
        _refused(args, label, how)
    assert tree(project) == before  # no re-encoded copy beside the originals, nothing deleted
    assert not (images / "horse.jpg").exists() and not (images / "coffee.png").exists()


# --- 3: --site-dir an existing folder ------------------------------------------------------------


def test_a_site_dir_this_build_folder_did_not_build_is_refused(tiny_checkpoints, tmp_path):
    images, out = _images(tmp_path / "images"), tmp_path / "out"
    mydocs = tmp_path / "mydocs"
    mydocs.mkdir()
    (mydocs / "paper.tex").write_text("\\documentclass{article}")
    ckpt = tiny_checkpoints["dinov2"]
    for site_dir in (mydocs, Path(".")):
        _refused(_args(ckpt, images, out, "--site-dir", str(site_dir), site=True),
                 "not a site this build folder built")
        _refused(_args(ckpt, images, out, "--site-dir", str(site_dir), "--force", site=True), "--force does not")
    _refused(_args(ckpt, images, out, "--site-dir", str(out), site=True), "is the build folder")
    _refused(_args(ckpt, images, out, "--site-dir", str(tmp_path), site=True), "holds")
    assert (mydocs / "paper.tex").read_text() == "\\documentclass{article}" and len(list(mydocs.iterdir())) == 1
    assert not out.exists()


def test_a_site_dir_the_build_folder_built_is_rebuilt_in_place(tiny_checkpoints, tmp_path):
    images, out, site = _images(tmp_path / "images"), tmp_path / "out", tmp_path / "public"
    args = _args(tiny_checkpoints["dinov2"], images, out, "--site-dir", str(site), site=True)
    assert runner.invoke(app, args).exit_code == 0
    first = tree(site)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert tree(site) == first
    # another build folder did not build it
    _refused(_args(tiny_checkpoints["dinov2"], images, tmp_path / "other", "--site-dir", str(site), site=True),
             "not a site this build folder built")


# --- 6: removed inputs are unpublished: a rebuild equals a clean build ----------------------------


def test_a_rebuild_after_removing_an_image_and_a_model_equals_a_clean_build(tiny_checkpoints, tmp_path):
    images = _images(tmp_path / "images", ("coffee.jpg", "rocket.jpg", "horse.png"))
    models = ["--model", f"d={tiny_checkpoints['dinov2']}", "--model", f"v={tiny_checkpoints['vit']}"]
    common = ["--image-size", "32", "--weights", "pretrained", "--images", str(images)]
    out = tmp_path / "out"
    assert runner.invoke(app, ["build", *models, *common, "--out", str(out)]).exit_code == 0
    assert any("/horse" in k for k in tree(out / "site"))
    (images / "horse.png").unlink()
    result = runner.invoke(app, ["build", *models, *common, "--out", str(out)])
    assert result.exit_code == 0, result.output
    clean = tmp_path / "clean"
    assert runner.invoke(app, ["build", *models, *common, "--out", str(clean)]).exit_code == 0
    assert tree(out / "site") == tree(clean / "site")
    assert tree(out / "render") == tree(clean / "render")
    assert not [k for k in tree(out / "site") if "horse" in k]
    assert tree(out / "images") == tree(clean / "images")  # no display copy of the removed photo either
    # drop model v
    result = runner.invoke(app, ["build", *models[:2], *common, "--out", str(out)])
    assert result.exit_code == 0, result.output
    clean2 = tmp_path / "clean2"
    assert runner.invoke(app, ["build", *models[:2], *common, "--out", str(clean2)]).exit_code == 0
    site = tree(out / "site")
    assert site == tree(clean2 / "site")
    assert tree(out / "render") == tree(clean2 / "render")
    assert not [k for k in site if k.startswith("atlas-data/maps/v/")]


# --- 7: one build at a time per build folder ------------------------------------------------------

HOLDER = """
import sys
from pathlib import Path
from atlas.core.out_dir import locked
with locked(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_second_build_into_the_same_folder_fails_naming_the_holders_pid(tiny_checkpoints, tmp_path):
    images, out = _images(tmp_path / "images"), tmp_path / "out"
    env = clean_env()
    atlas = [sys.executable, "-m", "atlas", *_args(tiny_checkpoints["dinov2"], images, out)]
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = subprocess.run(atlas, env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr
        line = " ".join(second.stderr.split())
        assert second.stderr.strip().count("\n") == 0 and f"PID {holder.pid}" in line, second.stderr
        assert not (out / "maps").exists()
    finally:
        holder.send_signal(signal.SIGKILL)  # a killed holder's lock is released by the OS
        holder.wait()
    third = subprocess.run(atlas, env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert (out / ".atlas-lock").read_text() == ""  # released


# --- 13: a read-only or full disk: one line, the old site kept, no partial site left ------------


@pytest.fixture
def tmpfs(tmp_path):
    """A small tmpfs (real ENOSPC and EROFS); skipped where mounting is not allowed (not root)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def _site_kept(out: Path, before: dict[str, bytes]) -> None:
    assert tree(out / "site") == before
    assert not (out / ".site.atlas" / "partial").exists() and not (out / ".site.atlas" / "old").exists()


def test_a_read_only_build_folder_is_one_line_and_keeps_the_site(tiny_checkpoints, tmp_path, tmpfs):
    images, out = _images(tmp_path / "images"), tmpfs / "out"
    args = _args(tiny_checkpoints["dinov2"], images, out, "--colormap", "inferno", site=True)
    assert runner.invoke(app, args).exit_code == 0
    before = tree(out / "site")
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    _refused(args, "Read-only file system")
    _site_kept(out, before)


def test_a_full_disk_is_one_line_and_keeps_the_site(tiny_checkpoints, tmp_path, tmpfs):
    images, out = _images(tmp_path / "images"), tmpfs / "out"
    args = _args(tiny_checkpoints["dinov2"], images, out, site=True)
    assert runner.invoke(app, args).exit_code == 0
    before = tree(out / "site")
    filler = tmpfs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)  # fill the disk
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    os.truncate(filler, filler.stat().st_size - 2**20)
    shutil.rmtree(out / "docs")  # room to rewrite it and to start the MkDocs build, not to finish it (~6 MB)
    line = _refused(args, "No space left on device")
    assert str(out) in line, line  # the file, or --out where the error names none
    assert (out / "docs" / "atlas" / "report.md").is_file()  # the pages were written: it failed in MkDocs
    _site_kept(out, before)


def test_a_disk_error_in_the_site_stage_removes_the_partial_site(tiny_checkpoints, tmp_path, monkeypatch):
    import atlas.site.stage

    images, out = _images(tmp_path / "images"), tmp_path / "out"
    args = _args(tiny_checkpoints["dinov2"], images, out, site=True)
    assert runner.invoke(app, args).exit_code == 0
    before = tree(out / "site")

    def full(render_dir: Path, site_dir: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(site_dir / "atlas-data"))

    monkeypatch.setattr(atlas.site.stage, "_add_data", full)
    line = _refused(args, "No space left on device")
    assert ".site.atlas/partial" in line  # names the file it could not write
    _site_kept(out, before)
