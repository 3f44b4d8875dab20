"""The dataset stage of a build: find and decode the images, read their boxes, write display copies."""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from atlas.core.atomic import write_bytes_atomic
from atlas.core.manifest import ImageEntry
from atlas.core.resources import sample_dir
from ssl_attention.annotations import Box, read_annotations
from ssl_attention.errors import AnnotationError, AtlasError, readable
from ssl_attention.images import IMAGE_EXTENSIONS, ImageFolder, decode_image, image_id, scan_images
from ssl_attention.skips import Skip

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
        return ImageEntry(id=self.id, file=readable(self.path.name), width=self.width, height=self.height,
                          display=f"images/{self.id}.jpg", boxes=self.boxes, tags=self.tags)


@dataclass
class Dataset:
    """The images of a build and what was skipped (stages "images" and "annotations")."""

    images: list[ImageRecord]
    skipped: list[Skip] = field(default_factory=list)


def sample_paths() -> tuple[Path, Path]:
    """The bundled sample dataset: (images folder, COCO annotations file)."""
    return sample_dir() / "images", sample_dir() / "annotations.json"


def load_dataset(images_dir: Path, annotations: Path | None, out_dir: Path) -> Dataset:
    """Decode every image of ``images_dir`` (skipping bad ones), attach boxes, write ``out_dir/images``."""
    display_dir = out_dir / "images"
    display_dir.mkdir(parents=True, exist_ok=True)
    folder = scan_images(images_dir)
    records, refused = _decode_images(folder.images, display_dir)
    if not records:
        raise AtlasError(f"{images_dir}: no usable images found: {_why_no_images(images_dir, folder, refused)}")
    _remove_stale_display_copies(display_dir, {r.id for r in records})
    skipped = [*folder.skipped, *refused]
    if annotations is not None:
        records, box_skips = _attach_boxes(records, annotations)
        skipped.extend(box_skips)
    return Dataset(records, skipped)


def _remove_stale_display_copies(display_dir: Path, ids: set[str]) -> None:
    """Remove the display copies of images no longer in the build (``OUT/images`` is the build's own)."""
    for copy in display_dir.glob("*.jpg"):
        if copy.stem not in ids:
            copy.unlink()


def _decode_images(paths: list[Path], display_dir: Path) -> tuple[list[ImageRecord], list[Skip]]:
    """Decode each image and write its display copy: the usable images, and the refused ones (stage "images")."""
    records: list[ImageRecord] = []
    refused: list[Skip] = []
    seen: dict[str, Path] = {}
    for path in paths:
        ident = image_id(path)
        if ident in seen:
            reason = f"duplicate image id {ident!r} (also {seen[ident].name}); skipped"
            refused.append(Skip("images", str(path), reason))
            continue
        try:
            decoded = decode_image(path)
        except AtlasError as exc:
            refused.append(Skip.from_error("images", str(exc)))
            continue
        seen[ident] = path
        write_display_copy(decoded.image, display_dir / f"{ident}.jpg")
        records.append(ImageRecord(ident, path, decoded.width, decoded.height, _sha256(path)))
    return records, refused


def _why_no_images(images_dir: Path, folder: ImageFolder, refused: list[Skip]) -> str:
    """What the folder held instead: '12 entries, none is a usable image: 10 not images, 2 refused (first: ...)'."""
    entries = len(folder.images) + folder.others + folder.subfolders + len(folder.skipped)
    if not entries:
        return "the folder is empty"
    parts = []
    if folder.others:
        parts.append(f"{folder.others} not images (extension not one of {', '.join(sorted(IMAGE_EXTENSIONS))})")
    if refused:
        parts.append(f"{len(refused)} refused (first: {refused[0].line.removeprefix(f'{images_dir}{os.sep}')})")
    if folder.skipped:
        parts.append(f"{len(folder.skipped)} not regular files (first: {folder.skipped[0].line})")
    if folder.subfolders:
        parts.append(f"{folder.subfolders} subfolders (not searched: images are read from the folder itself)")
    return f"{entries} entries, none is a usable image: {', '.join(parts)}"


def _attach_boxes(records: list[ImageRecord], annotations: Path) -> tuple[list[ImageRecord], list[Skip]]:
    """The records with their boxes and tags, and what was skipped (stage "annotations")."""
    sizes = {r.id: (r.width, r.height) for r in records}
    try:
        found = read_annotations(annotations, sizes)
    except AnnotationError as exc:  # the whole file is unusable: build without boxes, say so
        return records, [Skip.from_error("annotations", f"{exc}; building without boxes")]
    boxed = [replace(r, boxes=tuple(found.boxes.get(r.id, ())), tags=tuple(found.tags.get(r.id, ()))) for r in records]
    return boxed, found.skipped


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_display_copy(image: Image.Image, target: Path) -> None:
    """The copy of an image the site shows: at most ``DISPLAY_MAX_SIDE`` px, JPEG (written atomically)."""
    copy = image.copy()
    copy.thumbnail((DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    copy.save(buffer, format="JPEG", quality=90, optimize=True)
    write_bytes_atomic(target, buffer.getvalue())
