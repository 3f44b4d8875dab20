"""Atlas projects: a folder whose ``atlas.toml`` records how one atlas is built (``atlas init`` writes it).

``atlas build`` run in the folder (or with ``--config FILE``) reads the file: its build keys are the
defaults of the command's flags (a flag given on the command line wins), its site keys name and shape the
site. Paths in the file are relative to the file. Every key is in ``KEYS`` (one source for checking the
file, writing the commented file of ``atlas init`` and the docs' reference table). A bad file is one line
naming the file, the key and what is expected.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atlas.colormaps import COLORMAPS
from atlas.layout import PAGES_DIR
from atlas.query_layers import parse_query_layers
from atlas.resources import templates_dir
from ssl_attention.errors import AtlasError
from ssl_attention.methods import method_names

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "atlas.toml"
WEIGHTS = ("pretrained", "random", "auto")
TOOL_DOCS_DIR = "attention-atlas"  # where the tool's own docs go in a project's site
TOOL_DOCS_TITLE = "About Attention Atlas"


class ConfigError(AtlasError):
    """A bad ``atlas.toml``: one line naming the file, the key and what is expected."""


@dataclass(frozen=True)
class Key:
    """One key of ``atlas.toml``: its value kind, what it means, and the ``atlas build`` parameter it sets."""

    name: str
    kind: str  # string, folder, file, strings, integer, index (>= 0), size, images (count or file), boolean, "choice"
    help: str
    param: str | None = None  # the `atlas build` parameter whose default it is; None: a site setting
    choices: tuple[str, ...] = ()


KEYS: tuple[Key, ...] = (
    Key("site_name", "string", "The site's title (header, browser tab, search results). Default: the folder's name."),
    Key("description", "string", "A sentence or two on the atlas: the site's description (search engines, "
        "link previews) and the generated home page's text."),
    Key("site_url", "string", "The address the site is published at, e.g. \"https://USER.github.io/REPO/\": "
        "fills sitemap.xml and every page's canonical link. Unset: the sitemap lists no pages."),
    Key("images", "folder", "The folder of images (jpg, png, webp, bmp, gif, tiff). Required.", "images"),
    Key("annotations", "file", "Boxes: a COCO detection JSON or WikiChurches building_parts.json. Unset: no "
        "boxes and no metrics.", "annotations"),
    Key("models", "strings", "Models: NAME or NAME=CHECKPOINT (Hub id, save_pretrained folder, "
        "timm:MODEL_NAME[@WEIGHTS_FILE]); see `atlas models`. Unset: all seven known models.", "model"),
    Key("methods", "strings", "Methods to compute (" + ", ".join(method_names()) + "). Unset: every method "
        "each model supports.", "method"),
    Key("weights", "choice", "pretrained, random or auto (pretrained where obtainable, else random with a "
        "warning).", "weights", WEIGHTS),
    Key("colormap", "choice", "The pages' default colormap (switchable in the page).", "colormap", tuple(COLORMAPS)),
    Key("image_size", "size", "Model input size: N or \"HxW\" (rounded to the patch size). Unset: each "
        "checkpoint's own.", "image_size"),
    Key("batch_size", "integer", "Images decoded, computed and written together (the maps do not depend on "
        "it; a multiple of 8 wastes no compute).", "batch_size"),
    Key("site_images", "images", "Publish only some images in the site: a number N (the first N) or a file "
        "listing image ids, one per line. The metrics use every image. Unset: all images.", "site_images"),
    Key("query_layers", "string", "Layers whose query-patch rows are exported for the image page's query-patch "
        "explorer: \"none\", \"last\", \"all\" or layer numbers such as \"8,11\" (see `--query-layers`). "
        "Unset: none.", "query_layers"),
    Key("prompts", "file", "Prompts that relevance and gradcam_vit explain for CLIP/SigLIP two-tower checkpoints, "
        "one per line (see `--prompts`). Unset: one per box label, \"a photo of a {label}.\".", "prompts"),
    Key("target_class", "index", "The class index that relevance and gradcam_vit explain for ViT classifiers. "
        "Unset: each image's top-1 class.", "target_class"),
    Key("ray", "string", "Compute the maps on a Ray cluster: \"auto\", \"local\" or the head's \"HOST:PORT\" "
        "(needs pip install 'attention-atlas[ray]'). Unset: this process.", "ray"),
    Key("ray_cpus", "integer", "With ray, on a cluster without GPUs: CPUs per model-holding actor.", "ray_cpus"),
    Key("pages", "folder", "A folder of your own Markdown pages (index.md is the home page; about, dataset, "
        "citation, ...): first in the navigation and in the search. Unset: a generated home page."),
    Key("tool_docs", "boolean", "Whether the site includes Attention Atlas' own documentation (methods, "
        f"metrics, glossary, CLI) as the section \"{TOOL_DOCS_TITLE}\". Default: true."),
)
_BY_NAME = {key.name: key for key in KEYS}
_EXPECTED = {
    "string": "a string", "folder": "a folder path (a string)", "file": "a file path (a string)",
    "strings": "a list of strings", "integer": "a positive integer",
    "index": "a non-negative integer", "boolean": "true or false",
    "size": 'a positive integer or a string "HxW"',
    "images": "a positive integer or a file path (a string)",
}


@dataclass(frozen=True)
class SiteSettings:
    """How a project's site differs from the tool's own: title, address, the user's pages, the tool docs."""

    site_name: str
    description: str | None = None
    site_url: str | None = None
    pages: Path | None = None  # folder of the user's Markdown pages
    tool_docs: bool = True


