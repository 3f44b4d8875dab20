"""The atlas' Markdown pages (front matter + an HTML block), generated from the catalog with Jinja.

Each page is ``atlas/...md`` in the composed docs dir, in the docs engine's format
(``atlas.site.engine_mkdocs.page_source``): rendered by mkdocs-material with the ``atlas.html`` override
template, its body finished HTML that the engine passes to the theme without Markdown.
The page's data for the page scripts (``templates/assets/atlas/*.mjs``) is JSON in a
``<script type="application/json" id="atlas-data">`` element: no inline code, CSP-safe.

Modules (imports run one way, each from those before it): ``outside`` (pages rendered outside MkDocs),
``writer`` (what every page shares), ``metric_pages`` (leaderboard, model metric pages, the image pages'
metric panels), ``anatomy_pages`` (head statistics per model), ``atlas_pages`` (gallery, image, model and
head pages), ``report_page`` (the build report), ``kinds`` (the list of page kinds, which names each
kind's builder: the one place a page kind is added).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from atlas.metrics.data import MetricsData
from atlas.site.catalog import Catalog
from atlas.site.head_scores import HeadScores
from atlas.site.pages.atlas_pages import MAX_DRAWN_BOXES
from atlas.site.pages.kinds import PAGE_KINDS, PageKind, PageScript, write_pages
from atlas.site.pages.metric_pages import copy_metric_files
from atlas.site.pages.report_page import REPORT_PAGE
from atlas.site.pages.writer import (
    AtlasPages,
    Page,
    PageWriter,
    colormap_filters,
    json_for_html,
    method_data,
    safe_title,
    write_colormap_module,
)

__all__ = [
    "MAX_DRAWN_BOXES", "PAGE_KINDS", "REPORT_PAGE", "AtlasPages", "Page", "PageKind", "PageScript", "PageWriter",
    "colormap_filters", "copy_metric_files", "json_for_html", "method_data", "safe_title", "write_all_pages",
]


@dataclass
class WrittenPages:
    """What ``write_all_pages`` wrote: the writer (its pages, those rendered outside MkDocs) and the head
    viewers' scores (their data files go into the site after MkDocs)."""

    pages: AtlasPages
    head_scores: list[HeadScores]


def write_all_pages(
    catalog: Catalog,
    docs_dir: Path,
    *,
    colormap: str = "viridis",
    use_directory_urls: bool = True,
    metrics: MetricsData | None = None,
    docs_prefix: str | None = "",
    outside_dir: Path | None = None,
) -> WrittenPages:
    """Write every atlas page into ``docs_dir``, every kind of ``PAGE_KINDS`` (their paths relative to it:
    ``.pages.written``).

    ``metrics`` (the metrics stage's output) fills the leaderboard, the model metric pages and the
    image pages' metric panels; without it those pages say that no metrics were computed.
    ``docs_prefix`` is the folder of the tool's docs in ``docs_dir`` (None: the site has none). With
    ``outside_dir``, the image pages' sources go there (``atlas.site.pages.outside``).
    """
    writer = AtlasPages(
        catalog, docs_dir, colormap=colormap, use_directory_urls=use_directory_urls, metrics=metrics,
        docs_prefix=docs_prefix, outside_dir=outside_dir,
    )
    write_colormap_module(docs_dir)
    write_pages(writer)
    return WrittenPages(writer, writer.head_scores)
