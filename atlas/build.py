"""``atlas build``, stage by stage: the one orchestrator of a build.

``Build.run`` reads as the list of stages, each a module with one job and a plain data type between
them (see the Architecture page of the docs):

1. folders   check ``--out`` / ``--site-dir`` against the inputs, lock both (``atlas.core.out_dir``)
2. dataset   images and boxes -> ``Dataset``                              (``atlas.dataset.stage``)
3. models    cached or computed maps -> ``[ModelMaps]``                    (``atlas.models``)
4. manifest  ``maps/manifest.json`` (``Manifest``) and ``report.json``      (``atlas.core``)
5. metrics   scores against the boxes -> ``OUT/metrics``                   (``atlas.metrics``)
6. site      render -> pages -> MkDocs -> swap into place                 (``atlas.site.stage``)

Everything skipped on the way is a ``Skip`` and goes through ``Build.skip``: one line on the console
and one entry in ``report.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from atlas.core.build_dir import BuildDir
from atlas.core.limits import BATCH_SIZE, MAX_TOKENS, RAY_CPUS, TARGET_CLASS
from atlas.core.manifest import Manifest
from atlas.core.out_dir import check_folders, claim, locked, locked_site, remove_own_temp_files
from atlas.core.pool import worker_count
from atlas.core.report import BuildReport
from atlas.core.variants import VariantPair, check_names
from atlas.core.wording import count
from atlas.dataset.stage import Dataset, load_dataset, sample_paths
from atlas.metrics.data import MetricsData
from atlas.metrics.held_out import check_split, parse_fraction
from atlas.metrics.stage import MetricsReport, compute_metrics
from atlas.models.compute import DEVICES, ModelMaps, pick_device, write_manifest
from atlas.models.pairs import check_before_loading, check_entries
from atlas.models.ray_cluster import check_address, probe_cluster
from atlas.models.stage import ModelStage
from atlas.models.targets import TargetOptions
from atlas.options import BUILD_OPTIONS, default, default_query_layers
from atlas.project import SiteSettings, check_pages
from atlas.site.budget import select_site_images
from atlas.site.render import PairRenderer
from ssl_attention.errors import AtlasError, ModelLoadError, UnsupportedError
from ssl_attention.maps import check_methods
from ssl_attention.models import ModelRequest
from ssl_attention.preprocess import MAX_INPUT_SIDE
from ssl_attention.skips import Skip


@dataclass
class BuildOptions:
    """Everything ``atlas build`` can be told (see ``atlas build --help``); defaults from ``atlas.options``."""

    requests: list[ModelRequest]
    images: Path | None = default("images")
    annotations: Path | None = default("annotations")
    weights: str = default("weights")
    device: str = default("device")
    batch_size: int = default("batch_size")
    out: Path = default("out")
    image_size: tuple[int, int] | None = None  # parsed --image-size
    resize: str = default("resize")  # --resize squash|keep
    max_tokens: int = default("max_tokens")  # --max-tokens (keep)
    methods: tuple[str, ...] | None = None
    per_head: bool | None = None
    query_layers: str | None = None  # canonical --query-layers; None: resolved as atlas.options.resolve does
    feature_layers: str | None = None  # canonical --feature-layers; None: resolved as --query-layers is
    targets: TargetOptions = field(default_factory=TargetOptions)  # what relevance / ViT Grad-CAM explain
    site: bool = default("site")
    site_dir: Path | None = default("site_dir")
    colormap: str = default("colormap")
    force: bool = default("force")  # build into a non-empty folder that is not a build folder (keeping its files)
    skipped_models: list[str] = field(default_factory=list)  # one line per --model that could not be parsed
    site_settings: SiteSettings | None = None  # an atlas project's site name, address and pages
    site_images: int | Path | None = None  # --site-images: publish the first N images, or those FILE lists
    ray: str | None = default("ray")  # --ray ADDRESS: the models stage on a Ray cluster (auto, local or HOST:PORT)
    ray_cpus: int = default("ray_cpus")  # --ray-cpus: CPUs per model-holding actor on a cluster without GPUs
    select_on: float | None = default("select_on")  # --select-on: the held-out estimate's selection fraction
    bases: tuple[VariantPair, ...] = ()  # --base VARIANT=BASE: declared variants (atlas.core.variants)

    def __post_init__(self) -> None:
        if self.query_layers is None:
            self.query_layers = default_query_layers(self.images)
        if self.feature_layers is None:
            self.feature_layers = default_query_layers(self.images)

    @classmethod
    def from_resolved(cls, values: dict[str, Any], **fields: Any) -> BuildOptions:
        """The options of ``atlas.options.resolve``'s values (plus ``fields`` the command line adds)."""
        values = {k: v for k, v in values.items() if k not in ("strict", "config")}
        targets = TargetOptions(prompts=values.pop("prompts"), target_class=values.pop("target_class"))
        return cls(targets=targets, **values, **fields)

    def check(self) -> None:
        """Refuse a bad value of any option before anything is read, written or loaded: AtlasError, one
        line naming the option (``atlas build`` parses the flags' texts first; this checks the values,
        whoever made the options)."""
        choices = [(o.flags[0], getattr(self, o.name), o.choices) for o in BUILD_OPTIONS if o.choices]
        choices.append(("--device", self.device, DEVICES))
        for flag, value, allowed in choices:
            if value not in allowed:
                raise AtlasError(f"{flag} must be {', '.join(allowed[:-1])} or {allowed[-1]}, got {value!r}")
        numbers = (("--batch-size", self.batch_size, BATCH_SIZE), ("--ray-cpus", self.ray_cpus, RAY_CPUS),
                   ("--target-class", self.targets.target_class, TARGET_CLASS),
                   ("--max-tokens", self.max_tokens, MAX_TOKENS))
        for flag, number, bound in numbers:
            if number is not None:
                try:
                    bound.check(number)
                except ValueError as exc:
                    raise AtlasError(f"{flag}: {exc}") from None
        if self.image_size is not None and not all(1 <= side <= MAX_INPUT_SIDE for side in self.image_size):
            raise AtlasError(f"--image-size must be 1 to {MAX_INPUT_SIDE} px per side, got {self.image_size}")
        if self.ray is not None:
            check_address(self.ray)
        if self.select_on is not None:
            parse_fraction(self.select_on)
        check_names(self.bases, [request.name for request in self.requests])

    @property
    def site_path(self) -> Path | None:
        """Where the site goes, or None without ``--site``."""
        return (self.site_dir or BuildDir(self.out).site) if self.site else None


