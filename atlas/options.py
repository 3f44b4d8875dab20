"""The one schema of ``atlas build``'s options: flag, help, ``atlas.toml`` key, parser and default, each once.

From ``BUILD_OPTIONS`` come the Typer parameters of ``atlas build`` (``typer_parameters``), the build
keys of ``atlas.toml`` and their checks (``atlas.project``), ``atlas init``'s commented file, and the
options table of the CLI reference (``reference_table``; a test keeps ``site_src/cli.md`` equal to it).
``resolve`` turns the given values (command line over ``atlas.toml`` over defaults) into the keyword
arguments of ``atlas.build.BuildOptions``, every one checked and every default resolved here, before any
model runs.

This module is imported by ``atlas --help``: it imports nothing heavy (no torch) at module level.

To add a build option: one ``Option`` entry below (with its parser), the field of ``BuildOptions`` it
sets, and the stage that reads it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from atlas.core.colormaps import COLORMAPS
from atlas.core.layout import RESERVED_MODEL_NAMES
from atlas.core.limits import BATCH_SIZE, RAY_CPUS, TARGET_CLASS, Bound
from atlas.core.limits import MAX_TOKENS as MAX_TOKENS_BOUND
from atlas.core.query_layers import OWN_IMAGES_DEFAULT, SAMPLE_DEFAULT, parse_query_layers
from ssl_attention.errors import AtlasError
from ssl_attention.methods import method_names

RESIZE_MODES = ("squash", "keep")  # --resize (ssl_attention.aspect.RESIZE_MODES; no torch imported here)
DEFAULT_MAX_TOKENS = 2048  # --max-tokens (ssl_attention.aspect.DEFAULT_MAX_TOKENS)

WEIGHTS = ("pretrained", "random", "auto")


@dataclass(frozen=True)
class Option:
    """One option of ``atlas build``.

    ``name`` is the Typer parameter and the ``BuildOptions`` field; ``key`` the ``atlas.toml`` key (None:
    command line only) with its value ``kind`` (see ``atlas.project``); ``parse`` turns the given value
    (command-line text or the checked ``atlas.toml`` value) into the build's value, raising ``AtlasError``
    (one line) for a bad one. ``doc`` is the option's row of the CLI reference's table (Markdown).
    """

    name: str
    flags: tuple[str, ...]
    annotation: Any
    default: Any
    help: str
    metavar: str | None = None
    key: str | None = None
    kind: str = "string"
    example: Any = None
    parse: Callable[[Any], Any] | None = None
    choices: tuple[str, ...] = ()  # the allowed values (kind "choice")
    typer_extra: dict[str, Any] = field(default_factory=dict)
    doc: tuple[str, str, str] = ("", "", "")  # the CLI reference's row: option, default, meaning (Markdown)


def _number(bound: Bound, flag: str) -> Callable[[str | int], int]:
    """A Typer parser: the flag's text as a whole number within ``bound`` (ASCII digits only), else a usage
    error naming the flag (one line, exit code 2)."""

    def parse(value: str | int) -> int:
        try:
            return bound.check(value)
        except ValueError as exc:
            raise typer.BadParameter(f"{exc}; {flag} takes {bound.describe()}") from None

    return parse


def _existing_file(flag: str, what: str) -> Callable[[Path | None], Path | None]:
    def parse(value: Path | None) -> Path | None:
        if value is not None and not Path(value).is_file():
            raise AtlasError(f"{value}: {what} not found")
        return value

    return parse


def _image_size(value: str | None) -> tuple[int, int] | None:
    from ssl_attention.preprocess import parse_size

    if value is None:
        return None
    try:
        return parse_size(str(value))
    except ValueError as exc:
        raise AtlasError(f"--image-size: {exc}") from None


def _site_images(value: Any) -> Any:
    from atlas.site.budget import parse_site_images

    return parse_site_images(value)


def _query_layers(value: str | None) -> str | None:
    return None if value is None else parse_query_layers(value)


def _feature_layers(value: str | None) -> str | None:
    return None if value is None else parse_query_layers(value, "--feature-layers")


def _prompts(value: Path | None) -> tuple[str, ...] | None:
    from atlas.models.targets import read_prompts

    return None if value is None else read_prompts(Path(value))


def _select_on(value: Any) -> float | None:
    from atlas.metrics.held_out import parse_fraction

    return parse_fraction(value)


def _bases(value: list[str] | None) -> tuple:
    from atlas.core.variants import parse_bases

    return parse_bases(value)


def _reserved() -> str:
    return ", ".join(sorted(RESERVED_MODEL_NAMES))


BUILD_OPTIONS: tuple[Option, ...] = (
    Option("images", ("--images",), Path | None, None, metavar="DIR", key="images", kind="folder", example="images",
           help="Folder of images (jpg, png, webp, bmp, gif, tiff). Default: the bundled sample.",
           typer_extra={"file_okay": False},
           doc=(
               '`--images DIR`',
               'bundled sample images',
               'folder of images (jpg, png, webp, bmp, gif, tiff); image id = file stem',
           )),
    Option("annotations", ("--annotations",), Path | None, None, metavar="FILE", key="annotations", kind="file",
           example="boxes.json", parse=_existing_file("--annotations", "annotation file"),
           help="Boxes: COCO detection JSON or WikiChurches building_parts.json (optional).",
           typer_extra={"dir_okay": False},
           doc=(
               '`--annotations FILE`',
               'sample boxes / none',
               'boxes as COCO detection JSON or WikiChurches `building_parts.json` (see [Getting '
               'started](getting-started.md#your-own-images-and-boxes))',
           )),
    Option("model", ("--model", "-m"), list[str] | None, None, metavar="NAME[=CHECKPOINT]", key="models",
           kind="strings", example=["dinov2", "clip", "mine=checkpoints/mine"],
           help="NAME or NAME=CHECKPOINT (Hub id, local save_pretrained folder, or "
           "timm:MODEL_NAME\\[@WEIGHTS_FILE]); repeat for several. Default: all seven known models "
           "(see `atlas models`). Among several, an unknown name or a checkpoint that cannot be "
           "loaded is skipped (one line, listed in OUT/report.json); alone, it is an error. "
           f"Reserved names (the site's own pages): {_reserved()}.",
           doc=(
               '`--model`, `-m NAME[=CHECKPOINT]`',
               'all seven',
               'repeatable. `NAME` alone = a known model (`atlas models`); `NAME=CHECKPOINT` = any Hub id, '
               'local `save_pretrained` directory, or `timm:MODEL_NAME[@WEIGHTS_FILE]`, labelled `NAME` '
               '(lowercase letters, digits, `-`, `_`). See [Models](models.md#adding-your-own-checkpoint). '
               'Among several, an unknown name or a checkpoint that cannot be loaded is skipped; alone, it '
               'is an error',
           )),
    Option("bases", ("--base",), list[str] | None, None, metavar="VARIANT=BASE", key="bases", kind="strings",
           example=["mine=dinov2"], parse=_bases,
           help="Declare model VARIANT a fine-tuned version of model BASE (both given with --model); repeat "
           "for several, several variants may share a base. The pair must have the same architecture and "
           "grid. Adds OUT/metrics/deltas.csv (paired statistics per head) and a variants page.",
           doc=(
               '`--base VARIANT=BASE`',
               'none',
               'repeatable. Declares model `VARIANT` a fine-tuned [variant](glossary.md#variant) of model '
               '`BASE`, both named with `--model`; several variants may share a base. The two must have the '
               'same architecture and grid (layers, heads, patch size, input size), else one line naming '
               'both and what differs (exit code 2): the architecture is compared before any model runs, '
               'the grid once both are loaded, before any map is scored. A name that is not a `--model` '
               'of the build is refused before any model runs. Adds `OUT/metrics/deltas.csv` (paired '
               'statistics per head, see [Metrics](metrics.md#variants-paired-differences)), a variants page '
               'and compare views',
           )),
    Option("weights", ("--weights",), str, "auto", metavar="pretrained|random|auto", key="weights", kind="choice",
           choices=WEIGHTS,
           help="pretrained: download/load the checkpoint's weights or fail; random: same architecture, "
           "randomly initialised (maps are meaningless, labelled as such); auto: pretrained where "
           "obtainable, else random with a warning.",
           doc=(
               '`--weights pretrained|random|auto`',
               '`auto`',
               "`pretrained`: load the checkpoint's weights or fail; `random`: same architecture, randomly "
               'initialised (maps are meaningless, labelled as such); `auto`: pretrained where obtainable, '
               'else random with a warning',
           )),
    Option("device", ("--device",), str, "auto", metavar="auto|cpu|cuda|mps",
           help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda or mps. GPUs run in bf16/fp16 autocast.",
           doc=(
               '`--device auto|cpu|cuda|mps`',
               '`auto`',
               '`auto`: CUDA, then MPS, then CPU. GPUs run under bf16/fp16 autocast',
           )),
    Option("batch_size", ("--batch-size",), int, 8, metavar="N", key="batch_size", kind="integer", example=8,
           help=f"Images decoded, computed and written together (one Ray job), 1 to {BATCH_SIZE.high:,}. The "
           "forward passes take a fixed number of images per model (8, fewer for large inputs), blank ones "
           "filling the last, so the maps do not depend on it; a multiple of 8 wastes no compute.",
           typer_extra={"parser": _number(BATCH_SIZE, "--batch-size")},
           doc=(
               '`--batch-size N`',
               '`8`',
               'images decoded, computed and written together (with `--ray`: one job), 1 to 1,024. The '
               'forward passes themselves take a fixed number of images per model, the [forward '
               'batch](glossary.md#forward-batch) (8, fewer for large inputs), blank images filling the '
               'last one, so the maps are the same bytes for any `--batch-size`; a multiple of 8 wastes no '
               'compute',
           )),
    Option("image_size", ("--image-size",), str | None, None, metavar="N|HxW", key="image_size", kind="size",
           example=224, parse=_image_size,
           help="Model input size N or HxW, at most 1024 px per side; each side is rounded to the "
           "nearest multiple of the patch size, halves up, at least one patch. Default: the "
           "checkpoint's own (224 for the defaults). The whole image is resized, never cropped.",
           doc=(
               '`--image-size N` or `HxW`',
               "the checkpoint's own (224 for the defaults)",
               'model input size, at most 1024 px per side, each side rounded to the nearest multiple of '
               'the patch size (halves up, at least one patch; see [Input size](models.md#input-size)); '
               '`HxW` gives non-square grids. The whole image is resized, never cropped',
           )),
    Option("resize", ("--resize",), str, "squash", metavar="squash|keep", key="resize", kind="choice",
           choices=RESIZE_MODES,
           help="squash: every image resized whole to the model's square input; keep: the shorter side to "
           "the input side (--image-size N, else the model's own), the longer by the same factor, each "
           "side rounded to the patch size, so each image has its own grid. Models that cannot "
           "interpolate position embeddings stay squashed (one line).",
           doc=(
               '`--resize squash|keep`',
               '`squash`',
               '`squash`: every image is resized whole to the square input; `keep`: its shorter side to the '
               'input side (`--image-size N`, else the checkpoint\'s own), the longer side by the same '
               'factor, each side rounded to the patch size, so each image has its own grid (see '
               '[Preprocessing](methods.md#preprocessing-squash-or-keep)); at most `--max-tokens` patch '
               'tokens per image. A model that cannot interpolate its position embeddings is built '
               'squashed (one line)',
           )),
    Option("max_tokens", ("--max-tokens",), int, DEFAULT_MAX_TOKENS, metavar="N", key="max_tokens",
           kind="integer", example=DEFAULT_MAX_TOKENS,
           help=f"With --resize keep: the most patch tokens an image may give, 1 to {MAX_TOKENS_BOUND.high:,}; "
           "a larger image is scaled down until it fits (one line per image).",
           typer_extra={"parser": _number(MAX_TOKENS_BOUND, "--max-tokens")},
           doc=(
               '`--max-tokens N`',
               f'`{DEFAULT_MAX_TOKENS:,}`',
               'with `--resize keep`: the most patch tokens (grid cells) one image may give, 1 to 16,384; an '
               'image that would give more is scaled down until it fits, with one line naming it and its '
               'input size. For ResNet-50 a token is a 32 px cell',
           )),
    Option("method", ("--method",), list[str] | None, None, metavar="|".join(method_names()), key="methods",
           kind="strings", example=["cls", "rollout"],
           help="Methods to compute; repeat for several. Default: every method each model supports. "
           "A model that lacks some of them computes the others; one that lacks all is skipped "
           "(an error if it is the only model).",
           doc=(
               '`--method NAME`',
               'every method each model supports (but `relevance` and `gradcam_vit`)',
               '`cls`, `mean`, `rollout`, `gradcam`, `relevance` or `gradcam_vit`; repeatable. The '
               'gradient methods `relevance` and `gradcam_vit` are computed only when named, for models '
               'with a target (a ViT classifier head, a CLIP/SigLIP text tower; see '
               '[Relevance](methods.md#relevance-relevance-vits-with-a-target)); self-supervised backbones '
               'skip them with one line. Any other name is an error before any model loads. A model that '
               'lacks some of the methods computes the others; one that lacks all of them is skipped (see '
               'below)',
           )),
    Option("heads", ("--heads/--no-heads",), bool | None, None,
           help="--heads (the default): keep per-head maps where they exist "
           "(cls, mean; rollout and Grad-CAM have no heads and stay fused); naming rollout or "
           "gradcam with --method together with --heads is an error. --no-heads: fused maps only.",
           doc=(
               '`--heads` / `--no-heads`',
               '`--heads`',
               '`--heads`: per-head maps where they exist (`cls`, `mean`); rollout and Grad-CAM have no '
               'heads and stay fused, so `--heads` alone is the default. Naming `rollout` or `gradcam` '
               'with `--method` together with `--heads` is an error. `--no-heads`: fused maps only',
           )),
    Option("query_layers", ("--query-layers",), str | None, None, metavar="LAYERS", key="query_layers",
           example="last", parse=_query_layers,
           help="Export the query-patch rows of these layers (where each patch attends, per head; the "
           "image page's query-patch explorer): none, last, all, or layer numbers such as 11 or 8,11 "
           "or 0,last. They cost heads x patches^2 bytes per image, model and layer (~0.8 MB for a "
           "ViT-B at 224 px). Default: last for the bundled sample, none for your own --images.",
           doc=(
               '`--query-layers LAYERS`',
               '`last` for the bundled sample, `none` for your own `--images`',
               'export the [query-patch](glossary.md#query-patch) rows of these layers for the image '
               "page's [query-patch explorer](atlas-guide.md#query-patch-explorer): `none`, `last`, `all`, "
               'or layer numbers and `last` separated by commas (`11`, `8,11`, `0,last`). Rows cost heads '
               '× patches² bytes per image, model and layer (about 0.8 MB for a ViT-B at 224 px: 12 × 256² '
               'for DINOv2, 12 × 196² = 0.46 MB for patch 16), so they are opt-in. A layer a model lacks '
               'is skipped for that model (one line, in `report.json`); any other value is an error (exit '
               'code 2, one line). The rows are part of the cache key: changing the layers recomputes the '
               'maps',
           )),
    Option("feature_layers", ("--feature-layers",), str | None, None, metavar="LAYERS", key="feature_layers",
           example="last", parse=_feature_layers,
           help="Export the patch features of these layers (int8, one scale per token; the image page's "
           "patch-similarity explorer): none, last, all, or layer numbers such as 11 or 8,11 or 0,last. "
           "They cost patches x (width + 4) bytes per image, model and layer (~0.2 MB for a ViT-B at "
           "224 px). Default: last for the bundled sample, none for your own --images.",
           doc=(
               '`--feature-layers LAYERS`',
               '`last` for the bundled sample, `none` for your own `--images`',
               'export the [patch features](glossary.md#patch-features) of these layers for the image '
               "page's [patch-similarity explorer](methods.md#patch-similarity): `none`, `last`, `all`, "
               'or layer numbers and `last` separated by commas (`11`, `8,11`, `0,last`). Each token is '
               'stored as int8 with one float32 scale, patches × (width + 4) bytes per image, model and '
               'layer (about 0.2 MB for a ViT-B at 224 px: 256 × 772 for DINOv2, 196 × 772 = 0.15 MB for '
               'patch 16). A layer a model lacks is skipped for that model (one line, in `report.json`); '
               'any other value is an error (exit code 2, one line). The layers are part of the cache '
               'key: changing them recomputes the maps',
           )),
    Option("out", ("--out", "-o"), Path, Path("build"), metavar="DIR",
           help="Build folder (maps cache, images, metrics, site): a new or empty folder, or one an "
           "earlier build made (marked by OUT/.atlas-build). It may not be, hold or lie inside the "
           "images, the annotations or a local checkpoint. One build at a time per folder.",
           doc=(
               '`--out`, `-o DIR`',
               '`build`',
               'build folder: `images/`, `maps/` ([export format](reference/export-format.md)), `metrics/` '
               '([metrics](metrics.md)), `report.json`, `site/`. A new or empty folder, or one a build '
               'made (marked by `OUT/.atlas-build`); never the images, the annotations or a local '
               'checkpoint, nor a folder holding or inside them. One build at a time per folder (see '
               '[Robust builds](robust-builds.md#your-files-are-never-touched))',
           )),
    Option("site", ("--site/--no-site",), bool, True, help="Render PNGs, pages and the MkDocs site.",
           doc=(
               '`--site` / `--no-site`',
               '`--site`',
               'render the heatmaps, pages and MkDocs site, or stop after the maps',
           )),
    Option("site_dir", ("--site-dir",), Path | None, None, metavar="DIR",
           help="Where the site goes. Default: OUT/site. Replaced as a whole, so it must be new, "
           "empty or the site this OUT last wrote there (a CNAME and a .nojekyll you add are kept), "
           "and apart from the inputs and OUT.",
           doc=(
               '`--site-dir DIR`',
               '`OUT/site`',
               'where the finished static site is written. It is replaced as a whole, so it must be new, '
               'empty or the site this `--out` last wrote there (you may add a `CNAME` and a `.nojekyll`: '
               'they are kept), and apart from the inputs and `--out`. The hidden `.DIR.atlas/` beside it '
               "is the build's [site work folder](glossary.md#site-work-folder)",
           )),
    Option("site_images", ("--site-images",), str | None, None, metavar="N|FILE", key="site_images", kind="images",
           example=100, parse=_site_images,
           help="Publish only some images in the site: the first N, or those listed in FILE (one "
           "image id or file name per line, # comments). The metrics and leaderboards still use "
           "every image. The build prints the site's size against GitHub Pages' 1 GB.",
           doc=(
               '`--site-images N` or `FILE`',
               'all images',
               "publish only some images in the site: the first `N` (in the build's order, by image id), "
               'or those `FILE` lists, one image id or file name per line (`#` starts a comment). The '
               'metrics, leaderboards and per-model pages still use every image; the gallery, image and '
               'head pages show the published ones. `0`, a missing file, or a listed image that is not in '
               'the build is an error (exit 2) before any model runs',
           )),
    Option("force", ("--force",), bool, False,
           help="Build into a non-empty --out that is not a build folder. Its files are "
           "kept: a build never deletes or replaces what it did not write, so a folder already "
           "holding one of the build's names (maps, docs, site...) is still refused.",
           doc=(
               '`--force`',
               'off',
               'build into a non-empty `--out` that is not a build folder. Its files are kept; a folder '
               "that already holds one of the build's own names (`maps`, `docs`, `site`...) is still "
               'refused',
           )),
    Option("colormap", ("--colormap",), str, "viridis", metavar="|".join(COLORMAPS), key="colormap", kind="choice",
           choices=tuple(COLORMAPS),
           help="Default colormap of the pages (switchable in the page).",
           doc=(
               '`--colormap NAME`',
               '`viridis`',
               'initial colormap of the pages: `viridis`, `inferno` or `turbo` (switchable on every page); '
               'any other name is an error before any model runs, also with `--no-site`',
           )),
    Option("config", ("--config",), Path | None, None, metavar="FILE",
           help="An atlas project's atlas.toml (default: ./atlas.toml if there is one, see `atlas "
           "init`). Its keys are the defaults of these flags; a flag given here wins. Its build "
           "goes into the file's folder/build.", typer_extra={"dir_okay": False},
           doc=(
               '`--config FILE`',
               '`./atlas.toml` if present',
               "an [atlas project](your-own-atlas.md)'s file: its keys are the defaults of these options "
               '(an option given on the command line wins), the site takes its name, address and pages, '
               "and the build goes into the file's folder `build/`",
           )),
    Option("prompts", ("--prompts",), Path | None, None, metavar="FILE", key="prompts", kind="file",
           example="prompts.txt", parse=_prompts,
           help="Prompts for relevance and gradcam_vit of CLIP/SigLIP two-tower checkpoints, one per "
           "line (UTF-8). Default: one per box label, 'a photo of a {label}.'.", typer_extra={"dir_okay": False},
           doc=(
               '`--prompts FILE`',
               'one per box label, `a photo of a {label}.`',
               'prompts that `relevance` and `gradcam_vit` explain for CLIP/SigLIP two-tower checkpoints, '
               'one per non-empty line (UTF-8, at most 256). A missing, unreadable or empty file is an '
               'error (exit 2), and so is a FIFO, device or folder (refused from its type, never opened)',
           )),
    Option("target_class", ("--target-class",), int | None, None, metavar="N", key="target_class", kind="index",
           example=0, help="Class index that relevance and gradcam_vit explain for ViT classifiers. "
           "Default: each image's top-1 class.", typer_extra={"parser": _number(TARGET_CLASS, "--target-class")},
           doc=(
               '`--target-class N`',
               "each image's top-1 class",
               'the class index (0 to 1,000,000) that `relevance` and `gradcam_vit` explain for ViT '
               "classifiers; outside the head's classes the model is skipped with one line",
           )),
    Option("ray", ("--ray",), str | None, None, metavar="auto|local|HOST:PORT", key="ray", example="auto",
           help="Compute the maps on a Ray cluster: auto (the cluster this machine belongs to), local "
           "(start Ray on this machine) or the head's HOST:PORT. One model-holding actor per GPU (or per "
           "--ray-cpus CPUs), several models at once; the maps are the bytes a local build writes. "
           "Needs pip install 'attention-atlas\\[ray]'. See the Scaling out page.",
           doc=(
               '`--ray auto|local|HOST:PORT`',
               'off',
               'compute the maps on a [Ray](glossary.md#ray) cluster: `auto` (the cluster this machine '
               "belongs to), `local` (start Ray on this machine, bound to 127.0.0.1) or the head's "
               '`HOST:PORT`. One model-holding [actor](glossary.md#actor) per GPU (or per `--ray-cpus` '
               'CPUs), several models at once; the maps are the bytes a local build writes. Needs `pip '
               "install 'attention-atlas[ray]'` (without it: one line saying so, exit code 2). Before "
               'anything runs the address is probed: where no Ray cluster answers (a closed port, an '
               'unknown host, a listener that stays silent for 5 s or is no gRPC server) the build stops '
               "with one line within seconds instead of Ray's minutes of retries. See [Scaling "
               'out](scaling-out.md)',
           )),
    Option("ray_cpus", ("--ray-cpus",), int, 1, metavar="N", key="ray_cpus", kind="integer", example=1,
           help="With --ray on a cluster without GPUs: CPUs per model-holding actor.",
           typer_extra={"parser": _number(RAY_CPUS, "--ray-cpus")},
           doc=(
               '`--ray-cpus N`',
               '`1`',
               'with `--ray` on a cluster without GPUs: CPUs per model-holding actor, 1 to 4,096',
           )),
    Option("select_on", ("--select-on",), str | None, None, metavar="FRACTION", key="select_on", kind="fraction",
           example=0.5, parse=_select_on,
           help="Also give an honest estimate of the best layer and head: choose them on this fraction of the "
           "images with boxes (a fixed split by a hash of the image id) and report their mean and CI on the "
           "rest, beside the usual figure (leaderboard, summary.json's held_out). A number between 0 and 1, "
           "e.g. 0.5. Default: off.",
           doc=(
               '`--select-on FRACTION`',
               'off',
               "also report a [held-out estimate](metrics.md#held-out-estimate) of the leaderboard's best "
               'layers and heads: they are chosen on the images with boxes whose id hashes below `FRACTION` '
               '(a fixed split: adding images moves no other image across it) and scored on the others, '
               "shown beside the usual figures on the leaderboard and written as `summary.json`'s "
               '`held_out`. A number strictly between 0 and 1 (`0.5`: about half each); one that is not, or '
               'that leaves no image with boxes on one side, is an error (exit 2, one line) before any '
               'model runs',
           )),
    Option("strict", ("--strict",), bool, False,
           help="Exit with code 1 if anything (an image, a box, a model, a requested method a model lacks) "
           "was skipped.",
           doc=(
               '`--strict`',
               'off',
               'exit with code 1 when anything (an image, a box, a model, a requested method a model '
               'lacks) was skipped',
           )),
)
BY_NAME = {option.name: option for option in BUILD_OPTIONS}


def default(name: str) -> Any:
    """The default of build option ``name`` (``BuildOptions`` takes its defaults from here)."""
    return BY_NAME[name].default


def typer_parameters() -> list[inspect.Parameter]:
    """``atlas build``'s parameters, as Typer reads them from a signature."""
    params = []
    for option in BUILD_OPTIONS:
        info = typer.Option(*option.flags, metavar=option.metavar, help=option.help, **option.typer_extra)
        params.append(inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=option.default,
                                        annotation=Annotated[option.annotation, info]))
    return params


