"""The site folder's mechanics: its work folder, fingerprint, the files a user may add, and the swap.

Beside the site folder ``DIR/NAME`` (``--site-dir``, default ``OUT/site``) a build keeps the hidden *site
work folder* ``DIR/.NAME.atlas/``, marked as the atlas' own by the file ``.atlas-site-work`` inside it. It
holds the site lock (``lock``; ``atlas.core.out_dir.locked_site``) and, during the site stage, the new site
(``partial/``) and the previous one while the two are swapped (``old/``). A build removes only these two,
and only inside a marked work folder: a folder of that name without the marker is refused, and the
user's own ``DIR/.NAME.partial`` or ``DIR/.NAME.old`` are never looked at.

The *fingerprint* of a site says which site a build folder wrote without adding a file to it (the
published bytes stay those of the build): each top-level entry with its kind, and for a folder a hash of
every path under it. ``OUT/.atlas-build`` records it when the site is swapped in (``atlas.core.out_dir``); a
site whose fingerprint no longer fits (a file added or removed) is not replaced. The files in
``USER_FILES`` may be added to the site folder: they are left out of the fingerprint and carried into
each new site, unless the build writes a file of that name itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path

from atlas.core.atomic import write_text_atomic
from ssl_attention.errors import AtlasError

USER_FILES = ("CNAME", ".nojekyll")  # files a user may add to the site folder; kept across builds
WORK_MARKER = ".atlas-site-work"
LOCK = "lock"
Fingerprint = dict[str, str]  # top-level name -> "file", "link" or "dir:HASH"


def work_dir(site_dir: Path) -> Path:
    """The site work folder of ``site_dir``: ``.NAME.atlas`` beside it."""
    site = Path(site_dir).resolve()
    return site.with_name(f".{site.name}.atlas")


def check_work_dir(site_dir: Path) -> None:
    """Refuse a ``.NAME.atlas`` beside ``site_dir`` that is not a marked work folder (it is the user's)."""
    work = work_dir(site_dir)
    if not os.path.lexists(work):
        return
    if work.is_symlink() or not work.is_dir() or not (_is_marked(work) or _is_unfinished(work)):
        raise AtlasError(f"{work}: already there and not an atlas site work folder (no {WORK_MARKER}); a build "
                         f"of the site {site_dir} keeps its new site there: move it away")


def _is_marked(work: Path) -> bool:
    marker = work / WORK_MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("atlas") == "site work folder"


def _is_unfinished(work: Path) -> bool:
    """A work folder a killed build made but could not mark: nothing in it but (a torn write of) the marker."""
    return {p.name for p in work.iterdir()} <= {WORK_MARKER, f".{WORK_MARKER}.tmp"}


def open_work_dir(site_dir: Path) -> Path:
    """The work folder of ``site_dir``, made and marked if new (``check_work_dir`` first)."""
    check_work_dir(site_dir)
    work = work_dir(site_dir)
    if not os.path.lexists(work) or not _is_marked(work):
        work.mkdir(parents=True, exist_ok=True)
        data = {"atlas": "site work folder", "site": Path(site_dir).resolve().name}
        write_text_atomic(work / WORK_MARKER, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return work


def _remove(path: Path) -> None:
    """Remove a file, a link (never what it points to) or a folder."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def recover(site_dir: Path) -> Path:
    """The work folder's leftovers of a killed build cleared: a previous site caught between the two
    renames of the swap goes back in place, a half-built one is removed. Returns where to build: ``partial``."""
    work = open_work_dir(site_dir)
    partial, old = work / "partial", work / "old"
    if os.path.lexists(old):
        if os.path.lexists(site_dir):
            _remove(old)
        else:
            old.rename(site_dir)
    if os.path.lexists(partial):
        _remove(partial)
    return partial


def _paths(folder: Path) -> list[str]:
    """Every path under ``folder`` (links not followed), folders ending in ``/``, links in ``@``."""
    found, stack = [], [(folder, "")]
    while stack:
        current, prefix = stack.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                name = prefix + entry.name
                if entry.is_symlink():
                    found.append(name + "@")
                elif entry.is_dir():
                    found.append(name + "/")
                    stack.append((Path(entry.path), name + "/"))
                else:
                    found.append(name)
    return found


def fingerprint(site: Path) -> Fingerprint:
    """Each top-level entry of ``site`` but the ``USER_FILES``, with its kind (and a hash of a folder's paths)."""
    result: Fingerprint = {}
    with os.scandir(site) as entries:
        for entry in entries:
            if entry.name in USER_FILES:
                continue
            if entry.is_symlink():
                result[entry.name] = "link"
            elif entry.is_dir():
                listing = "\n".join(sorted(_paths(Path(entry.path)))).encode("utf-8", "surrogateescape")
                result[entry.name] = "dir:" + hashlib.sha256(listing).hexdigest()[:32]
            else:
                result[entry.name] = "file"
    return dict(sorted(result.items()))


def _difference(current: Fingerprint, written: Fingerprint) -> str | None:
    """What ``current`` holds that the site ``written`` did not (missing entries are fine), or None."""
    for name, kind in current.items():
        if name not in written:
            return f"{name} is not from it"
        if kind != written[name]:
            return f"{name}: files were added or removed inside it" if kind.startswith("dir:") else \
                f"{name} has changed kind"
    return None


def mismatch(site_dir: Path, written: list[Fingerprint]) -> str | None:
    """Why ``site_dir`` is not one of the sites ``written`` (a file the build did not write), or None."""
    if not written:
        return "no record of the files it wrote there: a site of an atlas version before this check, remove it once"
    current = fingerprint(site_dir)
    reasons = [_difference(current, site) for site in written]
    return None if None in reasons else reasons[-1]


def carry_user_files(site_dir: Path, partial: Path) -> None:
    """Copy the ``USER_FILES`` the user added to ``site_dir`` into the new site ``partial`` (links as links);
    a file of that name the build wrote itself is kept."""
    for name in USER_FILES:
        source, target = site_dir / name, partial / name
        if not os.path.lexists(source) or os.path.lexists(target):
            continue
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target, follow_symlinks=False)


def swap_in(partial: Path, site_dir: Path) -> None:
    """Replace ``site_dir`` by the finished ``partial`` (two renames through the work folder's ``old``; the
    old site is removed after). If the second rename fails, the old site is put back."""
    old = partial.with_name("old")
    if os.path.lexists(old):
        _remove(old)
    if os.path.lexists(site_dir):
        site_dir.rename(old)
    try:
        partial.rename(site_dir)
    except OSError:
        if os.path.lexists(old):
            old.rename(site_dir)
        raise
    with contextlib.suppress(OSError):  # the new site is in place; the next build clears ``old``
        _remove(old)
