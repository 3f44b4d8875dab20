"""Expert boxes: readers for COCO detection JSON and WikiChurches ``building_parts.json``.

Every box is returned in the pixels of the image *as the user sees it* (after EXIF orientation),
``x, y`` = top-left corner, clamped to the image. Two kinds of bad input are distinguished:

* problems of the whole file (unreadable, not JSON, unknown format, missing or mistyped top-level
  keys, a COCO annotation pointing at an image the file does not list, no usable box at all although
  the file has boxes) raise :class:`~ssl_attention.errors.AnnotationError` with one line naming the file;
* problems confined to one box or one image (a non-numeric, NaN/inf or negative coordinate, an integer
  too long for Python to convert (over about 4300 digits), relative coordinates far outside ``[0, 1]``,
  a box that is empty after clamping, an image id that is not in the image set, a COCO image whose
  stated size does not match the real one, a COCO image id listed by more than one image) skip that item. Each skipped
  item is described by one line appended to the ``report`` list passed to :func:`load_annotations`,
  so that a build can list what was left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ssl_attention.errors import AnnotationError
from ssl_attention.images import image_id as file_image_id

# Relative (WikiChurches) coordinates may overshoot [0, 1] by this much; they are then clamped.
# Farther out a box is skipped as "out of range" (such values are usually pixels, not fractions).
RELATIVE_TOLERANCE = 0.1
# A COCO image whose stated size differs from the real one is rescaled when the aspect ratios agree
# within this relative tolerance (a resized copy); otherwise it is skipped (e.g. EXIF-rotated).
ASPECT_TOLERANCE = 0.01


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in image pixels: top-left ``(x, y)``, size ``w x h``, and its label."""

    x: float
    y: float
    w: float
    h: float
    label: str

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """COCO-style ``(x, y, w, h)``."""
        return self.x, self.y, self.w, self.h

    @property
    def x2(self) -> float:
        """Right edge (exclusive)."""
        return self.x + self.w

    @property
    def y2(self) -> float:
        """Bottom edge (exclusive)."""
        return self.y + self.h

    @property
    def area(self) -> float:
        """Area in square pixels."""
        return self.w * self.h


class _ItemProblem(Exception):
    """A problem confined to one box or image: the item is skipped and reported."""


# ----------------------------------------------------------------------------- geometry helpers


def clamp_box(box: Box, width: float, height: float) -> Box:
    """Clip ``box`` to the image ``[0, width] x [0, height]``; the result may have zero area."""
    x1, y1 = min(max(box.x, 0.0), width), min(max(box.y, 0.0), height)
    x2, y2 = min(max(box.x2, 0.0), width), min(max(box.y2, 0.0), height)
    return replace(box, x=x1, y=y1, w=max(x2 - x1, 0.0), h=max(y2 - y1, 0.0))


def rescale_boxes(
    boxes: Sequence[Box], from_size: tuple[float, float], to_size: tuple[float, float]
) -> list[Box]:
    """Map boxes from an image of ``from_size = (width, height)`` to a resized copy of ``to_size``.

    The whole image is resized (never cropped), so x scales by ``to_w / from_w`` and y by
    ``to_h / from_h`` (aspect ratio may change, e.g. 640x480 -> 224x224).
    """
    (fw, fh), (tw, th) = from_size, to_size
    if min(fw, fh, tw, th) <= 0:
        raise ValueError(f"sizes must be positive, got {from_size} -> {to_size}")
    sx, sy = tw / fw, th / fh
    return [replace(b, x=b.x * sx, y=b.y * sy, w=b.w * sx, h=b.h * sy) for b in boxes]


def box_mask(boxes: Sequence[Box], width: int, height: int) -> np.ndarray:
    """Rasterise the union of ``boxes`` on a ``[height, width]`` boolean pixel grid.

    Pixel-centre sampling: pixel ``(i, j)`` (row ``i``, column ``j``) is inside a box when its centre
    ``(j + 0.5, i + 0.5)`` satisfies ``x <= j + 0.5 < x + w`` and ``y <= i + 0.5 < y + h``
    (half-open, so two boxes sharing an edge never both claim a pixel row). Boxes partly outside the
    grid are clipped; an empty list gives an all-False mask.
    """
    mask = np.zeros((height, width), dtype=bool)
    for b in boxes:
        c0, c1 = _centre_span(b.x, b.x2, width)
        r0, r1 = _centre_span(b.y, b.y2, height)
        mask[r0:r1, c0:c1] = True
    return mask


