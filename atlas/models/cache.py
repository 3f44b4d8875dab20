"""The map cache: one ``maps/<model>/<image_id>.npz`` per model and image, written atomically, and the
one identity both of its keys are made from."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import ssl_attention
from atlas.core.atomic import write_bytes_atomic
from atlas.core.manifest import FORMAT_VERSION, ModelEntry

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


@dataclass(frozen=True)
class MapsIdentity:
    """What a model's cached maps depend on, for both keys of the cache: ``model.json``'s request key
    (what a build asked for, before any model is loaded; ``atlas.models.plan.MapsOptions.identity``) and
    each npz's ``cache_key`` (what the loaded model's entry made of it, plus the image; ``of_entry``).

    Both hold the checkpoint, the weights mode, the methods, per-head or fused-only, the code version and
    the format, the query-patch rows' layers and the gradient methods' targets where there are any (absent
    otherwise, so that caches of builds without them stay valid); ``details`` holds the rest of each key.
    """

    checkpoint: str
    weights: str
    methods: tuple[str, ...] | None
    per_head: bool | None
    query_layers: str | tuple[int, ...] | None = None  # the --query-layers value, or the entry's layers
    targets: dict | tuple | None = None  # the requested targets, or the entry's (kind, *targets)
    feature_layers: str | tuple[int, ...] | None = None  # the --feature-layers value, or the entry's layers
    details: dict = field(default_factory=dict)

    @classmethod
    def of_request(cls, checkpoint: str, weights: str, image_size: tuple[int, int] | None,
                   methods: tuple[str, ...] | None, per_head: bool | None, query_spec: str = "none",
                   targets: dict | None = None, feature_spec: str = "none") -> MapsIdentity:
        """What a build asks of a model before loading it: checkpoint, weights mode, input size, methods,
        heads, the ``--query-layers`` value (``query_spec``) and the targets (``TargetOptions.identity``)."""
        return cls(checkpoint, weights, methods or None, per_head, None if query_spec == "none" else query_spec,
                   targets, None if feature_spec == "none" else feature_spec,
                   {"image_size": list(image_size) if image_size else None})

    @classmethod
    def of_entry(cls, entry: ModelEntry) -> MapsIdentity:
        """What every npz of ``entry``'s model depends on besides the image: its identity and revision,
        preprocessing, methods, per-head or fused-only, the statistics it holds (older files without them
        are recomputed), its targets and query-patch rows' layers."""
        details = {"revision": entry.revision, "architecture": entry.architecture,
                   "preprocessing": entry.preprocessing, "statistics": list(entry.statistics),
                   "forward_batch": forward_batch(entry)}  # passes of another shape may differ in the last digits
        targets = (entry.target_kind, *entry.targets) if entry.targets else None
        return cls(entry.checkpoint, entry.weights, entry.methods, entry.per_head, entry.query_layers, targets,
                   entry.feature_layers, details)

    def to_json(self) -> dict:
        """The identity as JSON (``model.json``'s ``request``; hashed, with the image, for ``cache_key``)."""
        identity = {
            "checkpoint": self.checkpoint,
            "weights": self.weights,
            "methods": None if self.methods is None else list(self.methods),
            "per_head": self.per_head,
            "library": ssl_attention.__version__,
            "format": FORMAT_VERSION,
            **self.details,
        }
        if self.query_layers:
            identity["query_layers"] = self.query_layers if isinstance(self.query_layers, str) \
                else list(self.query_layers)
        if self.feature_layers:
            identity["feature_layers"] = self.feature_layers if isinstance(self.feature_layers, str) \
                else list(self.feature_layers)
        if self.targets:
            identity["targets"] = self.targets if isinstance(self.targets, dict) else list(self.targets)
        return identity

    def key(self, image_sha256: str) -> str:
        """The cache key of one image's npz: this identity and the image's bytes, hashed."""
        identity = {**self.to_json(), "image": image_sha256}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def image_identity(sha256: str, boxes: tuple, kind: str) -> str:
    """What an npz depends on of its image: its bytes, and for a ViT with boxes also the boxes (their
    ``box_similarity``); a CNN's or a box-less image's is its bytes' digest alone."""
    if kind != "vit" or not boxes:
        return sha256
    text = json.dumps([sha256, [[b.x, b.y, b.w, b.h, b.label] for b in boxes]])
    return hashlib.sha256(text.encode()).hexdigest()


def cache_key(image_sha256: str, model_entry: ModelEntry) -> str:
    """What a cached map depends on: the image's bytes and its model's entry (see ``MapsIdentity``)."""
    return MapsIdentity.of_entry(model_entry).key(image_sha256)


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
