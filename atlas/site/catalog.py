"""The build as the site stage sees it: the manifest's images and models, with their files' paths."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atlas.core.build_dir import BuildDir
from atlas.core.manifest import ImageEntry, Manifest, ModelEntry


@dataclass(frozen=True)
class Catalog:
    build_dir: Path
    images: tuple[ImageEntry, ...]
    models: tuple[ModelEntry, ...]

    @property
    def random_models(self) -> list[str]:
        """Names of the models that ran with random weights."""
        return [m.name for m in self.models if m.random]

    def maps_file(self, model: ModelEntry, image_id: str) -> Path:
        """The cached npz of ``model`` on image ``image_id``."""
        return BuildDir(self.build_dir).maps / model.maps[image_id]

    def display_file(self, image: ImageEntry) -> Path:
        """The display JPEG of ``image``."""
        return self.build_dir / image.display


def load_catalog(build_dir: Path) -> Catalog:
    """Read ``build_dir/maps/manifest.json``; raise ``AtlasError`` if it is missing or malformed."""
    return catalog_of(build_dir, Manifest.load(BuildDir(build_dir).maps))


def catalog_of(build_dir: Path, manifest: Manifest) -> Catalog:
    """The catalog of ``manifest``, the maps manifest of the build in ``build_dir``."""
    return Catalog(build_dir=build_dir, images=manifest.images, models=manifest.models)


def gradcam_target(maps_file: Path) -> tuple[int, str] | None:
    """The Grad-CAM target class of a cached map file: (class index, label or ""); None if not recorded."""
    return _recorded_class(maps_file, "gradcam")


def explained_class(maps_file: Path) -> tuple[int, str] | None:
    """The class a classifier's relevance / ViT Grad-CAM explain on a cached map file: (index, label or "")."""
    return _recorded_class(maps_file, "target")


def _recorded_class(maps_file: Path, prefix: str) -> tuple[int, str] | None:
    """``<prefix>_class`` and ``<prefix>_label`` of a map file's meta; None if not recorded."""
    try:
        with np.load(maps_file, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
        return int(meta[f"{prefix}_class"]), str(meta.get(f"{prefix}_label") or "")
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None
