"""``atlas build``, stage by stage: the one orchestrator of a build.

``Build.run`` reads as the list of stages, each a module with one job and a plain data type between
them (see the Architecture page of the docs):

1. folders   check ``--out`` / ``--site-dir`` against the inputs, lock OUT  (``atlas.out_dir``)
2. dataset   images and boxes -> ``Dataset``                              (``atlas.dataset``)
3. models    cached or computed maps -> ``[ModelMaps]``                    (``atlas.model_stage``)
4. manifest  ``maps/manifest.json`` (``Manifest``) and ``report.json``      (``atlas.manifest``, ``atlas.report``)
5. metrics   scores against the boxes -> ``OUT/metrics``                   (``atlas.metrics_stage``)
6. site      render -> pages -> MkDocs -> swap into place                 (``atlas.site.build_site``)

Everything skipped on the way is a ``Skip`` and goes through ``Build.skip``: one line on the console
and one entry in ``report.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from atlas.compute import ModelMaps, pick_device, write_manifest
from atlas.dataset import Dataset, load_dataset, sample_paths
from atlas.metrics_stage import compute_metrics
from atlas.model_stage import ModelStage
from atlas.out_dir import check_folders, claim, locked, remove_own_temp_files
from atlas.pool import worker_count
from atlas.project import SiteSettings
from atlas.query_layers import OWN_IMAGES_DEFAULT, SAMPLE_DEFAULT
from atlas.render import PairRenderer
from atlas.report import BuildReport
from atlas.site_budget import select_site_images
from atlas.targets import TargetOptions
from atlas.wording import count
from ssl_attention.errors import ModelLoadError, UnsupportedError
from ssl_attention.maps import check_methods
from ssl_attention.models import ModelRequest
from ssl_attention.skips import Skip


@dataclass
class BuildOptions:
    """Everything ``atlas build`` can be told (see ``atlas build --help``)."""

    requests: list[ModelRequest]
    images: Path | None = None
    annotations: Path | None = None
    weights: str = "auto"
    device: str = "auto"
    batch_size: int = 8
    out: Path = Path("build")
    image_size: tuple[int, int] | None = None
    methods: tuple[str, ...] | None = None
    per_head: bool | None = None
    query_layers: str | None = None  # canonical --query-layers; None: last for the bundled sample, else none
    targets: TargetOptions = field(default_factory=TargetOptions)  # what relevance / ViT Grad-CAM explain
    site: bool = True
    site_dir: Path | None = None
    colormap: str = "viridis"
    force: bool = False  # build into a non-empty folder that is not a build folder (keeping its files)
    skipped_models: list[str] = field(default_factory=list)  # one line per --model that could not be parsed
    site_settings: SiteSettings | None = None  # an atlas project's site name, address and pages
    site_images: int | Path | None = None  # --site-images: publish the first N images, or those FILE lists
    ray: str | None = None  # --ray ADDRESS: the models stage on a Ray cluster (auto, local or HOST:PORT)
    ray_cpus: int = 1  # --ray-cpus: CPUs per model-holding actor on a cluster without GPUs

    @property
    def site_path(self) -> Path | None:
        """Where the site goes, or None without ``--site``."""
        return (self.site_dir or self.out / "site") if self.site else None


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
        worker_count()  # a bad ATLAS_WORKERS is an error before any model runs, not after
        self.inputs()
        check_folders(self.options.out, self.options.site_path, self.options.force, self.input_paths())
        with locked(self.options.out):
            claim(self.options.out, self.options.site_path)
            started = time.perf_counter()
            device = pick_device(self.options.device if not self.options.ray else "cpu")  # Ray: the workers pick
            dataset = self.dataset()
            models = self.models(dataset, device)
            self.manifest(dataset, models)
            self.metrics()
            if self.options.site:
                self.report.site_dir = self.site()
            self.report.seconds = time.perf_counter() - started
        return self.report

    # -- the stages ------------------------------------------------------------------------------
    def inputs(self) -> None:
        """The images folder and annotations: the bundled sample when no ``--images`` is given."""
        if self.images_dir is None:
            self.images_dir, sample_annotations = sample_paths()
            self.annotations = self.annotations or sample_annotations
            self.console.print(escape(f"No --images given: building the bundled sample dataset ({self.images_dir})"),
                               highlight=False)
        if self.options.query_layers is None:
            sample = self.options.images is None
            self.options.query_layers = SAMPLE_DEFAULT if sample else OWN_IMAGES_DEFAULT

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
        return dataset

    def models(self, dataset: Dataset, device: torch.device) -> list[ModelMaps]:
        """Every model's maps, cached or computed; models that cannot be built are skipped."""
        where = f"on Ray ({self.options.ray})" if self.options.ray else f"device {device}"
        self.console.print(f"{count(len(dataset.images), 'image')}, {count(len(self.options.requests), 'model')}, "
                           f"{where}", highlight=False)
        with _progress(self.console) as progress:
            if self.options.site:  # the site's sprite sheets are encoded as the maps are written
                ids = None if self.site_ids is None else frozenset(self.site_ids)
                self.render = PairRenderer(self.options.out / "render", ids)
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

    def manifest(self, dataset: Dataset, models: list[ModelMaps]) -> None:
        """``maps/manifest.json`` (the contract with everything after) and ``report.json``."""
        write_manifest(self.options.out / "maps", dataset.images, models)
        self.report.write(self.options.out)

    def metrics(self) -> None:
        """Score every map against the boxes (also removes the metrics of an earlier build)."""
        started = time.perf_counter()
        metrics = compute_metrics(self.options.out)
        if metrics.images_with_boxes:
            self.console.print(f"Metrics: {count(metrics.rows, 'row')} for {count(metrics.images_with_boxes, 'image')} "
                               f"with boxes in {time.perf_counter() - started:.1f} s -> {self.options.out / 'metrics'} "
                               f"({metrics.format})", highlight=False, soft_wrap=True)

    def site(self) -> Path:
        """Render the heatmaps, write the pages, run MkDocs and swap the new site into place."""
        from atlas.site import build_site

        site_dir = self.options.site_path
        with _progress(self.console) as progress:
            site = build_site(self.options.out, site_dir, colormap=self.options.colormap, progress=progress,
                              settings=self.options.site_settings, site_images=self.site_ids)
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
    def input_paths(self) -> dict[str, Path]:
        """The build's input files and folders, which no output folder may hold or replace."""
        inputs = {"--images": self.images_dir, **({"--annotations": self.annotations} if self.annotations else {})}
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
