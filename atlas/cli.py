"""The ``atlas`` command line: init, build, serve, deploy, models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from atlas.layout import RESERVED_MODEL_NAMES
from ssl_attention.errors import AtlasError
from ssl_attention.methods import method_names

app = typer.Typer(
    help="Attention Atlas: see where vision models look, per model, layer and attention head.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False)
err_console = Console(stderr=True)

WEIGHTS_HELP = ("pretrained: download/load the checkpoint's weights or fail; random: same architecture, "
                "randomly initialised (maps are meaningless, labelled as such); auto: pretrained where "
                "obtainable, else random with a warning.")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("attention-atlas")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        console.print(f"atlas (attention-atlas) {_version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Attention Atlas: see where vision models look, per model, layer and attention head."""


def _fail(message: str) -> None:
    """Print one line to stderr and exit with code 2 (bad input or usage)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


_RESERVED = ", ".join(sorted(RESERVED_MODEL_NAMES))
_IMAGES = typer.Option("--images", metavar="DIR", file_okay=False,
                       help="Folder of images (jpg, png, webp, bmp, gif, tiff). Default: the bundled sample.")
_ANNOTATIONS = typer.Option("--annotations", metavar="FILE", dir_okay=False,
                            help="Boxes: COCO detection JSON or WikiChurches building_parts.json (optional).")
_MODEL = typer.Option("--model", "-m", metavar="NAME[=CHECKPOINT]",
                      help="NAME or NAME=CHECKPOINT (Hub id, local save_pretrained folder, or "
                      "timm:MODEL_NAME\\[@WEIGHTS_FILE]); repeat for several. Default: all seven known models "
                      "(see `atlas models`). Among several, an unknown name or a checkpoint that cannot be "
                      "loaded is skipped (one line, listed in OUT/report.json); alone, it is an error. "
                      f"Reserved names (the site's own pages): {_RESERVED}.")
_WEIGHTS = typer.Option("--weights", metavar="pretrained|random|auto", help=WEIGHTS_HELP)
_DEVICE = typer.Option("--device", metavar="auto|cpu|cuda|mps",
                       help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda or mps. GPUs run in bf16/fp16 autocast.")
_BATCH = typer.Option("--batch-size", min=1, metavar="N",
                      help="Images decoded, computed and written together (one Ray job). The forward passes "
                      "take a fixed number of images per model (8, fewer for large inputs), blank ones filling "
                      "the last, so the maps do not depend on it; a multiple of 8 wastes no compute.")
_SIZE = typer.Option("--image-size", metavar="N|HxW",
                     help="Model input size N or HxW, at most 1024 px per side; each side is rounded to the "
                     "nearest multiple of the patch size, halves up, at least one patch. Default: the "
                     "checkpoint's own (224 for the defaults). The whole image is resized, never cropped.")
_METHOD = typer.Option("--method", metavar="|".join(method_names()),
                       help="Methods to compute; repeat for several. Default: every method each model supports. "
                       "A model that lacks some of them computes the others; one that lacks all is skipped "
                       "(an error if it is the only model).")
_HEADS = typer.Option("--heads/--no-heads", help="--heads (the default): keep per-head maps where they exist "
                      "(cls, mean; rollout and Grad-CAM have no heads and stay fused); naming rollout or "
                      "gradcam with --method together with --heads is an error. --no-heads: fused maps only.")
_QUERY = typer.Option("--query-layers", metavar="LAYERS",
                      help="Export the query-patch rows of these layers (where each patch attends, per head; the "
                      "image page's query-patch explorer): none, last, all, or layer numbers such as 11 or 8,11 "
                      "or 0,last. They cost heads x patches^2 bytes per image, model and layer (~0.8 MB for a "
                      "ViT-B at 224 px). Default: last for the bundled sample, none for your own --images.")
_PROMPTS = typer.Option("--prompts", metavar="FILE", dir_okay=False,
                        help="Prompts for relevance and gradcam_vit of CLIP/SigLIP two-tower checkpoints, one per "
                        "line (UTF-8). Default: one per box label, 'a photo of a {label}.'.")
_TARGET_CLASS = typer.Option("--target-class", metavar="N", min=0,
                             help="Class index that relevance and gradcam_vit explain for ViT classifiers. "
                             "Default: each image's top-1 class.")
_OUT = typer.Option("--out", "-o", metavar="DIR",
                    help="Build folder (maps cache, images, metrics, site): a new or empty folder, or one an "
                    "earlier build made (marked by OUT/.atlas-build). It may not be, hold or lie inside the "
                    "images, the annotations or a local checkpoint. One build at a time per folder.")
_SITE = typer.Option("--site/--no-site", help="Render PNGs, pages and the MkDocs site.")
_SITE_DIR = typer.Option("--site-dir", metavar="DIR",
                         help="Where the site goes. Default: OUT/site. Replaced as a whole, so it must be new, "
                         "empty or a site this OUT built, and apart from the inputs and OUT.")
_SITE_IMAGES = typer.Option("--site-images", metavar="N|FILE",
                            help="Publish only some images in the site: the first N, or those listed in FILE (one "
                            "image id or file name per line, # comments). The metrics and leaderboards still use "
                            "every image. The build prints the site's size against GitHub Pages' 1 GB.")
_FORCE = typer.Option("--force", help="Build into a non-empty --out that is not a build folder. Its files are "
                      "kept: a build never deletes or replaces what it did not write, so a folder already "
                      "holding one of the build's names (maps, docs, site...) is still refused.")
_COLORMAP = typer.Option("--colormap", metavar="viridis|inferno|turbo",
                         help="Default colormap of the pages (switchable in the page).")
_CONFIG = typer.Option("--config", metavar="FILE", dir_okay=False,
                       help="An atlas project's atlas.toml (default: ./atlas.toml if there is one, see `atlas "
                       "init`). Its keys are the defaults of these flags; a flag given here wins. Its build "
                       "goes into the file's folder/build.")
_RAY = typer.Option("--ray", metavar="auto|local|HOST:PORT",
                    help="Compute the maps on a Ray cluster: auto (the cluster this machine belongs to), local "
                    "(start Ray on this machine) or the head's HOST:PORT. One model-holding actor per GPU (or per "
                    "--ray-cpus CPUs), several models at once; the maps are the bytes a local build writes. "
                    "Needs pip install 'attention-atlas[ray]'. See the Scaling out page.")
_RAY_CPUS = typer.Option("--ray-cpus", min=1, metavar="N",
                         help="With --ray on a cluster without GPUs: CPUs per model-holding actor.")
_STRICT = typer.Option("--strict", help="Exit with code 1 if anything (an image, a box, a model, a requested "
                       "method a model lacks) was skipped.")


@app.command()
def build(
    ctx: typer.Context,
    images: Annotated[Path | None, _IMAGES] = None,
    annotations: Annotated[Path | None, _ANNOTATIONS] = None,
    model: Annotated[list[str] | None, _MODEL] = None,
    weights: Annotated[str, _WEIGHTS] = "auto",
    device: Annotated[str, _DEVICE] = "auto",
    batch_size: Annotated[int, _BATCH] = 8,
    image_size: Annotated[str | None, _SIZE] = None,
    method: Annotated[list[str] | None, _METHOD] = None,
    heads: Annotated[bool | None, _HEADS] = None,
    query_layers: Annotated[str | None, _QUERY] = None,
    prompts: Annotated[Path | None, _PROMPTS] = None,
    target_class: Annotated[int | None, _TARGET_CLASS] = None,
    out: Annotated[Path, _OUT] = Path("build"),
    site: Annotated[bool, _SITE] = True,
    site_dir: Annotated[Path | None, _SITE_DIR] = None,
    colormap: Annotated[str, _COLORMAP] = "viridis",
    site_images: Annotated[str | None, _SITE_IMAGES] = None,
    strict: Annotated[bool, _STRICT] = False,
    force: Annotated[bool, _FORCE] = False,
    config: Annotated[Path | None, _CONFIG] = None,
    ray: Annotated[str | None, _RAY] = None,
    ray_cpus: Annotated[int, _RAY_CPUS] = 1,
) -> None:
    """Compute every map (model x method x layer x head), cache it, and build the atlas site."""
    from atlas.build import BuildOptions, build_methods, run_build
    from atlas.project import find_project
    from atlas.query_layers import parse_query_layers
    from atlas.site_budget import parse_site_images
    from atlas.targets import TargetOptions, read_prompts
    from ssl_attention.preprocess import parse_size

    try:
        project = find_project(config)
        if project is not None:
            merged = _with_config(ctx, project.build)
            images, annotations, model = merged["images"], merged["annotations"], merged["model"]
            weights, batch_size, image_size = merged["weights"], merged["batch_size"], merged["image_size"]
            method, out, colormap = merged["method"], merged["out"], merged["colormap"]
            site_images = merged["site_images"]
            query_layers = merged["query_layers"]
            ray, ray_cpus = merged["ray"], merged["ray_cpus"]
            prompts, target_class = merged["prompts"], merged["target_class"]
            console.print(escape(f"Atlas project: {project.file}"), highlight=False)
        if annotations is not None and not annotations.is_file():
            _fail(f"{annotations}: annotation file not found")
        requests, unknown = _model_requests(model)
        names = [r.name for r in requests]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            _fail(f"--model: the same name is given twice ({', '.join(twice)})")
        if weights not in ("pretrained", "random", "auto"):
            _fail(f"--weights must be pretrained, random or auto, got {weights!r}")
        if ray is not None:
            from atlas.ray_cluster import require_ray

            require_ray()
        size = _parse_image_size(image_size, parse_size)
        methods, per_head = build_methods(method, heads)
        subset = parse_site_images(site_images)
        query = None if query_layers is None else parse_query_layers(query_layers)
        targets = TargetOptions(prompts=read_prompts(prompts) if prompts is not None else None,
                                target_class=target_class)
        options = BuildOptions(
            requests=requests, images=images, annotations=annotations, weights=weights, device=device,
            batch_size=batch_size, out=out, image_size=size, methods=methods, per_head=per_head, targets=targets,
            site=site, site_dir=site_dir, colormap=colormap, skipped_models=unknown, force=force,
            site_images=subset, query_layers=query,
            site_settings=project.site if project is not None else None, ray=ray, ray_cpus=ray_cpus,
        )
        report = run_build(options, console)
    except AtlasError as exc:
        _fail(str(exc))
    except OSError as exc:  # e.g. a read-only or full disk: the old site is kept
        _fail(_os_error_line(exc, f"--out {out}"))
    _summary(report)
    if strict and report.skipped:
        err_console.print(f"[bold red]error:[/] --strict: {len(report.skipped)} item(s) skipped", highlight=False)
        raise typer.Exit(code=1)


def _os_error_line(exc: OSError, fallback: str) -> str:
    """One line for a failed file operation: the file (else ``fallback``) and the problem, e.g.
    ``build/maps/x.npz: No space left on device``."""
    where = next((str(f) for f in (exc.filename, exc.filename2) if f), fallback)
    return f"{where}: {exc.strerror or exc}"


def _with_config(ctx: typer.Context, defaults: dict[str, Any]) -> dict[str, Any]:
    """The command's parameter values, each one not given on the command line taken from ``defaults``."""
    return {
        name: defaults[name] if name in defaults and ctx.get_parameter_source(name).name == "DEFAULT" else value
        for name, value in ctx.params.items()
    }


