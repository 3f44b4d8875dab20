"""The built fake site in headless Chromium: what each control shows, permalinks, hidden options, exactness.

Every test runs under the page fixture's checks: no console error (CSP violations included), no failed
request, no request that leaves 127.0.0.1.
"""

from __future__ import annotations

import io
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from atlas.colormaps import lut
from atlas.layout import slug

pytestmark = pytest.mark.browser

IMAGE = "astronaut"
IMAGE_PAGE = f"atlas/images/{IMAGE}/"


def _open(page, site_url, path, hash_=""):
    """Go to an atlas page once the current one finished loading (leaving early aborts its requests)."""
    page.wait_for_load_state("networkidle")
    page.goto(site_url + path + (f"#{hash_}" if hash_ else ""))
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    page.wait_for_load_state("networkidle")


def _wait_until(page, predicate: str, timeout_s: float = 10.0) -> None:
    """Poll a JS function from Python (page.wait_for_function would need eval, which the CSP forbids)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(predicate):
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        page.wait_for_timeout(50)


def _heat_srcs(page) -> list[str]:
    return page.eval_on_selector_all(".atlas-grid .atlas-heat", "els => els.map(e => e.getAttribute('src'))")


def _tile_pixels(page, model="dinov2", variant="fused") -> np.ndarray:
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(50)
    shot = page.locator(f".atlas-grid .atlas-tile[data-model={model}][data-variant={variant}] .atlas-stack")
    return np.asarray(Image.open(io.BytesIO(shot.screenshot())).convert("RGB")).astype(int)


def _expected_indices(values: np.ndarray) -> np.ndarray:
    """Independent restatement of the display normalisation: round-half-up of 255 * min-max."""
    v = values.astype(np.float64)
    return np.floor((v - v.min()) / (v.max() - v.min()) * 255 + 0.5).astype(np.uint8)


def _npz(fake_build, model, image):
    return np.load(fake_build / "maps" / model / f"{image}.npz")


@pytest.mark.parametrize("cmap", ["viridis", "turbo"])
def test_shown_png_is_the_colormapped_cached_map(page, site_url, fake_build, cmap):
    _open(page, site_url, IMAGE_PAGE, f"models=dinov2&method=mean&layer=1&view=heads&display=heat"
          f"&boxes=0&cmap={cmap}")  # fmt: skip
    heat = page.locator(".atlas-tile[data-model=dinov2][data-variant=h02] img.atlas-heat")
    src = heat.evaluate("e => e.currentSrc")
    png = Image.open(io.BytesIO(urllib.request.urlopen(src).read()))
    expected = _expected_indices(_npz(fake_build, "dinov2", IMAGE)["mean"][1, 2])
    assert png.mode == "L" and np.array_equal(np.asarray(png), expected)

    # what the screen shows: each cell's centre has colour lut[index] (pixelated, heatmap only)
    pixels = _tile_pixels(page, variant="h02")
    gh, gw = expected.shape
    h, w = pixels.shape[:2]
    table = lut(cmap)
    for r in range(gh):
        for c in range(gw):
            shown = pixels[int((r + 0.5) * h / gh), int((c + 0.5) * w / gw)]
            assert np.abs(shown - table[expected[r, c]]).max() <= 2, (r, c, shown, table[expected[r, c]])


def test_every_control_changes_what_is_shown(page, site_url):
    _open(page, site_url, IMAGE_PAGE)
    form = page.locator("form.atlas-controls")

    def changes(action, *, srcs=False, pixels=True, model="dinov2", variant="fused"):
        before_srcs = _heat_srcs(page)
        before_px = _tile_pixels(page, model, variant) if pixels else None
        action()
        page.wait_for_load_state("networkidle")
        if srcs:
            assert _heat_srcs(page) != before_srcs
        if pixels:
            after = _tile_pixels(page, model, variant)
            assert after.shape != before_px.shape or np.abs(after - before_px).max() > 10

    changes(lambda: form.locator("input[name=method][value=mean]").check(), srcs=True)
    changes(lambda: form.locator("input[name=layer]").fill("0"), srcs=True)
    n_heads = len(_heat_srcs(page))
    form.locator("input[name=view][value=fused]").check()
    assert len(_heat_srcs(page)) == 2 and n_heads == 5 + 4  # dinov2 fused only + siglip fused only (resnet: no mean)
    changes(lambda: form.locator("input[name=display][value=heat]").check())
    changes(lambda: form.locator("input[name=display][value=overlay]").check())
    changes(lambda: form.locator("input[name=opacity]").fill("100"))
    changes(lambda: form.locator("select[name=cmap]").select_option("inferno"))
    changes(lambda: form.locator("input[name=boxes]").uncheck())
    changes(lambda: form.locator("input[name=smooth]").check())
    changes(lambda: form.locator("select[name=thr]").select_option("top"))
    page.wait_for_selector(".atlas-mask[data-ready]")
    changes(lambda: form.locator("input[name=p]").fill("60") or form.locator("input[name=p]").press("Tab"))
    changes(lambda: form.locator("select[name=thr]").select_option("mass"))
    changes(lambda: form.locator("select[name=thr]").select_option("none"))
    form.locator("input[name=view][value=heads]").check()
    changes(lambda: form.locator("input[name=composite]").check(), srcs=True, pixels=False)
    assert page.locator(".atlas-tile[data-variant=composite] canvas.atlas-composite").count() == 2
    form.locator("input[name=composite]").uncheck()
    rows = page.eval_on_selector_all(".atlas-row", "els => els.map(e => e.dataset.model)")
    form.locator("input[name=models][value=siglip]").uncheck()
    assert page.eval_on_selector_all(".atlas-row", "els => els.map(e => e.dataset.model)") == [
        r for r in rows if r != "siglip"
    ]
    # play steps through the layers
    before = _heat_srcs(page)
    page.locator("[data-action=play]").click()
    page.wait_for_timeout(1000)
    page.locator("[data-action=play]").click()
    assert _heat_srcs(page) != before


def test_permalink_restores_the_view_and_history_steps_back(page, site_url):
    state = (
        "models=dinov2&method=cls&layer=1&view=heads&display=heat&opacity=30&cmap=turbo"
        "&boxes=0&smooth=1&thr=mass&mass=0.4"
    )
    _open(page, site_url, IMAGE_PAGE, state)
    form = page.locator("form.atlas-controls")
    assert form.locator("select[name=cmap]").input_value() == "turbo"
    assert form.locator("input[name=layer]").input_value() == "1"
    assert form.locator("input[name=smooth]").is_checked()
    assert page.locator(".atlas-row").count() == 1
    srcs = _heat_srcs(page)
    assert srcs[0].endswith("/dinov2/astronaut/cls-l01-fused.png") and len(srcs) == 5
    assert page.locator(".atlas-mask").count() == 5
    assert page.eval_on_selector(".atlas-root", "e => e.dataset.cmap") == "turbo"

    form.locator("input[name=layer]").fill("2")
    form.locator("input[name=method][value=mean]").check()
    assert _heat_srcs(page)[0].endswith("mean-l02-fused.png")
    page.go_back()
    assert _heat_srcs(page)[0].endswith("cls-l02-fused.png")
    page.go_forward()
    assert _heat_srcs(page)[0].endswith("mean-l02-fused.png")

    url = page.url
    other = page.context.new_page()
    other.goto(url)
    other.wait_for_selector(".atlas-root[data-atlas-ready]")
    assert _heat_srcs(other) == _heat_srcs(page)
    other.close()


def test_unsupported_options_are_hidden(page, site_url):
    _open(page, site_url, IMAGE_PAGE, "models=siglip")
    form = page.locator("form.atlas-controls")
    assert form.locator("[data-method=cls]").is_hidden() and form.locator("[data-method=gradcam]").is_hidden()
    assert form.locator("[data-method=mean]").is_visible()
    _open(page, site_url, IMAGE_PAGE, "models=dinov2&method=rollout&view=heads&composite=1")
    assert form.locator("[data-role=view]").is_hidden() and form.locator("[data-role=composite]").is_hidden()
    assert _heat_srcs(page) == [page.locator(".atlas-heat").first.get_attribute("src")]
    assert page.locator(".atlas-composite").count() == 0
    _open(page, site_url, IMAGE_PAGE, "models=resnet50&method=gradcam&layer=9")
    assert form.locator("[data-role=layer-name]").inner_text() == "Stage"
    assert form.locator("input[name=layer]").get_attribute("max") == "3"
    assert _heat_srcs(page) == [f"../../../atlas-data/maps/resnet50/{IMAGE}/gradcam-l03-fused.png"]
    # all models, cls: the rows without cls are hidden and named, not broken
    _open(page, site_url, IMAGE_PAGE, "method=cls")
    assert page.eval_on_selector_all(".atlas-row", "els => els.map(e => e.dataset.model)") == ["dinov2"]
    assert "siglip has no cls" in page.locator("[data-role=hidden-rows]").inner_text()
    # an image the CNN skipped has no resnet50 checkbox
    _open(page, site_url, "atlas/images/church_01/")
    assert page.locator("input[name=models][value=resnet50]").count() == 0


def _composite_heads(page) -> set[int]:
    """The heads whose legend colour the composite canvas shows (nearest legend colour per pixel)."""
    page.wait_for_selector(".atlas-composite[data-ready]")
    legend = page.eval_on_selector_all(".atlas-legend .atlas-swatch", "els => els.map(e => e.style.background)")
    colours = np.array([[int(x) for x in c[4:-1].split(",")] for c in legend])
    data = page.eval_on_selector(
        ".atlas-grid .atlas-composite",
        "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)",
    )
    px = np.array(data).reshape(-1, 4)
    shown = px[px[:, 3] > 0][:, :3]
    distance = np.abs(shown[:, None, :] - colours[None]).max(axis=2)
    assert (distance.min(axis=1) <= 6).all()  # every coloured cell is one head's colour
    return set(distance.argmin(axis=1).tolist())


def test_composite_shows_distinct_colours_per_head(page, site_url):
    _open(page, site_url, IMAGE_PAGE, "models=dinov2&method=mean&layer=2&composite=1")
    legend = page.eval_on_selector_all(".atlas-legend .atlas-swatch", "els => els.map(e => e.style.background)")
    assert len(legend) == 4 and len(set(legend)) == 4
    before = _composite_heads(page)
    assert len(before) >= 3  # several heads dominate somewhere, each in its own colour
    page.locator(".atlas-legend button[data-head='0']").click()
    page.wait_for_timeout(500)  # let the double-click window pass
    assert page.locator(".atlas-legend button[data-head='0']").get_attribute("aria-pressed") == "false"
    assert 0 not in _composite_heads(page) and 0 in before
    page.locator(".atlas-legend button[data-head='2']").dblclick()
    assert _composite_heads(page) == {2}
    assert "off=0%2C1%2C3" in page.url
    page.wait_for_timeout(500)
    page.locator(".atlas-legend button[data-head='2']").dblclick()  # un-solo: all heads again
    assert _composite_heads(page) == before | {0}


def test_thresholded_cells_equal_python_masks(page, site_url, fake_build):
    from ssl_attention.thresholds import mass_threshold_mask, top_percent_mask

    maps = _npz(fake_build, "dinov2", IMAGE)
    for mode, arg in (("top", 30), ("top", 7), ("mass", 0.6), ("mass", 0.35)):
        key = "p" if mode == "top" else "mass"
        _open(page, site_url, IMAGE_PAGE, f"models=dinov2&method=cls&layer=0&view=heads&thr={mode}&{key}={arg}")
        _wait_until(page, "() => document.querySelectorAll('.atlas-mask[data-ready]').length === 5")
        for variant, values in [("fused", maps["cls_fused"][0])] + [
            (f"h{h:02d}", maps["cls"][0, h]) for h in range(4)
        ]:  # h00 is constant, h01 has ties
            alpha = page.eval_on_selector(
                f".atlas-tile[data-variant={variant}] canvas.atlas-mask",
                "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
                ".filter((_, i) => i % 4 === 3)",
            )
            shown = np.array(alpha).reshape(values.shape) == 0
            expected = top_percent_mask(values, arg) if mode == "top" else mass_threshold_mask(values, arg)
            assert np.array_equal(shown, expected), (mode, arg, variant)


def test_zoom_keyboard_and_help(page, site_url):
    _open(page, site_url, IMAGE_PAGE, "models=dinov2&method=cls&layer=1")
    page.locator(".atlas-tile[data-variant=h01] .atlas-tile-open").click()
    assert page.locator("dialog.atlas-zoom").is_visible() and "zoom=dinov2%3Ah01" in page.url
    assert page.locator("dialog.atlas-zoom img.atlas-heat").get_attribute("src").endswith("cls-l01-h01.png")
    page.keyboard.press("Escape")
    _wait_until(page, "() => !location.hash.includes('zoom=dinov2')")  # the close event runs after Escape
    assert not page.locator("dialog.atlas-zoom").is_visible()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("ArrowRight")
    assert _heat_srcs(page)[0].endswith("cls-l02-fused.png")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert _heat_srcs(page)[0].endswith("cls-l00-fused.png")
    page.keyboard.press("h")
    assert len(_heat_srcs(page)) == 1
    page.keyboard.press("?")
    assert page.locator("dialog.atlas-help").is_visible()


def test_gallery_filters(page, site_url):
    _open(page, site_url, "atlas/")
    visible = lambda: page.eval_on_selector_all(  # noqa: E731
        ".atlas-card:not([hidden]) .atlas-card-title", "els => els.map(e => e.textContent)"
    )
    assert len(visible()) == 3
    page.fill("input[name=q]", "church")
    assert visible() == ["church_01"]
    page.fill("input[name=q]", "")
    page.select_option("select[name=model]", "resnet50")
    assert "church_01" not in visible() and len(visible()) == 2
    page.select_option("select[name=model]", "")
    page.select_option("select[name=label]", "tower")
    assert visible() == ["church_01"]
    page.reload()
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    assert visible() == ["church_01"]  # the filter is in the URL
    assert page.locator(".atlas-random-banner").is_visible()


def test_model_and_head_pages(page, site_url, fake_build):
    _open(page, site_url, "atlas/models/dinov2/")
    heats = page.locator(".atlas-layer-grid img.atlas-heat")
    assert heats.count() == 3 * 5
    first = heats.first.get_attribute("src")
    odd = slug(next(i["id"] for i in __import__("json").loads(
        (fake_build / "maps" / "manifest.json").read_text())["images"] if "<" in i["id"]))  # fmt: skip
    page.select_option("select[name=image]", odd)
    assert heats.first.get_attribute("src") != first and odd in heats.first.get_attribute("src")
    page.locator("input[name=method][value=rollout]").check()
    assert page.locator(".atlas-layer-grid img.atlas-heat").count() == 3
    assert page.locator(".atlas-random-banner").is_visible()

    _open(page, site_url, "atlas/heads/dinov2/l02-h03/")
    srcs = lambda: page.eval_on_selector_all(".atlas-heat", "els => els.map(e => e.getAttribute('src'))")  # noqa: E731
    assert len(srcs()) == 3 and all(s.endswith("cls-l02-h03.png") for s in srcs())
    page.locator("input[name=method][value=mean]").check()
    assert all(s.endswith("mean-l02-h03.png") for s in srcs())
    alt = page.locator(".atlas-heat").last.get_attribute("alt")
    assert '<b>"quotes"' in alt  # the raw id, as text
