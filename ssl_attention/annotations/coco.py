"""The reader of COCO detection JSON: pixel boxes per image (rescaled for resized copies), optional tags."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssl_attention.annotations.geometry import Box
from ssl_attention.annotations.parsing import Found, ItemProblem, expect, number, size, skip, tag_list
from ssl_attention.errors import AnnotationError
from ssl_attention.images import image_id as file_image_id
from ssl_attention.skips import Skip

# A COCO image whose stated size differs from the real one is rescaled when the aspect ratios agree
# within this relative tolerance (a resized copy); otherwise it is skipped (e.g. EXIF-rotated).
ASPECT_TOLERANCE = 0.01

# COCO image id -> (image id, x scale, y scale), or None for an image that is skipped
_Frames = dict[Any, "tuple[str, float, float] | None"]


def read_coco(path: Path, data: dict, image_sizes: Mapping[str, tuple[int, int]]) -> Found:
    """The boxes (in pixels, not yet clamped) and skipped items of a COCO file already parsed to ``data``."""
    images = expect(path, data["images"], list, "'images'")
    annotations = expect(path, data["annotations"], list, "'annotations'")
    categories = _coco_categories(path, data.get("categories", []))
    frames, skipped = _coco_frames(path, images, image_sizes)
    if images and not any(f is not None for f in frames.values()):
        raise AnnotationError(
            f"{path}: none of the {len(images)} images in the file is usable (first: {skipped[0].reason})"
        )
    found = Found(path, skipped=skipped)
    for a, ann in enumerate(annotations):
        expect(path, ann, dict, f"annotations[{a}]")
        if "image_id" not in ann or not _hashable(ann["image_id"]):
            raise AnnotationError(f"{path}: annotations[{a}] has no valid 'image_id'")
        if ann["image_id"] not in frames:
            raise AnnotationError(
                f"{path}: annotations[{a}] refers to image_id {ann['image_id']!r}, which is not in 'images'"
            )
        frame = frames[ann["image_id"]]
        if frame is None:
            continue  # the image was skipped (and reported) once, not once per box
        stem, sx, sy = frame
        found.add(stem, f"image {stem!r} annotation {a}", _coco_box, ann, categories, sx, sy)
    return found


def coco_tags(data: dict, image_sizes: Mapping[str, tuple[int, int]]) -> dict[str, list[str]]:
    """Image id -> the ``tags`` of its COCO image entry (not part of COCO; lets users group images)."""
    out: dict[str, list[str]] = {}
    for img in data["images"]:
        image_id = file_image_id(Path(img["file_name"]))
        found = tag_list(img.get("tags"))
        if image_id in image_sizes and found:
            out[image_id] = sorted({*out.get(image_id, []), *found})
    return out


def _hashable(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _coco_categories(path: Path, categories: Any) -> dict[Any, str]:
    expect(path, categories, list, "'categories'")
    out: dict[Any, str] = {}
    for c in categories:
        if isinstance(c, dict) and _hashable(c.get("id")):
            out[c["id"]] = str(c.get("name", c["id"]))
    return out


def _coco_frames(path: Path, images: list, image_sizes: Mapping[str, tuple[int, int]]) -> tuple[_Frames, list[Skip]]:
    """The frame of each COCO image id (None for an image that is skipped) and the skipped images.

    An id listed by more than one image is ambiguous: its boxes could belong to any of them, so all of
    them are skipped (one line naming the id and the file names).
    """
    frames: _Frames = {}
    skipped: list[Skip] = []
    names: dict[Any, list[str]] = {}
    for i, img in enumerate(images):
        expect(path, img, dict, f"images[{i}]")
        if not _hashable(img.get("id")) or not isinstance(img.get("file_name"), str):
            raise AnnotationError(f"{path}: images[{i}] needs an 'id' and a string 'file_name'")
        names.setdefault(img["id"], []).append(img["file_name"])
    for coco_id, files in names.items():
        if len(files) > 1:
            skipped.append(skip(
                path, f"image id {coco_id!r} is listed {len(files)} times ({', '.join(files)}); its boxes are skipped"
            ))
    for i, img in enumerate(images):
        if len(names[img["id"]]) > 1:
            frames[img["id"]] = None
            continue
        stem = file_image_id(Path(img["file_name"]))  # the same id the image files get
        try:
            frames[img["id"]] = _coco_frame(stem, img, image_sizes)
        except ItemProblem as exc:
            skipped.append(skip(path, f"images[{i}] ({img['file_name']}): {exc}; its boxes are skipped"))
            frames[img["id"]] = None
    return frames, skipped


def _coco_frame(stem: str, img: dict, image_sizes: Mapping[str, tuple[int, int]]) -> tuple[str, float, float]:
    if stem not in image_sizes:
        raise ItemProblem("not in the image set")
    width, height = image_sizes[stem]
    if "width" not in img and "height" not in img:
        return stem, 1.0, 1.0
    fw, fh = size(img.get("width"), "width"), size(img.get("height"), "height")
    if fw <= 0 or fh <= 0:
        raise ItemProblem(f"stated size {fw:g}x{fh:g} is empty")
    if (fw, fh) == (width, height):
        return stem, 1.0, 1.0
    if abs((fw / fh) / (width / height) - 1) > ASPECT_TOLERANCE:
        raise ItemProblem(
            f"stated size {fw:g}x{fh:g} does not match the image ({width}x{height}; EXIF rotation?)"
        )
    return stem, width / fw, height / fh


def _coco_box(ann: dict, categories: dict[Any, str], sx: float, sy: float) -> Box:
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise ItemProblem("'bbox' is not a list [x, y, w, h]")
    x, y = number(bbox[0], "x"), number(bbox[1], "y")
    w, h = size(bbox[2], "w"), size(bbox[3], "h")
    cat = ann.get("category_id", "")
    label = categories.get(cat, str(cat)) if _hashable(cat) else str(cat)
    return Box(x * sx, y * sy, w * sx, h * sy, label)
