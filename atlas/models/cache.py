"""The map cache: one ``maps/<model>/<image_id>.npz`` per model and image, written atomically."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

import ssl_attention
from atlas.core.atomic import write_bytes_atomic
from atlas.core.manifest import FORMAT_VERSION, ModelEntry


def cache_key(image_sha256: str, model_entry: ModelEntry) -> str:
    """What a cached map depends on: image bytes, model identity and revision, preprocessing, methods,
    per-head or fused-only, the statistics it holds (older files without them are recomputed), the
    targets of the gradient methods, code version, the query-patch rows' layers where there are any (all
    but the image from the model's manifest entry)."""
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
