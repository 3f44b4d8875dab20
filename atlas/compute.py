"""Stage 2 of a build: run each model over the images and cache every map (one forward per batch)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from atlas.cache import cache_key, read_key, write_maps
from atlas.dataset import ImageRecord
from atlas.manifest import Manifest, ModelEntry
from ssl_attention.errors import AtlasError
from ssl_attention.images import load_image
from ssl_attention.maps import compute_maps
from ssl_attention.models.base import VisionModel
from ssl_attention.preprocess import to_tensor
from ssl_attention.skips import Skip


@dataclass
class ModelMaps:
    """What the compute stage produced for one model."""

    entry: ModelEntry  # without its maps (see ``manifest_entry``)
    maps: dict[str, str] = field(default_factory=dict)  # image id -> npz path relative to maps/
    computed: int = 0
    reused: int = 0
    skipped: list[Skip] = field(default_factory=list)

    def manifest_entry(self) -> ModelEntry:
        """The model's entry in the manifest, with its maps."""
        return self.entry.with_maps(self.maps)


def pick_device(device: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; an unavailable explicit device is an error."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise AtlasError("--device cuda: no CUDA GPU is available (use --device auto or cpu)")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise AtlasError("--device mps: Apple MPS is not available (use --device auto or cpu)")
    if device not in ("cpu", "cuda", "mps"):
        raise AtlasError(f"--device must be auto, cpu, cuda or mps, got {device!r}")
    return torch.device(device)


WRITERS = 2  # threads writing a model's npz files while its next batch computes


def compute_model_maps(model: VisionModel, images: list[ImageRecord], maps_dir: Path, *,
                       methods: tuple[str, ...], batch_size: int, device: torch.device,
                       per_head: bool | None = None,
                       advance: Callable[[int], None] = lambda n: None) -> ModelMaps:
    """Compute (or reuse from the cache) the maps of ``model`` for ``images``.

    Pipelined: while batch n+1 runs through the model, a pool of ``WRITERS`` threads writes batch n's
    npz files (``write_image_maps``; NumPy's copies and the file writes release the GIL). A map counts
    as computed once its file is written; the files are the same bytes as written one by one.
    """
    entry = ModelEntry.of_model(model, methods, per_head)
    result, todo = reuse_cached_maps(entry, images, maps_dir)
    advance(result.reused)
    reused = set(result.maps)
    pending: list[Future] = []
    with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="atlas-npz") as pool:
        try:
            for start in range(0, len(todo), batch_size):
                batch = todo[start:start + batch_size]
                pending += _compute_batch(model, batch, maps_dir, methods, per_head, device, result, pool)
                advance(len(batch))
            for future in pending:
                image_id, rel = future.result()
                result.maps[image_id] = rel
                result.computed += 1
        except BaseException:  # a model that fails part-way leaves none of its new maps (Ctrl-C keeps them: resume)
            wait(pending)
            if not isinstance(sys.exc_info()[1], KeyboardInterrupt):
                written = [f.result() for f in pending if f.exception() is None]
                for image_id, rel in [*written, *result.maps.items()]:
                    if image_id not in reused:
                        (maps_dir / rel).unlink(missing_ok=True)
            raise
    return result


def reuse_cached_maps(entry: ModelEntry, images: list[ImageRecord],
                      maps_dir: Path) -> tuple[ModelMaps, list[tuple[ImageRecord, str]]]:
    """The maps of ``entry``'s model already valid in the cache, and the (image, cache key) pairs still to do."""
    result = ModelMaps(entry=entry)
    todo: list[tuple[ImageRecord, str]] = []
    for record in images:
        key = cache_key(record.sha256, entry)
        rel = f"{entry.name}/{record.id}.npz"
        if read_key(maps_dir / rel) == key:
            result.maps[record.id] = rel
            result.reused += 1
        else:
            todo.append((record, key))
    return result, todo


def _compute_batch(model: VisionModel, batch: list[tuple[ImageRecord, str]], maps_dir: Path,
                   methods: tuple[str, ...], per_head: bool | None, device: torch.device,
                   result: ModelMaps, pool: ThreadPoolExecutor) -> list[Future]:
    """Run one batch through the model; its npz files are written by ``pool`` (futures of (id, path))."""
    loaded = []
    for record, key in batch:
        try:
            loaded.append((record, key, load_image(record.path)))
        except AtlasError as exc:  # the file changed since the dataset stage
            result.skipped.append(Skip("compute", model.name, str(exc)))
    if not loaded:
        return []
    pixels = to_tensor([img for _, _, img in loaded], model.preprocessing).to(device)
    maps = compute_maps(model, pixels, methods, per_head)
    _check_finite(maps, [record for record, _, _ in loaded])
    return [pool.submit(write_image_maps, maps_dir, model.name, model.class_names, record, key,
                        {name: values[i] for name, values in maps.items()})
            for i, (record, key, _) in enumerate(loaded)]


def write_image_maps(maps_dir: Path, model_name: str, class_names: list[str] | None, record: ImageRecord,
                     key: str, arrays: dict[str, np.ndarray]) -> tuple[str, str]:
    """Write one image's maps of one model to ``maps/<model>/<image>.npz`` (atomically, with its cache key
    and Grad-CAM target in ``meta``); returns (image id, path relative to ``maps_dir``)."""
    meta = {"cache_key": key, "model": model_name, "image": record.id}
    if "gradcam_class" in arrays:
        meta["gradcam_class"] = int(arrays["gradcam_class"])
        if class_names:
            meta["gradcam_label"] = class_names[meta["gradcam_class"]]
    rel = f"{model_name}/{record.id}.npz"
    write_maps(maps_dir / rel, arrays, meta)
    return record.id, rel


def _check_finite(maps: dict, records: list[ImageRecord]) -> None:
    """A forward pass that produced NaN or infinite maps (broken weights or config) fails its model."""
    for name, values in maps.items():
        bad = ~np.isfinite(values.reshape(len(records), -1)).all(axis=1)
        if bad.any():
            raise AtlasError(f"non-finite (NaN or infinite) {name} maps, e.g. for image {records[bad.argmax()].id}")


def write_manifest(maps_dir: Path, images: list[ImageRecord], models: list[ModelMaps]) -> Path:
    """Write ``maps/manifest.json`` (sorted keys, stable order: byte-identical for identical inputs)."""
    images_entries = tuple(record.manifest_entry() for record in images)
    return Manifest(images=images_entries, models=tuple(m.manifest_entry() for m in models)).write(maps_dir)
