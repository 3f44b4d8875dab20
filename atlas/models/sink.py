"""The models stage's one sink: where both executors (local and Ray) hand a model's computed batches.

Per model, a ``MapsSink`` writes each map's npz into the cache (``atlas.models.cache.write_maps``),
with a renderer encodes the pair's sprite sheets (``atlas.site.render.PairRenderer``) and solves the
pair's earth mover's distances for the metrics stage (``atlas.metrics.emd_memo``), on ``WRITERS`` threads
while the next batch computes; it counts what was reused, computed and skipped into the model's
``ModelMaps``, and if the model fails part-way it removes every map it wrote (an interrupted build keeps
them: a rerun resumes). A file is the same bytes whichever executor computed it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from atlas.metrics.emd_memo import memo_path, presolve
from atlas.models.cache import write_maps
from atlas.models.plan import ModelJob, ModelMaps
from atlas.site.render import PairRenderer
from ssl_attention.skips import Skip

WRITERS = 2  # threads writing a model's npz files while its next batch computes


@dataclass(frozen=True)
class ComputedBatch:
    """One batch as an executor hands it to the sink (a Ray worker returns it to the driver)."""

    maps: tuple[tuple[str, dict[str, np.ndarray], dict], ...] = ()  # (npz path relative to maps/, arrays, meta)
    skipped: tuple[str, ...] = ()  # one line per image that could not be read
    worker: str = ""  # host:pid of the Ray worker that computed it
    seconds: float = 0.0  # how long the worker took
    error: str | None = None  # why the model failed (Ray: said by the driver, which skips the model)

    @property
    def images(self) -> int:
        """How many images the batch computed."""
        return len(self.maps)


class MapsSink:
    """Writes, renders and counts one model's maps; removes the new ones if the model fails part-way.

    Used as a context manager around the executor's loop: leaving it with an exception (other than an
    interruption) rolls back.
    """

    def __init__(self, job: ModelJob, maps_dir: Path, render: PairRenderer | None = None,
                 advance: Callable[[int], None] = lambda n: None) -> None:
        self.job, self.maps_dir, self.render, self.advance = job, maps_dir, render, advance
        self.result = job.reused()
        self.records = {record.id: record for record, _ in job.todo}  # the boxes and size of each image
        self.pending: list[Future] = []
        self.written: list[str] = []  # npz paths written by this sink (removed on a roll back)
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="atlas-npz")

    def __enter__(self) -> MapsSink:
        self.advance(self.result.reused)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        wait(self.pending)
        if error is not None and not isinstance(error, KeyboardInterrupt):
            self.roll_back()
        self.pool.shutdown()

    def take(self, batch: ComputedBatch) -> None:
        """Hand over one computed batch: its maps are written (and rendered) on the writer threads."""
        self.result.skipped.extend(Skip("compute", self.job.entry.name, line) for line in batch.skipped)
        self.pending += [self.pool.submit(self._write, *item) for item in batch.maps]
        self.advance(batch.images + len(batch.skipped))

    def _write(self, rel: str, arrays: dict[str, np.ndarray], meta: dict) -> tuple[str, str]:
        """Write one image's npz (atomically), render it and solve its EMDs; returns (image id, path relative
        to maps/)."""
        write_maps(self.maps_dir / rel, arrays, meta)
        with self.lock:
            self.written.append(rel)
        if self.render is not None:
            self.render(self.job.entry, meta["image"], arrays, self.maps_dir / rel)
        record = self.records.get(meta["image"])
        if record is not None:
            presolve(self.job.entry, arrays, record.boxes, (record.width, record.height), self.maps_dir / rel)
        return meta["image"], rel

    def finish(self) -> ModelMaps:
        """The model's maps once every write is done (a failed write raises here)."""
        for future in self.pending:
            image_id, rel = future.result()
            self.result.maps[image_id] = rel
            self.result.computed += 1
        self.pending = []
        return self.result

    def roll_back(self) -> None:
        """Remove every map this sink wrote (a model that fails part-way leaves none of its new maps)."""
        wait(self.pending)
        with self.lock:
            for rel in self.written:
                (self.maps_dir / rel).unlink(missing_ok=True)
                memo_path(self.maps_dir / rel).unlink(missing_ok=True)
