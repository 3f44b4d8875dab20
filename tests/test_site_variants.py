"""The variants pages and the compare view (issue 23), in headless Chromium, on a fake build with a declared
variant (``dinov2-ft`` of ``dinov2``, same grid) and a model on another grid (``siglip``).

The shift map's value under the pointer is variant - base of the values decoded from the published sprite
sheets; the slider's divider moves with the mouse and the keyboard; permalinks restore the view; the
variants page's cells link to the compare view; axe finds nothing in both palettes; nothing overflows at
390 px. Every page runs under the page fixture's checks (no console error, no failed request).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from atlas.core.variants import VariantPair
from atlas.metrics.stage import compute_metrics
from atlas.site.map_values import decode_sprite
from atlas.site.stage import build_site
from tests.fixtures.fake_maps import MODELS, write_fake_build
from tests.fixtures.node_tools import axe_source
from tests.fixtures.site_fixtures import checked_page
from tests.fixtures.site_server import serve_site
from tests.test_site_hostile import AXE_RUN, SETTLED

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
COMPARE = "atlas/compare/"
VARIANT = "atlas/variants/dinov2-ft/"
SHIFT = "#image=astronaut&left=dinov2:cls:2:h01&right=dinov2-ft:cls:2:h01&mode=shift"


@pytest.fixture(scope="module")
def variant_site(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("variants")
    tuned = copy.deepcopy(MODELS[0])
    tuned.update(name="dinov2-ft", weights="random")
    write_fake_build(build, specs=[MODELS[0], tuned, MODELS[1]])
    compute_metrics(build, pairs=(VariantPair("dinov2-ft", "dinov2"),))
    return build_site(build, build / "site").site_dir


@pytest.fixture(scope="module")
def url(variant_site: Path) -> Iterator[str]:
    with serve_site(variant_site) as served:
        yield served


@pytest.fixture
def page(browser):
    with checked_page(browser) as pg:
        yield pg


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    page.wait_for_load_state("networkidle")


def _drawn(page) -> None:
    page.wait_for_selector(".atlas-root[data-drawn]")
    page.wait_for_function("() => [...document.querySelectorAll('[data-role=view] canvas')]"
                           ".every(c => c.dataset.ready)")


def _values(site: Path, model: str, method: str, layer: int, variant: int) -> np.ndarray:
    png = (site / "atlas-data" / "maps" / model / "astronaut" / f"{method}.png").read_bytes()
    return decode_sprite(png)[layer, variant].astype(np.float64).ravel()


def test_shift_map_readout_is_variant_minus_base_of_the_decoded_sprites(page, url, variant_site):
    _open(page, url + COMPARE + SHIFT)
    _drawn(page)
    base, tuned = _values(variant_site, "dinov2", "cls", 2, 2), _values(variant_site, "dinov2-ft", "cls", 2, 2)
    box = page.locator(".atlas-compare-shift").bounding_box()
    gh, gw = MODELS[0]["grid"]
    for row, col in [(0, 0), (1, 3), (3, 5), (2, 2)]:
        page.mouse.move(box["x"] + (col + 0.5) * box["width"] / gw, box["y"] + (row + 0.5) * box["height"] / gh)
        cell = row * gw + col
        page.wait_for_function(f"() => document.querySelector('[data-role=readout]').dataset.cell === '{cell}'")
        out = page.locator("[data-role=readout]")
        assert float(out.get_attribute("data-value")) == pytest.approx(tuned[cell] - base[cell], abs=1e-12)
        assert float(out.get_attribute("data-left")) == base[cell]
        assert float(out.get_attribute("data-right")) == tuned[cell]
    m = np.abs(tuned - base).max()
    bar = page.locator("[data-role=readout] .atlas-colourbar")
    assert float(bar.get_attribute("data-hi")) == pytest.approx(m) and float(bar.get_attribute("data-lo")) == -float(
        bar.get_attribute("data-hi"))
    assert page.locator("[data-role=pair-note]").inner_text() == "dinov2-ft is a declared variant of dinov2."


def _split(page) -> float:
    return float(page.locator("input.atlas-divider").input_value())


def test_slider_moves_with_mouse_and_keyboard_and_the_permalink_keeps_it(page, url):
    _open(page, url + COMPARE + SHIFT.replace("mode=shift", "mode=slider"))
    _drawn(page)
    box = page.locator(".atlas-compare-slider").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.2, y, steps=5)
    page.mouse.up()
    dragged = _split(page)
    assert dragged < 35
    clip = page.locator("canvas.atlas-heat[data-side=left]").evaluate("c => c.style.clipPath")
    assert clip == f"inset(0px {100 - int(dragged)}% 0px 0px)"
    page.locator("input.atlas-divider").focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    assert _split(page) == dragged + 5
    assert parse_qs(urlsplit(page.url).fragment)["split"] == [str(int(dragged + 5))]
    # the permalink restores the view: a fresh page on this address shows the same divider and maps
    address = page.url
    _open(page, url + "atlas/")
    _open(page, address)
    _drawn(page)
    assert _split(page) == dragged + 5
    assert page.locator("select[name=right-model]").input_value() == "dinov2-ft"
    assert page.locator("select[name=left-variant]").input_value() == "h01"


def test_permalink_restores_side_by_side_and_other_grids_get_no_shift_map(page, url):
    _open(page, url + COMPARE + "#image=church_01&left=siglip:mean:1:h02&right=dinov2:cls:0:fused&mode=shift")
    _drawn(page)
    assert page.locator("select[name=image]").input_value() == "church_01"
    assert page.locator("input[name=mode][value=side]").is_checked()  # shift asked for, different grids
    assert page.locator("input[name=mode][value=shift]").is_disabled()
    note = page.locator("[data-role=shift-note]").inner_text()
    assert note.startswith("No shift map: siglip has a 5×5 grid and dinov2 a 4×6 one")
    sides = page.locator(".atlas-compare-sides canvas.atlas-heat")
    assert sides.count() == 2
    assert sides.nth(0).get_attribute("data-model") == "siglip" and sides.nth(0).get_attribute("data-variant") == "h02"
    # a form change is a new permalink
    page.locator("select[name=left-model]").select_option("dinov2-ft")
    page.wait_for_function("() => location.hash.includes('left=dinov2-ft')")
    assert not page.locator("input[name=mode][value=shift]").is_disabled()


def test_variants_page_marks_cells_and_links_them_to_the_compare_view(page, url):
    _open(page, url + VARIANT)
    table = page.locator("table.atlas-delta-table[data-method=cls]")
    assert table.locator("td[data-head=fused]").count() == MODELS[0]["layers"]
    link = table.locator("td[data-layer='2'][data-head='1'] a")
    href = link.get_attribute("href")
    state = parse_qs(urlsplit(href).fragment)
    assert state["left"] == ["dinov2:cls:2:h01"] and state["right"] == ["dinov2-ft:cls:2:h01"]
    with page.expect_navigation():
        link.click()
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    _drawn(page)
    assert page.locator("input[name=mode][value=shift]").is_checked()
    _open(page, url + "atlas/variants/")
    assert page.locator("table.atlas-variants-index a").inner_text() == "dinov2-ft"


def test_image_page_and_head_viewer_link_to_the_compare_view(page, url):
    _open(page, url + "atlas/images/astronaut/")
    assert parse_qs(urlsplit(page.locator("a[data-role=compare]").get_attribute("href")).fragment) == {
        "image": ["astronaut"]}
    _open(page, url + "atlas/heads/dinov2-ft/#l02-h03")
    state = parse_qs(urlsplit(page.locator("a[data-role=compare]").get_attribute("href")).fragment)
    assert state["left"] == ["dinov2:cls:2:h03"] and state["right"] == ["dinov2-ft:cls:2:h03"]


@pytest.mark.parametrize("scheme", ["default", "slate"])
@pytest.mark.parametrize("path", [COMPARE + SHIFT, COMPARE + SHIFT.replace("shift", "slider"),
                                  COMPARE + SHIFT.replace("shift", "side"), VARIANT, "atlas/variants/"])
def test_axe_finds_nothing_in_both_palettes(page, url, path, scheme):
    source = axe_source()
    _open(page, url + path)
    page.evaluate(f"() => document.body.setAttribute('data-md-color-scheme', '{scheme}')")
    page.evaluate(SETTLED)
    page.evaluate(source)
    assert page.evaluate(AXE_RUN) == []


@pytest.mark.parametrize("path", [COMPARE + SHIFT, COMPARE + SHIFT.replace("shift", "slider"),
                                  COMPARE + SHIFT.replace("shift", "side"), VARIANT, "atlas/variants/"])
def test_nothing_overflows_at_390px(browser, url, path):
    with checked_page(browser) as page:
        page.set_viewport_size(PHONE)
        _open(page, url + path)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"], path
