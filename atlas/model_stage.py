"""The models stage of a build: each requested model's maps, from the cache or computed.

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

from atlas.compute import ModelMaps, compute_model_maps, reuse_cached_maps
from atlas.dataset import ImageRecord
from atlas.manifest import ModelEntry
from atlas.model_cache import cached_entry, request_identity, save_entry
from atlas.query_layers import resolve_query_layers
from atlas.render import PairRenderer
from atlas.targets import TargetOptions, set_targets, wants_targets
from atlas.wording import count
from ssl_attention.errors import AtlasError, ModelLoadError, RandomWeightsWarning, UnsupportedError, describe_error
from ssl_attention.maps import unsupported_reason
from ssl_attention.methods import target_methods
from ssl_attention.models import ModelRequest, load_model
from ssl_attention.models.base import VisionModel
from ssl_attention.skips import Skip


class ModelStage:
    """Computes (or reuses) the maps of one model at a time for a build's images."""

    def __init__(self, options, images: list[ImageRecord], device: torch.device, console: Console,
                 progress: Progress, skip: Callable[[Skip], None], render: PairRenderer | None = None) -> None:
        self.options, self.images, self.device = options, images, device
        self.render = render  # sprite sheets encoded as the maps are written (None: left to the site stage)
        self.console, self.progress, self.skip = console, progress, skip
        self.maps_dir = options.out / "maps"
        self.failed: list[str] = []  # one line per model that could not be built
        self.targets: TargetOptions = options.targets
        self.labels = sorted({box.label for record in images for box in record.boxes})
        self.said: dict[str, set[str]] = {}  # model -> methods whose absence was already said
        self.workers: list[dict] = []  # with --ray: images/s per model and worker

    def all_maps(self) -> list[ModelMaps | None]:
        """Every requested model's maps in order (None where skipped): here, or on Ray with ``--ray``."""
        if self.options.ray:
            from atlas.ray_stage import ray_maps

            return ray_maps(self)
        return [self.maps_of(request) for request in self.options.requests]

    def maps_of(self, request: ModelRequest) -> ModelMaps | None:
        """The maps of one model: from the cache without loading it when all are there, else computed."""
        identity = self.identity_of(request)
        entry = cached_entry(self.maps_dir, request, identity)
        if entry is not None:
            cached, todo = reuse_cached_maps(entry, self.images, self.maps_dir)
            if not todo:
                self.announce(entry)
                task = self.progress.add_task(f"{request.name} (cached, model not loaded)", total=len(self.images))
                self.progress.advance(task, len(self.images))
                self.note_unsupported(entry)
                return cached
        result = self.compute(request, identity)
        if result is not None:
            self.note_unsupported(result.entry)
        return result

    def identity_of(self, request: ModelRequest) -> dict:
        """What the cached maps of ``request`` depend on besides the images (``model.json``'s key)."""
        options = self.options
        identity = request_identity(request, options.weights, options.image_size, options.methods, options.per_head,
                                    self.query_spec)
        if wants_targets(options.methods):
            identity["targets"] = self.targets.identity(self.labels)
        return identity

    def entry_of(self, model: VisionModel) -> ModelEntry | None:
        """The manifest entry of a loaded model: its methods (pointed at the build's targets) and query
        layers; None if it was skipped (one line)."""
        methods = self.methods_for(model)
        if methods is not None:
            methods = self.explain(model, methods)
        if methods is None:
            return None
        return ModelEntry.of_model(model, methods, self.options.per_head, self.query_layers_of(model))

    def compute(self, request: ModelRequest, identity: dict) -> ModelMaps | None:
        """Load the model and compute its maps (reusing those already cached); None if it was skipped."""
        model = self.load(request)
        if model is None:
            return None
        try:
            entry = self.entry_of(model)
            if entry is None:
                return None
            task = self.progress.add_task(f"{model.name} ({', '.join(entry.methods)})", total=len(self.images))
            try:
                result = compute_model_maps(
                    model, self.images, self.maps_dir, methods=entry.methods, per_head=self.options.per_head,
                    query_layers=entry.query_layers, render=self.render,
                    batch_size=self.options.batch_size, device=self.device,
                    advance=lambda n: self.progress.advance(task, n),
                )
            except Exception as exc:  # forward pass, hook or non-finite maps: this model only (its new maps removed)
                self.failed_model(request.name, f"computing its maps failed ({describe_error(exc)})", AtlasError)
                return None
        finally:
            del model
            _free(self.device)
        self.announce(result.entry)
        save_entry(self.maps_dir, identity, result.entry)
        return result

    @property
    def query_spec(self) -> str:
        """The build's canonical ``--query-layers`` value."""
        return self.options.query_layers or "none"

    def query_layers_of(self, model: VisionModel) -> tuple[int, ...]:
        """The layers of ``model`` whose query-patch rows are exported; named layers it lacks: one line."""
        layers, lacking = resolve_query_layers(self.query_spec, model.layers if model.kind == "vit" else 0)
        if lacking:
            self.skip(Skip("query", f"model {model.name}", f"--query-layers {self.query_spec}: it has layers "
                           f"0-{model.layers - 1}, no query rows for layer {', '.join(map(str, lacking))}"))
        return layers

    def load(self, request: ModelRequest) -> VisionModel | None:
        """Load one model; a checkpoint that cannot be loaded is skipped (one line) so the others still run."""
        options = self.options
        try:
            with warnings.catch_warnings():  # announce() says it, in the build's words
                warnings.simplefilter("ignore", RandomWeightsWarning)
                return load_model(request, weights=options.weights, device=str(self.device),
                                  image_size=options.image_size, explain=wants_targets(options.methods))
        except ModelLoadError as exc:
            self.load_failed(request, exc)
        except Exception as exc:  # a checkpoint the libraries accept but cannot build
            self.failed_model(request.name, f"{request.checkpoint}: cannot load ({describe_error(exc)})")
        return None

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

    def methods_for(self, model: VisionModel) -> tuple[str, ...] | None:
        """The requested methods this model supports; None (skipped, one line) if it supports none of them.

        The only model of a build that supports none of them is an error.
        """
        requested = self.options.methods
        if requested is None:
            return model.methods
        chosen = tuple(m for m in requested if m in model.methods)
        if chosen:
            return chosen
        reasons = "; ".join(dict.fromkeys(unsupported_reason(model.kind, m) for m in requested))
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
            set_targets(model, self.targets, self.labels)
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
            reasons = "; ".join(f"{m} not computed ({unsupported_reason(entry.kind, m)})" for m in missing)
            self.skip(Skip("methods", f"model {entry.name}", f"{reasons}; computing {', '.join(entry.methods)}"))

    def announce(self, entry: ModelEntry) -> None:
        """One line on the model (checkpoint, architecture, token layout) and a warning for random weights."""
        grid = f"grid {entry.grid[0]}x{entry.grid[1]}"
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


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
