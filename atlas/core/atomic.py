"""Atomic file writes: a crash or kill leaves either the old file or the new one, never half of one.

Two levels of safety, one implementation:

* ``durable=True`` (the default): the data is flushed to disk (``fsync``) before the rename, so the new
  file also survives a power loss. For what cannot be re-created cheaply: the maps cache and manifests.
* ``durable=False``: temp file + rename without ``fsync``. A killed process still leaves the old file or
  the new one (the rename is atomic), but after a power loss the file may be empty. For re-creatable
  outputs such as the rendered sprite PNGs and photo copies (delete ``BUILD/render*`` to
  re-create them); ``fsync`` on each of thousands of small files cost about 12 s per build.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_via_temp(path: Path, write: Callable[[Path], None]) -> None:
    """Let ``write`` create a hidden temp file beside ``path`` (``.NAME.tmp``), then rename it over ``path``.

    For writers that take a path (e.g. a CSV writer); a temp file left by a kill is removed by
    ``remove_stale_temp_files``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    tmp.replace(path)


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to a hidden temp file beside ``path``, then rename it over ``path``.

    With ``durable`` the temp file is flushed to disk (``fsync``) before the rename.
    """

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())

    write_via_temp(path, write)


def write_text_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    """``write_bytes_atomic`` for UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def remove_stale_temp_files(folder: Path) -> None:
    """Delete the ``.*.tmp`` files an interrupted build left behind (finished files are never temp files)."""
    for stale in folder.glob("**/.*.tmp"):
        stale.unlink(missing_ok=True)


class _CopyFailed(Exception):
    """Carries a failed file copy out of ``shutil.copytree``, which would collect it and copy on."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


def copy_tree(source: Path, target: Path, *, copy_function: Callable[[str, str], Any] = shutil.copy2,
              **options: Any) -> None:
    """``shutil.copytree`` that stops at the first file it cannot copy (e.g. on a full disk) with that
    file's ``OSError``, naming the file, instead of copying on and raising a ``shutil.Error`` that lists
    every failure."""

    def copy(src: str, dst: str) -> Any:
        try:
            return copy_function(src, dst)
        except OSError as exc:
            raise _CopyFailed(exc) from exc

    try:
        shutil.copytree(source, target, copy_function=copy, **options)
    except _CopyFailed as failed:
        raise failed.error from None
