"""The models stage's computation: a batch of images through a model (one forward pass), shared by both
executors, and the local executor (``compute_model_maps``)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from atlas.core.manifest import Manifest, ModelEntry
from atlas.dataset.stage import ImageRecord
from atlas.models.cache import forward_batch
from atlas.models.plan import ModelJob, ModelMaps, Recipe
from atlas.models.sink import ComputedBatch, MapsSink
from ssl_attention.aspect import at_input_size
from ssl_attention.errors import AtlasError
from ssl_attention.features import BOX_ARRAY, FeatureRequest, relative_boxes
from ssl_attention.images import load_image
from ssl_attention.maps import compute_maps
from ssl_attention.methods import target_methods
from ssl_attention.models.base import VisionModel
from ssl_attention.preprocess import to_tensor

BatchItems = tuple[tuple[ImageRecord, str, bytes | None], ...]  # (image, cache key, its bytes or None: read the path)


DEVICES = ("auto", "cpu", "cuda", "mps")  # --device


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
    if device not in DEVICES:
        raise AtlasError(f"--device must be auto, cpu, cuda or mps, got {device!r}")
    return torch.device(device)


def compute_model_maps(model: VisionModel, job: ModelJob, sink: MapsSink, *, batch_size: int,
                       device: torch.device) -> ModelMaps:
    """The local executor: run the images ``job`` has still to compute through ``model`` (on ``device``)
    in batches of ``batch_size``, and hand each batch to ``sink``.

    Pipelined: while batch n+1 runs through the model, the sink's writer threads write batch n's npz
    files and encode their sprite sheets (NumPy, zlib and the file writes release the GIL), so the site
    stage finds them done. A map counts as computed once its file is written; the files are the same bytes
    as written one by one. A model that fails part-way leaves none of its new maps (the sink rolls back).
    """
    recipe = job.recipe
    with sink:
        for batch in job.batches(batch_size):
            sink.take(compute_batch(model, tuple((record, key, None) for record, key in batch), recipe, device))
        return sink.finish()


def compute_batch(model: VisionModel, items: BatchItems, recipe: Recipe, device: torch.device) -> ComputedBatch:
    """One batch as both executors compute it: its images decoded (one line for each that cannot be),
    then one forward pass."""
    loaded, skipped = load_batch(items)
    return ComputedBatch(tuple(batch_maps(model, loaded, recipe, device)), tuple(skipped))


class _NamedBytes(io.BytesIO):
    """Shipped image bytes that name their file in error messages, as a path would."""

    def __init__(self, data: bytes, path: Path) -> None:
        super().__init__(data)
        self.path = path

    def __str__(self) -> str:
        return str(self.path)


def load_batch(items: BatchItems) -> tuple[list[tuple[ImageRecord, str, Image.Image]], list[str]]:
    """The batch's images decoded, from their paths or from the bytes the driver shipped, as
    (record, cache key, image); and one line for each image that could not be read."""
    loaded, skipped = [], []
    for record, key, data in items:
        try:
            loaded.append((record, key, load_image(record.path if data is None else _NamedBytes(data, record.path))))
        except AtlasError as exc:  # the file changed since the dataset stage
            skipped.append(str(exc))
    return loaded, skipped


def batch_maps(model: VisionModel, loaded: list[tuple[ImageRecord, str, Image.Image]], recipe: Recipe,
               device: torch.device) -> list[tuple[str, dict[str, np.ndarray], dict]]:
    """One forward pass over decoded images: (npz path relative to maps/, arrays, meta) per image.

    ``loaded`` holds (record, cache key, decoded image) in batch order; ``recipe`` the methods, per-head
    or fused-only and the query-patch rows' layers. Local and Ray builds both call this, and the forward
    passes have a fixed shape (``fixed_shape_maps``), so an image's maps are the same bytes whatever images
    share its batch (or ``--batch-size``), locally and on Ray.
    """
    if not loaded:
        return []
    input_size = bucket_size(model, [img for _, _, img in loaded])
    pixels = to_tensor([img for _, _, img in loaded], model.preprocessing, input_size).to(device)
    entry = ModelEntry.of_model(at_input_size(model, input_size), recipe.methods, recipe.per_head,
                                recipe.query_layers)
    size = forward_batch(entry)
    maps = fixed_shape_maps(model, pixels, size, recipe, feature_request(loaded, recipe))
    _check_finite(maps, [record for record, _, _ in loaded])
    results = []
    for i, (record, key, _) in enumerate(loaded):
        arrays = {name: values[i] for name, values in maps.items()}
        if BOX_ARRAY in arrays:  # [slots, L, gh, gw] -> the image's own boxes only
            arrays[BOX_ARRAY] = arrays[BOX_ARRAY][:len(record.boxes)]
            if not record.boxes:
                del arrays[BOX_ARRAY]
        meta = {"cache_key": key, "model": model.name, "image": record.id}
        if recipe.query_layers:
            meta["query_layers"] = list(recipe.query_layers)
        if recipe.feature_layers and model.kind == "vit":
            meta["feature_layers"] = list(recipe.feature_layers)
        if "gradcam_class" in arrays:
            meta["gradcam_class"] = int(arrays["gradcam_class"])
            if model.class_names:
                meta["gradcam_label"] = model.class_names[meta["gradcam_class"]]
        meta.update(_explained_class(model, arrays))
        results.append((f"{model.name}/{record.id}.npz", arrays, meta))
    return results


def bucket_size(model: VisionModel, images: list[Image.Image]) -> tuple[int, int]:
    """The one input size (height, width) of a batch's images (``ModelJob.batches`` buckets them by it)."""
    sizes = {model.preprocessing.input_size(img.size) for img in images}
    if len(sizes) != 1:
        raise AtlasError(f"model {model.name}: one batch mixes input sizes {sorted(sizes)}")
    return sizes.pop()


def feature_request(loaded: list[tuple[ImageRecord, str, Image.Image]], recipe: Recipe) -> FeatureRequest | None:
    """What of the patch features the batch keeps: its feature layers, and each image's boxes (for their
    ``box_similarity``), padded to the most boxes of any image of the batch; None when nothing."""
    boxes = tuple(relative_boxes(record.boxes, record.width, record.height) for record, _, _ in loaded)
    slots = max(len(b) for b in boxes)
    if not slots and not recipe.feature_layers:
        return None
    return FeatureRequest(tuple(recipe.feature_layers), boxes if slots else None, slots)


def fixed_shape_maps(model: VisionModel, pixels: torch.Tensor, size: int, recipe: Recipe,
                     features: FeatureRequest | None = None) -> dict[str, np.ndarray]:
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
        part = None if features is None else features.part(start, start + real, size)
        maps = compute_maps(model, batch, recipe.methods, recipe.per_head, query_layers=recipe.query_layers,
                            features=part)
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


def write_manifest(maps_dir: Path, images: list[ImageRecord], models: list[ModelMaps]) -> Manifest:
    """Write ``maps/manifest.json`` (sorted keys, stable order: byte-identical for identical inputs); returns
    the manifest, the value every later stage takes."""
    images_entries = tuple(record.manifest_entry() for record in images)
    sizes = {record.id: (record.width, record.height) for record in images}
    manifest = Manifest(images=images_entries, models=tuple(m.manifest_entry().with_grids(sizes) for m in models))
    manifest.write(maps_dir)
    return manifest
