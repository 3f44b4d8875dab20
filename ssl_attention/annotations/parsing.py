"""Parsing helpers shared by the annotation readers: JSON reading, number checks and item problems.

A problem of the whole file raises :class:`~ssl_attention.errors.AnnotationError`; a problem confined
to one box or image raises :class:`ItemProblem`, which the reader turns into one :class:`Skip`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssl_attention.annotations.geometry import Box
from ssl_attention.errors import AnnotationError
from ssl_attention.skips import Skip

STAGE = "annotations"  # the stage of every skip the annotation readers report

# A candidate box before clamping: (image id, box in image pixels or None if it was skipped, where in the file).
Candidate = tuple[str, "Box | None", str]


class ItemProblem(Exception):
    """A problem confined to one box or image: the item is skipped and reported."""


def skip(path: Path, reason: str) -> Skip:
    """The skip of one item of the annotation file ``path`` (its line: ``PATH: REASON``)."""
    return Skip(STAGE, str(path), reason)


@dataclass
class Found:
    """What a format reader found in ``path``, in file order: candidate boxes and the items it skipped."""

    path: Path
    boxes: list[Candidate] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    def add(self, image_id: str, where: str, read: Callable[..., Box], *args: Any) -> None:
        """Add the box ``read(*args)`` of ``image_id``; on an item problem, skip it (one line naming ``where``)."""
        try:
            box: Box | None = read(*args)
        except ItemProblem as exc:
            self.skipped.append(skip(self.path, f"{where}: {exc}; box skipped"))
            box = None
        self.boxes.append((image_id, box, where))


def read_json(path: Path) -> Any:
    """The parsed JSON of ``path`` (too-long integers as :class:`HugeInt`), or an AnnotationError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read annotation file ({_one_line(exc)})") from None
    try:
        return json.loads(text, parse_int=_parse_int)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise AnnotationError(f"{path}: not valid JSON ({_one_line(exc)})") from None


class HugeInt:
    """A JSON integer too long for Python's int-string conversion limit (about 4300 digits)."""

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"<integer of {self.digits} digits>"


def _parse_int(text: str) -> int | HugeInt:
    """``int(text)``, or a :class:`HugeInt` that each reader then reports as one skipped item."""
    try:
        return int(text)
    except ValueError:  # longer than sys.get_int_max_str_digits()
        return HugeInt(text)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def number(value: Any, name: str) -> float:
    """A finite float, or an item problem."""
    if isinstance(value, HugeInt):
        raise ItemProblem(f"{name} is an integer of {value.digits} digits, far too large")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ItemProblem(f"{name} is not a number ({value!r:.40})")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise ItemProblem(f"{name} is not finite ({value!r})")
    return out


def size(value: Any, name: str) -> float:
    """A finite, non-negative float, or an item problem."""
    out = number(value, name)
    if out < 0:
        raise ItemProblem(f"{name} is negative ({out:g})")
    return out


def expect(path: Path, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it is of ``kind``; otherwise an AnnotationError naming ``path`` and ``what``."""
    if not isinstance(value, kind):
        raise AnnotationError(f"{path}: {what} must be a JSON {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return {dict: "object", list: "array", str: "string"}.get(kind, "value")  # type: ignore[call-overload]


def tag_list(values: Any) -> list[str]:
    """The sorted, distinct, non-empty texts of a tag list (strings or numbers); anything else is ignored."""
    if not isinstance(values, list):
        return []
    kept = [v for v in values if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    return sorted({text for text in (" ".join(str(v).split()) for v in kept) if text})