def with_schema(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command(ctx, **values)`` the build options as its Typer parameters."""
    ctx = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    params = [ctx, *typer_parameters()]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def merged(given: Mapping[str, Any], from_command_line: set[str], project_values: Mapping[str, Any]) -> dict:
    """Each option's value: given on the command line, else the project's ``atlas.toml``, else its default."""
    return {name: given[name] if name in from_command_line or name not in project_values else project_values[name]
            for name in given}


def resolve(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every option's value parsed and checked (``AtlasError``, one line, for the first bad one), and the
    defaults that depend on other options resolved: the ``BuildOptions`` fields this schema sets."""
    out = {name: parsed(BY_NAME[name], value) for name, value in values.items()}
    if out["query_layers"] is None:
        out["query_layers"] = default_query_layers(out["images"])
    if out.get("feature_layers", "") is None:
        out["feature_layers"] = default_query_layers(out["images"])  # the same rule: last for the sample
    return out


def parsed(option: Option, value: Any) -> Any:
    """``value`` of ``option`` as the build uses it; ``AtlasError`` (one line) for a bad one. A value outside
    the option's ``choices`` is refused by ``BuildOptions.check``, before any folder is touched."""
    return option.parse(value) if option.parse else value


def toml_help(option: Option) -> str:
    """The option's help as ``atlas.toml``'s comment says it (no console markup escapes)."""
    return option.help.replace("\\[", "[")


def default_query_layers(images: Path | None) -> str:
    """``--query-layers`` unset: the bundled sample (no ``--images``) exports the last layer, your own none."""
    return SAMPLE_DEFAULT if images is None else OWN_IMAGES_DEFAULT


# -- the CLI reference -----------------------------------------------------------------------------------

def reference_table() -> str:
    """The options table of ``atlas build`` on the CLI reference page (Markdown), from the schema."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    rows += [f"| {flag} | {default_text} | {meaning} |" for flag, default_text, meaning in
             (option.doc for option in BUILD_OPTIONS)]
    return "\n".join(rows)
