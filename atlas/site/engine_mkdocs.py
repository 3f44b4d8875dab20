"""The docs engine of the site stage: MkDocs with mkdocs-material. Everything the site stage says to MkDocs is here.

The rest of ``atlas.site`` composes a docs folder of Markdown pages (``page_source``), a nav and the site's
settings; this module reads the project's ``mkdocs.yml`` (``read_config``), runs MkDocs on the composed
folder with the atlas' additions (``build``: the theme overrides of ``templates/overrides``, Material's
partials and the ``atlas.html`` page template; the hooks of ``atlas.site.mkdocs_hooks``, which MkDocs loads
from their file; the pages kept out of the nav; the atlas' CSS and page script) and edits what MkDocs wrote
for the pages written after it (``add_search_entries``: its search index; ``add_sitemap_urls``: its
sitemap). No other module of ``atlas`` imports ``mkdocs``: a second engine (Zensical, mkdocs-material's
successor) would be a module beside this one with the same functions.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mkdocs.commands.build import build as mkdocs_build
from mkdocs.config import load_config
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import MkDocsException
from mkdocs.utils.yaml import get_yaml_loader, yaml_load

from atlas.core.atomic import copy_tree
from atlas.core.resources import templates_dir
from atlas.site.mkdocs_hooks import RAW_HTML_KEY
from ssl_attention.errors import AtlasError

HOOKS_FILE = Path(__file__).resolve().with_name("mkdocs_hooks.py")
SEARCH_INDEX = "search/search_index.json"
PAGE_TEMPLATE = "atlas.html"  # the generated pages' template (templates/overrides, over mkdocs-material's main.html)
THEME_FAVICON = "assets/images/favicon.png"  # mkdocs-material's, when the config names none


@dataclass(frozen=True)
class DocsConfig:
    """The project's ``mkdocs.yml`` as YAML, before validation (``!relative`` values stay placeholders)."""

    file: Path
    raw: dict

    @property
    def use_directory_urls(self) -> bool:
        return bool(self.raw.get("use_directory_urls", True))

    @property
    def favicon(self) -> str:
        """The theme's favicon, a site-root path."""
        return (self.raw.get("theme") or {}).get("favicon") or THEME_FAVICON


def read_config(config_file: Path) -> DocsConfig:
    """Read ``config_file``; ``AtlasError`` (one line) if it cannot be read or parsed."""
    try:
        with config_file.open("rb") as f:
            raw = yaml_load(f, loader=get_yaml_loader(config=MkDocsConfig(str(config_file)))) or {}
    except OSError as exc:
        raise AtlasError(f"{config_file}: cannot read the MkDocs config ({exc.strerror})") from None
    except MkDocsException as exc:
        raise AtlasError(f"{config_file}: {' '.join(str(exc).split())}") from None
    return DocsConfig(config_file, raw)


def page_source(title: str, body: str, *, search: bool) -> str:
    """A generated page's Markdown source: front matter (its title, the atlas page template, no table of
    contents, a body of final HTML for ``mkdocs_hooks``, optionally out of the site search), then ``body``."""
    front = {"title": title, "template": PAGE_TEMPLATE, "hide": ["toc"], RAW_HTML_KEY: True}
    if not search:
        front["search"] = {"exclude": True}
    return f"---\n{json.dumps(front)}\n---\n\n{body}\n"


def page_body(source: str) -> str:
    """The HTML body of a page source written by ``page_source``."""
    return source.split("---\n", 2)[2].strip("\n")


@dataclass(frozen=True)
class EngineRun:
    """One build of a composed docs folder: where from and to, and what the atlas adds to the config."""

    docs_dir: Path
    site_dir: Path
    theme_dir: Path  # a scratch folder for the theme overrides (the configured custom_dir plus the atlas')
    settings: dict  # the site's own settings: nav, and site_name, site_description, site_url where given
    not_in_nav: list[str]  # gitignore-style patterns of the pages that are in no nav
    css: list[str]  # stylesheets and scripts of every page, docs-relative
    scripts: list[str]