def _model_requests(texts: list[str] | None) -> tuple[list, list[str]]:
    """The parsed ``--model`` values and one line per value that names no model or a reserved name
    (skipped when others do).

    A bad value is an error when it is the only ``--model``, or when no value names a model.
    """
    from ssl_attention.models import DEFAULT_MODELS, parse_model_request

    requests, unknown = [], []
    for text in texts or list(DEFAULT_MODELS):
        try:
            request = parse_model_request(text)
        except AtlasError as exc:
            unknown.append(str(exc))
            continue
        if request.name in RESERVED_MODEL_NAMES:
            unknown.append(f"model name {request.name!r} is reserved for the site's own pages (reserved names: "
                           f"{_RESERVED}); choose another NAME")
        else:
            requests.append(request)
    if unknown and not requests:
        _fail("; ".join(unknown))
    return requests, unknown


def _parse_image_size(text: str | None, parse_size) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        return parse_size(text)
    except ValueError as exc:
        _fail(f"--image-size: {exc}")
    return None


def _summary(report) -> None:
    table = Table(title=f"Built {report.images} images in {report.seconds:.1f} s", title_justify="left")
    for column in ("model", "weights", "methods", "computed", "reused"):
        table.add_column(column)
    for result in report.models:
        entry = result.entry
        weights = "[bold red]RANDOM[/]" if entry.random else entry.weights
        table.add_row(escape(entry.name), weights, ", ".join(entry.methods), str(result.computed), str(result.reused))
    console.print(table)
    if report.skipped:
        console.print(f"[yellow]{len(report.skipped)} item(s) skipped[/] (listed above)")
    if report.random_models:
        console.print(f"[bold red]RANDOM weights:[/] {escape(', '.join(report.random_models))} - "
                      "their maps show no learned attention.", highlight=False)
    if report.site_dir is not None:
        console.print(escape(f"Site: {report.site_dir}  (atlas serve --site-dir {report.site_dir})"), highlight=False)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="The project folder (created if missing).")],
    images: Annotated[Path, typer.Option("--images", metavar="DIR", file_okay=False,
                                         help="Folder of the atlas' images (recorded relative to DIR).")],
    annotations: Annotated[Path | None, _ANNOTATIONS] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", metavar="NAME[=CHECKPOINT]",
        help="Models of the atlas; repeat for several. Default: all seven known models.")] = None,
    site_name: Annotated[str | None, typer.Option("--site-name", metavar="TEXT",
                                                  help="The site's title. Default: DIR's name.")] = None,
) -> None:
    """Start an atlas project in DIR: atlas.toml, a GitHub Actions workflow, a README and a home page.

    atlas.toml records how the atlas is built (every key commented); run `atlas build` in DIR to build it
    into DIR/build. The workflow rebuilds it and publishes it on GitHub Pages on every push.
    """
    from atlas.project import init_project

    try:
        written = init_project(directory, images=images, annotations=annotations, models=model,
                               site_name=site_name, version=_version())
    except AtlasError as exc:
        _fail(str(exc))
    for path in written:
        console.print(escape(f"wrote {path}"), highlight=False)
    console.print(escape(f"Next: cd {directory} && atlas build"), highlight=False)


