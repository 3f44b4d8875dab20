"""Atomic file writes: a crash or kill leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import os
from pathlib import Path


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a hidden temp file beside ``path``, flush it to disk, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def write_text_atomic(path: Path, text: str) -> None:
    """``write_bytes_atomic`` for UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"))


def remove_stale_temp_files(folder: Path) -> None:
    """Delete the ``.*.tmp`` files an interrupted build left behind (finished files are never temp files)."""
    for stale in folder.glob("**/.*.tmp"):
        stale.unlink(missing_ok=True)
