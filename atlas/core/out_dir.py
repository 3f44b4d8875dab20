"""Which folders a build may write into, and one build at a time per build folder.

A build folder (``--out``) is marked as the atlas' own by a small JSON file, ``OUT/.atlas-build`` (the
*build folder marker*), written when a build first uses a new or empty folder; nothing else (not even a
``maps/manifest.json``) makes a folder a build folder. The marker also lists the site folders this build
folder has built (``--site-dir``) with the fingerprint of the site it last wrote in each
(``atlas.core.site_folder``), so a rebuild replaces only a site that is still its own. A build refuses:

* a non-empty folder without the marker, unless ``--force``; even then it keeps every file there and
  refuses when one of its own names (``maps``, ``docs``...) is already taken by something it did not write;
* a symbolic link among its own names in OUT (``OUT/images``, ``OUT/metrics``...) or anywhere inside the
  folders it writes and prunes (``OUT/maps/...``): a build never writes or deletes through a link;
* an ``--out`` or ``--site-dir`` that is, holds or lies inside an input (images, annotations, a local
  checkpoint, the project's pages), or a ``--site-dir`` that is or holds ``--out``.

``OUT/.atlas-lock`` is held (``flock``) for the whole build; the OS releases it when the process ends,
also when killed. It holds the holder's PID while held and is emptied on release. ``hold_lock`` is the
same lock for any file (the site folder's lock uses it too).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from atlas.core.atomic import remove_stale_temp_files, write_text_atomic
from atlas.core.site_folder import LOCK as SITE_LOCK
from atlas.core.site_folder import USER_FILES, Fingerprint, check_work_dir, mismatch, open_work_dir, recover
from ssl_attention.errors import AtlasError

MARKER = ".atlas-build"
LOCK = ".atlas-lock"
# Everything a build writes directly in OUT (the default site and its work folder included).
OWN_NAMES = frozenset({
    MARKER, LOCK, "images", "maps", "emd-memo", "metrics", "render", "render-stamps", "docs", "outside-pages",
    "theme",
    "report.json",
    ".report.json.tmp", "site", ".site.atlas",
})
# Folders of OUT that only a build writes into (their ``.*.tmp`` files are torn writes of a killed build).
OWN_FOLDERS = ("images", "maps", "emd-memo", "metrics", "render", "render-stamps")


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


def check_out(out: Path, force: bool) -> None:
    """Refuse ``out`` unless it is new, empty, a build folder, or (with ``force``) free of the build's names."""
    if not out.exists():
        return
    if not out.is_dir():
        raise AtlasError(f"--out {out}: not a folder")
    if _read_marker(out) is not None:  # only the marker makes a build folder (not a maps/manifest.json)
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


def _first_link(folder: Path) -> Path | None:
    """A symbolic link under ``folder`` (links are not followed, nesting is not limited), or None."""
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_symlink():
                    return Path(entry.path)
                if entry.is_dir():
                    stack.append(Path(entry.path))
    return None


def check_links(out: Path) -> None:
    """Refuse a symbolic link among the build's own names in ``out`` or inside the folders it writes and
    prunes: writing or deleting through it would change files outside the build folder."""
    if not out.is_dir():
        return
    for name in sorted(OWN_NAMES):
        path = out / name
        link = path if path.is_symlink() else _first_link(path) if name in OWN_FOLDERS and path.is_dir() else None
        if link is not None:
            raise AtlasError(f"--out {out}: {link} is a symbolic link (to {os.readlink(link)}); a build never "
                             "writes or deletes through a link: replace it by a folder of its own or remove it")


def _site_key(out: Path, site_dir: Path) -> str:
    """How the marker names a site folder: relative to OUT when inside it, else absolute."""
    out, site_dir = out.resolve(), site_dir.resolve()
    return site_dir.relative_to(out).as_posix() if out in site_dir.parents else str(site_dir)


def _sites(marker: dict | None) -> dict[str, list[Fingerprint]]:
    """The sites a marker lists, each with the fingerprints of the sites written there (none in a marker
    of version 1, which listed the folders only)."""
    sites = (marker or {}).get("sites")
    if isinstance(sites, list):
        return {key: [] for key in sites if isinstance(key, str)}
    if not isinstance(sites, dict):
        return {}
    return {key: [f for f in value if isinstance(f, dict)] for key, value in sites.items()
            if isinstance(key, str) and isinstance(value, list)}


def site_records(out: Path, site_dir: Path) -> list[Fingerprint] | None:
    """The fingerprints of the sites this build folder wrote to ``site_dir`` (None: not one of its sites)."""
    return _sites(_read_marker(out)).get(_site_key(out, site_dir))


def record_site(out: Path, site_dir: Path, fingerprints: list[Fingerprint]) -> None:
    """Record in the marker that ``site_dir`` holds one of the sites ``fingerprints`` (no-op without a marker,
    e.g. a site stage run on its own)."""
    marker = _read_marker(out)
    if marker is not None:
        _write_marker(out, {**_sites(marker), _site_key(out, site_dir): fingerprints})


