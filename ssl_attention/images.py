"""Finding and decoding images: EXIF orientation applied, always RGB."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ssl_attention.errors import ImageError, first_line

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def image_id(path: Path) -> str:
    """The id of an image: its file stem, with characters outside ``[A-Za-z0-9._-]`` replaced by ``_``."""
    cleaned = _ID_UNSAFE.sub("_", path.stem).strip("._")
    return cleaned or "image"


def list_images(folder: Path) -> list[Path]:
    """All image files directly in ``folder`` (by extension), sorted by name."""
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a directory of images")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def load_image(path: Path) -> Image.Image:
    """Decode ``path`` fully into an RGB image as the user sees it (EXIF rotation applied).

    Transparent images are composited onto white; 16-bit and greyscale images are scaled to 8-bit RGB.
    Raises ImageError with one line naming the file when it cannot be decoded.
    """
    try:
        with Image.open(path) as img:
            img.load()
            oriented = ImageOps.exif_transpose(img)
            return _to_rgb(oriented)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: cannot decode image ({first_line(exc, 200)})") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v / 256).convert("L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")