@dataclass(frozen=True)
class AtlasProject:
    """A read ``atlas.toml``: the site settings and the defaults of ``atlas build``'s parameters."""

    file: Path
    site: SiteSettings
    build: dict[str, Any]  # atlas build parameter -> value from the file (incl. out = the project's build/)


def find_project(config: Path | None, cwd: Path | None = None) -> AtlasProject | None:
    """The project of ``--config FILE``, else of ``./atlas.toml`` if there is one, else None."""
    if config is None:
        config = (cwd or Path.cwd()) / CONFIG_NAME
        if not config.is_file():
            return None
    elif not config.is_file():
        raise ConfigError(f"{config}: config file not found")
    return load_project(config)


def load_project(file: Path) -> AtlasProject:
    """Read and check ``file``; raises ``ConfigError`` (one line) on the first problem."""
    file = Path(file).absolute()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML ({' '.join(str(exc).split())})") from None
    for name in data:
        if name not in _BY_NAME:
            raise ConfigError(f"{file}: unknown key {name!r} (known keys: {', '.join(_BY_NAME)})")
    if "images" not in data:
        raise ConfigError(f"{file}: images: missing (the folder of images, relative to this file)")
    values = {name: _checked(file, _BY_NAME[name], value) for name, value in data.items()}
    reserved = [name for name in (PAGES_DIR, TOOL_DOCS_DIR) if "pages" in values and (values["pages"] / name).exists()]
    if reserved:
        raise ConfigError(f"{file}: pages: {reserved[0]}/ is the atlas' own; rename it in {values['pages']}")
    base = file.parent
    build: dict[str, Any] = {"out": base / "build"}
    for key in KEYS:
        if key.param is not None and key.name in values:
            build[key.param] = values[key.name]
    if "model" in build:
        build["model"] = [_model_relative_to(base, text) for text in build["model"]]
    site = SiteSettings(
        site_name=values.get("site_name", base.name),
        description=values.get("description"),
        site_url=values.get("site_url"),
        pages=values.get("pages"),
        tool_docs=values.get("tool_docs", True),
    )
    return AtlasProject(file=file, site=site, build=build)


def _checked(file: Path, key: Key, value: Any) -> Any:
    """``value`` of ``key`` as the build uses it (paths resolved against the file's folder), or ConfigError."""
    where = f"{file}: {key.name}"

    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{where}: expected {expected}, got {_describe(value)}")

    if key.kind in ("string", "folder", "file", "choice") and not isinstance(value, str):
        raise wrong("one of " + ", ".join(key.choices) if key.choices else _EXPECTED[key.kind])
    if key.kind == "choice" and value not in key.choices:
        raise wrong("one of " + ", ".join(key.choices))
    if key.kind in ("folder", "file"):
        path = file.parent / value
        if not (path.is_dir() if key.kind == "folder" else path.is_file()):
            raise ConfigError(f"{where}: {key.kind} not found: {path}")
        return path
    if key.kind == "strings" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise wrong(_EXPECTED["strings"])
    if key.name == "query_layers":
        try:
            return parse_query_layers(value)
        except AtlasError as exc:
            raise ConfigError(f"{where}: {str(exc).removeprefix('--query-layers: ')}") from None
    if key.kind == "strings" and key.name == "methods":
        unknown = [m for m in value if m not in method_names()]
        if unknown:
            raise wrong("methods among " + ", ".join(method_names()))
    if key.kind == "integer" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise wrong(_EXPECTED["integer"])
    if key.kind == "index" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise wrong(_EXPECTED["index"])
    if key.kind == "boolean" and not isinstance(value, bool):
        raise wrong(_EXPECTED["boolean"])
    if key.kind == "size":
        return _size(value, wrong)
    if key.kind == "images":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if not isinstance(value, str):
            raise wrong(_EXPECTED["images"])
        if not (file.parent / value).is_file():
            raise ConfigError(f"{where}: file not found: {file.parent / value}")
        return file.parent / value
    return value


