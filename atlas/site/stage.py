"""Build the static site: render heatmaps, compose the docs dir, run the docs engine, add the heavy assets.

``build_site`` reads as its phases, each a function that returns what the next ones use:
render (``BUILD/maps`` -> ``BUILD/render/atlas-data``: sprite PNGs, photos; cached between builds) -> docs
(``BUILD/docs``: a copy of ``site_src/`` and the atlas' assets) -> pages (the generated atlas pages, one
kind after the other: ``atlas.site.pages.kinds``) -> engine (MkDocs, behind ``atlas.site.engine_mkdocs``,
into a hidden partial site) -> pages outside the engine (the image pages, the old head pages' redirects, the
head viewers' search entries) -> data (``atlas-data/``, linked or copied after MkDocs ran, which would
otherwise copy thousands of files on every build; the image index, head scores, metrics summary) -> swap.

An atlas project's site (``atlas.project.SiteSettings``) has the user's pages at the top of the docs dir,
its own name and address (``site_url`` fills the sitemap and canonical links), and the tool's docs as an
optional section under ``attention-atlas/``; ``_site_overrides`` composes those MkDocs settings.

Robustness: MkDocs writes into ``partial/`` of the site's hidden work folder ``.<site>.atlas``
(``atlas.core.site_folder``), which replaces ``site_dir`` only when the site is complete, so an interrupted
build never leaves a half-written site in place (a failed one, e.g. on a full disk, also removes the
partial site); dates
(sitemap ``lastmod``, the gzip header of ``sitemap.xml.gz``) come from ``SOURCE_DATE_EPOCH``, which
defaults to a date derived from the build's inputs, so the same inputs give byte-identical sites.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import rich.progress

from atlas.core import layout, limits
from atlas.core.atomic import copy_tree, remove_stale_temp_files
from atlas.core.build_dir import BuildDir
from atlas.core.limits import env_number
from atlas.core.manifest import Manifest
from atlas.core.out_dir import record_site, site_records
from atlas.core.page_safety import markdown_text, theme_html
from atlas.core.resources import mkdocs_config, templates_dir
from atlas.core.site_folder import carry_user_files, fingerprint, recover, swap_in
from atlas.core.wording import count
from atlas.metrics.data import MetricsData, load_metrics
from atlas.project import TOOL_DOCS_DIR, TOOL_DOCS_TITLE, SiteSettings
from atlas.site import engine_mkdocs
from atlas.site.budget import SiteBudget, published
from atlas.site.catalog import Catalog, catalog_of, load_catalog
from atlas.site.engine_mkdocs import DocsConfig, EngineRun, add_search_entries
from atlas.site.head_scores import write_head_scores
from atlas.site.pages import WrittenPages, copy_metric_files, write_all_pages
from atlas.site.pages.kinds import atlas_nav, not_in_nav, write_page_script_table
from atlas.site.pages.outside import place_outside_pages, shell_pattern, write_redirects
from atlas.site.render import RenderStats, render_all

# the page scripts: ES modules (templates/assets/atlas), started by a classic script that skips them on
# file:// pages (a <script type=module> there is fetched and blocked: a console error on every page)
ATLAS_SCRIPT = f"{layout.ASSETS_DIR}/atlas/boot.js"
ATLAS_CSS = f"{layout.ASSETS_DIR}/atlas.css"
# Default SOURCE_DATE_EPOCH: a day in [2020-01-01, 2025-01-01) picked by a hash of the build's inputs.
_EPOCH_BASE, _EPOCH_DAYS = 1577836800, 1827


@dataclass
class SiteReport:
    """What ``build_site`` produced."""

    site_dir: Path
    pages: int  # generated atlas pages
    pngs: int
    png_bytes: int  # the sprite sheets, which also carry the map values (atlas.site.map_values)
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
    nav.insert(at, atlas_nav())
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
        copy_tree(source, docs_dir)
    else:
        for shared in ("includes", "assets"):
            if (source / shared).is_dir():
                copy_tree(source / shared, docs_dir / shared)
        if settings.tool_docs:
            copy_tree(source, docs_dir / TOOL_DOCS_DIR)
        _add_user_pages(settings, docs_dir)
    copy_tree(templates_dir() / "assets", docs_dir / layout.ASSETS_DIR, dirs_exist_ok=True)


def _add_user_pages(settings: SiteSettings, docs_dir: Path) -> None:
    """The project's own pages into ``docs_dir``; a generated home page when they have no ``index.md``."""
    if settings.pages is not None:
        copy_tree(settings.pages, docs_dir, dirs_exist_ok=True)
    home = docs_dir / "index.md"
    if not home.exists():
        home.write_text(f"# {markdown_text(settings.site_name)}\n\n{markdown_text(settings.description or '')}\n\n"
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
    nav: list = ["index.md", *(p for p in own if p != "index.md"), atlas_nav()]
    if settings.tool_docs:
        nav.append({TOOL_DOCS_TITLE: _prefixed(raw.get("nav") or [], TOOL_DOCS_DIR + "/")})
    # the theme prints these as HTML, some raw, some through `| e`: escaped once, marked as escaped (page_safety);
    # site_url is a checked URL, and the canonical links made of it are escaped by atlas.site.mkdocs_hooks
    overrides: dict = {"nav": nav, "site_name": theme_html(settings.site_name)}
    if settings.description:
        overrides["site_description"] = theme_html(settings.description)
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


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _add_data(render_dir: Path, site_dir: Path) -> None:
    target = site_dir / layout.DATA_DIR
    if target.exists():
        shutil.rmtree(target)
    copy_tree(
        render_dir / layout.DATA_DIR, target, copy_function=_link_or_copy, ignore=shutil.ignore_patterns(".*.tmp")
    )


def default_source_date_epoch(build_dir: Path) -> int:
    """A stable build date for ``build_dir``: midnight UTC of a day picked by a hash of the maps manifest
    and ``report.json`` (the build's inputs as the site sees them), so equal inputs give equal dates."""
    digest = hashlib.sha256()
    paths = BuildDir(build_dir)
    for path in (paths.manifest, paths.report):
        digest.update(path.read_bytes() if path.is_file() else b"")
    return _EPOCH_BASE + int(digest.hexdigest()[:12], 16) % _EPOCH_DAYS * 86400


def given_source_date_epoch() -> int | None:
    """The user's ``SOURCE_DATE_EPOCH`` (seconds since 1970, ASCII digits), None when unset; AtlasError
    (one line) for any other value. ``atlas build`` checks it before any model runs."""
    return env_number("SOURCE_DATE_EPOCH", limits.SOURCE_DATE_EPOCH)


@contextmanager
def source_date_epoch(build_dir: Path) -> Iterator[int]:
    """``SOURCE_DATE_EPOCH`` for the MkDocs build: the user's value, else ``default_source_date_epoch``."""
    given = given_source_date_epoch()
    if given is not None:
        yield given
        return
    value = default_source_date_epoch(build_dir)
    os.environ["SOURCE_DATE_EPOCH"] = str(value)
    try:
        yield value
    finally:
        os.environ.pop("SOURCE_DATE_EPOCH", None)


def _publish(build_dir: Path, partial: Path, site_dir: Path) -> None:
    """Swap the finished site ``partial`` in for ``site_dir`` (with the files the user added there), recording
    its fingerprint in the build folder's marker: while swapping, the old and the new site both count as
    this build folder's, so a kill at any point leaves a site the next build may replace."""
    carry_user_files(site_dir, partial)
    new = fingerprint(partial)
    record_site(build_dir, site_dir, [*(site_records(build_dir, site_dir) or []), new])
    swap_in(partial, site_dir)
    record_site(build_dir, site_dir, [new])


@dataclass(frozen=True)
class SiteInputs:
    """What the earlier stages hand the site stage: the maps manifest and the metrics (None: the metrics stage
    did not run). ``build_site`` reads both from the build folder when it is not given them."""

    manifest: Manifest
    metrics: MetricsData | None


class _Bar:
    """The site stage's progress bar, if there is one: one task, first counting the rendered pairs."""

    def __init__(self, progress: rich.progress.Progress | None) -> None:
        self.progress, self.task = progress, None

    def start(self, description: str, total: int) -> None:
        if self.progress is not None:
            self.task = self.progress.add_task(description, total=total)

    def advance(self) -> None:
        self.progress.advance(self.task)

    def say(self, description: str) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=description)


