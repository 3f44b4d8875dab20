"""How big the built site is against GitHub Pages' 1 GB, and which images it publishes (``--site-images``).

The budget line (CLI output and ``report.json``): the site's bytes and files, bytes per published
image x model, the share of GitHub Pages' limit, and, when only some images are published, a linear
projection for all of them. A site over the limit gets a warning that names ``--site-images``.

``--site-images N|FILE`` publishes a subset of the images (the first ``N`` in the build's order, or the
ids listed in ``FILE``, one per line, ``#`` comments); the metrics and leaderboards use every image.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from atlas.core.limits import SITE_IMAGES
from atlas.core.wording import count
from atlas.site.catalog import Catalog
from ssl_attention.errors import AtlasError
from ssl_attention.integers import shown, whole_number

GITHUB_PAGES_LIMIT = 1_000_000_000  # bytes: GitHub Pages' published-site limit
NEAR_LIMIT = 0.8  # share of the limit from which the budget line warns


def parse_site_images(text: str | int | Path | None) -> int | Path | None:
    """``--site-images`` (or the ``site_images`` key) as a count or a file; ``AtlasError`` (one line) if neither."""
    if text is None or isinstance(text, Path):
        return text
    if isinstance(text, str) and whole_number(text) is None:
        path = Path(text)
        if not path.is_file():
            raise AtlasError(f"--site-images: {shown(text)} is neither a positive number of images nor an "
                             "existing file")
        return path
    count = whole_number(text) if isinstance(text, str) else text
    if count < SITE_IMAGES.low:
        raise AtlasError(f"--site-images: {count}: publish at least 1 image")
    if count > SITE_IMAGES.high:
        raise AtlasError(f"--site-images: {shown(str(text))}: at most {SITE_IMAGES.high:,} images")
    return count


def select_site_images(spec: int | Path | None, ids: list[str], files: dict[str, str] | None = None) -> list[str]:
    """The ids of the published images, in the build's order: all of ``ids`` (``spec`` None), the first
    ``spec`` of them, or those listed in the file ``spec`` (by id or file name, e.g. ``IMG_1.jpg``).

    A listed image that is not in the build is an ``AtlasError`` naming the file, line and entry.
    """
    if spec is None:
        return list(ids)
    if isinstance(spec, int):
        return list(ids[:spec])
    by_name = {name: image for image, name in (files or {}).items()}
    try:
        lines = spec.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AtlasError(f"{spec}: --site-images: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    known, wanted = set(ids), set()
    for number, line in enumerate(lines, 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        image = entry if entry in known else by_name.get(entry)
        if image is None:
            raise AtlasError(f"{spec}:{number}: --site-images: no image {entry!r} in this build")
        wanted.add(image)
    if not wanted:
        raise AtlasError(f"{spec}: --site-images: the file lists no image")
    return [i for i in ids if i in wanted]


def published(catalog: Catalog, ids: list[str]) -> Catalog:
    """``catalog`` restricted to the images ``ids`` (and each model's maps of them)."""
    keep = set(ids)
    models = tuple(dataclasses.replace(m, maps={i: rel for i, rel in m.maps.items() if i in keep})
                   for m in catalog.models)
    return dataclasses.replace(catalog, images=tuple(i for i in catalog.images if i.id in keep), models=models)


FEATURE_FILE = "features.bin"  # atlas.core.layout.feature_file: PCA maps, box similarities, patch features


def _tree(path: Path) -> tuple[int, int, int]:
    """Files and bytes under ``path``, and the bytes of its feature files."""
    files = size = features = 0
    for root, _, names in os.walk(path):
        for name in names:
            files += 1
            bytes_ = os.stat(os.path.join(root, name)).st_size
            size += bytes_
            features += bytes_ if name == FEATURE_FILE else 0
    return files, size, features


@dataclass(frozen=True)
class SiteBudget:
    """The built site's size against GitHub Pages' limit."""

    bytes: int
    files: int
    images: int  # published
    models: int
    pairs: int  # published image x model pairs
    all_images: int  # images of the build (the metrics use them all)
    feature_bytes: int = 0  # of ``bytes``: the pairs' features.bin files (PCA, box similarity, patch features)

    @classmethod
    def measure(cls, site_dir: Path, catalog: Catalog, all_images: int) -> SiteBudget:
        files, size, features = _tree(site_dir)
        pairs = sum(len(m.maps) for m in catalog.models)
        return cls(size, files, len(catalog.images), len(catalog.models), pairs, all_images, features)

    @property
    def per_pair(self) -> float:
        return self.bytes / max(1, self.pairs)

    @property
    def share(self) -> float:
        return self.bytes / GITHUB_PAGES_LIMIT

    @property
    def projected(self) -> float:
        """Bytes if every image were published (linear in the images)."""
        return self.bytes * self.all_images / max(1, self.images)

    def line(self) -> str:
        text = (f"Site budget: {_size(self.bytes)} in {self.files:,} files = {_size(self.per_pair)} per image x model "
                f"({count(self.images, 'image')} x {count(self.models, 'model')}), {100 * self.share:.1f} % of "
                "GitHub Pages' 1 GB")
        if self.feature_bytes:
            text += (f"; features (PCA, box similarity, --feature-layers): {_size(self.feature_bytes)} = "
                     f"{_size(self.feature_bytes / max(1, self.pairs))} per image x model")
        if self.all_images > self.images:
            text += (f"; all {self.all_images} images: about {_size(self.projected)} "
                     f"({100 * self.projected / GITHUB_PAGES_LIMIT:.0f} %)")
        return text

    def warning(self) -> str | None:
        """A warning when the site is over (or close to) GitHub Pages' limit; None otherwise."""
        if self.share > 1:
            return (f"the site ({_size(self.bytes)}) is over GitHub Pages' 1 GB limit: publish fewer images with "
                    f"--site-images N (about {max(1, int(self.images / self.share * 0.95))} fit)")
        if self.share > NEAR_LIMIT:
            return f"the site ({_size(self.bytes)}) uses {100 * self.share:.0f} % of GitHub Pages' 1 GB limit"
        return None

    def as_json(self) -> dict:
        return {"bytes": self.bytes, "files": self.files, "images": self.images, "models": self.models,
                "pairs": self.pairs, "bytes_per_pair": round(self.per_pair), "all_images": self.all_images,
                "feature_bytes": self.feature_bytes,
                "github_pages_limit": GITHUB_PAGES_LIMIT, "share_of_limit": round(self.share, 4),
                "projected_bytes_all_images": round(self.projected), "warning": self.warning()}


def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"
