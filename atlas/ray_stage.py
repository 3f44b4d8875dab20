"""The models stage on a Ray cluster (``atlas build --ray ADDRESS``): the same maps, computed by actors.

Per model: its entry (from ``model.json`` when cached, else loaded once on the driver's CPU), the images
still to compute split into the batches a local build would make (``--batch-size``), then a Ray Data
pipeline ``from_items(batches).map_batches(MapsActor, batch_size=1, compute=ActorPoolStrategy(1, slots))``:
an actor pool whose actors each hold the model on one GPU (or ``--ray-cpus`` CPUs). One row is one local
batch; its forward passes have the fixed shape of a local build's (``atlas.compute.fixed_shape_maps``), so
the maps are byte-identical to a local build whatever images share a row. Models run side by side, one
driver thread each, as far as the cluster has room (its actor slots shared between the models running at
once).

The driver writes every npz with ``atlas.cache.write_maps`` as results stream in (OUT stays on the
driver): a killed driver leaves a cache the next run resumes from. A killed worker is Ray Data's to
handle: it restarts the actor (``max_restarts=-1``) and retries its batches (``max_task_retries=-1``).
Skip lines are said per model in the order of ``--model``, as a local build says them.
"""

from __future__ import annotations

import gc
import pickle
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from rich.markup import escape
from rich.table import Table

from atlas.cache import write_maps
from atlas.compute import ModelMaps, reuse_cached_maps
from atlas.manifest import ModelEntry
from atlas.model_cache import cached_entry, save_entry
from atlas.ray_cluster import ClusterShape, Placement, connected, image_placement
from atlas.ray_worker import Job, LoadOptions, MapsActor
from ssl_attention.errors import AtlasError
from ssl_attention.models import ModelRequest
from ssl_attention.skips import Skip

_STOPPING = threading.Event()  # the build was interrupted: keep every map written (a rerun resumes)


@dataclass
class _Model:
    """One requested model on its way through the Ray stage."""

    request: ModelRequest
    stage: object  # a ModelStage whose skip lines wait in ``skips`` (said in --model order)
    skips: list[Skip] = field(default_factory=list)
    identity: dict = field(default_factory=dict)
    entry: ModelEntry | None = None
    result: ModelMaps | None = None
    cached: bool = False  # every map was cached: the model was not loaded
    error: str | None = None  # why computing failed (its new maps are removed)
    new: list[str] = field(default_factory=list)  # npz paths written by this run