class Build:
    """One ``atlas build``: its options, console, report, and the stages in order."""

    def __init__(self, options: BuildOptions, console: Console) -> None:
        self.options, self.console = options, console
        self.report = BuildReport()
        self.images_dir, self.annotations = options.images, options.annotations
        self.site_ids: list[str] | None = None  # the published images (--site-images), None: all
        self.render: PairRenderer | None = None  # encodes the sprite sheets as the models stage writes the maps

    def run(self) -> BuildReport:
        """Run every stage; bad images, boxes and models are skipped and listed, not fatal."""
        self.check()
        self.inputs()
        check_folders(self.options.out, self.options.site_path, self.options.force, self.input_paths())
        if self.pages is not None:
            check_pages(self.pages)
        with locked_site(self.options.out, self.options.site_path), locked(self.options.out):
            claim(self.options.out, self.options.site_path)
            started = time.perf_counter()
            device = pick_device(self.options.device if not self.options.ray else "cpu")  # Ray: the workers pick
            dataset = self.dataset()
            models = self.models(dataset, device)
            manifest = self.manifest(dataset, models)
            metrics = self.metrics(manifest, self.variant_pairs(manifest))
            if self.options.site:
                self.report.site_dir = self.site(manifest, metrics.data)
            self.report.seconds = time.perf_counter() - started
        return self.report

    # -- the stages ------------------------------------------------------------------------------
    def check(self) -> None:
        """Every option and setting, before any folder is touched or any model runs: the options' values,
        ``ATLAS_WORKERS``, ``SOURCE_DATE_EPOCH``, the device, and that a ``--ray`` cluster answers."""
        self.options.check()
        worker_count()
        if self.options.site:
            from atlas.site.stage import given_source_date_epoch

            given_source_date_epoch()
        if self.options.ray:
            probe_cluster(self.options.ray)
        else:
            pick_device(self.options.device)  # e.g. --device cuda on a machine without one
        check_before_loading(self.options.bases, self.options.requests)

    def inputs(self) -> None:
        """The images folder and annotations: the bundled sample when no ``--images`` is given."""
        if self.images_dir is None:
            self.images_dir, sample_annotations = sample_paths()
            self.annotations = self.annotations or sample_annotations
            self.console.print(escape(f"No --images given: building the bundled sample dataset ({self.images_dir})"),
                               highlight=False)

    def dataset(self) -> Dataset:
        """Decode the images and read their boxes (skipping bad ones); writes ``OUT/images``."""
        remove_own_temp_files(self.options.out)
        dataset = load_dataset(self.images_dir, self.annotations, self.options.out)
        self.report.images = len(dataset.images)
        for line in self.options.skipped_models:
            self.skip(Skip.from_error("models", line))
        for skip in dataset.skipped:
            self.skip(skip)
        if self.options.site_images is not None:  # checked before any model runs
            ids = [image.id for image in dataset.images]
            self.site_ids = select_site_images(self.options.site_images, ids,
                                               {image.id: image.path.name for image in dataset.images})
        if self.options.select_on is not None:  # checked before any model runs
            check_split([image.id for image in dataset.images if image.boxes], self.options.select_on)
        return dataset

    def models(self, dataset: Dataset, device: torch.device) -> list[ModelMaps]:
        """Every model's maps, cached or computed; models that cannot be built are skipped."""
        where = f"on Ray ({self.options.ray})" if self.options.ray else f"device {device}"
        self.console.print(f"{count(len(dataset.images), 'image')}, {count(len(self.options.requests), 'model')}, "
                           f"{where}", highlight=False)
        with _progress(self.console) as progress:
            if self.options.site:  # the site's sprite sheets are encoded as the maps are written
                ids = None if self.site_ids is None else frozenset(self.site_ids)
                self.render = PairRenderer(BuildDir(self.options.out).render, ids)
            stage = ModelStage(self.options, dataset.images, device, self.console, progress, self.skip, self.render)
            for result in stage.all_maps():
                if result is None:
                    continue
                self.report.models.append(result)
                self.report.skipped.extend(result.skipped)  # images gone since the dataset stage
                if result.entry.random:
                    self.report.random_models.append(result.entry.name)
        self.report.failed_models = stage.failed
        self.report.workers = stage.workers
        if not self.report.models:
            raise ModelLoadError("no model could be built: " + "; ".join(stage.failed))
        return self.report.models

    def manifest(self, dataset: Dataset, models: list[ModelMaps]) -> Manifest:
        """``maps/manifest.json`` (the contract with everything after) and ``report.json``."""
        manifest = write_manifest(BuildDir(self.options.out).maps, dataset.images, models)
        self.report.write(self.options.out)
        return manifest

    def variant_pairs(self, manifest: Manifest) -> tuple[VariantPair, ...]:
        """The declared pairs whose two models were built, checked on their entries; a pair missing a model
        is skipped (one line)."""
        entries = {model.name: model for model in manifest.models}
        built = check_entries(self.options.bases, entries)
        for pair in self.options.bases:
            if pair not in built:
                missing = pair.base if pair.variant in entries else pair.variant
                self.skip(Skip("variants", f"--base {pair.variant}={pair.base}", f"model {missing} was not built"))
        return tuple(built)

    def metrics(self, manifest: Manifest, pairs: tuple[VariantPair, ...] = ()) -> MetricsReport:
        """Score every map against the boxes (also removes the metrics of an earlier build)."""
        started = time.perf_counter()
        metrics = compute_metrics(self.options.out, manifest, pairs, self.options.select_on)
        if metrics.images_with_boxes:
            self.console.print(f"Metrics: {count(metrics.rows, 'row')} for {count(metrics.images_with_boxes, 'image')} "
                               f"with boxes in {time.perf_counter() - started:.1f} s -> {self.options.out / 'metrics'} "
                               f"({metrics.format})", highlight=False, soft_wrap=True)
        held = metrics.summary.held_out if metrics.summary else None
        if held is not None:
            self.console.print(f"Held-out estimate (--select-on {held.fraction:g}): best layers and heads chosen on "
                               f"{count(held.n_selection, 'image')}, scored on the other {held.n_held_out} "
                               "(summary.json's held_out, the leaderboard)", highlight=False, soft_wrap=True)
        return metrics

    def site(self, manifest: Manifest, metrics: MetricsData | None) -> Path:
        """Render the heatmaps, write the pages, run MkDocs and swap the new site into place."""
        from atlas.site.stage import SiteInputs, build_site

        site_dir = self.options.site_path
        with _progress(self.console) as progress:
            site = build_site(self.options.out, site_dir, colormap=self.options.colormap, progress=progress,
                              settings=self.options.site_settings, site_images=self.site_ids,
                              inputs=SiteInputs(manifest, metrics))
        if self.render is not None:
            site.encoded_with_maps = len(self.render.encoded)
        self.console.print(escape(site.timing_line()), highlight=False, soft_wrap=True)
        self.console.print(escape(site.budget.line()), highlight=False, soft_wrap=True)
        warning = site.budget.warning()
        if warning:
            self.console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
        self.report.site_budget = site.budget.as_json()
        self.report.write(self.options.out)
        return site_dir

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def pages(self) -> Path | None:
        """The project's own pages folder when the site is built (``pages`` in ``atlas.toml``), else None."""
        settings = self.options.site_settings
        return settings.pages if self.options.site and settings is not None else None

    def input_paths(self) -> dict[str, Path]:
        """The build's input files and folders, which no output folder may hold or replace."""
        inputs = {"--images": self.images_dir, **({"--annotations": self.annotations} if self.annotations else {})}
        if self.pages is not None:  # pages = "." would copy the build folder into itself
            inputs["the pages folder (pages in atlas.toml)"] = self.pages
        for request in self.options.requests:
            checkpoint = request.checkpoint
            local = checkpoint.removeprefix("timm:").partition("@")[2] if request.is_timm else checkpoint
            if local:  # a Hub id names no existing path: check_apart skips it
                inputs[f"the checkpoint of --model {request.name}"] = Path(local).expanduser()
        return inputs

    def skip(self, skip: Skip) -> None:
        """The one place a skipped item is recorded (report.json) and said (one line)."""
        self.report.skipped.append(skip)
        self.console.print(f"[yellow]skipped:[/] {escape(skip.line)}", highlight=False)


def run_build(options: BuildOptions, console: Console) -> BuildReport:
    """Run a whole build (see ``Build``)."""
    return Build(options, console).run()


def build_methods(methods: list[str] | None, per_head: bool | None) -> tuple[tuple[str, ...] | None, bool | None]:
    """``--method`` and ``--heads`` as the build uses them, checked before any model is loaded.

    Unknown method names are refused. ``--heads`` keeps per-head maps where they exist, which is the
    default: without ``--method`` every model computes all its methods, rollout and Grad-CAM fused;
    naming a method without heads (rollout, gradcam) together with ``--heads`` is refused.
    Returns (methods or None for each model's own, per-head: False for fused only, else None).
    """
    chosen = tuple(dict.fromkeys(methods)) if methods else None
    try:
        check_methods(chosen or (), None)
    except UnsupportedError as exc:
        raise UnsupportedError(f"--method: {exc}") from None
    try:
        check_methods(chosen or (), per_head)
    except UnsupportedError as exc:
        raise UnsupportedError(f"--heads: {exc}; drop --heads or the method") from None
    return chosen, (False if per_head is False else None)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)