def _centre_span(lo: float, hi: float, n: int) -> tuple[int, int]:
    """Indices ``[a, b)`` of the pixels whose centre ``k + 0.5`` is in ``[lo, hi)``, clipped to ``[0, n)``."""
    a = math.ceil(lo - 0.5)
    b = math.ceil(hi - 0.5)
    return min(max(a, 0), n), min(max(b, 0), n)


# ----------------------------------------------------------------------------- reading


def load_annotations(
    path: Path,
    image_sizes: Mapping[str, tuple[int, int]],
    *,
    report: list[str] | None = None,
    tags: dict[str, list[str]] | None = None,
) -> dict[str, list[Box]]:
    """Read boxes from a COCO detection JSON or a WikiChurches ``building_parts.json``.

    ``image_sizes`` maps image id (the file stem) to ``(width, height)`` after EXIF orientation.
    The format is detected from the top-level keys (``images`` + ``annotations`` -> COCO;
    ``annotations`` mapping image ids to objects with ``bbox_groups`` -> WikiChurches).
    Returns a dict with one entry per id of ``image_sizes`` (an empty list for images without
    boxes), boxes clamped to the image. Skipped items are described, one line each, in ``report``
    (when given). ``tags`` (when given) receives each image's sorted tags: WikiChurches ``styles``,
    or a COCO image's optional ``tags`` list (an extension of COCO). Raises :class:`AnnotationError`
    for file-level problems (see the module doc).
    """
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, dict) and "images" in data and "annotations" in data:
        reader = _read_coco
    elif isinstance(data, dict) and "annotations" in data:
        reader = _read_wikichurches
    else:
        raise AnnotationError(
            f"{path}: unknown annotation format (expected COCO 'images'+'annotations' "
            "or WikiChurches 'annotations' with 'bbox_groups')"
        )
    for ident, size in image_sizes.items():
        if not (len(size) == 2 and size[0] > 0 and size[1] > 0):
            raise ValueError(f"image {ident!r} has an invalid size {size!r}")
    skipped: list[str] = []
    raw = reader(path, data, image_sizes, skipped)
    boxes = _finalise(path, raw, image_sizes, skipped)
    if report is not None:
        report.extend(skipped)
    if tags is not None:
        tags.update(_coco_tags(data, image_sizes) if reader is _read_coco else _wikichurches_tags(data, image_sizes))
    return boxes


