"""Reading an annotation file: detect its format, read its boxes and tags, clamp the boxes to the images."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ssl_attention.annotations.coco import coco_tags, read_coco
from ssl_attention.annotations.geometry import Box, clamp_box
from ssl_attention.annotations.parsing import Found, read_json, skip
from ssl_attention.annotations.wikichurches import read_wikichurches, wikichurches_tags
from ssl_attention.errors import AnnotationError
from ssl_attention.skips import Skip


@dataclass(frozen=True)
class Annotations:
    """What an annotation file says about an image set: boxes and tags per image id, and what was skipped."""

    boxes: dict[str, list[Box]]  # one entry per image id (an empty list for images without boxes)
    tags: dict[str, list[str]]  # image id -> its sorted tags (only images that have some)
    skipped: list[Skip]  # stage "annotations", one per skipped box or image, in file order


def read_annotations(path: Path, image_sizes: Mapping[str, tuple[int, int]]) -> Annotations:
    """Read boxes and tags from a COCO detection JSON or a WikiChurches ``building_parts.json``.

    ``image_sizes`` maps image id (the file stem) to ``(width, height)`` after EXIF orientation.
    The format is detected from the top-level keys (``images`` + ``annotations`` -> COCO;
    ``annotations`` mapping image ids to objects with ``bbox_groups`` -> WikiChurches).
    ``boxes`` has one entry per id of ``image_sizes`` (an empty list for images without boxes),
    boxes clamped to the image; ``tags`` holds each image's sorted tags: WikiChurches ``styles``, or
    a COCO image's optional ``tags`` list (an extension of COCO); ``skipped`` lists the skipped
    items. Raises :class:`AnnotationError` for file-level problems (see the package doc).
    """
    path = Path(path)
    data = read_json(path)
    if isinstance(data, dict) and "images" in data and "annotations" in data:
        read, tags_of = read_coco, coco_tags
    elif isinstance(data, dict) and "annotations" in data:
        read, tags_of = read_wikichurches, wikichurches_tags
    else:
        raise AnnotationError(
            f"{path}: unknown annotation format (expected COCO 'images'+'annotations' "
            "or WikiChurches 'annotations' with 'bbox_groups')"
        )
    for ident, size in image_sizes.items():
        if not (len(size) == 2 and size[0] > 0 and size[1] > 0):
            raise ValueError(f"image {ident!r} has an invalid size {size!r}")
    boxes, skipped = _clamped(read(path, data, image_sizes), image_sizes)
    return Annotations(boxes, tags_of(data, image_sizes), skipped)


def load_annotations(
    path: Path,
    image_sizes: Mapping[str, tuple[int, int]],
    *,
    report: list[str] | None = None,
    tags: dict[str, list[str]] | None = None,
) -> dict[str, list[Box]]:
    """The boxes of :func:`read_annotations`: a compatibility wrapper kept for the library's public API.

    Skipped items are appended, one line each (``Skip.line``), to ``report`` (when given); ``tags``
    (when given) is updated with each image's sorted tags. New code calls :func:`read_annotations`.
    """
    found = read_annotations(path, image_sizes)
    if report is not None:
        report.extend(s.line for s in found.skipped)
    if tags is not None:
        tags.update(found.tags)
    return found.boxes


def _clamped(found: Found, image_sizes: Mapping[str, tuple[int, int]]) -> tuple[dict[str, list[Box]], list[Skip]]:
    """Clamp the candidates to their image, drop degenerate ones, fail if nothing usable remained.

    Returns the boxes per image id and every skip: the reader's, then one per box empty after clamping.
    """
    out: dict[str, list[Box]] = {image_id: [] for image_id in image_sizes}
    skipped = list(found.skipped)
    for image_id, box, where in found.boxes:
        if box is None:
            continue  # already reported by the reader
        width, height = image_sizes[image_id]
        clamped = clamp_box(box, width, height)
        if clamped.w <= 0 or clamped.h <= 0:
            skipped.append(skip(found.path, f"{where}: box is empty after clamping to the {width}x{height} image"))
            continue
        out[image_id].append(clamped)
    if found.boxes and not any(out.values()):
        raise AnnotationError(
            f"no usable box among the {len(found.boxes)} in the file; last problem: {skipped[-1].line}"
        )
    return out, skipped
