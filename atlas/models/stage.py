"""The models stage of a build: each requested model's maps, from the cache or computed.

Plan, executor, sink: each requested model gets a job (``atlas.models.plan``: what is cached, what to
compute and how) before any model runs; the local executor (``atlas.models.compute``) or the Ray one
(``atlas.models.ray_stage``) computes its batches and hands them to the job's sink (``atlas.models.sink``),
which writes, renders, counts and rolls back. This module makes the jobs and says each model's lines.

A model whose maps are all cached is not loaded (its entry is remembered in ``maps/<model>/model.json``).
Whatever goes wrong with one model (it cannot be loaded, lacks every requested method, fails in its
forward pass) skips that model with one line, unless it is the build's only model: then it is an error.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from atlas.core.build_dir import BuildDir
from atlas.core.manifest import ModelEntry
from atlas.core.query_layers import resolve_query_layers
from atlas.core.wording import count
from atlas.dataset.stage import ImageRecord
from atlas.models.aspect import capped_lines, resize_model
from atlas.models.compute import compute_model_maps
from atlas.models.entry_cache import save_entry
from atlas.models.plan import MapsOptions, ModelJob, ModelMaps, plan_job
from atlas.models.sink import MapsSink
from atlas.models.targets import set_targets, wants_targets
from atlas.site.render import PairRenderer
from ssl_attention.errors import AtlasError, ModelLoadError, RandomWeightsWarning, UnsupportedError, describe_error
from ssl_attention.maps import unsupported_reason
from ssl_attention.methods import target_methods
from ssl_attention.models import ModelRequest, load_model
from ssl_attention.models.base import VisionModel
from ssl_attention.skips import Skip


class ModelStage:
    """Plans the jobs of a build's models and runs them, one model at a time here or side by side on Ray."""

    def __init__(self, options, images: list[ImageRecord], device: torch.device, console: Console,
                 progress: Progress, skip: Callable[[Skip], None], render: PairRenderer | None = None) -> None:
        self.options, self.images, self.device = options, images, device
        self.render = render  # sprite sheets encoded as the maps are written (None: left to the site stage)
        self.console, self.progress, self.skip = console, progress, skip
        self.maps_dir = BuildDir(options.out).maps
        self.failed: list[str] = []  # one line per model that could not be built
        labels = tuple(sorted({box.label for record in images for box in record.boxes}))
        self.plan_options = MapsOptions(options.weights, options.image_size, options.methods, options.per_head,
                                        options.query_layers or "none", options.targets, labels,
                                        resize=options.resize, max_tokens=options.max_tokens,
                                        feature_spec=options.feature_layers or "none")
        self.said: dict[str, set[str]] = {}  # model -> methods whose absence was already said
        self.workers: list[dict] = []  # with --ray: images/s per model and worker

    def all_maps(self) -> list[ModelMaps | None]:
        """Every requested model's maps in order (None where skipped): here, or on Ray with ``--ray``."""
        if self.options.ray:
            return self.ray_maps()
        return [self.maps_of(job) for job in [self.plan(request) for request in self.options.requests]]

    def plan(self, request: ModelRequest) -> ModelJob:
        """The job of one model before it is loaded (its entry if ``model.json`` remembers it)."""
        return plan_job(request, self.plan_options, self.images, self.maps_dir)

    def maps_of(self, job: ModelJob) -> ModelMaps | None:
        """The maps of one model: from the cache without loading it when all are there, else computed here."""
        if job.all_cached:
            return self.finish(job, job.reused(), cached=True)
        return self.compute(job)

    def entry_of(self, model: VisionModel) -> ModelEntry | None:
        """The manifest entry of a loaded model: its methods (pointed at the build's targets) and query
        layers; None if it was skipped (one line)."""
        methods = self.methods_to_compute(model)
        if methods is not None:
            methods = self.explain(model, methods)
        if methods is None:
            return None
        return ModelEntry.of_model(model, methods, self.plan_options.per_head, self.query_layers_of(model),
                                   self.feature_layers_of(model))

    def compute(self, job: ModelJob) -> ModelMaps | None:
        """Load the model and compute its maps (reusing those already cached); None if it was skipped."""
        model = self.load(job.request)
        if model is None:
            return None
        try:
            job = self.resolve(job, model)
            if job is None:
                return None
            try:
                result = compute_model_maps(model, job, self.sink(job), batch_size=self.options.batch_size,
                                            device=self.device)
            except Exception as exc:  # forward pass, hook or non-finite maps: this model only (its new maps removed)
                self.failed_model(job.request.name, f"computing its maps failed ({describe_error(exc)})", AtlasError)
                return None
        finally:
            del model
            _free(self.device)
        return self.finish(job, result, cached=False)

    def ray_maps(self) -> list[ModelMaps | None]:
        """Every model's maps computed on the Ray cluster of ``--ray`` (``atlas.models.ray_stage``), models
        side by side; each model's lines are held and said after, in ``--model`` order, as here."""
        from atlas.models.ray_stage import RayExecutor

        held = [self.holding() for _ in self.options.requests]
        executor = RayExecutor(self.options, self.console)
        with executor.connected():
            jobs = [stage.ray_job(request) for (stage, _), request in zip(held, self.options.requests, strict=True)]
            work = [job for job in jobs if _computes(job)]
            outcomes = iter(executor.run(work, self.images, lambda job: self.sink(job, " on Ray")))
        results = [self.say_held(stage, lines, job, next(outcomes) if _computes(job) else None)
                   for (stage, lines), job in zip(held, jobs, strict=True)]
        self.workers = executor.throughput.rows()
        executor.throughput.print(self.console)
        return results

    def holding(self) -> tuple[ModelStage, list[Skip]]:
        """A stage for one model whose lines wait in the list returned with it (said by ``say_held``)."""
        lines: list[Skip] = []
        return ModelStage(self.options, self.images, self.device, self.console, self.progress, lines.append,
                          self.render), lines

    def ray_job(self, request: ModelRequest) -> ModelJob | None:
        """The job of one model for the cluster, with its entry: remembered in ``model.json``, else from
        loading the model once here, on the driver's CPU (the same lines as here); None if skipped."""
        job = self.plan(request)
        if job.entry is not None:
            return job
        model = self.load(request)
        if model is None:
            return None
        try:
            return self.resolve(job, model)
        finally:
            del model
            gc.collect()

    def say_held(self, held: ModelStage, lines: list[Skip], job: ModelJob | None,
                 outcome: ModelMaps | str | None) -> ModelMaps | None:
        """Say one model's held lines (``holding``) in order and hand over its maps (None where skipped):
        ``outcome`` is what the cluster computed, or why it failed (None: nothing to compute)."""
        try:
            if isinstance(outcome, str):
                held.failed_model(job.request.name, outcome, AtlasError)
                return None
            if job is None:
                return None
            return held.finish(job, job.reused() if outcome is None else outcome, cached=job.all_cached)
        finally:
            for skip in lines:
                self.skip(skip)
            self.failed.extend(held.failed)

    def resolve(self, job: ModelJob, model: VisionModel) -> ModelJob | None:
        """The job of a loaded model, with the entry it gives; None if the model was skipped (one line)."""
        entry = self.entry_of(model)
        return None if entry is None else job.with_entry(entry, self.images, self.maps_dir)

    def sink(self, job: ModelJob, where: str = "") -> MapsSink:
        """Where the job's maps go (written, rendered and counted on the model's progress bar)."""
        entry = job.entry
        task = self.progress.add_task(f"{entry.name} ({', '.join(entry.methods)}){where}", total=len(self.images))
        return MapsSink(job, self.maps_dir, self.render, lambda n: self.progress.advance(task, n))

    def finish(self, job: ModelJob, result: ModelMaps, cached: bool) -> ModelMaps:
        """Say the model's lines once its maps are there (``cached``: none computed, the model not loaded for
        them) and remember its entry beside them."""
        self.announce(job.entry)
        if cached:
            task = self.progress.add_task(f"{job.entry.name} (cached, model not loaded)", total=len(self.images))
            self.progress.advance(task, len(self.images))
        else:
            save_entry(self.maps_dir, job.identity, job.entry)
        self.note_unsupported(job.entry)
        for image_id, line in capped_lines(job.entry, self.images):
            self.skip(Skip("resize", f"image {image_id}", line))
        return result

    @property
    def query_spec(self) -> str:
        """The build's canonical ``--query-layers`` value."""
        return self.plan_options.query_spec

    def query_layers_of(self, model: VisionModel) -> tuple[int, ...]:
        """The layers of ``model`` whose query-patch rows are exported; named layers it lacks: one line."""
        layers, lacking = resolve_query_layers(self.query_spec, model.layers if model.kind == "vit" else 0)
        if lacking:
            self.skip(Skip("query", f"model {model.name}", f"--query-layers {self.query_spec}: it has layers "
                           f"0-{model.layers - 1}, no query rows for layer {', '.join(map(str, lacking))}"))
        return layers

    def feature_layers_of(self, model: VisionModel) -> tuple[int, ...]:
        """The layers of ``model`` whose patch features are exported; named layers it lacks: one line."""
        spec = self.plan_options.feature_spec
        layers, lacking = resolve_query_layers(spec, model.layers if model.kind == "vit" else 0)
        if lacking:
            self.skip(Skip("features", f"model {model.name}", f"--feature-layers {spec}: it has layers "
                           f"0-{model.layers - 1}, no features for layer {', '.join(map(str, lacking))}"))
        return layers

    def load(self, request: ModelRequest) -> VisionModel | None:
        """Load one model; a checkpoint that cannot be loaded is skipped (one line) so the others still run."""
        options = self.options
        try:
            with warnings.catch_warnings():  # announce() says it, in the build's words
                warnings.simplefilter("ignore", RandomWeightsWarning)
                model = load_model(request, weights=request.weights or options.weights, device=str(self.device),
                                   image_size=options.image_size, explain=wants_targets(options.methods))
            return self.resized(model)
        except ModelLoadError as exc:
            self.load_failed(request, exc)
        except Exception as exc:  # a checkpoint the libraries accept but cannot build
            self.failed_model(request.name, f"{request.checkpoint}: cannot load ({describe_error(exc)})")
        return None

    def resized(self, model: VisionModel) -> VisionModel:
        """``model`` with the build's ``--resize`` (``atlas.models.aspect``); a model that cannot keep the
        aspect is built squashed, with one line."""
        model, line = resize_model(model, self.options.resize, self.options.max_tokens)
        if line:
            self.skip(Skip("resize", f"model {model.name}", line))
        return model

    def load_failed(self, request: ModelRequest, exc: ModelLoadError) -> None:
        """A checkpoint the loader refused: skipped (one line, in the report), or raised if it is the only model."""
        if len(self.options.requests) == 1:
            raise exc
        self.failed.append(str(exc))
        self.skip(Skip("models", f"model {request.name}", str(exc)))

    def failed_model(self, name: str, reason: str, error: type[AtlasError] = ModelLoadError) -> None:
        """A model that cannot be built: skipped (one line, in the report), or ``error`` if it is the only one."""
        skip = Skip("models", f"model {name}", reason)
        if len(self.options.requests) == 1:
            raise error(skip.line)
        self.failed.append(skip.line)
        self.skip(skip)

    def methods_to_compute(self, model: VisionModel) -> tuple[str, ...] | None:
        """The requested methods this model supports (all it supports when none was requested); None
        (skipped, one line) if it supports none of them.

        The only model of a build that supports none of them is an error.
        """
        requested = self.options.methods
        if requested is None:
            return model.methods
        chosen = tuple(m for m in requested if m in model.methods)
        if chosen:
            return chosen
        reasons = "; ".join(dict.fromkeys(unsupported_reason(model.capabilities, m) for m in requested))
        self.failed_model(f"{model.name} ({model.architecture}) does not support {' or '.join(requested)}",
                          f"{reasons}; it offers {', '.join(model.methods)}", UnsupportedError)
        return None

    def explain(self, model: VisionModel, methods: tuple[str, ...]) -> tuple[str, ...] | None:
        """Point the gradient methods at the build's targets; without targets (e.g. no tokenizer offline)
        they are dropped with one line, and a model left with nothing is skipped (None)."""
        gradient = [m for m in methods if m in target_methods()]
        if not gradient:
            return methods
        try:
            set_targets(model, self.plan_options.targets, list(self.plan_options.labels))
            return methods
        except UnsupportedError as exc:
            rest = tuple(m for m in methods if m not in gradient)
            self.said[model.name] = set(gradient)
            if not rest:
                self.failed_model(model.name, f"{' and '.join(gradient)} not computed ({exc})", UnsupportedError)
                return None
            self.skip(Skip("methods", f"model {model.name}",
                           f"{' and '.join(gradient)} not computed ({exc}); computing {', '.join(rest)}"))
            return rest

    def note_unsupported(self, entry: ModelEntry) -> None:
        """One line (kept in the report) naming the requested methods a model computed without."""
        said = self.said.get(entry.name, set())
        missing = [m for m in self.options.methods or () if m not in entry.methods and m not in said]
        if missing:
            reasons = "; ".join(f"{m} not computed ({unsupported_reason(entry.capabilities, m)})" for m in missing)
            self.skip(Skip("methods", f"model {entry.name}", f"{reasons}; computing {', '.join(entry.methods)}"))

    def announce(self, entry: ModelEntry) -> None:
        """One line on the model (checkpoint, architecture, token layout) and a warning for random weights."""
        grid = f"grid {entry.grid[0]}x{entry.grid[1]}"
        if entry.resize == "keep":  # --resize keep: the grid of a square image; each image has its own
            grid = f"aspect kept, a grid per image ({grid} for a square one)"
        layout = (f"{count(entry.layers, 'layer')} x {count(entry.heads, 'head')}, {grid}, "
                  f"{count(entry.prefix_tokens, 'prefix token')}" if entry.kind == "vit"
                  else f"{count(entry.layers, 'stage')}, {grid}")
        what = f"{entry.checkpoint} ({entry.architecture}; {layout})"
        self.console.print(f"[bold]{escape(entry.name)}[/]: {escape(what)}", highlight=False)
        if entry.random:
            self.console.print(
                f"[bold red]WARNING[/] {escape(entry.name)}: {escape(entry.note or 'RANDOM weights')} - "
                "its maps are meaningless and are labelled as such", highlight=False,
            )


def _computes(job: ModelJob | None) -> bool:
    """Whether a planned job has maps to compute."""
    return job is not None and not job.all_cached


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
