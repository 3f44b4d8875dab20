"""Build the static site: render heatmaps, compose the MkDocs docs dir, run MkDocs, add the heavy assets.

Stages: ``BUILD/maps`` (compute output) -> ``BUILD/render/atlas-data`` (sprite PNGs, photos;
cached between builds) -> ``BUILD/docs`` (a copy of ``site_src/`` + generated atlas pages) -> MkDocs
(reads the project's ``mkdocs.yml`` with overrides, plus the hooks of ``atlas.mkdocs_hooks``, which
pass the generated pages' HTML around Python-Markdown) -> ``site_dir``, into which ``atlas-data/`` is
linked or copied after MkDocs ran (MkDocs would otherwise copy thousands of files on every build).

An atlas project's site (``atlas.project.SiteSettings``) has the user's pages at the top of the docs dir,
its own name and address (``site_url`` fills the sitemap and canonical links), and the tool's docs as an
optional section under ``attention-atlas/``; ``_site_overrides`` composes those MkDocs settings.

Robustness: MkDocs writes into a hidden sibling ``.<site>.partial`` that replaces ``site_dir`` only when
the site is complete, so an interrupted build never leaves a half-written site in place (a failed
one, e.g. on a full disk, also removes the partial site); dates
(sitemap ``lastmod``, the gzip header of ``sitemap.xml.gz``) come from ``SOURCE_DATE_EPOCH``, which
defaults to a date derived from the build's inputs, so the same inputs give byte-identical sites.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import rich.progress
from mkdocs.commands.build import build as mkdocs_build
from mkdocs.config import load_config
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import MkDocsException
from mkdocs.utils.yaml import get_yaml_loader, yaml_load

from atlas import layout
from atlas.atomic import remove_stale_temp_files
from atlas.catalog import load_catalog
from atlas.head_scores import write_head_scores
from atlas.metrics_data import load_metrics
from atlas.pages import REPORT_PAGE, copy_metric_files, write_all_pages, write_report_page
from atlas.pages.outside import add_search_entries, place_outside_pages, shell_pattern, write_redirects
from atlas.project import TOOL_DOCS_DIR, TOOL_DOCS_TITLE, SiteSettings
from atlas.render import render_all
from atlas.resources import mkdocs_config, templates_dir
from atlas.site_budget import SiteBudget, published
from atlas.wording import count
from ssl_attention.errors import AtlasError

HOOKS_FILE = Path(__file__).resolve().with_name("mkdocs_hooks.py")
# the page scripts: ES modules (templates/assets/atlas), started by a classic script that skips them on
# file:// pages (a <script type=module> there is fetched and blocked: a console error on every page)
ATLAS_SCRIPT = f"{layout.ASSETS_DIR}/atlas/boot.js"
ATLAS_NAV = {
    "Atlas": [
        {"Gallery": layout.GALLERY_PAGE},
        {"Models": layout.MODELS_PAGE},
        {"Heads": layout.HEADS_PAGE},
        {"Head anatomy": layout.ANATOMY_PAGE},
        {"Leaderboard": layout.LEADERBOARD_PAGE},
        {"Build report": REPORT_PAGE},
    ]
}
# Default SOURCE_DATE_EPOCH: a day in [2020-01-01, 2025-01-01) picked by a hash of the build's inputs.
_EPOCH_BASE, _EPOCH_DAYS = 1577836800, 1827


@dataclass
class SiteReport:
    """What ``build_site`` produced."""

    site_dir: Path
    pages: int  # generated atlas pages
    pngs: int
    png_bytes: int  # the sprite sheets, which also carry the map values (atlas.map_values)
    seconds: float
    render_seconds: float = 0.0  # of which rendering heatmaps and photos
    mkdocs_seconds: float = 0.0  # of which the MkDocs build
    budget: SiteBudget | None = None  # the site's size against GitHub Pages' limit
    rendered_pairs: int = 0  # (model, image) pairs whose sprite sheets this stage encoded
    cached_pairs: int = 0  # pairs found up to date (encoded while their maps were written, or earlier)
    encoded_with_maps: int = 0  # of the cached pairs, those the models stage encoded in this build (set by it)

    def timing_line(self) -> str:
        """One line with the stage times, e.g. for the CLI output."""
        return (
            f"Site: {count(self.pages, 'atlas page')}, {count(self.pngs, 'heatmap sprite sheet')} in "
            f"{self.seconds:.1f} s (render {self.render_seconds:.1f} s for "
            f"{count(self.rendered_pairs + self.cached_pairs, 'model x image pair')}: {self._encoded_when()}; "
            f"MkDocs {self.mkdocs_seconds:.1f} s)"
        )

    def _encoded_when(self) -> str:
        """When the pairs' sprite sheets were encoded: now, with their maps in this build, or earlier."""
        with_maps = min(self.encoded_with_maps, self.cached_pairs)
        parts = [(self.rendered_pairs, "encoded now"), (with_maps, "encoded with their maps in this build"),
                 (self.cached_pairs - with_maps, "up to date from an earlier build")]
        said = [f"{n} {what}" for n, what in parts if n]
        return ", ".join(said) or "none"