def _tag_list(values: Any) -> list[str]:
    """The sorted, distinct, non-empty texts of a tag list (strings or numbers); anything else is ignored."""
    if not isinstance(values, list):
        return []
    kept = [v for v in values if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    return sorted({text for text in (" ".join(str(v).split()) for v in kept) if text})


def _wikichurches_tags(data: dict, image_sizes: Mapping[str, tuple[int, int]]) -> dict[str, list[str]]:
    """Image id -> its ``styles`` (read after the boxes, so the file's structure is already checked)."""
    out: dict[str, list[str]] = {}
    for key, entry in data["annotations"].items():
        image_id = _wikichurches_id(key, image_sizes)
        styles = _tag_list(entry.get("styles")) if isinstance(entry, dict) else []
        if image_id is not None and styles:
            out[image_id] = styles
    return out


def _coco_tags(data: dict, image_sizes: Mapping[str, tuple[int, int]]) -> dict[str, list[str]]:
    """Image id -> the ``tags`` of its COCO image entry (not part of COCO; lets users group images)."""
    out: dict[str, list[str]] = {}
    for img in data["images"]:
        image_id = file_image_id(Path(img["file_name"]))
        found = _tag_list(img.get("tags"))
        if image_id in image_sizes and found:
            out[image_id] = sorted({*out.get(image_id, []), *found})
    return out


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read annotation file ({_one_line(exc)})") from None
    try:
        return json.loads(text, parse_int=_parse_int)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise AnnotationError(f"{path}: not valid JSON ({_one_line(exc)})") from None


class _HugeInt:
    """A JSON integer too long for Python's int-string conversion limit (about 4300 digits)."""

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"<integer of {self.digits} digits>"


def _parse_int(text: str) -> int | _HugeInt:
    """``int(text)``, or a :class:`_HugeInt` that each reader then reports as one skipped item."""
    try:
        return int(text)
    except ValueError:  # longer than sys.get_int_max_str_digits()
        return _HugeInt(text)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# A candidate box before clamping: (image id, box in image pixels or None if it was skipped, where).
_Candidate = tuple[str, "Box | None", str]


def _finalise(
    path: Path, raw: list[_Candidate], image_sizes: Mapping[str, tuple[int, int]], skipped: list[str]
) -> dict[str, list[Box]]:
    """Clamp candidates to their image, drop degenerate ones, fail if nothing usable remained."""
    out: dict[str, list[Box]] = {image_id: [] for image_id in image_sizes}
    for image_id, box, where in raw:
        if box is None:
            continue  # already reported by the reader
        width, height = image_sizes[image_id]
        clamped = clamp_box(box, width, height)
        if clamped.w <= 0 or clamped.h <= 0:
            skipped.append(f"{where}: box is empty after clamping to the {width}x{height} image")
            continue
        out[image_id].append(clamped)
    if raw and not any(out.values()):
        raise AnnotationError(f"no usable box among the {len(raw)} in the file; last problem: {skipped[-1]}")
    return out


def _number(value: Any, name: str) -> float:
    """A finite float, or an item problem."""
    if isinstance(value, _HugeInt):
        raise _ItemProblem(f"{name} is an integer of {value.digits} digits, far too large")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _ItemProblem(f"{name} is not a number ({value!r:.40})")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise _ItemProblem(f"{name} is not finite ({value!r})")
    return out


def _size(value: Any, name: str) -> float:
    out = _number(value, name)
    if out < 0:
        raise _ItemProblem(f"{name} is negative ({out:g})")
    return out


def _expect(path: Path, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind):
        raise AnnotationError(f"{path}: {what} must be a JSON {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return {dict: "object", list: "array", str: "string"}.get(kind, "value")  # type: ignore[call-overload]


# ----------------------------------------------------------------------------- WikiChurches


def _read_wikichurches(
    path: Path, data: dict, image_sizes: Mapping[str, tuple[int, int]], skipped: list[str]
) -> list[_Candidate]:
    annotations = _expect(path, data["annotations"], dict, "'annotations'")
    names = _meta_names(path, data.get("meta", []))
    out: list[_Candidate] = []
    matched = 0
    for key, entry in annotations.items():
        image_id = _wikichurches_id(key, image_sizes)
        if image_id is None:
            skipped.append(f"{path}: image {key!r} is not in the image set; its boxes are skipped")
            continue
        matched += 1
        width, height = image_sizes[image_id]
        groups = _expect(path, entry, dict, f"annotations[{image_id!r}]").get("bbox_groups", [])
        _expect(path, groups, list, f"annotations[{image_id!r}]['bbox_groups']")
        for g, group in enumerate(groups):
            elements = _expect(path, group, dict, f"{image_id!r} bbox group {g}").get("elements", [])
            _expect(path, elements, list, f"{image_id!r} bbox group {g} 'elements'")
            for e, element in enumerate(elements):
                where = f"{path}: image {image_id!r} group {g} element {e}"
                box = _item(_relative_box, where, skipped, element, names, width, height)
                out.append((image_id, box, where))
    if annotations and not matched:
        raise AnnotationError(f"{path}: none of the {len(annotations)} annotated images is in the image set")
    return out


def _item(read: Any, where: str, skipped: list[str], *args: Any) -> Box | None:
    """``read(*args)``, or None (and one line in ``skipped``) when the item has a problem."""
    try:
        return read(*args)
    except _ItemProblem as exc:
        skipped.append(f"{where}: {exc}; box skipped")
        return None


def _meta_names(path: Path, meta: Any) -> list[str]:
    _expect(path, meta, list, "'meta'")
    return [str(m.get("name", i)) if isinstance(m, dict) else str(m) for i, m in enumerate(meta)]


def _relative_box(element: Any, names: list[str], width: int, height: int) -> Box:
    """Relative ``left/top/width/height`` in [0, 1] -> a box in pixels (not yet clamped)."""
    if not isinstance(element, dict):
        raise _ItemProblem("element is not an object")
    try:
        left, top = _number(element["left"], "left"), _number(element["top"], "top")
        w, h = _size(element["width"], "width"), _size(element["height"], "height")
    except KeyError as exc:
        raise _ItemProblem(f"missing key {exc}") from None
    for name, value in (("left", left), ("top", top), ("left+width", left + w), ("top+height", top + h)):
        if not -RELATIVE_TOLERANCE <= value <= 1 + RELATIVE_TOLERANCE:
            raise _ItemProblem(f"relative coordinate {name}={value:g} is outside [0, 1]")
    label = _label(element.get("label", ""), names)
    return Box(left * width, top * height, w * width, h * height, label)


def _label(value: Any, names: list[str]) -> str:
    """A label given as an index into ``meta`` or as a name."""
    if isinstance(value, int) and not isinstance(value, bool):
        return names[value] if 0 <= value < len(names) else str(value)
    if isinstance(value, str):
        return value
    raise _ItemProblem(f"label is neither an index nor a name ({value!r:.40})")


def _wikichurches_id(key: str, image_sizes: Mapping[str, tuple[int, int]]) -> str | None:
    """The image id a WikiChurches key names: the key itself, or the id its file name gets (``image_id``)."""
    if key in image_sizes:
        return key
    derived = file_image_id(Path(key)) if key else None
    return derived if derived in image_sizes else None


# ----------------------------------------------------------------------------- COCO


def _read_coco(
    path: Path, data: dict, image_sizes: Mapping[str, tuple[int, int]], skipped: list[str]
) -> list[_Candidate]:
    images = _expect(path, data["images"], list, "'images'")
    annotations = _expect(path, data["annotations"], list, "'annotations'")
    categories = _coco_categories(path, data.get("categories", []))
    reported = len(skipped)
    frames = _coco_frames(path, images, image_sizes, skipped)  # coco image id -> (stem, sx, sy) or None
    if images and not any(f is not None for f in frames.values()):
        first = skipped[reported].removeprefix(f"{path}: ")
        raise AnnotationError(f"{path}: none of the {len(images)} images in the file is usable (first: {first})")
    out: list[_Candidate] = []
    for a, ann in enumerate(annotations):
        _expect(path, ann, dict, f"annotations[{a}]")
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
        where = f"{path}: image {stem!r} annotation {a}"
        out.append((stem, _item(_coco_box, where, skipped, ann, categories, sx, sy), where))
    return out


def _hashable(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _coco_categories(path: Path, categories: Any) -> dict[Any, str]:
    _expect(path, categories, list, "'categories'")
    out: dict[Any, str] = {}
    for c in categories:
        if isinstance(c, dict) and _hashable(c.get("id")):
            out[c["id"]] = str(c.get("name", c["id"]))
    return out


def _coco_frames(
    path: Path, images: list, image_sizes: Mapping[str, tuple[int, int]], skipped: list[str]
) -> dict[Any, tuple[str, float, float] | None]:
    """COCO image id -> (image id, x scale, y scale), or None for an image that is skipped.

    An id listed by more than one image is ambiguous: its boxes could belong to any of them, so all of
    them are skipped (one line naming the id and the file names).
    """
    frames: dict[Any, tuple[str, float, float] | None] = {}
    names: dict[Any, list[str]] = {}
    for i, img in enumerate(images):
        _expect(path, img, dict, f"images[{i}]")
        if not _hashable(img.get("id")) or not isinstance(img.get("file_name"), str):
            raise AnnotationError(f"{path}: images[{i}] needs an 'id' and a string 'file_name'")
        names.setdefault(img["id"], []).append(img["file_name"])
    for coco_id, files in names.items():
        if len(files) > 1:
            skipped.append(
                f"{path}: image id {coco_id!r} is listed {len(files)} times ({', '.join(files)}); "
                "its boxes are skipped"
            )
    for i, img in enumerate(images):
        if len(names[img["id"]]) > 1:
            frames[img["id"]] = None
            continue
        stem = file_image_id(Path(img["file_name"]))  # the same id the image files get
        try:
            frames[img["id"]] = _coco_frame(stem, img, image_sizes)
        except _ItemProblem as exc:
            skipped.append(f"{path}: images[{i}] ({img['file_name']}): {exc}; its boxes are skipped")
            frames[img["id"]] = None
    return frames


def _coco_frame(stem: str, img: dict, image_sizes: Mapping[str, tuple[int, int]]) -> tuple[str, float, float]:
    if stem not in image_sizes:
        raise _ItemProblem("not in the image set")
    width, height = image_sizes[stem]
    if "width" not in img and "height" not in img:
        return stem, 1.0, 1.0
    fw, fh = _size(img.get("width"), "width"), _size(img.get("height"), "height")
    if fw <= 0 or fh <= 0:
        raise _ItemProblem(f"stated size {fw:g}x{fh:g} is empty")
    if (fw, fh) == (width, height):
        return stem, 1.0, 1.0
    if abs((fw / fh) / (width / height) - 1) > ASPECT_TOLERANCE:
        raise _ItemProblem(
            f"stated size {fw:g}x{fh:g} does not match the image ({width}x{height}; EXIF rotation?)"
        )
    return stem, width / fw, height / fh


def _coco_box(ann: dict, categories: dict[Any, str], sx: float, sy: float) -> Box:
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise _ItemProblem("'bbox' is not a list [x, y, w, h]")
    x, y = _number(bbox[0], "x"), _number(bbox[1], "y")
    w, h = _size(bbox[2], "w"), _size(bbox[3], "h")
    cat = ann.get("category_id", "")
    label = categories.get(cat, str(cat)) if _hashable(cat) else str(cat)
    return Box(x * sx, y * sy, w * sx, h * sy, label)