@app.command()
def models() -> None:
    """List the known model names, their default checkpoints and methods."""
    from ssl_attention.models import DEFAULT_MODELS
    from ssl_attention.models.specs import default_methods

    table = Table(title="Known models (use NAME, or NAME=CHECKPOINT for any other checkpoint)")
    for column in ("name", "default checkpoint", "methods"):
        table.add_column(column)
    for name, checkpoint in DEFAULT_MODELS.items():
        table.add_row(name, checkpoint, ", ".join(default_methods(name)))
    console.print(table)


@app.command()
def serve(
    site_dir: Annotated[Path, typer.Option("--site-dir", help="The built site.")] = Path("build/site"),
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
) -> None:
    """Serve the built site locally (Ctrl-C stops)."""
    from atlas.serve import serve as serve_site

    if not (site_dir / "index.html").is_file():
        _fail(f"{site_dir}: no built site here (run `atlas build` first)")
    console.print(escape(f"Serving {site_dir} at http://{host}:{port}/ (Ctrl-C stops)"), highlight=False)
    try:
        serve_site(site_dir, host=host, port=port)
    except AtlasError as exc:
        _fail(str(exc))


@app.command()
def deploy(
    remote: Annotated[str, typer.Option("--remote", help="Git remote URL or path to push to.")],
    site_dir: Annotated[Path, typer.Option("--site-dir", help="The built site.")] = Path("build/site"),
    branch: Annotated[str, typer.Option("--branch", help="Branch GitHub Pages serves.")] = "gh-pages",
    message: Annotated[str | None, typer.Option("--message", help="Commit message.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the branch even if its last commit was not "
                                        "made by `atlas deploy` (e.g. a branch holding code).")] = False,
) -> None:
    """Publish the built site as one commit on a gh-pages branch of a git remote.

    The branch is replaced: only an absent branch or one made by
    `atlas deploy` is accepted without --force. Git runs in a private
    temporary repository; your repository, index and hooks stay untouched.
    """
    from atlas.deploy import deploy as deploy_site

    if not (site_dir / "index.html").is_file():
        _fail(f"{site_dir}: no built site here (run `atlas build` first)")
    try:
        sha = deploy_site(site_dir, remote, branch=branch, message=message, force=force)
    except AtlasError as exc:
        _fail(str(exc))
    console.print(escape(f"Pushed {site_dir} to {remote} {branch} ({sha[:12]})"), highlight=False)


def _click_exceptions():
    """The click exception module Typer uses (recent Typer vendors its own copy of click)."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older Typer on plain click
        from click import exceptions
    return exceptions


def main(argv: list[str] | None = None) -> int:
    """The ``atlas`` console script: like ``app``, but usage errors are one line on stderr, exit code 2."""
    exceptions = _click_exceptions()
    try:
        result = app(args=argv, prog_name="atlas", standalone_mode=False)
    except exceptions.NoArgsIsHelpError as exc:
        console.print(exc.ctx.get_help())
        return 0
    except exceptions.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        err_console.print(f"[bold red]error:[/] {escape(exc.format_message() + hint)}", highlight=False, soft_wrap=True)
        return 2
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except exceptions.ClickException as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.format_message())}", highlight=False, soft_wrap=True)
        return exc.exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
