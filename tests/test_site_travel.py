"""Issue 16 items 5, 6 and 14 in headless Chromium: the view state travels along the links between atlas
pages, the model x head table (and the model page's layer x head table) keeps a row on one line with
sticky labels and a fit-to-width option, and a page opened from disk (file://) says how to serve it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from atlas.metrics.stage import compute_metrics
from atlas.site.stage import build_site
from tests.fixtures.fake_maps import MODELS, write_fake_build
from tests.fixtures.site_fixtures import checked_page
from tests.fixtures.site_server import serve_site

pytestmark = pytest.mark.browser

IMAGE_PAGE = "atlas/images/astronaut/"
DESKTOP, PHONE = {"width": 1400, "height": 900}, {"width": 390, "height": 844}


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    page.wait_for_load_state("networkidle")


def _follow(page, selector: str) -> dict[str, str]:
    """Click the link ``selector`` (from script: the zoom dialog may be open) and return the new page's hash."""
    with page.expect_navigation():
        page.eval_on_selector(selector, "a => a.click()")
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    page.wait_for_load_state("networkidle")
    return dict(parse_qsl(urlsplit(page.url).fragment))


def _shown_view(page) -> dict[str, str]:
    """The method, colormap and display the page shows (its form and its root's data attributes)."""
    return page.evaluate("""() => ({
        method: document.querySelector("form.atlas-controls input[name=method]:checked").value,
        cmap: document.querySelector(".atlas-root").dataset.cmap,
        display: document.querySelector(".atlas-root").dataset.display })""")


VIEW = {"method": "mean", "cmap": "inferno", "display": "heat"}


def test_view_state_travels_along_head_image_and_model_links(page, site_url):
    _open(
        page,
        site_url + IMAGE_PAGE + "#models=dinov2,siglip&method=mean&layer=1&cmap=inferno&display=heat&zoom=dinov2:h01",
    )
    assert page.locator("[data-role=zoom]").get_attribute("open") is not None
    # next and previous image (from the page, and from the enlarged tile): the same view, the same tile
    for link in ("a[rel=next]", "a[rel=prev]", "[data-role=zoom] a[data-role=zoom-next]",
                 "[data-role=zoom] a[data-role=zoom-prev]"):  # fmt: skip
        got = _follow(page, link)
        assert {k: got.get(k) for k in ("models", "method", "layer", "cmap", "display", "zoom")} == {
            "models": "dinov2,siglip",
            "layer": "1",
            "zoom": "dinov2:h01",
            **VIEW,
        }
        assert _shown_view(page) == VIEW
        assert page.locator("input[name=layer]").input_value() == "1"
        assert page.locator("[data-role=zoom]").get_attribute("open") is not None
        assert page.locator("[data-role=zoom] .atlas-tile").get_attribute("data-variant") == "h01"
    assert urlsplit(page.url).path.endswith(IMAGE_PAGE)
    page.keyboard.press("Escape")  # close the zoom: the links follow the new state
    page.wait_for_function("() => !document.querySelector('[data-role=zoom]').open")
    # a head link (a tile's caption): the head page reads method, colormap and display, nothing else
    got = _follow(page, ".atlas-row[data-model=dinov2] .atlas-tile[data-variant=h02] figcaption a")
    url = urlsplit(page.url)
    assert url.path.endswith("atlas/heads/dinov2/") and url.fragment.startswith("l01-h02&")  # the head viewer
    assert got == VIEW and _shown_view(page) == VIEW
    crumbs = page.eval_on_selector_all(".atlas-crumbs a[data-travel]", "els => els.map(a => a.getAttribute('href'))")
    assert len(crumbs) >= 1 and all(dict(parse_qsl(urlsplit(h).fragment)) == VIEW for h in crumbs), crumbs
    page.go_back()
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    # the model row title: the model page opens on this image, in this view
    got = _follow(page, ".atlas-row[data-model=dinov2] .atlas-row-title a")
    assert urlsplit(page.url).path.endswith("atlas/models/dinov2/")
    assert got == {"image": "astronaut", "fit": "0", **VIEW} and _shown_view(page) == VIEW
    assert page.locator("[data-role=image-chooser] input[role=combobox]").input_value() == "astronaut"
    # and back from the model page: a fused tile opens the image page at its layer, in this view
    got = _follow(page, ".atlas-layer-grid tbody tr:nth-child(3) td:first-of-type a")
    assert got == {"models": "dinov2", "method": "mean", "layer": "2", "cmap": "inferno", "display": "heat", "fit": "0"}
    assert _shown_view(page) == VIEW and page.locator("input[name=layer]").input_value() == "2"


