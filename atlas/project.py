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
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atlas.core.atomic import write_text_atomic
from atlas.core.layout import PAGES_DIR
from atlas.core.limits import BY_PARAM
from atlas.core.page_safety import check_site_text, check_site_url, markdown_text
from atlas.core.query_layers import parse_query_layers
from atlas.core.resources import templates_dir
from atlas.core.wording import normal_path
from atlas.options import BUILD_OPTIONS, toml_help
from ssl_attention.errors import AtlasError
from ssl_attention.integers import whole_number
from ssl_attention.methods import method_names

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "atlas.toml"
TOOL_DOCS_DIR = "attention-atlas"  # where the tool's own docs go in a project's site
TOOL_DOCS_TITLE = "About Attention Atlas"


class ConfigError(AtlasError):
    """A bad ``atlas.toml``: one line naming the file, the key and what is expected."""


@dataclass(frozen=True)
class Key:
    """One key of ``atlas.toml``: its value kind, what it means, and the ``atlas build`` parameter it sets."""

    name: str
    kind: str  # string, folder, file, strings, integer, index (>= 0), size, images (count or file), boolean, "choice",
    # fraction (a number in (0, 1))
    help: str
    param: str | None = None  # the `atlas build` parameter whose default it is; None: a site setting
    choices: tuple[str, ...] = ()


