"""The compute stage's output (``BUILD/maps/manifest.json``) as plain records for the site stage."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atlas.layout import slug
from ssl_attention.errors import AtlasError
from ssl_attention.methods import get_method, in_order


@dataclass(frozen=True)
class Box:
    label: str
    bbox: tuple[float, float, float, float]  # x, y, w, h in image pixels


@dataclass(frozen=True)
class ImageInfo:
    id: str
    slug: str
    width: int
    height: int
    display: Path  # absolute path of the display JPEG
    boxes: tuple[Box, ...]
    file: str = ""  # the source file name (shown, escaped, on the image page)
    tags: tuple[str, ...] = ()  # gallery filter (WikiChurches styles, COCO image tags)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    slug: str
    checkpoint: str
    weights: str  # "pretrained" or "random"
    kind: str  # "vit" or "cnn"
    layers: int  # transformer layers, or Grad-CAM stages for a CNN
    heads: int  # 0 for a CNN
    grid: tuple[int, int]  # gh, gw
    has_cls: bool
    methods: tuple[str, ...]
    maps: dict[str, Path] = field(hash=False)  # image id -> npz path

    @property
    def head_methods(self) -> tuple[str, ...]:
        """Methods of this model that have per-head maps."""
        return tuple(m for m in self.methods if get_method(m).per_head and self.heads > 0)

    def variants(self, method: str) -> list[str]:
        """Map variants of ``method``: ``fused`` then ``h00``, ``h01``... where the method has heads."""
        heads = self.heads if method in self.head_methods else 0
        return ["fused"] + [f"h{h:02d}" for h in range(heads)]


@dataclass(frozen=True)
class Catalog:
    build_dir: Path
    images: tuple[ImageInfo, ...]
    models: tuple[ModelInfo, ...]

    @property
    def random_models(self) -> list[str]:
        """Names of the models that ran with random weights."""
        return [m.name for m in self.models if m.weights == "random"]


def load_catalog(build_dir: Path) -> Catalog:
    """Read ``build_dir/maps/manifest.json``; raise ``AtlasError`` if it is missing or malformed."""
    path = build_dir / "maps" / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        images = tuple(
            ImageInfo(
                id=str(i["id"]),
                slug=slug(str(i["id"])),
                width=int(i["width"]),
                height=int(i["height"]),
                display=build_dir / i["display"],
                boxes=tuple(Box(str(b["label"]), tuple(float(v) for v in b["bbox"])) for b in i.get("boxes", [])),
                file=str(i.get("file", "")),
                tags=tuple(str(t) for t in i.get("tags", [])),
            )
            for i in manifest["images"]
        )
        models = tuple(
            ModelInfo(
                name=str(m["name"]),
                slug=slug(str(m["name"])),
                checkpoint=str(m.get("checkpoint", "")),
                weights=str(m.get("weights", "pretrained")),
                kind=str(m.get("kind", "vit")),
                layers=int(m["layers"]),
                heads=int(m.get("heads") or 0),
                grid=(int(m["grid"][0]), int(m["grid"][1])),
                has_cls=bool(m.get("has_cls", False)),
                methods=in_order(m["methods"]),
                maps={str(k): build_dir / "maps" / v for k, v in m.get("maps", {}).items()},
            )
            for m in manifest["models"]
        )
    except FileNotFoundError:
        raise AtlasError(f"{path}: no manifest; run the compute stage first") from None
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise AtlasError(f"{path}: malformed manifest ({type(exc).__name__}: {exc})") from None
    if len({i.slug for i in images}) != len(images) or len({m.slug for m in models}) != len(models):
        raise AtlasError(f"{path}: duplicate image or model ids")
    return Catalog(build_dir=build_dir, images=images, models=models)


def gradcam_target(maps_file: Path) -> tuple[int, str] | None:
    """The Grad-CAM target class of a cached map file: (class index, label or ""); None if not recorded."""
    try:
        with np.load(maps_file, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
        return int(meta["gradcam_class"]), str(meta.get("gradcam_label") or "")
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None
