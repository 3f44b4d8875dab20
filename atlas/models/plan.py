"""The models stage's plan: one job per requested model, made before any executor runs.

A ``ModelJob`` says what of a model's maps is cached and what is still to compute, and how: its entry
(the methods, the query-patch rows' layers, the targets it explains), per-head or fused-only, the build's
targets. A job whose model has not been loaded yet and has no entry remembered in ``model.json`` gets its
entry once the model is loaded (``with_entry``). The executors (local: ``atlas.models.compute``; Ray:
``atlas.models.ray_stage``) compute a job's batches and hand them to its sink (``atlas.models.sink``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from atlas.core.manifest import ModelEntry
from atlas.dataset.stage import ImageRecord
from atlas.models.cache import MapsIdentity, image_identity, read_key
from atlas.models.entry_cache import cached_entry
from atlas.models.targets import TargetOptions, wants_targets
from ssl_attention.models import ModelRequest
from ssl_attention.skips import Skip


@dataclass
class ModelMaps:
    """What the models stage produced for one model."""

    entry: ModelEntry  # without its maps (see ``manifest_entry``)
    maps: dict[str, str] = field(default_factory=dict)  # image id -> npz path relative to maps/
    computed: int = 0
    reused: int = 0
    skipped: list[Skip] = field(default_factory=list)

    def manifest_entry(self) -> ModelEntry:
        """The model's entry in the manifest, with its maps."""
        return self.entry.with_maps(self.maps)


@dataclass(frozen=True)
class MapsOptions:
    """What every job of a build shares: the options that shape a model's maps."""

    weights: str = "auto"
    image_size: tuple[int, int] | None = None
    methods: tuple[str, ...] | None = None  # requested; None: every method a model offers
    per_head: bool | None = None  # None: per-head maps where a method has them; False: fused maps only
    query_spec: str = "none"  # the canonical --query-layers value
    targets: TargetOptions = field(default_factory=TargetOptions)
    labels: tuple[str, ...] = ()  # the dataset's box labels (the default prompts)
    resize: str = "squash"  # --resize
    max_tokens: int = 2048  # --max-tokens (keep only)
    feature_spec: str = "none"  # the canonical --feature-layers value

    def identity(self, request: ModelRequest) -> MapsIdentity:
        """What the cached maps of ``request`` depend on besides the images (``model.json``'s key)."""
        targets = self.targets.identity(list(self.labels)) if wants_targets(self.methods) else None
        weights = request.weights or self.weights  # a request's own mode (the sample's random variant) wins
        identity = MapsIdentity.of_request(request.checkpoint, weights, self.image_size, self.methods,
                                           self.per_head, self.query_spec, targets, self.feature_spec)
        if self.resize == "squash":  # squash keys are as they always were
            return identity
        return replace(identity, details={**identity.details, "resize": self.resize, "max_tokens": self.max_tokens})


@dataclass(frozen=True)
class Recipe:
    """How a job's maps are computed: all a worker needs besides the model and the images."""

    methods: tuple[str, ...]
    per_head: bool | None = None  # as ``MapsOptions.per_head``
    query_layers: tuple[int, ...] = ()  # the layers whose query-patch rows are kept
    targets: TargetOptions = field(default_factory=TargetOptions)
    labels: tuple[str, ...] = ()
    feature_layers: tuple[int, ...] = ()  # the layers whose patch features are kept


@dataclass(frozen=True)
class ModelJob:
    """One requested model's job: what is cached, what is still to compute and how."""

    request: ModelRequest
    options: MapsOptions
    entry: ModelEntry | None = None  # remembered in model.json, or the loaded model's; None: not known yet
    cached: tuple[tuple[str, str], ...] = ()  # (image id, npz path relative to maps/) valid in the cache
    todo: tuple[tuple[ImageRecord, str], ...] = ()  # (image, cache key) still to compute, in image order

    @property
    def identity(self) -> MapsIdentity:
        """``model.json``'s key (see ``MapsOptions.identity``)."""
        return self.options.identity(self.request)

    @property
    def all_cached(self) -> bool:
        """Whether the entry is known and every map is in the cache."""
        return self.entry is not None and not self.todo

    @property
    def recipe(self) -> Recipe:
        """How the maps are computed (the job must have its entry)."""
        entry, options = self.entry, self.options
        return Recipe(entry.methods, options.per_head, entry.query_layers, options.targets, options.labels,
                      entry.feature_layers)

    def with_entry(self, entry: ModelEntry, images: list[ImageRecord], maps_dir: Path) -> ModelJob:
        """This job for ``entry``'s model: the maps of ``images`` already valid in the cache, and the rest."""
        identity = MapsIdentity.of_entry(entry)
        cached, todo = [], []
        for record in images:
            key = identity.key(image_identity(record.sha256, record.boxes, entry.kind))
            rel = f"{entry.name}/{record.id}.npz"
            if read_key(maps_dir / rel) == key:
                cached.append((record.id, rel))
            else:
                todo.append((record, key))
        return ModelJob(self.request, self.options, entry, tuple(cached), tuple(todo))

    def batches(self, size: int) -> list[tuple[tuple[ImageRecord, str], ...]]:
        """The images still to compute in batches of ``size`` (every executor forms the same batches): one
        bucket per input size (``--resize keep``: no image shares a forward pass with one of another size),
        in order of each size's first image, images in their order within it."""
        from ssl_attention.preprocess import Preprocessing

        buckets: dict[tuple[int, int], list[tuple[ImageRecord, str]]] = {}
        prep = Preprocessing.from_dict(self.entry.preprocessing) if self.entry is not None else None
        for item in self.todo:
            record = item[0]
            buckets.setdefault(prep.input_size((record.width, record.height)) if prep else (0, 0), []).append(item)
        return [tuple(todo[start:start + size]) for todo in buckets.values() for start in range(0, len(todo), size)]

    def reused(self) -> ModelMaps:
        """The model's maps found in the cache (the job must have its entry)."""
        return ModelMaps(entry=self.entry, maps=dict(self.cached), reused=len(self.cached))


def plan_job(request: ModelRequest, options: MapsOptions, images: list[ImageRecord], maps_dir: Path) -> ModelJob:
    """A model's job before it is loaded: its entry if ``model.json`` remembers it, and what is cached."""
    job = ModelJob(request, options)
    entry = cached_entry(maps_dir, request, job.identity)
    return job if entry is None else job.with_entry(entry, images, maps_dir)


def loaded_job(model_entry: ModelEntry, images: list[ImageRecord], maps_dir: Path,
               options: MapsOptions = MapsOptions()) -> ModelJob:
    """The job of a model the caller loaded itself (its entry from ``ModelEntry.of_model``)."""
    return ModelJob(ModelRequest(model_entry.name, model_entry.checkpoint), options).with_entry(
        model_entry, images, maps_dir)