SITE_KEYS: tuple[Key, ...] = (
    Key("site_name", "string", "The site's title (header, browser tab, search results). Default: the folder's name."),
    Key("description", "string", "A sentence or two on the atlas: the site's description (search engines, "
        "link previews) and the generated home page's text."),
    Key("site_url", "string", "The address the site is published at, e.g. \"https://USER.github.io/REPO/\": "
        "fills sitemap.xml and every page's canonical link. Unset: the sitemap lists no pages."),
)
PAGES_KEYS: tuple[Key, ...] = (
    Key("pages", "folder", "A folder of your own Markdown pages (index.md is the home page; about, dataset, "
        "citation, ...): first in the navigation and in the search. Unset: a generated home page."),
    Key("tool_docs", "boolean", "Whether the site includes Attention Atlas' own documentation (methods, "
        f"metrics, glossary, CLI) as the section \"{TOOL_DOCS_TITLE}\". Default: true."),
)
# The build keys are the options of `atlas build` that have one (atlas.options, the one schema).
BUILD_KEYS: tuple[Key, ...] = tuple(Key(o.key, o.kind, toml_help(o), o.name, o.choices) for o in BUILD_OPTIONS if o.key)
KEYS: tuple[Key, ...] = SITE_KEYS + BUILD_KEYS + PAGES_KEYS
_BY_NAME = {key.name: key for key in KEYS}
# The settings that reach every page (page_safety): one line of text each, the address a URL.
_SITE_TEXTS = {"site_name": check_site_text, "description": check_site_text, "site_url": check_site_url}
_EXPECTED = {
    "string": "a string", "folder": "a folder path (a string)", "file": "a file path (a string)",
    "strings": "a list of strings", "integer": "a positive integer",
    "index": "a non-negative integer", "boolean": "true or false",
    "size": 'a positive integer or a string "HxW"',
    "images": "a positive integer or a file path (a string)",
    "fraction": "a number between 0 and 1 (both excluded)",
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
    file = normal_path(file.parent) / file.name  # printed in its errors: no ".." (a linked file stays a link)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML ({' '.join(str(exc).split())})") from None
    except ValueError:  # Python's int-string limit: a number of thousands of digits
        raise ConfigError(f"{file}: not valid TOML (a number of thousands of digits)") from None
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


def check_pages(pages: Path) -> None:
    """Refuse a symbolic link in the pages folder that leads out of it (the site would publish the file it
    points to), dangles, or points to a folder (a copy following it could loop); links to files inside the
    folder are published as those files."""
    root = os.path.realpath(pages)
    for folder, dirs, files in os.walk(pages):  # links to folders are listed, not followed
        for name in sorted([*dirs, *files]):
            link = Path(folder) / name
            if not link.is_symlink():
                continue
            target = os.path.realpath(link)
            problem = (
                f"a symbolic link to {os.readlink(link)}, outside the pages folder" if
                os.path.commonpath([root, target]) != root else
                "a symbolic link to nothing (dangling)" if not os.path.exists(target) else
                "a symbolic link to a folder" if os.path.isdir(target) else None
            )
            if problem:
                raise ConfigError(f"pages: {link}: {problem}; the site publishes only the pages folder's own "
                                  "files: put a copy there instead")


def _checked(file: Path, key: Key, value: Any) -> Any:
    """``value`` of ``key`` as the build uses it (paths resolved against the file's folder), or ConfigError."""
    where = f"{file}: {key.name}"

    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{where}: expected {expected}, got {_describe(value)}")

    if key.kind in ("string", "folder", "file", "choice") and not isinstance(value, str):
        raise wrong("one of " + ", ".join(key.choices) if key.choices else _EXPECTED[key.kind])
    if key.kind == "choice" and value not in key.choices:
        raise wrong("one of " + ", ".join(key.choices))
    if key.name in _SITE_TEXTS:
        problem = _SITE_TEXTS[key.name](value)
        if problem is not None:
            raise ConfigError(f"{where}: {problem}")
    if key.kind in ("folder", "file"):
        path = normal_path(file.parent / value)
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
    if key.name == "feature_layers":
        try:
            return parse_query_layers(value, "--feature-layers")
        except AtlasError as exc:
            raise ConfigError(f"{where}: {str(exc).removeprefix('--feature-layers: ')}") from None
    if key.kind == "strings" and key.name == "methods":
        unknown = [m for m in value if m not in method_names()]
        if unknown:
            raise wrong("methods among " + ", ".join(method_names()))
    if key.kind == "integer" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise wrong(_EXPECTED["integer"])
    if key.kind == "index" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise wrong(_EXPECTED["index"])
    bound = BY_PARAM.get(key.param or "")
    if bound is not None and isinstance(value, int) and not isinstance(value, bool) and value > bound.high:
        raise wrong(bound.describe())
    if key.kind == "fraction" and (isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1):
        raise wrong(_EXPECTED["fraction"])
    if key.kind == "boolean" and not isinstance(value, bool):
        raise wrong(_EXPECTED["boolean"])
    if key.kind == "size":
        return _size(value, wrong)
    if key.kind == "images":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if not isinstance(value, str):
            raise wrong(_EXPECTED["images"])
        path = normal_path(file.parent / value)
        if not path.is_file():
            raise ConfigError(f"{where}: file not found: {path}")
        return path
    return value


def _size(value: Any, wrong) -> str:
    """An ``image_size`` value as the ``--image-size`` text (``N`` or ``HxW``)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return str(value)
    if isinstance(value, str):
        parts = [whole_number(part) for part in value.lower().split("x")]
        if len(parts) == 2 and None not in parts and min(parts) >= 1:
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
        return f"{name}={normal_path(base / checkpoint)}"
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
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")  # a TOML basic string (no DEL)
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

    Refuses to overwrite any of them, and refuses (AtlasError, one line, before anything is written) a
    ``directory`` that is a file, a path or name that is not valid UTF-8 and a site name with control
    characters. Each file is written atomically. Returns the files written.
    """
    directory = Path(directory)
    if not images.is_dir():
        raise AtlasError(f"{images}: --images: folder not found")
    if annotations is not None and not annotations.is_file():
        raise AtlasError(f"{annotations}: --annotations: file not found")
    if directory.exists() and not directory.is_dir():
        raise AtlasError(f"{directory}: not a folder (a file of that name exists); choose another DIR")
    name = _site_name(site_name, directory)
    values: dict[str, Any] = {
        "site_name": name,
        "description": f"Where vision models look in the images of {name}: attention maps per model, layer "
                       "and head.",
        "images": _utf8(_relative(images, directory), f"--images {_shown_path(images)}"),
        "weights": "auto",
        "colormap": "viridis",
        "batch_size": 8,
        "pages": "pages",
        "tool_docs": True,
    }
    if annotations is not None:
        values["annotations"] = _utf8(_relative(annotations, directory), f"--annotations {_shown_path(annotations)}")
    if models:
        values["models"] = [_utf8(model, "--model") for model in models]
    examples = {"site_url": "https://USER.github.io/REPO/",
                **{o.key: o.example if o.example is not None else o.default for o in BUILD_OPTIONS if o.key}}
    markdown = {"@SITE_NAME@": markdown_text(name), "@VERSION@": version,  # the name is text, not HTML
                "@DESCRIPTION@": markdown_text(values["description"])}
    files = {
        CONFIG_NAME: config_text(values, examples),
        ".github/workflows/atlas.yml": _template("workflow.yml", {"@VERSION@": version}),
        "README.md": _template("README.md", markdown),
        "pages/index.md": _template("index.md", markdown),
        ".gitignore": "build/\n",
    }
    return _write_new_files(directory, files)


def _write_new_files(directory: Path, files: dict[str, str]) -> list[Path]:
    """Write each of ``files`` (path relative to ``directory`` -> text) atomically; AtlasError before
    anything is written if any of them exists (also as a dangling link). If a write fails (a full or
    read-only disk), the files written so far are removed again, so the next ``atlas init`` can start over."""
    for relative in files:
        if os.path.lexists(directory / relative):
            raise AtlasError(f"{directory / relative}: already exists; not overwriting (choose another folder)")
    written: list[Path] = []
    try:
        for relative, text in files.items():
            write_text_atomic(directory / relative, text)
            written.append(directory / relative)
    except OSError:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def _site_name(given: str | None, directory: Path) -> str:
    """The site's name: ``--site-name``, else DIR's name; AtlasError for one that is not valid UTF-8 or
    holds a control character (atlas.toml and the pages could not carry it)."""
    what = "--site-name" if given else f"the name of {_shown_path(directory)} (the default --site-name)"
    name = _utf8(given or directory.resolve().name, what, "" if given else "; give --site-name")
    problem = check_site_text(name)  # what the pages could not carry as one line of text
    if problem is not None:
        raise AtlasError(f"{what}: {problem}" + ("" if given else "; give --site-name"))
    return name


def _utf8(text: str, what: str, fix: str = "; atlas.toml is UTF-8 text: rename it") -> str:
    """``text`` if it is valid UTF-8 (a file name that is not arrives with surrogate escapes); else AtlasError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise AtlasError(f"{what}: not valid UTF-8 ({_shown_path(text)}){fix}") from None
    return text


def _shown_path(path: Path | str) -> str:
    """``path`` printable in one line: bytes that are not UTF-8 and control characters as ``\\xNN``."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in text)


def _relative(path: Path, directory: Path) -> str:
    """``path`` relative to ``directory`` (POSIX separators), as written into ``atlas.toml``."""
    return Path(os.path.relpath(path.resolve(), directory.resolve())).as_posix()


def _template(name: str, substitutions: dict[str, str]) -> str:
    text = (templates_dir() / PROJECT_TEMPLATES / name).read_text(encoding="utf-8")
    for placeholder, value in substitutions.items():
        text = text.replace(placeholder, value)
    return text
