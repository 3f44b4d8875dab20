"""What runs on the Ray workers of ``atlas build --ray``: the model-holding actor and the images check.

Nothing here writes files: every result goes back to the driver as a ``ComputedBatch``, and the driver
hands it to the model's sink (see ``atlas.models.ray_stage``). A job is one batch exactly as a local build
would form it, computed by the local build's ``compute_batch``, so the same images meet in the same
forward pass and the maps are the same bytes. Errors are returned as one-line values, not raised, so the
driver skips a model with the same line a local build prints (Ray would wrap them).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from atlas.dataset.stage import ImageRecord
from atlas.models.plan import Recipe
from atlas.models.sink import ComputedBatch
from atlas.models.targets import set_targets, wants_targets
from ssl_attention.errors import describe_error
from ssl_attention.models import ModelRequest


@dataclass(frozen=True)
class LoadOptions:
    """How the workers load a model (the build's ``--weights``, ``--image-size``, ``--device``)."""

    weights: str
    image_size: tuple[int, int] | None
    device: str  # "auto" picks the actor's GPU when Ray gave it one
    resize: str = "squash"  # --resize
    max_tokens: int = 2048  # --max-tokens


@dataclass(frozen=True)
class Job:
    """One batch: (image record, cache key, the image's bytes or None to read ``record.path``) in batch order."""

    items: tuple[tuple[ImageRecord, str, bytes | None], ...]


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

    def __init__(self, request: ModelRequest, load: LoadOptions, recipe: Recipe) -> None:
        from atlas.models.aspect import resize_model
        from atlas.models.compute import pick_device
        from ssl_attention.models import load_model

        self.recipe, self.error = recipe, None
        try:
            self.device = pick_device(load.device)
            self.model = load_model(request, weights=request.weights or load.weights, device=str(self.device),
                                    image_size=load.image_size, explain=wants_targets(recipe.methods))
            self.model = resize_model(self.model, load.resize, load.max_tokens)[0]  # the driver said the line
            if wants_targets(recipe.methods):  # the driver's targets: it checked them already
                set_targets(self.model, recipe.targets, list(recipe.labels))
        except Exception as exc:  # said by the driver: this model is skipped
            self.error = f"cannot load on {socket.gethostname()} ({describe_error(exc)})"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Ray Data batch of jobs -> the same rows with each job's pickled ``ComputedBatch``."""
        results = [pickle.dumps(self.run(pickle.loads(payload))) for payload in batch["payload"]]
        return {"index": batch["index"], "payload": np.array(results, dtype=object)}

    def run(self, job: Job) -> ComputedBatch:
        """One batch: its maps, the images that could not be read, this worker and the time it took."""
        from atlas.models.compute import compute_batch

        started = time.perf_counter()
        if self.error is not None:
            return ComputedBatch(worker=worker_name(), error=self.error)
        try:
            batch = compute_batch(self.model, job.items, self.recipe, self.device)
        except Exception as exc:  # forward pass, hook or non-finite maps: this model only
            return ComputedBatch(worker=worker_name(), error=f"computing its maps failed ({describe_error(exc)})")
        return replace(batch, worker=worker_name(), seconds=time.perf_counter() - started)
