"""Which folders a build may write into, and one build at a time per build folder.

A build folder (``--out``) is marked as the atlas' own by a small JSON file, ``OUT/.atlas-build`` (the
*build folder marker*), written when a build first uses a new or empty folder. The marker also lists the
site folders this build folder has built (``--site-dir``), so a rebuild may replace them. A build refuses:

* a non-empty folder without the marker, unless ``--force``; even then it keeps every file there and
  refuses when one of its own names (``maps``, ``docs``...) is already taken by something it did not write;
* a non-empty ``--site-dir`` it did not build (the site is replaced as a whole: --force does not help);
* an ``--out`` or ``--site-dir`` that is, holds or lies inside an input (images, annotations, a local
  checkpoint), or a ``--site-dir`` that is or holds ``--out``.

``OUT/.atlas-lock`` is held (``flock``) for the whole build; the OS releases it when the process ends,
also when killed. It holds the holder's PID while held and is emptied on release.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from atlas.core.atomic import remove_stale_temp_files, write_text_atomic
from ssl_attention.errors import AtlasError

MARKER = ".atlas-build"
LOCK = ".atlas-lock"
# Everything a build writes directly in OUT (the default site and its hidden siblings included).
OWN_NAMES = frozenset({
    MARKER, LOCK, "images", "maps", "metrics", "render", "render-stamps", "docs", "outside-pages", "theme",
    "report.json",
    ".report.json.tmp", "site", ".site.partial", ".site.old",
})
# Folders of OUT that only a build writes into (their ``.*.tmp`` files are torn writes of a killed build).
OWN_FOLDERS = ("images", "maps", "metrics", "render", "render-stamps")


def check_apart(outputs: dict[str, Path], inputs: dict[str, Path]) -> None:
    """Refuse an output folder that is, holds or lies inside an existing input (it would be overwritten)."""
    for out_label, out in outputs.items():
        target = out.resolve()
        for in_label, source in inputs.items():
            if not source.exists():  # reported as missing by the stage that reads it
                continue
            given = source.resolve()
            if target == given or target in given.parents or given in target.parents:
                how = "is" if target == given else "holds" if target in given.parents else "lies inside"
                raise AtlasError(f"{out_label} {out} {how} {in_label} {source}; choose a separate output folder")


def _read_marker(out: Path) -> dict | None:
    try:
        data = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("atlas") == "build folder" else None


def _is_earlier_build(out: Path) -> bool:
    """A build folder of an atlas version before the marker: it has a maps manifest."""
    return (out / "maps" / "manifest.json").is_file()


def check_out(out: Path, force: bool) -> None:
    """Refuse ``out`` unless it is new, empty, a build folder, or (with ``force``) free of the build's names."""
    if not out.exists():
        return
    if not out.is_dir():
        raise AtlasError(f"--out {out}: not a folder")
    if _read_marker(out) is not None or _is_earlier_build(out):
        return
    entries = sorted(p.name for p in out.iterdir() if p.name != LOCK)
    if not entries:
        return
    if not force:
        raise AtlasError(f"--out {out}: not empty and not an atlas build folder (no {MARKER}); choose a new "
                         "or empty folder, or add --force to build into it (its files are kept)")
    taken = [name for name in entries if name in OWN_NAMES]
    if taken:
        raise AtlasError(f"--out {out}: {', '.join(taken)} already there and not written by atlas; even with "
                         "--force a build never replaces them: move them away or choose another --out")


def _site_key(out: Path, site_dir: Path) -> str:
    """How the marker names a site folder: relative to OUT when inside it, else absolute."""
    out, site_dir = out.resolve(), site_dir.resolve()
    return site_dir.relative_to(out).as_posix() if out in site_dir.parents else str(site_dir)


def check_site_dir(out: Path, site_dir: Path) -> None:
    """Refuse a ``site_dir`` that is or holds ``out``, or is a non-empty folder this build folder did not build."""
    target, build = site_dir.resolve(), out.resolve()
    if target == build or target in build.parents:
        raise AtlasError(f"--site-dir {site_dir} {'is' if target == build else 'holds'} the build folder --out "
                         f"{out}; the site is replaced as a whole: choose another folder")
    if not site_dir.exists():
        return
    if not site_dir.is_dir():
        raise AtlasError(f"--site-dir {site_dir}: not a folder")
    marker = _read_marker(out) or {}
    legacy = marker == {} and _is_earlier_build(out) and target == build / "site"
    if legacy or _site_key(out, site_dir) in marker.get("sites", []) or not any(site_dir.iterdir()):
        return
    raise AtlasError(f"--site-dir {site_dir}: not empty and not a site this build folder built; the site "
                     "replaces the whole folder, so choose a new or empty one (--force does not change this)")


def _write_marker(out: Path, sites: list[str]) -> None:
    data = {"atlas": "build folder", "version": 1, "sites": sorted(set(sites))}
    write_text_atomic(out / MARKER, json.dumps(data, indent=2, sort_keys=True) + "\n")


def check_folders(out: Path, site_dir: Path | None, force: bool, inputs: dict[str, Path]) -> None:
    """Every refusal above, before anything is written: ``site_dir`` is None for ``--no-site``."""
    check_apart({"--out": out, **({"--site-dir": site_dir} if site_dir else {})}, inputs)
    check_out(out, force)
    if site_dir is not None:
        check_site_dir(out, site_dir)


def claim(out: Path, site_dir: Path | None) -> None:
    """Mark ``out`` as a build folder that builds ``site_dir`` (after ``check_folders``, under the lock)."""
    sites = (_read_marker(out) or {}).get("sites")
    wanted = [*(sites or []), *([_site_key(out, site_dir)] if site_dir else [])]
    if sites is None or sorted(set(wanted)) != sites:
        _write_marker(out, wanted)


_HELD: set[int] = set()  # the lock files' descriptors of this process; a forked child closes its copies


def _close_held_in_child() -> None:
    for fd in _HELD:
        os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``out/.atlas-lock`` for the block; another build holding it is an error naming its PID.

    The worker processes of the build (``atlas.core.pool``) do not hold it: a build killed while they run
    leaves the folder free for the next build."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    _HELD.add(fd)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise AtlasError(f"--out {out}: another atlas build (PID {holder}) is using this build folder; "
                             "wait for it to finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        _HELD.discard(fd)
        os.close(fd)  # releases the lock


def remove_own_temp_files(out: Path) -> None:
    """Delete the ``.*.tmp`` files a killed build left in its own folders (never the user's)."""
    (out / ".report.json.tmp").unlink(missing_ok=True)
    (out / f".{MARKER}.tmp").unlink(missing_ok=True)
    for name in OWN_FOLDERS:
        if (out / name).is_dir():
            remove_stale_temp_files(out / name)
