"""``atlas build`` top to bottom: images -> maps -> cache -> PNGs -> pages -> site."""

from __future__ import annotations

import gc
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from atlas.atomic import write_text_atomic
from atlas.compute import ModelMaps, compute_model_maps, pick_device, reuse_cached_maps, write_manifest
from atlas.dataset import load_dataset, sample_paths
from atlas.manifest import ModelEntry
from atlas.metrics_stage import compute_metrics
from atlas.model_cache import cached_entry, request_identity, save_entry
from atlas.out_dir import check_folders, claim, locked, remove_own_temp_files
from ssl_attention.errors import AtlasError, ModelLoadError, UnsupportedError, first_line
from ssl_attention.maps import check_methods, unsupported_reason
from ssl_attention.models import ModelRequest, load_model
from ssl_attention.models.base import VisionModel


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
    site: bool = True
    site_dir: Path | None = None
    colormap: str = "viridis"
    force: bool = False  # build into a non-empty folder that is not a build folder (keeping its files)
    skipped_models: list[str] = field(default_factory=list)  # one line per --model that could not be parsed


@dataclass
class BuildReport:
    """What a build did: per-model counts, random-weight models, everything skipped."""

    models: list[ModelMaps] = field(default_factory=list)
    random_models: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed_models: list[str] = field(default_factory=list)
    images: int = 0
    site_dir: Path | None = None
    seconds: float = 0.0


def run_build(options: BuildOptions, console: Console) -> BuildReport:
    """Run every stage; bad images and annotation items are skipped and listed, not fatal.

    The output folders are checked first (``atlas.out_dir``) and ``--out`` is locked for the whole build.
    """
    images_dir, annotations = options.images, options.annotations
    if images_dir is None:
        images_dir, sample_annotations = sample_paths()
        annotations = annotations or sample_annotations
        console.print(escape(f"No --images given: building the bundled sample dataset ({images_dir})"), highlight=False)
    site_dir = (options.site_dir or options.out / "site") if options.site else None
    check_folders(options.out, site_dir, options.force, _inputs(options, images_dir, annotations))
    with locked(options.out):
        claim(options.out, site_dir)
        return _run_stages(options, images_dir, annotations, console)


def _inputs(options: BuildOptions, images_dir: Path, annotations: Path | None) -> dict[str, Path]:
    """The build's input files and folders, which no output folder may hold or replace."""
    inputs = {"--images": images_dir, **({"--annotations": annotations} if annotations else {})}
    for request in options.requests:
        local = request.checkpoint.removeprefix("timm:").partition("@")[2] if request.is_timm else request.checkpoint
        if local:  # a Hub id names no existing path: check_apart skips it
            inputs[f"the checkpoint of --model {request.name}"] = Path(local).expanduser()
    return inputs


def _run_stages(options: BuildOptions, images_dir: Path, annotations: Path | None, console: Console) -> BuildReport:
    started = time.perf_counter()
    device = pick_device(options.device)
    maps_dir = options.out / "maps"
    remove_own_temp_files(options.out)
    report = BuildReport()
    dataset = load_dataset(images_dir, annotations, options.out)
    report.images = len(dataset.images)
    for line in [*options.skipped_models, *(skip.line for skip in dataset.skipped)]:
        _skip(report, console, line)
    console.print(f"{len(dataset.images)} images, {len(options.requests)} models, device {device}")
    with _progress(console) as progress:
        for request in options.requests:
            result = _maps_of(request, options, dataset.images, device, report, console, progress)
            if result is None:
                continue
            report.models.append(result)
            report.skipped.extend(result.skipped)
            if result.entry.random:
                report.random_models.append(result.entry.name)
    if not report.models:
        raise ModelLoadError("no model could be built: " + "; ".join(report.failed_models))
    write_manifest(maps_dir, dataset.images, report.models)
    write_report(options.out / "report.json", report)
    metrics = compute_metrics(options.out)  # also removes the metrics of an earlier build
    if metrics.images_with_boxes:
        console.print(f"Metrics: {metrics.rows} rows for {metrics.images_with_boxes} images with boxes "
                      f"-> {options.out / 'metrics'}", highlight=False)
    if options.site:
        report.site_dir = _build_site(options, console)
    report.seconds = time.perf_counter() - started
    return report


def _maps_of(request: ModelRequest, options: BuildOptions, images: list, device: torch.device,
             report: BuildReport, console: Console, progress: Progress) -> ModelMaps | None:
    """The maps of one model: from the cache without loading it when all are there, else computed."""
    maps_dir = options.out / "maps"
    identity = request_identity(request, options.weights, options.image_size, options.methods, options.per_head)
    entry = cached_entry(maps_dir, request, identity)
    if entry is not None:
        cached, todo = reuse_cached_maps(entry, images, maps_dir)
        if not todo:
            _announce(console, entry)
            task = progress.add_task(f"{request.name} (cached, model not loaded)", total=len(images))
            progress.advance(task, len(images))
            _note_unsupported(entry, options, report, console)
            return cached
    result = _compute(request, options, images, device, report, console, progress, identity)
    if result is not None:
        _note_unsupported(result.entry, options, report, console)
    return result


