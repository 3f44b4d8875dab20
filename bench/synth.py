"""Bench images: N distinct JPEGs synthesised from the bundled sample (flips, crops, colour shifts)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

SAMPLE_IMAGES = Path(__file__).resolve().parents[1] / "ssl_attention" / "sample_data" / "images"


def _variant(img: Image.Image, k: int) -> Image.Image:
    """The k-th deterministic variant of ``img`` (k = 0 is the image itself, resized)."""
    if k == 0:
        return img
    w, h = img.size
    out = img
    if k % 2 == 1:
        out = ImageOps.mirror(out)
    if (k // 2) % 2 == 1:
        out = ImageOps.flip(out)
    frac = 0.06 * ((k % 5) + 1)  # crop 6..30 % off, anchored differently each time
    left = int(w * frac * ((k % 3) / 2))
    top = int(h * frac * (((k + 1) % 3) / 2))
    out = out.crop((left, top, left + int(w * (1 - frac)), top + int(h * (1 - frac))))
    out = ImageEnhance.Color(out).enhance(0.4 + 0.3 * (k % 4))
    out = ImageEnhance.Brightness(out).enhance(0.8 + 0.1 * (k % 5))
    if k % 7 == 3:
        out = out.rotate(90, expand=True)
    return out


def make_images(n: int, target: Path, max_side: int = 640) -> list[Path]:
    """Write ``n`` distinct RGB JPEGs into ``target`` (created fresh) and return their paths."""
    sources = sorted(p for p in SAMPLE_IMAGES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not sources:
        raise SystemExit(f"no sample images in {SAMPLE_IMAGES}")
    target.mkdir(parents=True, exist_ok=True)
    bases = []
    for path in sources:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
            rgb.thumbnail((max_side, max_side))
            bases.append((path.stem, rgb))
    paths = []
    for i in range(n):
        stem, base = bases[i % len(bases)]
        k = i // len(bases)
        out = target / f"{stem}-v{k:03d}.jpg"
        _variant(base, k).save(out, "JPEG", quality=90)
        paths.append(out)
    return paths