def _read_raw_config(config_file: Path) -> dict:
    """The YAML of ``mkdocs.yml`` before validation (``!relative`` values stay placeholders)."""
    try:
        with config_file.open("rb") as f:
            return yaml_load(f, loader=get_yaml_loader(config=MkDocsConfig(str(config_file)))) or {}
    except OSError as exc:
        raise AtlasError(f"{config_file}: cannot read the MkDocs config ({exc.strerror})") from None
    except MkDocsException as exc:
        raise AtlasError(f"{config_file}: {' '.join(str(exc).split())}") from None


def _nav_with_atlas(nav: list | None, docs_dir: Path) -> list:
    """The configured nav plus the Atlas section, after the "Atlas guide" entry if there is one."""
    if nav is None:  # MkDocs' automatic nav would list every generated page: list the docs instead
        nav = [
            p.relative_to(docs_dir).as_posix()
            for p in sorted(docs_dir.rglob("*.md"))
            if not p.relative_to(docs_dir).as_posix().startswith((layout.PAGES_DIR + "/", "includes/"))
        ]
    nav = list(nav)
    at = next(
        (i + 1 for i, item in enumerate(nav) if isinstance(item, dict) and "atlas-guide.md" in item.values()),
        len(nav),
    )
    nav.insert(at, ATLAS_NAV)
    return nav


def _compose_docs(config_file: Path, raw: dict, docs_dir: Path, settings: SiteSettings | None) -> None:
    """Fresh ``docs_dir``: the configured docs sources plus the atlas' CSS/JS.

    For a project (``settings``), the user's pages (or a generated home page) are the top of the docs dir
    and the tool's docs go under ``TOOL_DOCS_DIR/`` (left out without ``tool_docs``); the glossary
    snippets and the math assets stay at the top, where mkdocs.yml's snippets and extra_css expect them.
    """
    source = (config_file.parent / raw.get("docs_dir", "docs")).resolve()
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    if settings is None:
        shutil.copytree(source, docs_dir)
    else:
        for shared in ("includes", "assets"):
            if (source / shared).is_dir():
                shutil.copytree(source / shared, docs_dir / shared)
        if settings.tool_docs:
            shutil.copytree(source, docs_dir / TOOL_DOCS_DIR)
        _add_user_pages(settings, docs_dir)
    shutil.copytree(templates_dir() / "assets", docs_dir / layout.ASSETS_DIR, dirs_exist_ok=True)


def _add_user_pages(settings: SiteSettings, docs_dir: Path) -> None:
    """The project's own pages into ``docs_dir``; a generated home page when they have no ``index.md``."""
    if settings.pages is not None:
        shutil.copytree(settings.pages, docs_dir, dirs_exist_ok=True)
    home = docs_dir / "index.md"
    if not home.exists():
        home.write_text(f"# {settings.site_name}\n\n{settings.description or ''}\n\n"
                        f"Browse the [atlas]({layout.GALLERY_PAGE}).\n", encoding="utf-8")


def _site_overrides(settings: SiteSettings | None, raw: dict, docs_dir: Path) -> dict:
    """The MkDocs settings that make the site this atlas: nav (with the Atlas section), name, address.

    Without ``settings`` (the tool's own site, e.g. the bundled sample) only the nav changes. A project's
    nav is its own pages, the Atlas section, then the tool's docs as "About Attention Atlas" (if kept).
    """
    if settings is None:
        return {"nav": _nav_with_atlas(raw.get("nav"), docs_dir)}
    own = sorted(
        p.relative_to(docs_dir).as_posix() for p in docs_dir.rglob("*.md")
        if p.relative_to(docs_dir).parts[0] not in (layout.PAGES_DIR, TOOL_DOCS_DIR, "includes")
    )
    nav: list = ["index.md", *(p for p in own if p != "index.md"), ATLAS_NAV]
    if settings.tool_docs:
        nav.append({TOOL_DOCS_TITLE: _prefixed(raw.get("nav") or [], TOOL_DOCS_DIR + "/")})
    overrides: dict = {"nav": nav, "site_name": settings.site_name}
    if settings.description:
        overrides["site_description"] = settings.description
    if settings.site_url:
        overrides["site_url"] = settings.site_url
    return overrides