def _compute(request: ModelRequest, options: BuildOptions, images: list, device: torch.device,
             report: BuildReport, console: Console, progress: Progress, identity: dict) -> ModelMaps | None:
    """Load the model and compute its maps (reusing those already cached); None if it was skipped."""
    maps_dir = options.out / "maps"
    model = _load_or_skip(request, options, device, report, console)
    if model is None:
        return None
    methods = _methods_for(model, options, report, console)
    if methods is None:
        del model
        _free(device)
        return None
    task = progress.add_task(f"{model.name} ({', '.join(methods)})", total=len(images))
    try:
        result = compute_model_maps(
            model, images, maps_dir, methods=methods, per_head=options.per_head,
            batch_size=options.batch_size, device=device, advance=lambda n: progress.advance(task, n),
        )
    except Exception as exc:  # forward pass, hook or non-finite maps: this model only (its new maps removed)
        del model
        _free(device)
        _model_failed(f"model {request.name}: computing its maps failed ({_describe(exc)})", options, report,
                      console, AtlasError)
        return None
    _announce(console, result.entry)
    save_entry(maps_dir, identity, result.entry)
    del model
    _free(device)
    return result


def _load_or_skip(request: ModelRequest, options: BuildOptions, device: torch.device, report: BuildReport,
                  console: Console) -> VisionModel | None:
    """Load one model; a checkpoint that cannot be loaded is skipped (one line) so the others still run."""
    try:
        return load_model(request, weights=options.weights, device=str(device), image_size=options.image_size)
    except ModelLoadError as exc:
        if len(options.requests) == 1:
            raise
        report.failed_models.append(str(exc))
        _skip(report, console, f"model {request.name}: {exc}")
    except Exception as exc:  # a checkpoint the libraries accept but cannot build
        _model_failed(f"model {request.name}: {request.checkpoint}: cannot load ({_describe(exc)})", options,
                      report, console)
    return None


def _model_failed(line: str, options: BuildOptions, report: BuildReport, console: Console,
                  error: type[AtlasError] = ModelLoadError) -> None:
    """A model that cannot be built: skipped (one line, in the report), or ``error`` if it is the only one."""
    if len(options.requests) == 1:
        raise error(line)
    report.failed_models.append(line)
    _skip(report, console, line)


def _describe(exc: Exception) -> str:
    """An unexpected exception in one line: our own errors as they are, others with their type."""
    return first_line(exc) if isinstance(exc, AtlasError) else f"{type(exc).__name__}: {first_line(exc)}"


def write_report(path: Path, report: BuildReport) -> None:
    """``OUT/report.json``: what the build used and skipped.

    No timings and no computed/reused counts (the CLI prints those), so an interrupted-then-resumed build
    and an uninterrupted one write the same bytes.
    """
    data = {
        "images": report.images,
        "models": [{"name": m.entry.name, "weights": m.entry.weights} for m in report.models],
        "random_models": report.random_models,
        "skipped": report.skipped,
    }
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


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


def _methods_for(model: VisionModel, options: BuildOptions, report: BuildReport,
                 console: Console) -> tuple[str, ...] | None:
    """The requested methods this model supports; None (skipped, one line) if it supports none of them.

    The only model of a build that supports none of them is an error.
    """
    if options.methods is None:
        return model.methods
    chosen = tuple(m for m in options.methods if m in model.methods)
    if chosen:
        return chosen
    reasons = "; ".join(dict.fromkeys(unsupported_reason(model.kind, m) for m in options.methods))
    line = (f"model {model.name} ({model.architecture}) does not support {' or '.join(options.methods)}: "
            f"{reasons}; it offers {', '.join(model.methods)}")
    _model_failed(line, options, report, console, UnsupportedError)
    return None


def _note_unsupported(entry: ModelEntry, options: BuildOptions, report: BuildReport, console: Console) -> None:
    """One line (kept in the report) naming the requested methods a model computed without."""
    missing = [m for m in options.methods or () if m not in entry.methods]
    if not missing:
        return
    reasons = "; ".join(f"{m} not computed ({unsupported_reason(entry.kind, m)})" for m in missing)
    _skip(report, console, f"model {entry.name}: {reasons}; computing {', '.join(entry.methods)}")


def _skip(report: BuildReport, console: Console, line: str) -> None:
    """Record a skipped item in the report and say so in one line."""
    report.skipped.append(line)
    console.print(f"[yellow]skipped:[/] {escape(line)}", highlight=False)


def _announce(console: Console, entry: ModelEntry) -> None:
    """One line on the model (checkpoint, architecture, token layout) and a warning for random weights."""
    grid = f"grid {entry.grid[0]}x{entry.grid[1]}"
    layout = (f"{entry.layers} layers x {entry.heads} heads, {grid}, {entry.prefix_tokens} prefix tokens"
              if entry.kind == "vit" else f"{entry.layers} stages, {grid}")
    what = f"{entry.checkpoint} ({entry.architecture}; {layout})"
    console.print(f"[bold]{escape(entry.name)}[/]: {escape(what)}", highlight=False)
    if entry.random:
        console.print(
            f"[bold red]WARNING[/] {escape(entry.name)}: {escape(entry.note or 'RANDOM weights')} - "
            "its maps are meaningless and are labelled as such", highlight=False,
        )


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _build_site(options: BuildOptions, console: Console) -> Path:
    from atlas.site import build_site

    site_dir = options.site_dir or options.out / "site"
    with _progress(console) as progress:
        site = build_site(options.out, site_dir, colormap=options.colormap, progress=progress)
    console.print(site.timing_line(), highlight=False)
    return site_dir

