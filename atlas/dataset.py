"""Stage 1 of a build: find and decode the images, read their boxes, write display copies."""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from atlas.atomic import write_bytes_atomic
from atlas.manifest import ImageEntry
from atlas.resources import sample_dir
from ssl_attention.annotations import Box, load_annotations
from ssl_attention.errors import AnnotationError, AtlasError
from ssl_attention.images import IMAGE_EXTENSIONS, ImageFolder, decode_image, image_id, scan_images

DISPLAY_MAX_SIDE = 1024


@dataclass(frozen=True)
class ImageRecord:
    """One usable image: its id, source file, size as seen (after EXIF), boxes and tags."""

    id: str
    path: Path
    width: int
    height: int
    sha256: str
    boxes: tuple[Box, ...] = ()
    tags: tuple[str, ...] = ()  # WikiChurches styles or COCO image tags, for filtering the gallery

    def manifest_entry(self) -> ImageEntry:
        """The image's entry in ``maps/manifest.json``."""
        return ImageEntry(id=self.id, file=self.path.name, width=self.width, height=self.height,
                          display=f"images/{self.id}.jpg", boxes=self.boxes, tags=self.tags)


@dataclass
class Dataset:
    """The images of a build and what was skipped (one line each)."""

    images: list[ImageRecord]
    skipped: list[str] = field(default_factory=list)


def sample_paths() -> tuple[Path, Path]:
    """The bundled sample dataset: (images folder, COCO annotations file)."""
    return sample_dir() / "images", sample_dir() / "annotations.json"


def load_dataset(images_dir: Path, annotations: Path | None, out_dir: Path) -> Dataset:
    """Decode every image of ``images_dir`` (skipping bad ones), attach boxes, write ``out_dir/images``."""
    display_dir = out_dir / "images"
    display_dir.mkdir(parents=True, exist_ok=True)
    records: list[ImageRecord] = []
    skipped: list[str] = []
    seen: dict[str, Path] = {}
    folder = scan_images(images_dir)
    skipped.extend(folder.skipped)
    refused: list[str] = []
    for path in folder.images:
        ident = image_id(path)
        if ident in seen:
            refused.append(f"{path}: duplicate image id {ident!r} (also {seen[ident].name}); skipped")
            continue
        try:
            decoded = decode_image(path)
        except AtlasError as exc:
            refused.append(str(exc))
            continue
        seen[ident] = path
        _write_display_copy(decoded.image, display_dir / f"{ident}.jpg")
        records.append(ImageRecord(ident, path, decoded.width, decoded.height, _sha256(path)))
    skipped.extend(refused)
    if not records:
        raise AtlasError(f"{images_dir}: no usable images found: {_why_no_images(images_dir, folder, refused)}")
    if annotations is not None:
        records = _attach_boxes(records, annotations, skipped)
    return Dataset(records, skipped)


def _why_no_images(images_dir: Path, folder: ImageFolder, refused: list[str]) -> str:
    """What the folder held instead: '12 entries, none is a usable image: 10 not images, 2 refused (first: ...)'."""
    entries = len(folder.images) + folder.others + folder.subfolders + len(folder.skipped)
    if not entries:
        return "the folder is empty"
    parts = []
    if folder.others:
        parts.append(f"{folder.others} not images (extension not one of {', '.join(sorted(IMAGE_EXTENSIONS))})")
    if refused:
        parts.append(f"{len(refused)} refused (first: {refused[0].removeprefix(f'{images_dir}{os.sep}')})")
    if folder.skipped:
        parts.append(f"{len(folder.skipped)} not regular files (first: {folder.skipped[0]})")
    if folder.subfolders:
        parts.append(f"{folder.subfolders} subfolders (not searched: images are read from the folder itself)")
    return f"{entries} entries, none is a usable image: {', '.join(parts)}"


def _attach_boxes(records: list[ImageRecord], annotations: Path, skipped: list[str]) -> list[ImageRecord]:
    sizes = {r.id: (r.width, r.height) for r in records}
    tags: dict[str, list[str]] = {}
    try:
        boxes = load_annotations(annotations, sizes, report=skipped, tags=tags)
    except AnnotationError as exc:  # the whole file is unusable: build without boxes, say so
        skipped.append(f"{exc}; building without boxes")
        return records
    return [
        ImageRecord(r.id, r.path, r.width, r.height, r.sha256, tuple(boxes.get(r.id, ())), tuple(tags.get(r.id, ())))
        for r in records
    ]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_display_copy(image: Image.Image, target: Path) -> None:
    copy = image.copy()
    copy.thumbnail((DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    copy.save(buffer, format="JPEG", quality=90, optimize=True)
    write_bytes_atomic(target, buffer.getvalue())
