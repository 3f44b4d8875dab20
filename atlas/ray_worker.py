"""What runs on the Ray workers of ``atlas build --ray``: the model-holding actor and the images check.

Nothing here writes files: every result goes back to the driver, which writes the cache (see
``atlas.ray_stage``). A job is one batch as a local build would form it, computed by the local build's
``batch_maps`` (forward passes of a fixed shape), so the maps are the same bytes. Errors are returned as
one-line values, not raised, so the driver skips a model with the same line a local build prints (Ray
would wrap them).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atlas.dataset import ImageRecord
from atlas.targets import TargetOptions, set_targets, wants_targets
from ssl_attention.errors import AtlasError, describe_error
from ssl_attention.images import load_image
from ssl_attention.models import ModelRequest


@dataclass(frozen=True)
class LoadOptions:
    """How the workers load a model (the build's ``--weights``, ``--image-size``, ``--device``)."""

    weights: str
    image_size: tuple[int, int] | None
    device: str  # "auto" picks the actor's GPU when Ray gave it one


@dataclass(frozen=True)
class Job:
    """One batch: (image record, cache key, the image's bytes or None to read ``record.path``) in batch order."""

    items: tuple[tuple[ImageRecord, str, bytes | None], ...]


class _NamedBytes(io.BytesIO):
    """Shipped image bytes that name their file in error messages, as a path would."""

    def __init__(self, data: bytes, path: Path) -> None:
        super().__init__(data)
        self.path = path

    def __str__(self) -> str:
        return str(self.path)


def worker_name() -> str:
    """This worker process as ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def sees_images(paths: list[str], sha256: str) -> bool:
    """Whether this node reads the build's images at the driver's paths: all exist, the first has the same bytes."""
    try:
        if not all(os.path.isfile(p) for p in paths):
            return False
        return hashlib.sha256(Path(paths[0]).read_bytes()).hexdigest() == sha256
    except OSError:
        return False


class MapsActor:
    """Holds one model on its device; each call computes whole batches (Ray Data ``map_batches`` rows)."""

    def __init__(self, request: ModelRequest, load: LoadOptions, methods: tuple[str, ...],
                 per_head: bool | None, query_layers: tuple[int, ...] = (),
                 targets: tuple[TargetOptions, list[str]] | None = None) -> None:
        from atlas.compute import pick_device
        from ssl_attention.models import load_model

        self.methods, self.per_head, self.query_layers, self.error = methods, per_head, query_layers, None
        try:
            self.device = pick_device(load.device)
            self.model = load_model(request, weights=load.weights, device=str(self.device),
                                    image_size=load.image_size, explain=wants_targets(methods))
            if targets is not None and wants_targets(methods):
                set_targets(self.model, *targets)  # the driver's targets: it checked them already
        except Exception as exc:  # said by the driver: this model is skipped
            self.error = f"cannot load on {socket.gethostname()} ({describe_error(exc)})"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Ray Data batch of jobs -> the same rows with each job's pickled result."""
        results = [pickle.dumps(self.run(pickle.loads(payload))) for payload in batch["payload"]]
        return {"index": batch["index"], "payload": np.array(results, dtype=object)}

    def run(self, job: Job) -> dict:
        """One batch: its maps as (path relative to maps/, arrays, meta), skipped images, worker and time."""
        from atlas.compute import batch_maps

        started = time.perf_counter()
        if self.error is not None:
            return {"error": self.error, "worker": worker_name()}
        loaded, skipped = [], []
        for record, key, data in job.items:
            try:
                image = load_image(record.path if data is None else _NamedBytes(data, record.path))
                loaded.append((record, key, image))
            except AtlasError as exc:  # the file changed since the dataset stage
                skipped.append(str(exc))
        try:
            maps = batch_maps(self.model, loaded, self.methods, self.per_head, self.device, self.query_layers)
        except Exception as exc:  # forward pass, hook or non-finite maps: this model only
            return {"error": f"computing its maps failed ({describe_error(exc)})", "worker": worker_name()}
        return {"maps": maps, "skipped": skipped, "worker": worker_name(), "images": len(loaded),
                "seconds": time.perf_counter() - started}
