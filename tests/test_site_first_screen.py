"""The first screen and phones (issue 25, items 4, 5, 6 and the image page's one h1 of item 8), in headless
Chromium: at 1400 x 900 the image page shows the photo and the first model's whole row of heads (fused + 12)
without scrolling; at 390 px no page is wider than the screen (the head tables scroll inside their boxes) and
chart text stays at 10 px or more; the random-weights banner is one line on every page (docs pages too), its
details on demand, and it covers nothing.

Runs under the page fixture's checks: no console error, no failed request, no request off 127.0.0.1.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.node_tools import axe_source
from tests.fixtures.site_fixtures import checked_page
from tests.fixtures.site_server import serve_site
from tests.test_site_hostile import AXE_RUN, SETTLED
from tests.test_site_travel import _open, wide_site  # noqa: F401  (12 layers x 12 heads, as ViT-B)

pytestmark = pytest.mark.browser

DESKTOP, PHONE = {"width": 1400, "height": 900}, {"width": 390, "height": 844}
IMAGE_PAGE = "atlas/images/astronaut/"
BOX = ("(s) => { const b = document.querySelector(s).getBoundingClientRect();"
       " return [b.left, b.top, b.right, b.bottom]; }")
WIDTH = "() => document.documentElement.scrollWidth"


def _inside(box: list[float], view: dict) -> bool:
    left, top, right, bottom = box
    return left >= 0 and top >= 0 and right <= view["width"] and bottom <= view["height"]


def test_first_screen_shows_the_photo_and_the_first_row_of_heads(browser, wide_site):  # noqa: F811
    with serve_site(wide_site) as url, checked_page(browser) as page:
        page.set_viewport_size(DESKTOP)
        _open(page, url + IMAGE_PAGE)
        assert page.evaluate("window.scrollY") == 0
        assert _inside(page.evaluate(BOX, ".atlas-main img.atlas-photo"), DESKTOP)
        first = page.locator(".atlas-row").first
        assert first.get_attribute("data-model") == "dinov2"
        tiles = page.eval_on_selector_all(
            ".atlas-row:first-of-type .atlas-tile",
            "els => els.map(e => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })",
        )
        assert len(tiles) == 13  # fused + 12 heads
        assert all(_inside(t, DESKTOP) for t in tiles), tiles
        assert _inside(page.evaluate(BOX, ".atlas-row:first-of-type .atlas-row-title"), DESKTOP)
        assert page.locator("h1").count() == 1  # item 8: one h1 (the page's title)


@pytest.mark.parametrize("path", [IMAGE_PAGE, "atlas/heads/", "atlas/heads/dinov2/#l05-h07", "atlas/models/dinov2/",
                                  "atlas/", "atlas/leaderboard/", "atlas/anatomy/dinov2/", ""])  # fmt: skip
def test_phone_pages_are_no_wider_than_the_screen(browser, wide_site, path):  # noqa: F811
    with serve_site(wide_site) as url, checked_page(browser) as page:
        page.set_viewport_size(PHONE)
        page.goto(url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate(WIDTH) <= PHONE["width"], path
        if path == IMAGE_PAGE:  # the head table scrolls inside its own box
            assert page.evaluate("() => { const b = document.querySelector('.atlas-table-scroll');"
                                 " return b.scrollWidth > b.clientWidth; }")  # fmt: skip


CHART_TEXT = """() => [...document.querySelectorAll('svg.atlas-chart')].map(s => s.getBoundingClientRect().width
    / s.viewBox.baseVal.width * Number(s.getAttribute('font-size')))"""


@pytest.mark.parametrize("path", ["atlas/leaderboard/", "atlas/leaderboard/dinov2/", "atlas/anatomy/",
                                  "atlas/anatomy/dinov2/"])  # fmt: skip
def test_phone_chart_text_is_at_least_10px(page, site_url, path):
    page.set_viewport_size(PHONE)
    page.goto(site_url + path)
    page.wait_for_load_state("networkidle")
    sizes = page.evaluate(CHART_TEXT)
    assert sizes and min(sizes) >= 10, sizes
    assert page.evaluate(WIDTH) <= PHONE["width"]


BANNER = ".atlas-random-banner"


@pytest.mark.parametrize("view", [DESKTOP, PHONE])
@pytest.mark.parametrize("path", ["", "glossary/", "atlas/", IMAGE_PAGE, "atlas/heads/dinov2/#l01-h02"])
def test_random_weights_banner_is_one_line_on_every_page_and_covers_nothing(page, site_url, path, view):
    page.set_viewport_size(view)
    page.goto(site_url + path)
    page.wait_for_load_state("networkidle")
    banner = page.locator(BANNER)
    assert banner.count() == 1 and banner.is_visible(), path
    assert "Random weights" in banner.inner_text() and "siglip" in banner.inner_text()
    box = banner.bounding_box()
    assert box["height"] <= 32, box  # one line
    assert page.evaluate(f"getComputedStyle(document.querySelector('{BANNER}')).position") in ("static", "relative")
    detail = page.locator("#atlas-random-detail")
    assert detail.is_hidden()  # details on demand
    # covers nothing: the page's title below it is where a click lands
    title = page.locator("h1").first.bounding_box()
    assert title["y"] >= box["y"] + box["height"] or title["y"] + title["height"] <= box["y"]
    page.locator(f"{BANNER} > summary").click()
    assert detail.is_visible() and "random (untrained) weights" in detail.inner_text()
    page.evaluate("window.scrollBy(0, 600)")  # not sticky: it scrolls away with the page
    assert page.locator(BANNER).bounding_box()["y"] < box["y"] or page.evaluate("window.scrollY") == 0


def test_bracket_keys_open_the_next_and_previous_image_in_this_view(page, site_url):
    """Item 8: ] and [ step through the images (the gallery's order), keeping the view."""
    page.goto(site_url + IMAGE_PAGE + "#models=dinov2&method=mean&layer=1")
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    page.wait_for_load_state("networkidle")
    page.keyboard.press("]")
    page.wait_for_url("**/atlas/images/church_01/#*")
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    assert "method=mean" in page.url and "layer=1" in page.url
    page.wait_for_load_state("networkidle")
    page.keyboard.press("[")
    page.wait_for_url("**/atlas/images/astronaut/#*")
    assert "method=mean" in page.url


def test_gallery_field_has_a_border_and_from_disk_no_dead_filters(browser, built_site, page, site_url):
    """Item 8: the file-name field has a visible border; opened from disk the gallery shows the file:// message
    and why it has no cards, not filters that look live over 0 cards."""
    page.goto(site_url + "atlas/")
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    field = "form.atlas-controls input[name=q]"
    assert page.evaluate(f"parseFloat(getComputedStyle(document.querySelector('{field}')).borderTopWidth)") >= 1
    assert page.locator("[data-role=file-only]").is_hidden()
    context = browser.new_context(viewport=DESKTOP)
    try:
        disk = context.new_page()
        disk.goto((built_site.site_dir / "atlas" / "index.html").as_uri())
        disk.wait_for_load_state("load")
        assert disk.locator("[data-role=file-protocol]").is_visible()
        assert disk.locator("[data-role=file-only]").is_visible()
        assert disk.locator("form.atlas-controls").is_hidden() and disk.locator(".atlas-pager").first.is_hidden()
    finally:
        context.close()


def test_methods_formulas_count_from_0():
    """Item 8: the Methods page's sums count heads, tokens and channels from 0, as the UI does."""
    source = (Path(__file__).resolve().parents[1] / "site_src" / "methods.md").read_text(encoding="utf-8")
    starts = re.findall(r"\\sum_\{[a-z]=(\d)\}", source)
    assert starts and set(starts) == {"0"}, starts
    assert r"h \in \{0,\dots,H-1\}" in source


def test_leaderboard_says_layers_and_heads_are_selected_and_scored_on_the_same_images(page, site_url):
    """Item 3 (its caveat): the leaderboard itself says that the best layer and head are chosen and scored on
    the same images, where a reader of the numbers sees it."""
    page.goto(site_url + "atlas/leaderboard/")
    page.wait_for_load_state("networkidle")
    caveat = page.locator("[data-role=selection-caveat]")
    assert caveat.is_visible()
    assert "Selected and scored on the same images" in caveat.inner_text()
    assert caveat.bounding_box()["y"] < page.locator("#overview").bounding_box()["y"]  # before the numbers


@pytest.mark.parametrize("scheme", ["default", "slate"])
@pytest.mark.parametrize("path", ["atlas/", "atlas/models/dinov2/#image=astronaut&scale=shared",
                                  "atlas/heads/dinov2/#l01-h02&scale=shared"])  # fmt: skip
def test_new_parts_pass_axe_in_both_palettes(page, site_url, path, scheme):
    """The one-line banner (open), the gallery's field, the model page's and head viewer's readout and scale box."""
    source = axe_source()
    page.goto(site_url + path)
    page.wait_for_load_state("networkidle")
    page.locator(".atlas-random-banner > summary").click()
    page.evaluate(f"() => document.body.setAttribute('data-md-color-scheme', '{scheme}')")
    page.evaluate(SETTLED)
    page.evaluate(source)
    assert page.evaluate(AXE_RUN) == []