@dataclass(frozen=True)
class Rendered:
    """The render phase's result."""

    stats: RenderStats
    seconds: float


@dataclass(frozen=True)
class Docs:
    """The composed docs folder, as the pages see it."""

    dir: Path
    use_directory_urls: bool
    prefix: str | None  # the folder of the tool's docs in it ("": at its top; None: the site has no tool docs)


def render_phase(catalog: Catalog, render_dir: Path, bar: _Bar) -> Rendered:
    """Render the heatmap sprite sheets and photos still to do (``atlas.site.render``)."""
    started = time.perf_counter()
    if render_dir.exists():
        remove_stale_temp_files(render_dir)  # torn writes of a killed build
    bar.start("Rendering heatmaps", sum(len(m.maps) for m in catalog.models))
    stats = render_all(catalog, render_dir, on_pair=bar.advance if bar.progress is not None else None)
    return Rendered(stats, time.perf_counter() - started)


def docs_phase(config: DocsConfig, docs_dir: Path, settings: SiteSettings | None) -> Docs:
    """A fresh docs folder: the docs sources, the user's pages, the atlas' assets with the page-script table."""
    _compose_docs(config.file, config.raw, docs_dir, settings)
    write_page_script_table(docs_dir)
    prefix = "" if settings is None else (TOOL_DOCS_DIR + "/" if settings.tool_docs else None)
    return Docs(docs_dir, config.use_directory_urls, prefix)


def pages_phase(catalog: Catalog, docs: Docs, outside_dir: Path, colormap: str,
                metrics: MetricsData | None) -> WrittenPages:
    """Every atlas page into the docs folder (the image pages' sources into ``outside_dir``)."""
    if outside_dir.exists():
        shutil.rmtree(outside_dir)
    return write_all_pages(
        catalog, docs.dir, colormap=colormap, use_directory_urls=docs.use_directory_urls, metrics=metrics,
        docs_prefix=docs.prefix, outside_dir=outside_dir,
    )