def build(config: DocsConfig, run: EngineRun) -> float:
    """Run MkDocs (strict) from ``run.docs_dir`` into ``run.site_dir``; its seconds. ``AtlasError`` if it fails.

    The dates MkDocs writes come from ``SOURCE_DATE_EPOCH`` (the caller sets it)."""
    raw = config.raw
    try:
        with _mkdocs_warnings() as warnings:
            mkdocs_config = load_config(
                str(config.file),
                strict=True,  # a broken link or a missing page in the generated site is a bug, not a warning
                docs_dir=str(run.docs_dir),
                site_dir=str(run.site_dir),
                **run.settings,
                theme=_theme_with_overrides(config, run.theme_dir),
                extra_css=[*raw.get("extra_css", []), *run.css],
                extra_javascript=[*raw.get("extra_javascript", []), *run.scripts],
                hooks=[*raw.get("hooks", []), str(HOOKS_FILE)],
                not_in_nav="\n".join(run.not_in_nav),
            )
            mkdocs_start = time.perf_counter()
            mkdocs_build(mkdocs_config)
            _trim_theme_assets(run.site_dir, mkdocs_config)
            return time.perf_counter() - mkdocs_start
    except MkDocsException as exc:
        first = f" (first warning: {warnings.messages[0]})" if warnings.messages else ""
        raise AtlasError(f"MkDocs build failed: {' '.join(str(exc).split())}{first}") from None


def _theme_with_overrides(config: DocsConfig, theme_dir: Path) -> dict:
    """The configured theme with ``templates/overrides`` as custom_dir (merged with an existing one)."""
    theme = dict(config.raw.get("theme") or {"name": "material"})
    if theme_dir.exists():
        shutil.rmtree(theme_dir)
    if theme.get("custom_dir"):
        copy_tree((config.file.parent / theme["custom_dir"]).resolve(), theme_dir)
    copy_tree(templates_dir() / "overrides", theme_dir, dirs_exist_ok=True)
    theme["custom_dir"] = str(theme_dir)
    return theme


def _trim_theme_assets(site: Path, config) -> None:
    """Remove the theme files a published atlas never loads (2.2 MB, a fixed cost of every site): the
    JavaScript and CSS source maps (read only by browser developer tools), and, when the search is English
    only, the search engine's other languages and word segmenters (its worker loads them for others)."""
    scripts = site / "assets" / "javascripts"
    for source_map in (site / "assets").rglob("*.map"):
        source_map.unlink()
    languages = [getattr(p.config, "lang", None) for name, p in config.plugins.items() if name.endswith("search")]
    if languages and all(lang in (["en"], "en") for lang in languages):
        shutil.rmtree(scripts / "lunr", ignore_errors=True)


class _Warnings(logging.Handler):
    """Collects the warnings MkDocs logs, so a strict-mode failure can say what it was about."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(" ".join(record.getMessage().split()))


@contextmanager
def _mkdocs_warnings() -> Iterator[_Warnings]:
    handler = _Warnings()
    logger = logging.getLogger("mkdocs")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def add_search_entries(site_dir: Path, entries: list[dict[str, str]]) -> None:
    """Append ``{"location", "title", "text"}`` entries (e.g. the head viewers' heads) to the site search.

    The theme shows titles and texts as HTML: they must be escaped already."""
    index_file = site_dir / SEARCH_INDEX
    if not index_file.is_file() or not entries:  # a site without the search plugin
        return
    index = json.loads(index_file.read_text(encoding="utf-8"))
    index["docs"] += entries
    index_file.write_text(json.dumps(index, separators=(",", ":"), default=str), encoding="utf-8")


def add_sitemap_urls(site_dir: Path, replaced: dict[str, list[str]]) -> None:
    """Each ``<url>`` entry of the sitemap (there when the site has a ``site_url``) whose address ends in a key
    of ``replaced`` becomes one entry per URL of its value (a page shell's entry becomes its pages')."""
    sitemap = site_dir / "sitemap.xml"
    if not sitemap.is_file():
        return
    text = original = sitemap.read_text(encoding="utf-8")
    for shell_url, urls in replaced.items():
        match = re.search(r"[ \t]*<url>(?:(?!</url>).)*?" + re.escape(shell_url) + r"<.*?</url>\n?", text, re.S)
        if match is None:
            continue
        block = match.group(0)
        text = text.replace(block, "".join(block.replace(shell_url, url) for url in urls))
    if text == original:  # no site_url: MkDocs' sitemap lists no page
        return
    sitemap.write_text(text, encoding="utf-8")
    packed = site_dir / "sitemap.xml.gz"
    mtime = int.from_bytes(packed.read_bytes()[4:8], "little") if packed.is_file() else 0  # MkDocs' build date
    with packed.open("wb") as f, gzip.GzipFile(fileobj=f, filename=str(packed), mode="wb", mtime=mtime) as gz:
        gz.write(text.encode("utf-8"))
