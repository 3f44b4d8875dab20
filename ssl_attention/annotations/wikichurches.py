"""The reader of WikiChurches ``building_parts.json``: relative boxes per image, ``styles`` as tags."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssl_attention.annotations.geometry import Box
from ssl_attention.annotations.parsing import Found, ItemProblem, expect, number, size, skip, tag_list
from ssl_attention.errors import AnnotationError
from ssl_attention.images import image_id as file_image_id

# Relative (WikiChurches) coordinates may overshoot [0, 1] by this much; they are then clamped.
# Farther out a box is skipped as "out of range" (such values are usually pixels, not fractions).
RELATIVE_TOLERANCE = 0.1


def read_wikichurches(path: Path, data: dict, image_sizes: Mapping[str, tuple[int, int]]) -> Found:
    """The boxes (in pixels, not yet clamped) and skipped items of a WikiChurches file already parsed to ``data``."""
    annotations = expect(path, data["annotations"], dict, "'annotations'")
    names = _meta_names(path, data.get("meta", []))
    found = Found(path)
    matched = 0
    for key, entry in annotations.items():
        image_id = _wikichurches_id(key, image_sizes)
        if image_id is None:
            found.skipped.append(skip(path, f"image {key!r} is not in the image set; its boxes are skipped"))
            continue
        matched += 1
        width, height = image_sizes[image_id]
        groups = expect(path, entry, dict, f"annotations[{image_id!r}]").get("bbox_groups", [])
        expect(path, groups, list, f"annotations[{image_id!r}]['bbox_groups']")
        for g, group in enumerate(groups):
            elements = expect(path, group, dict, f"{image_id!r} bbox group {g}").get("elements", [])
            expect(path, elements, list, f"{image_id!r} bbox group {g} 'elements'")
            for e, element in enumerate(elements):
                where = f"image {image_id!r} group {g} element {e}"
                found.add(image_id, where, _relative_box, element, names, width, height)
    if annotations and not matched:
        raise AnnotationError(f"{path}: none of the {len(annotations)} annotated images is in the image set")
    return found


def wikichurches_tags(data: dict, image_sizes: Mapping[str, tuple[int, int]]) -> dict[str, list[str]]:
    """Image id -> its ``styles`` (read after the boxes, so the file's structure is already checked)."""
    out: dict[str, list[str]] = {}
    for key, entry in data["annotations"].items():
        image_id = _wikichurches_id(key, image_sizes)
        styles = tag_list(entry.get("styles")) if isinstance(entry, dict) else []
        if image_id is not None and styles:
            out[image_id] = styles
    return out


def _meta_names(path: Path, meta: Any) -> list[str]:
    expect(path, meta, list, "'meta'")
    return [str(m.get("name", i)) if isinstance(m, dict) else str(m) for i, m in enumerate(meta)]


def _relative_box(element: Any, names: list[str], width: int, height: int) -> Box:
    """Relative ``left/top/width/height`` in [0, 1] -> a box in pixels (not yet clamped)."""
    if not isinstance(element, dict):
        raise ItemProblem("element is not an object")
    try:
        left, top = number(element["left"], "left"), number(element["top"], "top")
        w, h = size(element["width"], "width"), size(element["height"], "height")
    except KeyError as exc:
        raise ItemProblem(f"missing key {exc}") from None
    for name, value in (("left", left), ("top", top), ("left+width", left + w), ("top+height", top + h)):
        if not -RELATIVE_TOLERANCE <= value <= 1 + RELATIVE_TOLERANCE:
            raise ItemProblem(f"relative coordinate {name}={value:g} is outside [0, 1]")
    label = _label(element.get("label", ""), names)
    return Box(left * width, top * height, w * width, h * height, label)


def _label(value: Any, names: list[str]) -> str:
    """A label given as an index into ``meta`` or as a name."""
    if isinstance(value, int) and not isinstance(value, bool):
        return names[value] if 0 <= value < len(names) else str(value)
    if isinstance(value, str):
        return value
    raise ItemProblem(f"label is neither an index nor a name ({value!r:.40})")


def _wikichurches_id(key: str, image_sizes: Mapping[str, tuple[int, int]]) -> str | None:
    """The image id a WikiChurches key names: the key itself, or the id its file name gets (``image_id``)."""
    if key in image_sizes:
        return key
    derived = file_image_id(Path(key)) if key else None
    return derived if derived in image_sizes else None