WIDE_MODELS = {"dinov2": {"layers": 12, "heads": 12}, "siglip": {"layers": 12, "heads": 6}, "resnet50": {}}


@pytest.fixture(scope="module")
def wide_site(tmp_path_factory) -> Path:
    """A fake site of ViT-B-shaped models (12 layers x 12 heads; SigLIP with 6 heads) and ResNet-50."""
    build = tmp_path_factory.mktemp("wide")
    models = [dict(copy.deepcopy(m), **WIDE_MODELS[m["name"]]) for m in MODELS]
    write_fake_build(build, specs=models)
    compute_metrics(build)
    return build_site(build, build / "site").site_dir


ROW_LINES = """sel => [...document.querySelectorAll(sel)].map(row => [row.closest("[data-model]") ?
    row.closest("[data-model]").dataset.model : row.querySelector("th").textContent,
    new Set([...row.querySelectorAll(TILES)].map(t => Math.round(t.getBoundingClientRect().top))).size,
    row.querySelectorAll(TILES).length])""".replace("TILES", repr(".atlas-tile, td > a > .atlas-stack"))
PAGE_FITS = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
TABLE_SCROLLS = "s => { const b = document.querySelector(s); return b.scrollWidth > b.clientWidth + 1; }"


def _sticky_label_stays(page, box: str, label: str) -> None:
    """Scroll the table box ``box`` sideways: the row label ``label`` stays where it was, on top."""
    page.eval_on_selector(label, "t => window.scrollBy(0, t.getBoundingClientRect().top - innerHeight / 2)")
    before = page.locator(label).bounding_box()
    tile = page.locator(f"{box} td").nth(3).bounding_box()
    page.eval_on_selector(box, "b => { b.scrollLeft = 400; }")
    page.wait_for_function(f"() => document.querySelector({box!r}).scrollLeft > 0")
    after = page.locator(label).bounding_box()
    assert page.locator(f"{box} td").nth(3).bounding_box()["x"] < tile["x"] - 100  # the tiles moved...
    assert abs(after["x"] - before["x"]) < 1  # ...the label did not
    hit = page.evaluate(f"() => !!document.elementFromPoint({after['x'] + 5}, {after['y'] + after['height'] / 2})"
                        f".closest({label!r})")  # fmt: skip
    assert hit
    page.eval_on_selector(box, "b => { b.scrollLeft = 0; }")