def _prefixed(nav: list | dict | str, prefix: str):
    """A nav (list, section or page path) with every page path under ``prefix``; URLs stay as they are."""
    if isinstance(nav, list):
        return [_prefixed(item, prefix) for item in nav]
    if isinstance(nav, dict):
        return {title: _prefixed(value, prefix) for title, value in nav.items()}
    return nav if "://" in nav else prefix + nav


def _theme_with_overrides(config_file: Path, raw: dict, theme_dir: Path) -> dict:
    """The configured theme with ``templates/overrides`` as custom_dir (merged with an existing one)."""
    theme = dict(raw.get("theme") or {"name": "material"})
    if theme_dir.exists():
        shutil.rmtree(theme_dir)
    if theme.get("custom_dir"):
        shutil.copytree((config_file.parent / theme["custom_dir"]).resolve(), theme_dir)
    shutil.copytree(templates_dir() / "overrides", theme_dir, dirs_exist_ok=True)
    theme["custom_dir"] = str(theme_dir)
    return theme


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _add_data(render_dir: Path, site_dir: Path) -> None:
    target = site_dir / layout.DATA_DIR
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        render_dir / layout.DATA_DIR, target, copy_function=_link_or_copy, ignore=shutil.ignore_patterns(".*.tmp")
    )


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


def default_source_date_epoch(build_dir: Path) -> int:
    """A stable build date for ``build_dir``: midnight UTC of a day picked by a hash of the maps manifest
    and ``report.json`` (the build's inputs as the site sees them), so equal inputs give equal dates."""
    digest = hashlib.sha256()
    for name in ("maps/manifest.json", "report.json"):
        path = build_dir / name
        digest.update(path.read_bytes() if path.is_file() else b"")
    return _EPOCH_BASE + int(digest.hexdigest()[:12], 16) % _EPOCH_DAYS * 86400


@contextmanager
def source_date_epoch(build_dir: Path) -> Iterator[int]:
    """``SOURCE_DATE_EPOCH`` for the MkDocs build: the user's value, else ``default_source_date_epoch``."""
    given = os.environ.get("SOURCE_DATE_EPOCH")
    if given is not None:
        try:
            value = int(given)
        except ValueError:
            raise AtlasError(f"SOURCE_DATE_EPOCH={given!r}: not an integer (seconds since 1970)") from None
        yield value
        return
    value = default_source_date_epoch(build_dir)
    os.environ["SOURCE_DATE_EPOCH"] = str(value)
    try:
        yield value
    finally:
        os.environ.pop("SOURCE_DATE_EPOCH", None)


def _partial_dirs(site_dir: Path) -> tuple[Path, Path]:
    """Hidden siblings of ``site_dir``: the site being built, and the previous site while it is replaced."""
    return site_dir.with_name(f".{site_dir.name}.partial"), site_dir.with_name(f".{site_dir.name}.old")


