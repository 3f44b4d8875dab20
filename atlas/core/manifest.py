"""``BUILD/maps/manifest.json``, the contract between the compute stage and everything after it.

One module owns the file: the compute stage builds ``ModelEntry``/``ImageEntry`` records and writes a
``Manifest``; the metrics and site stages ``Manifest.load`` it. The JSON layout is documented in
``site_src/reference/export-format.md`` (readable with numpy and json alone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ssl_attention
from atlas.core.atomic import write_text_atomic
from atlas.core.build_dir import MANIFEST_FILE
from atlas.core.layout import slug
from ssl_attention.annotations import Box
from ssl_attention.capabilities import Capabilities
from ssl_attention.errors import AtlasError
from ssl_attention.methods import get_method, in_order, target_methods

if TYPE_CHECKING:
    from ssl_attention.models.base import VisionModel

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ImageEntry:
    """One image of the build: its id, source file name, size as seen (after EXIF), boxes and tags."""

    id: str
    file: str
    width: int
    height: int
    display: str  # the display JPEG, relative to the build folder
    boxes: tuple[Box, ...] = ()
    tags: tuple[str, ...] = ()  # gallery filter (WikiChurches styles, COCO image tags)

    @property
    def slug(self) -> str:
        """The image's name in site paths and URLs."""
        return slug(self.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "file": self.file,
            "width": self.width,
            "height": self.height,
            "display": self.display,
            "boxes": [{"label": b.label, "bbox": [b.x, b.y, b.w, b.h]} for b in self.boxes],
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageEntry:
        return cls(
            id=str(data["id"]),
            file=str(data.get("file", "")),
            width=int(data["width"]),
            height=int(data["height"]),
            display=str(data["display"]),
            boxes=tuple(Box(*(float(v) for v in b["bbox"]), label=str(b["label"])) for b in data.get("boxes", [])),
            tags=tuple(str(t) for t in data.get("tags", [])),
        )


@dataclass(frozen=True)
class ModelEntry:
    """One model of the build: checkpoint, weights, token layout, methods, statistics and its cached maps."""

    name: str
    checkpoint: str
    weights: str  # "pretrained" | "random"
    kind: str  # "vit" | "cnn"
    layers: int  # transformer layers, or Grad-CAM stages for a CNN
    grid: tuple[int, int]  # gh, gw
    methods: tuple[str, ...]
    heads: int = 0  # 0 for a CNN
    patch_size: int = 0
    prefix_tokens: int = 0
    num_registers: int = 0
    has_cls: bool = False
    per_head: bool = False  # per-head maps were kept (cls, mean)
    statistics: tuple[str, ...] = ()  # the registry's statistics in each npz (ViTs), e.g. "distance"
    query_layers: tuple[int, ...] = ()  # layers whose query-patch rows each npz holds (``--query-layers``)
    feature_layers: tuple[int, ...] = ()  # layers whose patch features each npz holds (``--feature-layers``)
    revision: str = ""
    family: str = ""
    architecture: str = ""
    targets: tuple[str, ...] = ()  # what relevance / ViT Grad-CAM explain: a class ("top-1 class") or prompts
    target_kind: str = ""  # "class" | "prompt" | "" (no gradient method)
    preprocessing: dict[str, Any] = field(default_factory=dict, hash=False)
    note: str = ""  # e.g. why the weights are random
    maps: dict[str, str] = field(default_factory=dict, hash=False)  # image id -> npz path relative to maps/
    grids: dict[str, tuple[int, int]] = field(default_factory=dict, hash=False)  # keep: image id -> (gh, gw)

    @classmethod
    def of_model(cls, model: VisionModel, methods: tuple[str, ...], per_head: bool | None,
                 query_layers: tuple[int, ...] = (), feature_layers: tuple[int, ...] = ()) -> ModelEntry:
        """The entry of a loaded model computing ``methods`` (per-head maps unless ``per_head`` is False)
        and the query-patch rows of ``query_layers``."""
        vit = model.kind == "vit"
        explained = model.explainer is not None and any(m in target_methods() for m in methods)
        return cls(
            name=model.name,
            checkpoint=model.checkpoint,
            revision=model.revision,
            weights=model.weights,
            family=model.family,
            architecture=model.architecture,
            kind=model.kind,
            layers=model.layers,
            heads=model.heads,
            patch_size=model.patch_size,
            grid=model.grid,
            prefix_tokens=model.prefix_tokens if vit else 0,
            num_registers=model.num_registers,
            has_cls=model.has_cls if vit else False,
            methods=in_order(methods),
            per_head=per_head is not False and vit,
            statistics=model.statistics,
            query_layers=tuple(query_layers) if vit else (),
            feature_layers=tuple(feature_layers) if vit else (),
            targets=model.explainer.targets if explained else (),
            target_kind=model.explainer.kind if explained else "",
            preprocessing=model.preprocessing.to_dict(),
            note=model.note,
        )

    @property
    def slug(self) -> str:
        """The model's name in site paths and URLs."""
        return slug(self.name)

    @property
    def random(self) -> bool:
        """Whether the model ran with randomly initialised weights (its maps are meaningless)."""
        return self.weights == "random"

    @property
    def capabilities(self) -> Capabilities:
        """The model's capabilities as far as the entry records them (a classifier head or text tower only
        where a gradient method explained it)."""
        return Capabilities(self.kind, cls=self.has_cls, registers=self.num_registers,
                            classifier=self.target_kind == "class", text_tower=self.target_kind == "prompt",
                            probe="probe" in self.methods or self.family in ("siglip", "siglip2"))

    @property
    def head_methods(self) -> tuple[str, ...]:
        """Methods of this model that have per-head maps."""
        return tuple(m for m in self.methods if get_method(m).per_head and self.heads > 0)

    def depth(self, method: str) -> int:
        """Maps along ``method``'s first axis: its targets (relevance, ViT Grad-CAM), else layers or stages."""
        unit = get_method(method).unit
        return len(self.targets) if unit == "target" else 1 if unit == "pool" else self.layers

    def variants(self, method: str) -> list[str]:
        """Map variants of ``method``: ``fused`` then ``h00``, ``h01``... where the method has heads."""
        heads = self.heads if method in self.head_methods else 0
        return ["fused"] + [f"h{h:02d}" for h in range(heads)]

    def with_maps(self, maps: dict[str, str]) -> ModelEntry:
        """This entry with its cached maps (sorted by image id)."""
        return replace(self, maps=dict(sorted(maps.items())))

    @property
    def resize(self) -> str:
        """How the model's inputs were made: ``squash`` (one grid) or ``keep`` (a grid per image)."""
        return str(self.preprocessing.get("resize", "squash"))

    def grid_of(self, image_id: str) -> tuple[int, int]:
        """The map grid (rows, cols) of one image: its own under ``keep``, else the model's ``grid``."""
        return self.grids.get(image_id, self.grid)

    def with_grids(self, sizes: dict[str, tuple[int, int]]) -> ModelEntry:
        """This entry with the grid of each of its maps' images under ``keep`` (``sizes``: image id ->
        (width, height) px); unchanged when squashing."""
        if self.resize != "keep":
            return self
        from ssl_attention.preprocess import Preprocessing

        prep, cell = Preprocessing.from_dict(self.preprocessing), self.grid_cell
        inputs = {i: prep.input_size(sizes[i]) for i in sorted(self.maps) if i in sizes}
        return replace(self, grids={i: (h // cell, w // cell) for i, (h, w) in inputs.items()})

    @property
    def grid_cell(self) -> int:
        """Input pixels per grid cell: the patch size (a ViT), the input side over the grid (a CNN)."""
        size = self.preprocessing.get("size", (0, 0))
        return self.patch_size if self.kind == "vit" or not self.grid[0] else int(size[0]) // self.grid[0]

    def to_json(self, *, maps: bool = True) -> dict[str, Any]:
        """The entry as JSON data; without ``maps`` for the model's own cache record (``model.json``)."""
        data = {
            "name": self.name,
            "checkpoint": self.checkpoint,
            "revision": self.revision,
            "weights": self.weights,
            "family": self.family,
            "architecture": self.architecture,
            "kind": self.kind,
            "layers": self.layers,
            "heads": self.heads,
            "patch_size": self.patch_size,
            "grid": list(self.grid),
            "prefix_tokens": self.prefix_tokens,
            "num_registers": self.num_registers,
            "has_cls": self.has_cls,
            "methods": list(self.methods),
            "per_head": self.per_head,
            "statistics": list(self.statistics),
            "query_layers": list(self.query_layers),
            "targets": list(self.targets),
            "target_kind": self.target_kind,
            "preprocessing": self.preprocessing,
            "note": self.note,
        }
        data["feature_layers"] = list(self.feature_layers)
        if maps:
            data["maps"] = self.maps
            if self.grids:  # keep only: squash manifests are as they always were
                data["grids"] = {image: list(grid) for image, grid in self.grids.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelEntry:
        kind = str(data.get("kind", "vit"))
        heads = int(data.get("heads") or 0)
        return cls(
            name=str(data["name"]),
            checkpoint=str(data.get("checkpoint", "")),
            revision=str(data.get("revision", "")),
            weights=str(data.get("weights", "pretrained")),
            family=str(data.get("family", "")),
            architecture=str(data.get("architecture", "")),
            kind=kind,
            layers=int(data["layers"]),
            heads=heads,
            patch_size=int(data.get("patch_size") or 0),
            grid=(int(data["grid"][0]), int(data["grid"][1])),
            prefix_tokens=int(data.get("prefix_tokens") or 0),
            num_registers=int(data.get("num_registers") or 0),
            has_cls=bool(data.get("has_cls", False)),
            methods=in_order(data["methods"]),
            per_head=bool(data.get("per_head", kind == "vit" and heads > 0)),
            statistics=tuple(str(name) for name in data.get("statistics", [])),
            query_layers=tuple(int(layer) for layer in data.get("query_layers", [])),
            feature_layers=tuple(int(layer) for layer in data.get("feature_layers", [])),
            targets=tuple(str(t) for t in data.get("targets", [])),
            target_kind=str(data.get("target_kind", "")),
            preprocessing=dict(data.get("preprocessing") or {}),
            note=str(data.get("note", "")),
            maps={str(k): str(v) for k, v in data.get("maps", {}).items()},
            grids={str(k): (int(v[0]), int(v[1])) for k, v in data.get("grids", {}).items()},
        )


@dataclass(frozen=True)
class Manifest:
    """Every image and model of a build (``maps/manifest.json``)."""

    images: tuple[ImageEntry, ...]
    models: tuple[ModelEntry, ...]
    format_version: int = FORMAT_VERSION
    library_version: str = ssl_attention.__version__

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods any model computed, in registry order."""
        return in_order({m for model in self.models for m in model.methods})

    def write(self, maps_dir: Path) -> Path:
        """Write ``maps_dir/manifest.json`` (sorted keys: identical inputs give identical bytes)."""
        data = {
            "format_version": self.format_version,
            "library_version": self.library_version,
            "methods": list(self.methods),
            "images": [image.to_json() for image in self.images],
            "models": [model.to_json() for model in self.models],
        }
        path = maps_dir / MANIFEST_FILE
        write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, maps_dir: Path) -> Manifest:
        """Read ``maps_dir/manifest.json``; ``AtlasError`` (one line) if it is missing or malformed."""
        path = maps_dir / MANIFEST_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            manifest = cls(
                images=tuple(ImageEntry.from_json(i) for i in data["images"]),
                models=tuple(ModelEntry.from_json(m) for m in data["models"]),
                format_version=int(data.get("format_version", FORMAT_VERSION)),
                library_version=str(data.get("library_version", "")),
            )
        except FileNotFoundError:
            raise AtlasError(f"{path}: no manifest; run the compute stage first") from None
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise AtlasError(f"{path}: malformed manifest ({type(exc).__name__}: {exc})") from None
        if len({i.slug for i in manifest.images}) != len(manifest.images) or len(
            {m.slug for m in manifest.models}
        ) != len(manifest.models):
            raise AtlasError(f"{path}: duplicate image or model ids")
        return manifest
