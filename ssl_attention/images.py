"""Finding and decoding images: EXIF orientation applied, always 8-bit RGB, bounded in size."""

from __future__ import annotations

import errno
import hashlib
import math
import os
import re
import stat
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ssl_attention.errors import ImageError, first_line
from ssl_attention.skips import Skip

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
MIN_SIDE = 16  # smaller than one patch of every supported model: no spatial map to show
MAX_DECODE_SIDE = 4096  # larger images are decoded at reduced size (models see at most a few hundred px)
MAX_PIXELS = 400_000_000  # 20000 x 20000; beyond this a file is refused rather than risk memory
# Memory of the decoded pixels, checked on the header before decoding: PIL keeps 1 byte per pixel
# (1, L, P), 2 (16-bit greyscale) or 4 (everything else). 1.6 GB = MAX_PIXELS of RGB; a 16-bit PNG of
# 100 MP is 200 MB of file-header promises, however small the file is.
MAX_DECODED_BYTES = 1_600_000_000
_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # scaled to 8 bits by _to_uint8
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "CMYK", "YCbCr")  # modes PIL's reduce averages as they are
_BAND_PIXELS = 16_000_000  # pixels per band when a large image is converted before it is reduced
MAX_ID_LENGTH = 120  # longer image ids are cut and get a hash suffix (see image_id)
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ID_UNSAFE_UNICODE = re.compile(r"[^\w.-]+")  # \w: letters and digits of any script, and _


@dataclass(frozen=True)
class DecodedImage:
    """An image as the user sees it: ``image`` (RGB, longest side <= MAX_DECODE_SIDE) and the full size."""

    image: Image.Image
    width: int  # full size after EXIF orientation, in pixels: the frame of the boxes
    height: int


def image_id(path: Path) -> str:
    """The id of an image: its file stem, with characters outside ``[A-Za-z0-9._-]`` replaced by ``_``.

    Leading dots are removed, so an id can never be ``..`` or a hidden file name. Ids longer than
    MAX_ID_LENGTH (file systems allow 255 bytes per name, and the build writes ``.ID.npz.tmp`` and
    similar names) are cut and end in ``-`` plus 8 hex digits of the SHA-1 of the full stem, so two
    long names that share their first characters still get distinct ids.

    A stem with any character outside ASCII (``Москва``, ``東京``, ``café``, or bytes that are not
    UTF-8) keeps its letters and digits of any script (NFC) and always ends in ``-`` plus the 8 hex
    digits of its exact bytes, so names that differ only in what was replaced still get distinct ids
    (``東京-…`` and ``京都-…``, not both ``image``); such an id is at most MAX_ID_LENGTH bytes of UTF-8.
    """
    stem = path.stem
    if not stem.isascii():
        return _unicode_id(stem)
    cleaned = _ID_UNSAFE.sub("_", stem).strip("._") or "image"
    if len(cleaned) <= MAX_ID_LENGTH:
        return cleaned
    return f"{cleaned[: MAX_ID_LENGTH - 9].rstrip('._-')}-{_stem_digest(stem)}"


def _unicode_id(stem: str) -> str:
    """The id of a stem with non-ASCII characters: its letters and digits (any script), ``-``, its digest."""
    letters = _ID_UNSAFE_UNICODE.sub("_", unicodedata.normalize("NFC", stem)).strip("._") or "image"
    room = MAX_ID_LENGTH - 9  # bytes left before "-" and the 8 hex digits
    while len(letters.encode("utf-8")) > room:
        letters = letters[:-1]
    return f"{letters.rstrip('._-') or 'image'}-{_stem_digest(stem)}"


def _stem_digest(stem: str) -> str:
    """8 hex digits of the SHA-1 of a file stem's bytes (as the file system has them, UTF-8 or not)."""
    return hashlib.sha1(stem.encode("utf-8", "surrogateescape")).hexdigest()[:8]


