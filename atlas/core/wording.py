"""How the CLI words what it prints: counts with the right plural, and paths without ``..``."""

from __future__ import annotations

from pathlib import Path


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: ``count(1, "model")`` is ``1 model``,
    ``count(3, "prefix token")`` is ``3 prefix tokens`` (``plural`` when adding an s is wrong)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def normal_path(path: Path) -> Path:
    """``path`` with its ``..`` resolved (so it is absolute, symbolic links followed, as the system reads
    it); a path without ``..`` stays as given. ``proj/x/../../photos`` is printed as ``/home/me/photos``."""
    path = Path(path)
    return path.resolve() if ".." in path.parts else path