def check_site_dir(out: Path, site_dir: Path) -> None:
    """Refuse a ``site_dir`` that is or holds ``out``, a non-empty folder that does not hold the site this build
    folder last wrote there (``atlas.core.site_folder.mismatch``), or a foreign folder where its work folder goes."""
    target, build = site_dir.resolve(), out.resolve()
    if target == build or target in build.parents:
        raise AtlasError(f"--site-dir {site_dir} {'is' if target == build else 'holds'} the build folder --out "
                         f"{out}; the site is replaced as a whole: choose another folder")
    check_work_dir(site_dir)
    if not site_dir.exists():
        return
    if not site_dir.is_dir():
        raise AtlasError(f"--site-dir {site_dir}: not a folder")
    if not any(site_dir.iterdir()):
        return
    written = site_records(out, site_dir)
    if written is None:
        raise AtlasError(f"--site-dir {site_dir}: not empty and not a site this build folder built; the site "
                         "replaces the whole folder, so choose a new or empty one (--force does not change this)")
    reason = mismatch(site_dir, written)
    if reason is not None:
        raise AtlasError(f"--site-dir {site_dir}: not the site this build folder wrote there ({reason}); the "
                         "site replaces the whole folder: move your files out of it or choose another folder "
                         f"(only {' and '.join(USER_FILES)} may be added: they are kept)")


def _write_marker(out: Path, sites: dict[str, list[Fingerprint]]) -> None:
    data = {"atlas": "build folder", "version": 2, "sites": dict(sorted(sites.items()))}
    write_text_atomic(out / MARKER, json.dumps(data, indent=2, sort_keys=True) + "\n")


def check_folders(out: Path, site_dir: Path | None, force: bool, inputs: dict[str, Path]) -> None:
    """Every refusal above, before anything is written: ``site_dir`` is None for ``--no-site``."""
    check_apart({"--out": out, **({"--site-dir": site_dir} if site_dir else {})}, inputs)
    check_out(out, force)
    check_links(out)
    if site_dir is not None:
        check_site_dir(out, site_dir)


def claim(out: Path, site_dir: Path | None) -> None:
    """Mark ``out`` as a build folder that builds ``site_dir`` (after ``check_folders``, under the lock)."""
    marker = _read_marker(out)
    sites = _sites(marker)
    key = _site_key(out, site_dir) if site_dir else None
    if marker is None or marker.get("version") != 2 or (key is not None and key not in sites):
        _write_marker(out, {**({key: []} if key else {}), **sites})


_HELD: set[int] = set()  # the lock files' descriptors of this process; a forked child closes its copies


def _close_held_in_child() -> None:
    for fd in _HELD:
        os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


@contextmanager
def hold_lock(lock: Path, busy: str) -> Iterator[None]:
    """Hold ``lock`` (``flock``) for the block, its file holding this PID; another process holding it is an
    ``AtlasError``: ``busy`` with ``{pid}`` filled in. A link at ``lock`` is refused, never followed."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError:
        if lock.is_symlink():
            raise AtlasError(f"{lock}: a symbolic link; a build never writes through a link: remove it") from None
        raise
    _HELD.add(fd)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise AtlasError(busy.format(pid=holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        _HELD.discard(fd)
        os.close(fd)  # releases the lock


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``out/.atlas-lock`` for the block; another build holding it is an error naming its PID.

    The worker processes of the build (``atlas.core.pool``) do not hold it: a build killed while they run
    leaves the folder free for the next build."""
    out.mkdir(parents=True, exist_ok=True)
    with hold_lock(out / LOCK, f"--out {out}: another atlas build (PID {{pid}}) is using this build folder; "
                   "wait for it to finish or choose another --out"):
        yield


@contextmanager
def locked_site(out: Path, site_dir: Path | None) -> Iterator[None]:
    """Hold the site folder's lock (in its work folder) for the block, so that two builds, whatever their
    ``--out``, never write one site at once; then put back a site a killed build left mid-swap and check
    ``site_dir`` again, now that no other build can change it. No-op for ``site_dir`` None (``--no-site``)."""
    if site_dir is None:
        yield
        return
    work = open_work_dir(site_dir)
    with hold_lock(work / SITE_LOCK, f"--site-dir {site_dir}: another atlas build (PID {{pid}}) is writing "
                   "this site; wait for it to finish or choose another --site-dir"):
        recover(site_dir)
        check_site_dir(out, site_dir)
        yield


def remove_own_temp_files(out: Path) -> None:
    """Delete the ``.*.tmp`` files a killed build left in its own folders (never the user's)."""
    (out / ".report.json.tmp").unlink(missing_ok=True)
    (out / f".{MARKER}.tmp").unlink(missing_ok=True)
    for name in OWN_FOLDERS:
        if (out / name).is_dir():
            remove_stale_temp_files(out / name)