@dataclass(frozen=True)
class ImageFolder:
    """What a folder holds: its image files (by extension, sorted by name) and everything else."""

    images: list[Path]
    others: int = 0  # regular files whose extension is not an image's
    subfolders: int = 0  # never searched: images are read from the folder itself
    skipped: list[Skip] = field(default_factory=list)  # stage "images": each entry that is not a readable file


def scan_images(folder: Path) -> ImageFolder:
    """Sort the entries of ``folder`` into image files, other files, subfolders and unreadable entries.

    Dangling symbolic links, link loops, FIFOs, sockets and devices get one ``skipped`` :class:`Skip` each;
    they are never opened (reading a FIFO would wait forever). Raises ImageError if ``folder`` is not
    a directory.
    """
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a directory of images")
    images, others, subfolders, skipped = [], 0, 0, []
    for entry in sorted(folder.iterdir()):
        try:
            mode = entry.stat().st_mode  # follows symbolic links
        except OSError as exc:
            skipped.append(Skip("images", str(entry), f"{_unreadable_entry(entry, exc)}; skipped"))
            continue
        if stat.S_ISDIR(mode):
            subfolders += 1
        elif not stat.S_ISREG(mode):
            kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
            skipped.append(Skip("images", str(entry), f"a {kind}, not a regular file; skipped"))
        elif entry.suffix.lower() in IMAGE_EXTENSIONS:
            images.append(entry)
        else:
            others += 1
    return ImageFolder(images, others, subfolders, skipped)


