"""The map cache: one ``maps/<model>/<image_id>.npz`` per model and image, written atomically."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

import ssl_attention
from atlas.atomic import write_bytes_atomic
from atlas.manifest import FORMAT_VERSION, ModelEntry

# Every forward pass of a model takes the same number of images, blank inputs filling the last one, so
# that an image's maps never depend on which images share its pass: PyTorch picks its kernels (and the
# order of their sums) by tensor shape, and e.g. the distance statistic differed in the 7th digit between
# passes of 1 and 4 images. The number depends on the model and its input size only: 8, fewer where one
# layer's attention matrices (ViT) or the activations (CNN, about CNN_BYTES_PER_PIXEL) of 8 images would
# take more than FORWARD_MEMORY.
FORWARD_BATCH = 8
FORWARD_MEMORY = 1 << 30
CNN_BYTES_PER_PIXEL = 2_000  # ResNet-50 forward and backward (Grad-CAM): about 100 MB per 224 px image


def forward_batch(entry: ModelEntry) -> int:
    """Images per forward pass of ``entry``'s model (see FORWARD_BATCH): 8 for a ViT-B at 224 or 518 px,
    1 at 1024 px and patch 14 (1.4 GB of attention per image and layer)."""
    height, width = entry.preprocessing.get("size", (224, 224))
    if entry.kind == "vit":
        tokens = entry.grid[0] * entry.grid[1] + entry.prefix_tokens
        per_image = max(1, entry.heads) * tokens * tokens * 4
    else:
        per_image = height * width * CNN_BYTES_PER_PIXEL
    return max(1, min(FORWARD_BATCH, FORWARD_MEMORY // per_image))


def cache_key(image_sha256: str, model_entry: ModelEntry) -> str:
    """What a cached map depends on: image bytes, model identity and revision, preprocessing, methods,
    per-head or fused-only, the statistics it holds (older files without them are recomputed), the
    targets of the gradient methods, code version, the images per forward pass (``forward_batch``), the
    query-patch rows' layers where there are any (all but the image from the model's manifest entry)."""
    identity = {
        "image": image_sha256,
        "checkpoint": model_entry.checkpoint,
        "revision": model_entry.revision,
        "weights": model_entry.weights,
        "architecture": model_entry.architecture,
        "preprocessing": model_entry.preprocessing,
        "methods": list(model_entry.methods),
        "per_head": model_entry.per_head,
        "statistics": list(model_entry.statistics),
        "library": ssl_attention.__version__,
        "format": FORMAT_VERSION,
        "forward_batch": forward_batch(model_entry),  # maps of passes of another shape may differ in the last digits
    }
    if model_entry.query_layers:  # absent without rows: caches of builds without them stay valid
        identity["query_layers"] = list(model_entry.query_layers)
    if model_entry.targets:  # relevance / ViT Grad-CAM: what they explain
        identity["targets"] = [model_entry.target_kind, *model_entry.targets]
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def read_key(path: Path) -> str | None:
    """The cache key stored in an npz, or None if missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["meta"]))["cache_key"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # torn or foreign file: recompute
        return None


def write_maps(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write arrays plus a JSON ``meta`` string to ``path`` atomically (temp file, then rename)."""
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    write_bytes_atomic(path, buffer.getvalue())
