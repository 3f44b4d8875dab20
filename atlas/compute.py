"""Stage 2 of a build: run each model over the images and cache every map (one forward per batch)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from atlas.cache import cache_key, forward_batch, read_key, write_maps
from atlas.dataset import ImageRecord
from atlas.manifest import Manifest, ModelEntry
from atlas.render import PairRenderer
from ssl_attention.errors import AtlasError
from ssl_attention.images import load_image
from ssl_attention.maps import compute_maps
from ssl_attention.methods import target_methods
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
                       per_head: bool | None = None, query_layers: tuple[int, ...] = (),
                       render: PairRenderer | None = None,
                       advance: Callable[[int], None] = lambda n: None) -> ModelMaps:
    """Compute (or reuse from the cache) the maps of ``model`` for ``images`` (and the query-patch rows
    of ``query_layers``).

    Pipelined: while batch n+1 runs through the model, a pool of ``WRITERS`` threads writes batch n's
    npz files and, with ``render``, encodes their sprite sheets (NumPy, zlib and the file writes release
    the GIL), so the site stage finds them done. A map counts as computed once its file is written; the
    files are the same bytes as written one by one. A batch of ``batch_size`` images runs in forward
    passes of the model's fixed size (``fixed_shape_maps``), so the maps do not depend on the batches.
    """
    entry = ModelEntry.of_model(model, methods, per_head, query_layers)
    result, todo = reuse_cached_maps(entry, images, maps_dir)
    advance(result.reused)
    reused = set(result.maps)
    pending: list[Future] = []
    with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="atlas-npz") as pool:
        try:
            for start in range(0, len(todo), batch_size):
                batch = todo[start:start + batch_size]
                pending += _compute_batch(model, batch, maps_dir, methods, per_head, device, result, pool, render)
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
                   result: ModelMaps, pool: ThreadPoolExecutor, render: PairRenderer | None = None) -> list[Future]:
    """Run one batch through the model; its npz files are written (and rendered) by ``pool`` (futures of
    (id, path))."""
    loaded = []
    for record, key in batch:
        try:
            loaded.append((record, key, load_image(record.path)))
        except AtlasError as exc:  # the file changed since the dataset stage
            result.skipped.append(Skip("compute", model.name, str(exc)))
    return [pool.submit(_write_image_maps, maps_dir, rel, arrays, meta, result.entry, render)
            for rel, arrays, meta in batch_maps(model, loaded, methods, per_head, device, result.entry.query_layers)]


def _write_image_maps(maps_dir: Path, rel: str, arrays: dict[str, np.ndarray], meta: dict, entry: ModelEntry,
                      render: PairRenderer | None) -> tuple[str, str]:
    """Write one image's npz (atomically), then render it; returns (image id, path relative to ``maps_dir``)."""
    write_maps(maps_dir / rel, arrays, meta)
    if render is not None:
        render(entry, meta["image"], arrays, maps_dir / rel)
    return meta["image"], rel


def batch_maps(model: VisionModel, loaded: list[tuple[ImageRecord, str, Image.Image]], methods: tuple[str, ...],
               per_head: bool | None, device: torch.device,
               query_layers: tuple[int, ...] = ()) -> list[tuple[str, dict[str, np.ndarray], dict]]:
    """One forward pass over decoded images: (npz path relative to maps/, arrays, meta) per image
    (with the query-patch rows of ``query_layers``).

    ``loaded`` holds (record, cache key, decoded image) in batch order; local and Ray builds both call
    this. The forward passes have a fixed shape (``fixed_shape_maps``), so an image's maps are the same
    bytes whatever images share its batch (or ``--batch-size``), locally and on Ray.
    """
    if not loaded:
        return []
    pixels = to_tensor([img for _, _, img in loaded], model.preprocessing).to(device)
    size = forward_batch(ModelEntry.of_model(model, methods, per_head, query_layers))
    maps = fixed_shape_maps(model, pixels, size, methods, per_head, query_layers)
    _check_finite(maps, [record for record, _, _ in loaded])
    results = []
    for i, (record, key, _) in enumerate(loaded):
        arrays = {name: values[i] for name, values in maps.items()}
        meta = {"cache_key": key, "model": model.name, "image": record.id}
        if query_layers:
            meta["query_layers"] = list(query_layers)
        if "gradcam_class" in arrays:
            meta["gradcam_class"] = int(arrays["gradcam_class"])
            if model.class_names:
                meta["gradcam_label"] = model.class_names[meta["gradcam_class"]]
        meta.update(_explained_class(model, arrays))
        results.append((f"{model.name}/{record.id}.npz", arrays, meta))
    return results


def fixed_shape_maps(model: VisionModel, pixels: torch.Tensor, size: int, methods: tuple[str, ...],
                     per_head: bool | None, query_layers: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    """``compute_maps`` of ``pixels`` [B, 3, H, W] in forward passes of exactly ``size`` images, the last
    one filled with blank (all-zero) inputs whose maps are dropped; the model runs in eval mode, so no image
    of a pass affects another's maps, and one shape means the same kernels for every image.

    Each pass gets a fresh contiguous tensor: the kernels also depend on the memory layout (a channels-last
    slice of ``to_tensor``'s output and a contiguous copy gave Grad-CAM maps 1e-9 apart)."""
    parts = []
    for start in range(0, len(pixels), size):
        chunk = pixels[start:start + size]
        real = len(chunk)
        batch = pixels.new_zeros((size, *pixels.shape[1:]))  # contiguous, blank where there is no image
        batch[:real] = chunk
        maps = compute_maps(model, batch, methods, per_head, query_layers=query_layers)
        parts.append({name: values[:real] for name, values in maps.items()})
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _explained_class(model: VisionModel, arrays: dict[str, np.ndarray]) -> dict:
    """The class a classifier's gradient maps explain on this image (``target_class``, ``target_label``)."""
    explainer = model.explainer
    found = [arrays[f"{m}_class"] for m in target_methods() if f"{m}_class" in arrays]
    if explainer is None or explainer.kind != "class" or not found:
        return {}
    index = int(found[0][0])
    names = explainer.class_names
    return {"target_class": index, **({"target_label": names[index]} if names and index < len(names) else {})}


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