def _swap_in(partial: Path, site_dir: Path) -> None:
    """Replace ``site_dir`` by the finished ``partial`` (two renames; the old site is removed after).

    If the second rename fails, the old site is put back.
    """
    old = _partial_dirs(site_dir)[1]
    if old.exists():
        shutil.rmtree(old)
    if site_dir.exists():
        site_dir.rename(old)
    try:
        partial.rename(site_dir)
    except OSError:
        if old.exists():
            old.rename(site_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _mkdocs_into(partial: Path, config_file: Path, raw: dict, build_dir: Path, docs_dir: Path,
                 settings: SiteSettings | None) -> float:
    """Run MkDocs (strict) from ``docs_dir`` into ``partial``; its seconds. ``AtlasError`` if it fails."""
    try:
        with _mkdocs_warnings() as warnings:
            config = load_config(
                str(config_file),
                strict=True,  # a broken link or a missing page in the generated site is a bug, not a warning
                docs_dir=str(docs_dir),
                site_dir=str(partial),
                **_site_overrides(settings, raw, docs_dir),
                theme=_theme_with_overrides(config_file, raw, build_dir / "theme"),
                extra_css=[*raw.get("extra_css", []), f"{layout.ASSETS_DIR}/atlas.css"],
                extra_javascript=[*raw.get("extra_javascript", []), ATLAS_SCRIPT],
                hooks=[*raw.get("hooks", []), str(HOOKS_FILE)],
                not_in_nav="\n".join([
                    *(f"/{layout.PAGES_DIR}/{d}/" for d in ("images", "models", "heads", "leaderboard", "anatomy")),
                    shell_pattern(),
                ]),
            )
            mkdocs_start = time.perf_counter()
            with source_date_epoch(build_dir):
                mkdocs_build(config)
            _trim_theme_assets(partial, config)
            return time.perf_counter() - mkdocs_start
    except MkDocsException as exc:
        first = f" (first warning: {warnings.messages[0]})" if warnings.messages else ""
        raise AtlasError(f"MkDocs build failed: {' '.join(str(exc).split())}{first}") from None


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


def build_site(
    build_dir: Path,
    site_dir: Path,
    *,
    colormap: str = "viridis",
    progress: rich.progress.Progress | None = None,
    config_file: Path | None = None,
    settings: SiteSettings | None = None,
    site_images: list[str] | None = None,
) -> SiteReport:
    """Render heatmaps (skipping up-to-date ones), write the atlas pages, run MkDocs, add the assets.

    ``config_file`` is the ``mkdocs.yml`` (default: the tool's); its docs_dir, site_dir and nav are
    overridden. ``settings`` (an atlas project's) puts the user's pages, name and address in the site.
    ``site_images``: the ids of the images to publish (``--site-images``; default all); the metrics pages
    still report on every image.
    Raises ``AtlasError`` (one line) on a bad manifest or a failed MkDocs build.
    """
    start = time.perf_counter()
    build_dir, site_dir = Path(build_dir).resolve(), Path(site_dir).resolve()
    catalog = load_catalog(build_dir)
    all_images = len(catalog.images)
    if site_images is not None:
        catalog = published(catalog, site_images)
    render_dir = build_dir / "render"
    if render_dir.exists():
        remove_stale_temp_files(render_dir)  # torn writes of a killed build
    partial, old = _partial_dirs(site_dir)
    for stale in (partial, old):
        if stale.exists():
            shutil.rmtree(stale)
    task = None
    if progress is not None:
        pairs = sum(len(m.maps) for m in catalog.models)
        task = progress.add_task("Rendering heatmaps", total=pairs)
    stats = render_all(catalog, render_dir, on_pair=(lambda: progress.advance(task)) if progress else None)
    render_seconds = time.perf_counter() - start

    config_file = config_file or mkdocs_config()
    raw = _read_raw_config(config_file)
    docs_dir = build_dir / "docs"
    _compose_docs(config_file, raw, docs_dir, settings)
    use_directory_urls = bool(raw.get("use_directory_urls", True))
    metrics = load_metrics(build_dir)  # None when the metrics stage did not run
    docs_prefix = "" if settings is None else (TOOL_DOCS_DIR + "/" if settings.tool_docs else None)
    outside_dir = build_dir / "outside-pages"  # the image pages' sources, rendered outside MkDocs
    if outside_dir.exists():
        shutil.rmtree(outside_dir)
    written = write_all_pages(
        catalog, docs_dir, colormap=colormap, use_directory_urls=use_directory_urls, metrics=metrics,
        docs_prefix=docs_prefix, outside_dir=outside_dir,
    )
    pages = [*written.pages.written,
             write_report_page(catalog, docs_dir, colormap=colormap, use_directory_urls=use_directory_urls)]
    if progress is not None and task is not None:
        progress.update(task, description="Building site (MkDocs)")
    try:
        mkdocs_seconds = _mkdocs_into(partial, config_file, raw, build_dir, docs_dir, settings)
        place_outside_pages(partial, outside_dir, written.pages.outside, use_directory_urls)
        write_redirects(partial, written.pages.redirects, use_directory_urls,
                        (raw.get("theme") or {}).get("favicon") or "assets/images/favicon.png")
        add_search_entries(partial, written.pages.search_entries)
        _add_data(render_dir, partial)
        written.pages.write_gallery_index(partial)
        write_head_scores(written.head_scores, partial)
        copy_metric_files(metrics, partial)
        _swap_in(partial, site_dir)
    except BaseException:  # a failed or interrupted site stage leaves the old site and no partial one
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if progress is not None and task is not None:
        progress.update(task, description="Site built")
    return SiteReport(
        site_dir=site_dir,
        pages=len(pages),
        pngs=stats.pngs,
        png_bytes=stats.png_bytes,
        seconds=time.perf_counter() - start,
        render_seconds=render_seconds,
        mkdocs_seconds=mkdocs_seconds,
        rendered_pairs=stats.rendered_pairs,
        cached_pairs=stats.cached_pairs,
        budget=SiteBudget.measure(site_dir, catalog, all_images),
    )