def test_model_head_table_keeps_rows_on_one_line_with_sticky_labels_and_fits(browser, wide_site):
    with serve_site(wide_site) as url, checked_page(browser) as page:
        page.set_viewport_size(DESKTOP)
        _open(page, url + IMAGE_PAGE + "#method=mean&layer=5")
        rows = page.evaluate(ROW_LINES, ".atlas-row > tr:first-child")
        assert rows == [["dinov2", 1, 13], ["siglip", 1, 7]]  # fused + every head, on one line
        assert page.locator(".atlas-head-table thead th").all_inner_texts()[1:] == ["fused"] + [
            f"h{h:02d}" for h in range(12)
        ]
        assert page.locator(".atlas-row[data-model=siglip] td.atlas-empty").count() == 6  # fewer heads: empty
        # at 1400 px the tiles share the width: the whole row shows (issue 25); narrower, the table scrolls
        assert page.evaluate(PAGE_FITS) and not page.evaluate(TABLE_SCROLLS, ".atlas-table-scroll")
        page.set_viewport_size({"width": 700, "height": 900})
        assert page.evaluate(PAGE_FITS) and page.evaluate(TABLE_SCROLLS, ".atlas-table-scroll")
        _sticky_label_stays(page, ".atlas-table-scroll", ".atlas-row[data-model=siglip] .atlas-row-title")
        width = page.locator(".atlas-tile").first.bounding_box()["width"]
        page.locator("input[name=fit]").check()  # fit to width: smaller tiles, no sideways scrolling
        assert "fit=1" in page.url
        assert not page.evaluate(TABLE_SCROLLS, ".atlas-table-scroll") and page.evaluate(PAGE_FITS)
        assert page.locator(".atlas-tile").first.bounding_box()["width"] < width
        assert page.evaluate(ROW_LINES, ".atlas-row > tr:first-child") == rows
        page.set_viewport_size(DESKTOP)
        # Grad-CAM: one map per stage, labelled with its stage
        _open(page, url + IMAGE_PAGE + "#method=gradcam&layer=2")
        assert page.locator(".atlas-head-table thead th").all_inner_texts() == ["stage 2", "map"]
        assert page.locator(".atlas-row[data-model=resnet50] figcaption").inner_text() == "stage 2"

        # the model page: every layer's row on one line, h11 reachable, labels sticky, fit to width
        _open(page, url + "atlas/models/dinov2/")
        layers = page.evaluate(ROW_LINES, ".atlas-layer-grid tbody tr")
        assert [n for _, n, _ in layers] == [1] * 12 and {t for _, _, t in layers} == {13}
        assert page.evaluate(PAGE_FITS) and page.evaluate(TABLE_SCROLLS, ".atlas-table-scroll")
        _sticky_label_stays(page, ".atlas-table-scroll", ".atlas-layer-grid tbody tr:nth-child(4) th")
        page.locator("input[name=fit]").check()
        assert "fit=1" in page.url and not page.evaluate(TABLE_SCROLLS, ".atlas-table-scroll")
        h11 = page.locator(".atlas-layer-grid tbody tr:first-child td:last-child").bounding_box()
        assert h11["x"] + h11["width"] <= DESKTOP["width"]

        page.set_viewport_size(PHONE)  # a phone: the tables scroll inside, the pages do not
        for path in (IMAGE_PAGE + "#method=mean", IMAGE_PAGE + "#method=mean&fit=1", "atlas/models/dinov2/"):
            _open(page, url + path)
            assert page.evaluate(PAGE_FITS), path
            assert page.evaluate(TABLE_SCROLLS, ".atlas-table-scroll") == ("fit=1" not in path), path


def test_a_page_opened_from_disk_says_how_to_serve_it_without_errors(browser, built_site):
    site = built_site.site_dir
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        for path in ("index.html", "atlas/images/astronaut/index.html", "atlas/models/dinov2/index.html",
                     "methods/index.html"):  # fmt: skip
            page.goto((site / path).as_uri())
            page.wait_for_load_state("load")
            message = page.locator("[data-role=file-protocol]")
            assert message.count() == 1, path
            text = message.inner_text()
            assert f"atlas serve --site-dir {site}" in text and f"python -m http.server -d {site}" in text, path
            assert page.locator(".md-search__input").is_disabled()  # search: off, with the message
            links = page.eval_on_selector_all("nav.md-nav--primary a.md-nav__link[href]",
                                              "els => els.map(a => a.getAttribute('href'))")  # fmt: skip
            assert links and all(h.split("#")[0].endswith(".html") for h in links if not h.startswith("#")), links
            page.wait_for_timeout(300)  # what would fail (modules, fetches, the search index) had its chance
        assert errors == []
    finally:
        context.close()


def test_served_pages_show_no_disk_message(page, site_url):
    _open(page, site_url + IMAGE_PAGE)
    assert page.locator("[data-role=file-protocol]").count() == 0
    assert page.locator(".md-search__input").is_enabled()
