"""The atlas as a researcher's instrument (issue 16), in headless Chromium on the fake site: the sidebar,
small-sample intervals, the empty grid, both palettes, keyboard shortcuts, state round trips, narrow screens
(the random-weights banner: tests/test_site_first_screen.py).

Every test runs under the page fixture's checks: no console error (CSP violations included), no failed
request, no request that leaves 127.0.0.1.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.fixtures.node_tools import axe_source
from tests.test_site_hostile import AXE_RUN, SETTLED

pytestmark = pytest.mark.browser

IMAGE_PAGE = "atlas/images/astronaut/"


def _open(page, site_url, path, hash_=""):
    """Go to an atlas page once the current one finished loading (leaving early aborts its requests)."""
    page.wait_for_load_state("networkidle")
    page.goto(site_url + path + (f"#{hash_}" if hash_ else ""))
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    page.wait_for_load_state("networkidle")


def test_sidebar_entries_are_distinct(page, site_url):
    """The docs' model guide and the Atlas section's model pages do not share one title."""
    _open(page, site_url, "atlas/")
    titles = page.eval_on_selector_all(
        "nav.md-nav--primary .md-nav__link .md-ellipsis", "els => els.map(e => e.textContent.trim())"
    )
    assert "Gallery" in titles and len(titles) > 8
    assert sorted(t for t in titles if titles.count(t) > 1) == []


def _ci_cells(page) -> list[tuple[int, bool]]:
    """(n, shows an interval) of every cell of the page's per-label tables."""
    return page.eval_on_selector_all(
        ".atlas-label-table td",
        "els => els.map(e => [Number(e.querySelector('.atlas-n').textContent.slice(2)),"
        " !!e.querySelector('.atlas-ci')])",
    )


@pytest.mark.parametrize("path", ["atlas/leaderboard/", "atlas/leaderboard/dinov2/"])
def test_label_tables_show_n_and_no_interval_below_three_images(page, site_url, path):
    _open(page, site_url, path)
    cells = _ci_cells(page)
    assert 1 in {n for n, _ in cells}  # the fake build has labels on a single image
    assert [(n, ci) for n, ci in cells if ci != (n >= 3)] == []
    assert page.locator(".atlas-label-table .atlas-n").first.is_visible()


def test_unticking_every_model_says_so(page, site_url):
    _open(page, site_url, IMAGE_PAGE)
    boxes = page.locator("form.atlas-controls input[name=models]")
    for i in range(boxes.count()):
        boxes.nth(i).uncheck()
    assert page.locator(".atlas-row").count() == 0
    empty = page.locator(".atlas-grid [data-role=no-models]")
    assert empty.is_visible() and "No model selected" in empty.inner_text()
    boxes.first.check()
    assert page.locator(".atlas-row").count() == 1 and empty.count() == 0


@pytest.mark.parametrize("scheme", ["default", "slate"])
@pytest.mark.parametrize("path", [IMAGE_PAGE, "atlas/models/", "atlas/leaderboard/"])
def test_random_weight_badges_pass_axe_in_both_palettes(page, site_url, scheme, path):
    """The "random weights" badges (and everything else axe checks) in the light and the dark palette."""
    source = axe_source()
    _open(page, site_url, path)
    assert page.locator(".atlas-badge").count() > 0
    page.evaluate(f"() => document.body.setAttribute('data-md-color-scheme', '{scheme}')")
    page.evaluate(SETTLED)  # axe must not measure colours halfway through the theme's transitions
    page.evaluate(source)  # CDP evaluation: not subject to the page's CSP
    assert page.evaluate(AXE_RUN) == []


def _hash(page) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(page.url).fragment, keep_blank_values=True))


def _wait_hash(page, key: str, value: str, timeout_s: float = 10.0) -> None:
    """Until the URL hash has ``key=value``."""
    deadline = time.monotonic() + timeout_s
    while _hash(page).get(key) != value:
        assert time.monotonic() < deadline, f"timed out waiting for {key}={value} in {page.url}"
        page.wait_for_timeout(50)