def engine_phase(config: DocsConfig, docs: Docs, partial: Path, build_dir: Path,
                 settings: SiteSettings | None, random_models: Sequence[str] = ()) -> float:
    """Run the docs engine from the docs folder into ``partial``, dated by ``source_date_epoch``; its seconds.
    ``random_models``: the models that ran with random weights (every docs page then says so in one line)."""
    overrides = _site_overrides(settings, config.raw, docs.dir)
    if random_models:
        overrides["extra"] = {**(config.raw.get("extra") or {}), "atlas_random_models": list(random_models)}
    run = EngineRun(
        docs_dir=docs.dir,
        site_dir=partial,
        theme_dir=BuildDir(build_dir).theme,
        settings=overrides,
        not_in_nav=[*not_in_nav(), shell_pattern()],
        css=[ATLAS_CSS],
        scripts=[ATLAS_SCRIPT],
    )
    with source_date_epoch(build_dir):
        return engine_mkdocs.build(config, run)


def outside_phase(partial: Path, written: WrittenPages, docs: Docs, outside_dir: Path, favicon: str) -> int:
    """The pages written after the engine: the image pages from their shells, the redirects of the old head
    pages, and the heads' site-search entries. Returns how many pages it wrote."""
    pages = written.pages
    place_outside_pages(partial, outside_dir, pages.outside, docs.use_directory_urls)
    write_redirects(partial, pages.redirects, docs.use_directory_urls, favicon)
    add_search_entries(partial, pages.search_entries)
    return len(pages.outside) + len(pages.redirects)


def data_phase(render_dir: Path, partial: Path, written: WrittenPages, metrics: MetricsData | None) -> Path:
    """The data files into the site: the rendered ``atlas-data``, the image index, the head viewers' scores and
    the metrics summary. Returns the site's data folder."""
    _add_data(render_dir, partial)
    written.pages.write_gallery_index(partial)
    write_head_scores(written.head_scores, partial)
    copy_metric_files(metrics, partial)
    return partial / layout.DATA_DIR


def build_site(
    build_dir: Path,
    site_dir: Path,
    *,
    colormap: str = "viridis",
    progress: rich.progress.Progress | None = None,
    config_file: Path | None = None,
    settings: SiteSettings | None = None,
    site_images: list[str] | None = None,
    inputs: SiteInputs | None = None,
) -> SiteReport:
    """Render heatmaps (skipping up-to-date ones), write the atlas pages, run MkDocs, add the assets.

    ``config_file`` is the ``mkdocs.yml`` (default: the tool's); its docs_dir, site_dir and nav are
    overridden. ``settings`` (an atlas project's) puts the user's pages, name and address in the site.
    ``site_images``: the ids of the images to publish (``--site-images``; default all); the metrics pages
    still report on every image. ``inputs``: the manifest and metrics the earlier stages gave (default:
    read from the build folder).
    Raises ``AtlasError`` (one line) on a bad manifest or a failed MkDocs build.
    """
    start = time.perf_counter()
    build_dir, site_dir = Path(build_dir).resolve(), Path(site_dir).resolve()
    paths = BuildDir(build_dir)
    catalog = catalog_of(build_dir, inputs.manifest) if inputs is not None else load_catalog(build_dir)
    all_images = len(catalog.images)
    if site_images is not None:
        catalog = published(catalog, site_images)
    partial = recover(site_dir)  # in the site's work folder; a killed build's half-built site removed
    bar = _Bar(progress)
    rendered = render_phase(catalog, paths.render, bar)
    config = engine_mkdocs.read_config(config_file or mkdocs_config())
    docs = docs_phase(config, paths.docs, settings)
    metrics = inputs.metrics if inputs is not None else load_metrics(build_dir)  # None: no metrics stage
    written = pages_phase(catalog, docs, paths.outside_pages, colormap, metrics)
    bar.say("Building site (MkDocs)")
    try:
        mkdocs_seconds = engine_phase(config, docs, partial, build_dir, settings, catalog.random_models)
        outside_phase(partial, written, docs, paths.outside_pages, config.favicon)
        data_phase(paths.render, partial, written, metrics)
        _publish(build_dir, partial, site_dir)
    except BaseException:  # a failed or interrupted site stage leaves the old site and no partial one
        shutil.rmtree(partial, ignore_errors=True)
        raise
    bar.say("Site built")
    return SiteReport(
        site_dir=site_dir,
        pages=len(written.pages.written),
        pngs=rendered.stats.pngs,
        png_bytes=rendered.stats.png_bytes,
        seconds=time.perf_counter() - start,
        render_seconds=rendered.seconds,
        mkdocs_seconds=mkdocs_seconds,
        rendered_pairs=rendered.stats.rendered_pairs,
        cached_pairs=rendered.stats.cached_pairs,
        budget=SiteBudget.measure(site_dir, catalog, all_images),
    )
