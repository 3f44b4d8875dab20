"""The page kinds of the atlas: one list, ``PAGE_KINDS``, from which the site stage writes the pages, makes the
Atlas section of the nav, keeps the other pages out of the nav and fills the page-script table of ``main.mjs``.

A page kind is a key (the ``page`` of its pages' data block, and its entry in ``main.mjs``'s ``PAGES``), a
template under ``templates/``, a builder, and where its pages go: one page at ``src``, listed in the nav
under ``nav_title``, or many pages in ``folder`` (under ``atlas/``), kept out of the nav; and optionally its
page script, an ES module under ``templates/assets/atlas/`` and the function it exports, which ``main.mjs``
imports for the pages of that kind and calls with the page's root element and data.

Every builder has one shape: ``builder(site: AtlasPages) -> Iterable[Page]``; it reads the build through
``site`` (catalog, metrics, anatomy, URLs) and gives ``Page`` values (source path, title, template context,
its own keys of the data block); ``write_pages`` renders them, in the order of ``PAGE_KINDS``.

To add a page kind: write its template (``templates/pages/``), its builder (a module of this package), its
script if it has one, and one ``PageKind`` entry below; its CSS goes into ``templates/assets/atlas.css``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from atlas.core import layout
from atlas.site.pages.anatomy_pages import anatomy_index_page, anatomy_model_pages
from atlas.site.pages.atlas_pages import (
    gallery_page,
    head_pages,
    heads_page,
    image_pages,
    model_pages,
    models_page,
)
from atlas.site.pages.report_page import REPORT_PAGE, report_page
from atlas.site.pages.soft_pages import leaderboard_page, model_metrics_pages  # metric_pages' + issue 27's parts
from atlas.site.pages.variant_pages import compare_page, variant_pages, variants_index_page
from atlas.site.pages.writer import AtlasPages, Page
from ssl_attention.errors import AtlasError

NAV_SECTION = "Atlas"  # the nav section of the pages with a nav title
MAIN_SCRIPT = f"{layout.ASSETS_DIR}/atlas/main.mjs"  # holds the page-script table, docs-relative
_TABLE = re.compile(r"^const PAGES = \{\n.*?^\};\n", re.M | re.S)


@dataclass(frozen=True)
class PageScript:
    """A page kind's script: an ES module (relative to ``templates/assets/atlas/``) and its init function."""

    module: str
    init: str


@dataclass(frozen=True)
class PageKind:
    """One kind of atlas page (see the module's docstring). Give it ``src`` or ``folder``."""

    key: str
    template: str
    build: Callable[[AtlasPages], Iterable[Page]]
    nav_title: str | None = None  # its one page's entry in the nav's Atlas section (None: not in the nav)
    src: str | None = None  # the source of its one page
    folder: str | None = None  # the folder of its many pages, under ``layout.PAGES_DIR``
    script: PageScript | None = None

    def holds(self, src: str) -> bool:
        """Whether the page source ``src`` is where this kind's pages go."""
        return src == self.src if self.folder is None else src.startswith(f"{layout.PAGES_DIR}/{self.folder}/")


PAGE_KINDS: tuple[PageKind, ...] = (
    PageKind("gallery", "pages/gallery.html", gallery_page, nav_title="Gallery", src=layout.GALLERY_PAGE,
             script=PageScript("gallery.mjs", "initGallery")),
    PageKind("image", "pages/image.html", image_pages, folder="images",
             script=PageScript("image/page.mjs", "initImagePage")),
    PageKind("models", "pages/models.html", models_page, nav_title="Models", src=layout.MODELS_PAGE),
    PageKind("model", "pages/model.html", model_pages, folder="models",
             script=PageScript("model.mjs", "initModelPage")),
    PageKind("heads", "pages/heads.html", heads_page, nav_title="Heads", src=layout.HEADS_PAGE),
    PageKind("head", "pages/head.html", head_pages, folder="heads", script=PageScript("head.mjs", "initHeadPage")),
    PageKind("anatomy-index", "pages/anatomy_index.html", anatomy_index_page, nav_title="Head anatomy",
             src=layout.ANATOMY_PAGE),
    PageKind("anatomy", "pages/anatomy.html", anatomy_model_pages, folder="anatomy"),
    PageKind("leaderboard", "pages/leaderboard.html", leaderboard_page, nav_title="Leaderboard",
             src=layout.LEADERBOARD_PAGE),
    PageKind("model-metrics", "pages/model_metrics.html", model_metrics_pages, folder="leaderboard",
             script=PageScript("choosers.mjs", "initChoosers")),
    PageKind("variants", "pages/variants.html", variants_index_page, nav_title="Variants", src=layout.VARIANTS_PAGE),
    PageKind("variant", "pages/variant.html", variant_pages, folder="variants"),
    PageKind("compare", "pages/compare.html", compare_page, folder="compare",
             script=PageScript("compare.mjs", "initComparePage")),
    PageKind("report", "pages/report.html", report_page, nav_title="Build report", src=REPORT_PAGE),
)


def write_pages(site: AtlasPages) -> None:
    """Write every page of every kind; ``ValueError`` if a builder gives a page outside its kind's place."""
    for kind in PAGE_KINDS:
        for page in kind.build(site):
            if not kind.holds(page.src):
                raise ValueError(f"page kind {kind.key!r}: {page.src} is not where its pages go")
            site.write_page(kind.key, kind.template, page)


def atlas_nav() -> dict[str, list[dict[str, str]]]:
    """The nav's Atlas section: the page of each kind with a nav title, in the order of ``PAGE_KINDS``."""
    return {NAV_SECTION: [{kind.nav_title: kind.src} for kind in PAGE_KINDS if kind.nav_title and kind.src]}


def not_in_nav() -> list[str]:
    """The folders of the kinds of many pages, as gitignore-style patterns (docs-relative)."""
    return [f"/{layout.PAGES_DIR}/{kind.folder}/" for kind in PAGE_KINDS if kind.folder]


def page_script_table() -> str:
    """``main.mjs``'s ``PAGES`` table: per page kind with a script, a function that imports its module and
    gives its init function (so each page loads only its own modules)."""
    lines = [
        f"  {_js_key(kind.key)}: () => import({json.dumps('./' + kind.script.module)})"
        f".then((m) => m.{kind.script.init}),"
        for kind in PAGE_KINDS
        if kind.script
    ]
    return "const PAGES = {\n" + "".join(line + "\n" for line in lines) + "};\n"


def write_page_script_table(docs_dir: Path) -> None:
    """Put ``page_script_table()`` into the docs' copy of ``main.mjs`` (the same bytes as its source while the
    kinds are those the source lists; ``tests/test_page_kinds.py`` checks that)."""
    path = docs_dir / MAIN_SCRIPT
    text = path.read_text(encoding="utf-8")
    if len(_TABLE.findall(text)) != 1:
        raise AtlasError(f"{path}: no single 'const PAGES = {{ ... }};' table to put the page scripts in")
    table = page_script_table()
    path.write_text(_TABLE.sub(lambda _: table, text), encoding="utf-8")


def _js_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_$][\w$]*", key) else json.dumps(key)