def test_shortcuts_leave_form_controls_and_the_theme_keys_alone(page, site_url):
    _open(page, site_url, IMAGE_PAGE, "models=dinov2&method=cls&layer=1&view=heads")
    search = page.locator("input[data-md-toggle=search]")
    page.locator("input[name=models][value=siglip]").focus()
    page.keyboard.press(" ")  # Space ticks the checkbox, and does not start playback
    _wait_hash(page, "models", "dinov2,siglip")  # the checkbox acts on keyup
    assert page.locator("[data-action=play]").get_attribute("aria-pressed") == "false"
    page.locator("input[name=display][value=overlay]").focus()
    page.keyboard.press("ArrowRight")  # the radio group moves to "heatmap only"; the layer stays
    assert _hash(page)["display"] == "heat" and _hash(page)["layer"] == "1"

    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Control+ArrowRight")
    page.keyboard.press("Alt+h")
    assert _hash(page)["layer"] == "1" and _hash(page)["view"] == "heads"
    page.keyboard.press("ArrowRight")
    assert _hash(page)["layer"] == "2"
    page.keyboard.press("u")  # smoothing, a key the theme does not bind
    assert _hash(page)["smooth"] == "1" and not search.is_checked()
    page.keyboard.press("h")  # the next shortcut still works (no search field took the focus)
    assert _hash(page)["view"] == "fused"
    page.keyboard.press("s")  # the theme's search key is not also a shortcut
    assert _hash(page)["smooth"] == "1"
    assert "<kbd>u</kbd>" in page.locator("dialog.atlas-help").inner_html()


def _variants(page, model: str = "dinov2") -> list[str]:
    return page.eval_on_selector_all(
        f".atlas-row[data-model={model}] .atlas-tile", "els => els.map(e => e.dataset.variant)"
    )


def test_choices_survive_a_method_that_lacks_them(page, site_url):
    """Per-head view and composite across rollout, the layer across a shallower method, and x on a method
    without heads: the hash keeps what the user chose, the page shows what applies."""
    form = page.locator("form.atlas-controls")
    method = lambda key: form.locator(f"input[name=method][value={key}]").check()  # noqa: E731
    _open(page, site_url, IMAGE_PAGE, "method=mean&layer=1&view=heads")
    assert _variants(page) == ["fused", "h00", "h01", "h02", "h03"]
    method("rollout")
    assert _variants(page) == ["fused"] and form.locator("[data-role=view]").is_hidden()
    method("mean")
    assert _variants(page) == ["fused", "h00", "h01", "h02", "h03"]
    form.locator("input[name=composite]").check()
    method("rollout")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("x")  # no heads here: x changes nothing
    assert _hash(page)["composite"] == "1"
    method("mean")
    assert _variants(page) == ["fused", "composite", "h00", "h01", "h02", "h03"]  # the composite beside the heads

    _open(page, site_url, IMAGE_PAGE, "method=mean&layer=1")
    method("rollout")
    page.keyboard.press("x")
    assert _hash(page)["composite"] == "0"  # x on rollout wrote no composite=1
    method("mean")
    assert _variants(page) == ["fused", "h00", "h01", "h02", "h03"]

    _open(page, site_url, IMAGE_PAGE, "method=gradcam&layer=3")  # ResNet-50: 4 stages; the ViTs: 3 layers
    assert form.locator("input[name=layer]").input_value() == "3"
    method("cls")
    assert form.locator("input[name=layer]").input_value() == "2"  # shown clamped
    method("gradcam")
    assert form.locator("input[name=layer]").input_value() == "3" and _hash(page)["layer"] == "3"
    url = page.url  # the permalink of this state reads back to the same state
    page.reload()
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    form.locator("input[name=opacity]").fill("40")
    assert {k: v for k, v in _hash(page).items() if k != "opacity"} == {
        k: v for k, v in dict(parse_qsl(urlsplit(url).fragment, keep_blank_values=True)).items() if k != "opacity"
    }


PHONE = {"width": 390, "height": 844}


@pytest.mark.parametrize("path", [IMAGE_PAGE, "atlas/leaderboard/", "atlas/leaderboard/dinov2/", "atlas/models/",
                                  "atlas/models/dinov2/"])  # fmt: skip
def test_phone_width_pages_do_not_scroll_sideways(page, site_url, path):
    page.set_viewport_size(PHONE)
    _open(page, site_url, path)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
