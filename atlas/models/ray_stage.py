"""The models stage's Ray executor (``atlas build --ray ADDRESS``): the same maps, computed by actors.

It is given the plan's jobs, each with its entry (``atlas.models.stage`` takes it from ``model.json``, else
loads the model once on the driver's CPU), and a sink per job. Per job: the images still to compute split
into the batches a local build would make, then a Ray Data pipeline
``from_items(batches).map_batches(MapsActor, batch_size=1, compute=ActorPoolStrategy(1, slots))``: an actor pool
whose actors each hold the model on one GPU (or ``--ray-cpus`` CPUs). One row is one local batch, so
the same images meet in the same forward pass and the maps are byte-identical to a local build. Models
run side by side, one driver thread each, as far as the cluster has room (its actor slots shared
between the models running at once).

Each batch comes back as a typed ``ComputedBatch`` and goes to the job's sink on the driver, the local
build's (``atlas.models.sink``: OUT stays on the driver), as results stream in: a killed driver leaves a
cache the next run resumes from. A killed worker is Ray Data's to handle: it restarts the actor
(``max_restarts=-1``) and retries its batches (``max_task_retries=-1``).
"""

from __future__ import annotations

import pickle
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from atlas.dataset.stage import ImageRecord
from atlas.models.plan import ModelJob, ModelMaps
from atlas.models.ray_cluster import ClusterShape, Placement, connected, image_placement
from atlas.models.ray_worker import Job, LoadOptions, MapsActor
from atlas.models.sink import ComputedBatch, MapsSink

_STOPPING = threading.Event()  # the build was interrupted: keep every map written (a rerun resumes)


class _Failed(Exception):
    """A model failed on the cluster (the line says why); its sink rolls back."""


class RayExecutor:
    """Computes jobs on the cluster of ``--ray`` (the build's options: ``ray``, ``ray_cpus``, ``batch_size``
    and how the workers load a model), saying its lines on ``console``."""

    def __init__(self, options, console: Console) -> None:
        self.options, self.console = options, console
        self.throughput = _Throughput()
        self.shape: ClusterShape | None = None

    @contextmanager
    def connected(self) -> Iterator[RayExecutor]:
        """Connected to the cluster for the block (one line on its shape)."""
        _STOPPING.clear()
        with connected(self.options.ray, self.options.ray_cpus) as shape:
            self.shape = shape
            self.console.print(escape(shape.line()), highlight=False)
            yield self

    def run(self, jobs: list[ModelJob], images: list[ImageRecord],
            open_sink: Callable[[ModelJob], MapsSink]) -> list[ModelMaps | str]:
        """Compute ``jobs`` (each with its entry and images to compute), each into ``open_sink(job)``: per
        job its maps, or the line saying why it failed (its new maps removed)."""
        placement = image_placement(images) if jobs else None
        if placement is not None:
            self.console.print(escape(placement.line), highlight=False)
        options = self.options
        load = LoadOptions(options.weights, options.image_size, options.device, options.resize, options.max_tokens)
        at_once = max(1, min(len(jobs), self.shape.slots))
        pool = ThreadPoolExecutor(max_workers=at_once)
        try:
            futures = [pool.submit(self._compute, job, open_sink, self.shape.slots // at_once, placement, load)
                       for job in jobs]
            return [future.result() for future in futures]
        except BaseException:  # Ctrl-C: the maps written so far stay (a rerun resumes), Ray is left at once
            _STOPPING.set()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _compute(self, job: ModelJob, open_sink: Callable[[ModelJob], MapsSink], actors: int,
                 placement: Placement, load: LoadOptions) -> ModelMaps | str:
        """Stream the job's batches through a pool of up to ``actors`` actors into its sink."""
        dataset = self._dataset(job, actors, placement, load)
        try:
            with open_sink(job) as sink:
                error = self._stream(dataset, sink)
                if error is not None and not _STOPPING.is_set():  # a failed model leaves none of its new maps
                    raise _Failed(error)
                return sink.finish()
        except _Failed as failed:
            return str(failed)
        except Exception as exc:  # a map that could not be written
            return _pipeline_failed(exc)

    def _dataset(self, job: ModelJob, actors: int, placement: Placement, load: LoadOptions):
        """The Ray Data pipeline of the job's batches (the images shipped when the workers cannot read them)."""
        import ray

        rows = []
        for index, batch in enumerate(job.batches(self.options.batch_size)):
            items = tuple((record, key, None if placement.shared else record.path.read_bytes())
                          for record, key in batch)
            rows.append({"index": index, "payload": pickle.dumps(Job(items))})
        return ray.data.from_items(rows).map_batches(
            MapsActor, batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, actors)),
            fn_constructor_kwargs={"request": job.request, "load": load, "recipe": job.recipe},
            **self.shape.actor_resources,
        )

    def _stream(self, dataset, sink: MapsSink) -> str | None:
        """Hand each batch to the sink as it arrives; the line saying why the model failed, or None."""
        try:
            for row in dataset.iter_rows():
                batch: ComputedBatch = pickle.loads(row["payload"])
                if batch.error is not None:
                    return batch.error
                _take(sink, batch, self.throughput)
        except Exception as exc:  # the pipeline itself failed (e.g. no actor could start)
            return _pipeline_failed(exc)
        return None


def _pipeline_failed(exc: Exception) -> str:
    return f"the Ray pipeline failed ({' '.join(str(exc).split())[:300]})"


def _take(sink: MapsSink, batch: ComputedBatch, throughput: _Throughput) -> None:
    """Hand one batch to the model's sink (written and rendered while the cluster computes the next
    batches) and count the worker's images."""
    sink.take(batch)
    throughput.add(sink.job.entry.name, batch.worker, batch.images, batch.seconds)
class _Throughput:
    """Images and busy seconds per (model, worker), gathered from the results as they arrive."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
        self.lock = threading.Lock()

    def add(self, model: str, worker: str, images: int, seconds: float) -> None:
        with self.lock:
            count = self.counts[(model, worker)]
            count[0] += images
            count[1] += seconds

    def rows(self) -> list[dict]:
        """One row per (model, worker): images, busy seconds and images/s."""
        return [{"model": model, "worker": worker, "images": int(images), "seconds": round(seconds, 3),
                 "images_per_s": round(images / seconds, 2) if seconds else None}
                for (model, worker), (images, seconds) in sorted(self.counts.items())]

    def print(self, console) -> None:
        """The per-worker table at the end of the stage."""
        if not self.counts:
            return
        table = Table(title="Ray workers (images/s while computing)", title_justify="left")
        for column in ("model", "worker", "images", "images/s"):
            table.add_column(column)
        for row in self.rows():
            table.add_row(escape(row["model"]), escape(row["worker"]), str(row["images"]),
                          f"{row['images_per_s']:.1f}" if row["images_per_s"] else "-")
        console.print(table)