def _unreadable_entry(entry: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if entry.is_symlink() and isinstance(exc, FileNotFoundError):
        return f"dangling symbolic link (to {os.readlink(entry)})"
    return f"cannot read ({first_line(exc, 200)})"


def list_images(folder: Path) -> list[Path]:
    """All image files directly in ``folder`` (by extension), sorted by name."""
    return scan_images(folder).images


def decode_image(path: Path) -> DecodedImage:
    """Decode ``path`` into an RGB image as the user sees it (EXIF rotation applied).

    Transparent images are composited onto white; 16-bit, float, CMYK, palette and greyscale images
    become 8-bit RGB. Images over MAX_DECODE_SIDE are decoded reduced (JPEG draft mode), shrunk by
    block averaging right after decoding, then downscaled with high quality. Raises ImageError, one
    line naming the file, for undecodable, tiny (< MIN_SIDE px) or absurdly large (> MAX_PIXELS, or
    > MAX_DECODED_BYTES once decoded) images; the size checks read only the header.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _open(path) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise ImageError(f"{path}: {width}x{height} px is larger than the {MAX_PIXELS // 10**6} MP limit")
                orientation = img.getexif().get(0x0112, 1)
                if max(width, height) > MAX_DECODE_SIDE:
                    img.draft("RGB", (MAX_DECODE_SIDE, MAX_DECODE_SIDE))
                _check_decoded_bytes(path, img)
                img.load()
                small = _shrink(img)
                oriented = ImageOps.exif_transpose(small) if orientation != 1 else small
                rgb = _to_rgb(oriented)
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError,
            TypeError, IndexError, KeyError, EOFError) as exc:
        raise ImageError(f"{path}: cannot decode image ({first_line(exc, 200)})") from None
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees: the user sees height x width
        width, height = height, width
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{path}: {width}x{height} px is smaller than {MIN_SIDE} px, less than one patch")
    if max(rgb.size) > MAX_DECODE_SIDE:
        rgb.thumbnail((MAX_DECODE_SIDE, MAX_DECODE_SIDE), Image.Resampling.LANCZOS)
    return DecodedImage(rgb, width, height)


def load_image(path: Path) -> Image.Image:
    """The decoded RGB image of ``path`` (see ``decode_image``)."""
    return decode_image(path).image


def _open(path: Path) -> Image.Image:
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # our own MAX_PIXELS check runs on the header instead
    try:
        return Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _check_decoded_bytes(path: Path, img: Image.Image) -> None:
    """Refuse, before decoding, an image whose pixels would take more than MAX_DECODED_BYTES."""
    per_pixel = 1 if img.mode in ("1", "L", "P") else 2 if img.mode.startswith("I;16") else 4
    needed = img.size[0] * img.size[1] * per_pixel
    if needed > MAX_DECODED_BYTES:
        raise ImageError(
            f"{path}: {img.size[0]}x{img.size[1]} px of mode {img.mode} would take {needed / 1e9:.1f} GB "
            f"decoded, more than the {MAX_DECODED_BYTES / 1e9:.1f} GB limit"
        )


def _shrink(img: Image.Image) -> Image.Image:
    """Right after decoding: shrink an image over MAX_DECODE_SIDE by averaging blocks of whole pixels.

    High-depth images become 8-bit greyscale here (their float copy is made of the shrunk image only);
    others keep their mode and stay at least MAX_DECODE_SIDE px (the final downscale is finer).
    """
    factor = max(img.size) // MAX_DECODE_SIDE
    if img.mode in _HIGH_DEPTH:
        is_float = img.mode == "F"
        values = _block_mean(img, factor) if factor >= 2 else np.asarray(img)
        return Image.fromarray(_to_uint8(values, is_float), mode="L")
    if factor < 2:
        return img
    if img.mode in _REDUCIBLE:
        return img.reduce(factor)
    return _reduce_in_bands(img, factor)  # palette indices and 1-bit pixels cannot be averaged as they are


def _reduce_in_bands(img: Image.Image, factor: int) -> Image.Image:
    """``img`` converted to a mode that can be averaged (RGBA for palettes, L for 1-bit, else RGB) and
    reduced by ``factor``, a band of rows at a time: the converted copy never exists at full size (a
    20000 x 20000 palette image is 400 MB decoded, 1.6 GB as RGBA)."""
    mode = "RGBA" if img.mode in ("P", "PA") else "L" if img.mode == "1" else "RGB"
    width, height = img.size
    rows = max(1, _BAND_PIXELS // (width * factor)) * factor  # a multiple of factor: the same blocks as one reduce
    out = Image.new(mode, (math.ceil(width / factor), math.ceil(height / factor)))
    for top in range(0, height, rows):
        band = img.crop((0, top, width, min(top + rows, height))).convert(mode).reduce(factor)
        out.paste(band, (0, top // factor))
    return out


def _block_mean(img: Image.Image, step: int) -> np.ndarray:
    """The mean of each ``step x step`` block of a one-band image (smaller blocks at the edges).

    Reads one band of ``step`` rows at a time, so no full-size copy of the pixels is ever made.
    """
    width, height = img.size
    starts = np.arange(0, width, step)
    widths = np.diff(np.append(starts, width))
    out = np.empty((math.ceil(height / step), len(starts)), dtype=np.float64)
    for row, top in enumerate(range(0, height, step)):
        band = np.asarray(img.crop((0, top, width, min(top + step, height))), dtype=np.float64)
        out[row] = np.add.reduceat(band.sum(axis=0), starts) / (widths * band.shape[0])
    return out


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def _to_uint8(values: np.ndarray, is_float: bool | None = None) -> np.ndarray:
    """16-bit integers scale by 1/257; floats in [0, 1] by 255; anything else is min-max scaled.

    ``is_float`` tells what the values were decoded as, when they are block means (see ``_block_mean``).
    """
    if is_float is None:
        is_float = np.issubdtype(values.dtype, np.floating)
    # at most one float copy (none of block means), then in place: the image may be 8191 px wide
    values = np.nan_to_num(values.astype(np.float64, copy=False), copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min(initial=0)), float(values.max(initial=0))
    if is_float and low >= 0 and high <= 1.0:
        values *= 255.0
    elif not is_float and low >= 0 and high <= 65535:
        values /= 257.0
    else:
        values -= low
        values /= high - low or 1.0
        values *= 255.0
    return np.clip(np.rint(values, out=values), 0, 255, out=values).astype(np.uint8)