def ray_maps(stage) -> list[ModelMaps | None]:
    """Every requested model's maps (None where skipped), in ``--model`` order, computed on the cluster.

    ``stage`` is the build's ``ModelStage``: its options, images, console, progress and skip are used,
    its ``failed`` list is filled, and ``stage.workers`` gets the per-worker throughput rows.
    """
    options = stage.options
    _STOPPING.clear()
    models = []
    for request in options.requests:
        model = _Model(request, None)
        model.stage = type(stage)(options, stage.images, stage.device, stage.console, stage.progress,
                                  model.skips.append)
        models.append(model)
    with connected(options.ray, options.ray_cpus) as shape:
        stage.console.print(escape(shape.line()), highlight=False)
        for model in models:
            _find_entry(model, options)
        todo = [m for m in models if m.entry is not None and not m.cached]
        placement = image_placement(stage.images) if todo else None
        if placement is not None:
            stage.console.print(escape(placement.line), highlight=False)
        throughput = _Throughput()
        load = LoadOptions(options.weights, options.image_size, options.device)
        at_once = max(1, min(len(todo), shape.slots))
        pool = ThreadPoolExecutor(max_workers=at_once)
        try:
            jobs = [pool.submit(_compute, m, stage, shape.slots // at_once, shape, placement, load, throughput)
                    for m in todo]
            for future in jobs:
                future.result()
        except BaseException:  # Ctrl-C: the maps written so far stay (a rerun resumes), Ray is left at once
            _STOPPING.set()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    results = [_finish(model, stage) for model in models]
    stage.workers = throughput.rows()
    throughput.print(stage.console)
    return results


def _find_entry(model: _Model, options) -> None:
    """The model's entry: remembered in ``model.json``, else from loading it once here, on the driver's CPU
    (the local build's loader: the same skip lines)."""
    request, stage = model.request, model.stage
    model.identity = stage.identity_of(request)
    entry = cached_entry(stage.maps_dir, request, model.identity)
    if entry is None:
        loaded = stage.load(request)
        if loaded is None:
            return
        entry = stage.entry_of(loaded)
        del loaded
        gc.collect()
        if entry is None:
            return
    model.entry = entry
    model.result, todo = reuse_cached_maps(entry, stage.images, stage.maps_dir)
    model.cached = not todo


def _compute(model: _Model, stage, actors: int, shape: ClusterShape, placement: Placement, load: LoadOptions,
             throughput: _Throughput) -> None:
    """Stream the model's batches through a pool of up to ``actors`` actors; write each map as it arrives."""
    import ray

    options, entry, result = stage.options, model.entry, model.result
    _, todo = reuse_cached_maps(entry, stage.images, model.stage.maps_dir)
    task = stage.progress.add_task(f"{entry.name} ({', '.join(entry.methods)}) on Ray", total=len(stage.images))
    stage.progress.advance(task, result.reused)
    if not todo:
        return
    rows = []
    for index, start in enumerate(range(0, len(todo), options.batch_size)):
        items = tuple((record, key, None if placement.shared else record.path.read_bytes())
                      for record, key in todo[start:start + options.batch_size])
        rows.append({"index": index, "payload": pickle.dumps(Job(items))})
    dataset = ray.data.from_items(rows).map_batches(
        MapsActor, batch_size=1, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, actors)),
        fn_constructor_kwargs={"request": model.request, "load": load, "methods": entry.methods,
                               "per_head": options.per_head, "query_layers": entry.query_layers,
                               "targets": (stage.targets, stage.labels)},
        **shape.actor_resources,
    )
    try:
        for row in dataset.iter_rows():
            answer = pickle.loads(row["payload"])
            if "error" in answer:
                model.error = answer["error"]
                break
            _take(model, answer, throughput)
            stage.progress.advance(task, len(answer["maps"]) + len(answer["skipped"]))
    except Exception as exc:  # the pipeline itself failed (e.g. no actor could start)
        model.error = f"the Ray pipeline failed ({' '.join(str(exc).split())[:300]})"
    if model.error is not None and not _STOPPING.is_set():  # a failed model leaves none of its new maps
        for rel in model.new:
            (model.stage.maps_dir / rel).unlink(missing_ok=True)


def _take(model: _Model, answer: dict, throughput: _Throughput) -> None:
    """Write one batch's maps into the cache (the local build's writer), encode their sprite sheets (as
    a local build does, while the cluster computes the next batches), and count the worker's images."""
    result = model.result
    for rel, arrays, meta in answer["maps"]:
        write_maps(model.stage.maps_dir / rel, arrays, meta)
        if model.stage.render is not None:
            model.stage.render(model.entry, meta["image"], arrays, model.stage.maps_dir / rel)
        result.maps[meta["image"]] = rel
        result.computed += 1
        model.new.append(rel)
    result.skipped.extend(Skip("compute", model.entry.name, line) for line in answer["skipped"])
    throughput.add(model.entry.name, answer["worker"], answer["images"], answer["seconds"])


def _finish(model: _Model, stage) -> ModelMaps | None:
    """Say the model's lines in order and hand over its maps (None where it was skipped)."""
    try:
        if model.error is not None:
            model.stage.failed_model(model.request.name, model.error, AtlasError)
            model.entry = None
        if model.entry is not None:
            model.stage.announce(model.entry)
            if model.cached:
                task = stage.progress.add_task(f"{model.entry.name} (cached, model not loaded)",
                                               total=len(stage.images))
                stage.progress.advance(task, len(stage.images))
            else:
                save_entry(model.stage.maps_dir, model.identity, model.entry)
            model.stage.note_unsupported(model.entry)
    finally:
        for skip in model.skips:
            stage.skip(skip)
        stage.failed.extend(model.stage.failed)
    return model.result if model.entry is not None else None


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
