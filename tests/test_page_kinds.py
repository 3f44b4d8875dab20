"""Page kinds are registry entries (atlas.site.pages.kinds): one list feeds the page writer, the nav's Atlas
section, the pages kept out of the nav and main.mjs' page-script table. A toy page kind added the way the
registry says shows up end to end in a site built from the fake maps."""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlas.core import layout
from atlas.core.resources import templates_dir
from atlas.site.catalog import load_catalog
from atlas.site.pages import AtlasPages, Page, kinds, write_all_pages, writer
from atlas.site.pages.kinds import PAGE_KINDS, PageKind, PageScript
from atlas.site.stage import build_site

TOY_TEMPLATE = """{% include "pages/_common.html" %}
<div class="atlas-root" data-atlas-page="toy">
<h1>{{ heading }}</h1>
<ul>{% for name, href in links %}<li><a href="{{ href }}">{{ name }}</a></li>{% endfor %}</ul>
{% include "pages/_data.html" %}
</div>
"""
TOY_INDEX = f"{layout.PAGES_DIR}/toy/index.md"


def toy_index(site: AtlasPages) -> Iterator[Page]:
    """The toy kind's one page: a list of the toy model pages."""
    links = [(m.name, site.url(TOY_INDEX, toy_src(m.slug))) for m in site.catalog.models]
    yield Page(TOY_INDEX, "Toy", {"heading": "Toy index", "links": links}, {"toyModels": len(links)})


def toy_models(site: AtlasPages) -> Iterator[Page]:
    """The toy folder kind: one page per model."""
    for m in site.catalog.models:
        yield Page(toy_src(m.slug), f"Toy {m.name}", {"heading": f"Toy of {m.name}", "links": []}, {"model": m.slug})


def toy_src(slug: str) -> str:
    return f"{layout.PAGES_DIR}/toy/{slug}.md"


TOY_KINDS = (
    PageKind("toy", "pages/toy.html", toy_index, nav_title="Toy", src=TOY_INDEX,
             script=PageScript("toy.mjs", "initToy")),
    PageKind("toy-model", "pages/toy.html", toy_models, folder="toy"),
)


@pytest.fixture
def toy_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The toy kinds in the registry (before the build report), and their template beside the atlas' own."""
    templates = tmp_path / "templates"
    shutil.copytree(templates_dir() / "pages", templates / "pages")
    (templates / "pages" / "toy.html").write_text(TOY_TEMPLATE, encoding="utf-8")
    monkeypatch.setattr(writer, "templates_dir", lambda: templates)
    monkeypatch.setattr(kinds, "PAGE_KINDS", (*PAGE_KINDS[:-1], *TOY_KINDS, PAGE_KINDS[-1]))
    yield
    monkeypatch.undo()
    assert kinds.PAGE_KINDS == PAGE_KINDS and writer.templates_dir is templates_dir  # registry restored


def _data_block(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="atlas-data">(.*?)</script>', html, re.S)
    assert found, "no data block"
    return json.loads(found.group(1))


def _nav_titles(html: str) -> list[str]:
    """The link texts of the page's nav (the theme's nav links, without those to the page's own sections)."""
    links = re.findall(r'<a href="([^"#]*)" class="md-nav__link[^"]*">(.*?)</a>', html, re.S)
    return [re.sub(r"<[^>]+>", "", text).strip() for _, text in links]


def test_main_mjs_page_table_is_the_registrys():
    """The published main.mjs keeps its bytes: its PAGES table is the one the registry gives."""
    source = (templates_dir() / "assets" / "atlas" / "main.mjs").read_text(encoding="utf-8")
    assert kinds.page_script_table() in source
    assert source.count("const PAGES = {") == 1


def test_the_nav_and_the_pages_out_of_it_come_from_the_kinds():
    nav = kinds.atlas_nav()["Atlas"]
    assert [next(iter(entry)) for entry in nav] == ["Gallery", "Models", "Heads", "Head anatomy", "Leaderboard",
                                                    "Variants", "Build report"]
    assert all(next(iter(entry.values())).endswith(".md") for entry in nav)
    assert sorted(kinds.not_in_nav()) == sorted(f"/atlas/{d}/" for d in
                                                ("images", "models", "heads", "leaderboard", "anatomy", "variants",
                                                 "compare"))


def test_a_toy_page_kind_shows_up_end_to_end(toy_registry, fake_build: Path, tmp_path: Path, caplog):
    build = tmp_path / "build"
    shutil.copytree(fake_build, build, ignore=shutil.ignore_patterns("site", ".site.*"))
    with caplog.at_level(logging.INFO, logger="mkdocs"):
        site = build_site(build, build / "site").site_dir
    models = load_catalog(build).models

    index = (site / "atlas" / "toy" / "index.html").read_text(encoding="utf-8")  # its page file
    assert "<h1>Toy index</h1>" in index
    assert _data_block(index)["page"] == "toy" and _data_block(index)["toyModels"] == len(models)
    for m in models:
        page = (site / "atlas" / "toy" / m.slug / "index.html").read_text(encoding="utf-8")
        assert f"<h1>Toy of {m.name}</h1>" in page and _data_block(page)["page"] == "toy-model"
        assert f'atlas/toy/{m.slug}/">{m.name}</a>' in index

    titles = _nav_titles((site / "index.html").read_text(encoding="utf-8"))  # the nav: where the registry puts it
    atlas = titles[titles.index("Gallery"):titles.index("Build report") + 1]
    assert atlas == ["Gallery", "Models", "Heads", "Head anatomy", "Leaderboard", "Variants", "Toy", "Build report"]
    assert not any(t.startswith("Toy ") for t in titles)  # the folder kind's pages are not in the nav...
    omitted = " ".join(r.getMessage() for r in caplog.records if "not included in the" in r.getMessage())
    assert "atlas/toy/" not in omitted  # ...and MkDocs does not list them as forgotten either

    main = (site / layout.ASSETS_DIR / "atlas" / "main.mjs").read_text(encoding="utf-8")  # the page-script table
    assert '  toy: () => import("./toy.mjs").then((m) => m.initToy),\n};' in main
    assert '  head: () => import("./head.mjs").then((m) => m.initHeadPage),\n' in main
    assert "toy-model" not in main  # a kind without a script has no entry


def test_a_builder_that_writes_outside_its_place_is_refused(monkeypatch, fake_build: Path, tmp_path: Path):
    def stray(site: AtlasPages) -> Iterator[Page]:
        yield Page(f"{layout.PAGES_DIR}/elsewhere.md", "Stray", {})

    monkeypatch.setattr(kinds, "PAGE_KINDS", (PageKind("stray", "pages/models.html", stray, folder="stray"),))
    with pytest.raises(ValueError, match=re.escape("'stray': atlas/elsewhere.md is not where its pages go")):
        write_all_pages(load_catalog(fake_build), tmp_path / "docs")