def _size(value: Any, wrong) -> str:
    """An ``image_size`` value as the ``--image-size`` text (``N`` or ``HxW``)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return str(value)
    if isinstance(value, str):
        parts = value.lower().split("x")
        if len(parts) == 2 and all(p.strip().isdigit() and int(p) >= 1 for p in parts):
            return value
    raise wrong(_EXPECTED["size"])


def _describe(value: Any) -> str:
    """``value`` for an error message, e.g. ``integer 3`` or ``string "x"``."""
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "table"}
    kind = kinds.get(type(value), type(value).__name__)
    return kind if isinstance(value, dict) else f"{kind} {_toml(value)}"


def _model_relative_to(base: Path, text: str) -> str:
    """``NAME=CHECKPOINT`` with a checkpoint folder relative to the config file made absolute."""
    name, sep, checkpoint = text.partition("=")
    if sep and checkpoint and not Path(checkpoint).is_absolute() and (base / checkpoint).exists():
        return f"{name}={base / checkpoint}"
    return text


# -- atlas init ---------------------------------------------------------------------------------------------

PROJECT_TEMPLATES = "project"  # under templates/: the generated workflow, README and home page


def _toml(value: Any) -> str:
    """``value`` as a TOML literal (strings, booleans, integers, lists of strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    return str(value)


def config_text(values: dict[str, Any], examples: dict[str, Any]) -> str:
    """A commented ``atlas.toml``: every key with its help; ``values`` set, ``examples`` commented out."""
    lines = [
        "# atlas.toml: how this atlas is built. `atlas build` run in this folder reads it and builds into",
        "# build/ (build/site is the site). Flags on the command line override it, e.g. `atlas build --model",
        "# dinov2`. Paths are relative to this file. Reference: the \"Your own atlas\" page of the docs.",
    ]
    for key in KEYS:
        lines += ["", *(f"# {line}" for line in _wrap(key.help))]
        if key.name in values:
            lines.append(f"{key.name} = {_toml(values[key.name])}")
        else:
            lines.append(f"# {key.name} = {_toml(examples[key.name])}")
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int = 100) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


def init_project(directory: Path, *, images: Path, annotations: Path | None = None,
                 models: list[str] | None = None, site_name: str | None = None, version: str) -> list[Path]:
    """Write ``atlas.toml``, a GitHub Actions workflow, a README and a home page into ``directory``.

    Refuses to overwrite any of them. Returns the files written.
    """
    directory = Path(directory)
    if not images.is_dir():
        raise AtlasError(f"{images}: --images: folder not found")
    if annotations is not None and not annotations.is_file():
        raise AtlasError(f"{annotations}: --annotations: file not found")
    name = site_name or directory.resolve().name
    values: dict[str, Any] = {
        "site_name": name,
        "description": f"Where vision models look in the images of {name}: attention maps per model, layer "
                       "and head.",
        "images": _relative(images, directory),
        "weights": "auto",
        "colormap": "viridis",
        "batch_size": 8,
        "pages": "pages",
        "tool_docs": True,
    }
    if annotations is not None:
        values["annotations"] = _relative(annotations, directory)
    if models:
        values["models"] = list(models)
    examples = {"site_url": "https://USER.github.io/REPO/", "annotations": "boxes.json",
                "models": ["dinov2", "clip", "mine=checkpoints/mine"], "methods": ["cls", "rollout"],
                "image_size": 224, "site_images": 100, "query_layers": "last",
                "prompts": "prompts.txt", "target_class": 0,
                "ray": "auto", "ray_cpus": 1}
    substitutions = {"@SITE_NAME@": name, "@VERSION@": version, "@DESCRIPTION@": values["description"]}
    files = {
        CONFIG_NAME: config_text(values, examples),
        ".github/workflows/atlas.yml": _template("workflow.yml", substitutions),
        "README.md": _template("README.md", substitutions),
        "pages/index.md": _template("index.md", substitutions),
        ".gitignore": "build/\n",
    }
    for relative in files:
        if (directory / relative).exists():
            raise AtlasError(f"{directory / relative}: already exists; not overwriting (choose another folder)")
    written = []
    for relative, text in files.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def _relative(path: Path, directory: Path) -> str:
    """``path`` relative to ``directory`` (POSIX separators), as written into ``atlas.toml``."""
    return Path(os.path.relpath(path.resolve(), directory.resolve())).as_posix()


def _template(name: str, substitutions: dict[str, str]) -> str:
    text = (templates_dir() / PROJECT_TEMPLATES / name).read_text(encoding="utf-8")
    for placeholder, value in substitutions.items():
        text = text.replace(placeholder, value)
    return text
