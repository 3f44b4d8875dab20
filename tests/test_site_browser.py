"""The built fake site in headless Chromium: what each control shows, permalinks, hidden options, exactness.

Every test runs under the page fixture's checks: no console error (CSP violations included), no failed
request, no request that leaves 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
from PIL import Image

from atlas.core.colormaps import lut
from atlas.core.layout import map_sprite, slug
from atlas.site.render import to_indices
from tests.fixtures.fake_maps import IMAGES, TAGS

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


def _heat_keys(page, scope: str = ".atlas-grid") -> list[str]:
    """What each heat canvas under ``scope`` says it shows: ``model/image/method/lLL/variant``."""
    return page.eval_on_selector_all(
        f"{scope} canvas.atlas-heat",
        "els => els.map(e => [e.dataset.model, e.dataset.image, e.dataset.method,"
        " 'l' + e.dataset.layer.padStart(2, '0'), e.dataset.variant].join('/'))",
    )


def _wait_painted(page, scope: str = ".atlas-grid") -> None:
    """Until every heat canvas under ``scope`` is painted (``data-ready``)."""
    _wait_until(page, f"() => [...document.querySelectorAll('{scope} canvas.atlas-heat')].every(c => c.dataset.ready)")


def _canvas_indices(page, selector: str) -> np.ndarray:
    """The colormap indices a heat canvas holds: its own pixels (getImageData), before the CSS colour filter."""
    width, height, data = page.eval_on_selector(
        selector,
        "c => [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]",
    )
    px = np.array(data, dtype=np.uint8).reshape(height, width, 4)
    assert (px[..., 3] == 255).all(), "a tile pixel is not painted"
    assert (px[..., 0] == px[..., 1]).all() and (px[..., 1] == px[..., 2]).all(), "a tile pixel is not grey"
    return px[..., 0]


def _heat(model: str, image: str, method: str, layer: int, variant: str) -> str:
    """The selector of the heat canvas whose data attributes name exactly this map."""
    return (
        f"canvas.atlas-heat[data-model='{model}'][data-image='{image}'][data-method='{method}']"
        f"[data-layer='{layer}'][data-variant='{variant}']"
    )


def _tile_pixels(page, model="dinov2", variant="fused") -> np.ndarray:
    page.wait_for_load_state("networkidle")
    _wait_painted(page)
    page.wait_for_timeout(50)
    shot = page.locator(f".atlas-grid .atlas-tile[data-model={model}][data-variant={variant}] .atlas-stack")
    shot.evaluate("e => e.scrollIntoView({block: 'center', inline: 'center'})")  # clear of the sticky bars
    return np.asarray(Image.open(io.BytesIO(shot.screenshot())).convert("RGB")).astype(int)


def _npz(fake_build, model, image):
    return np.load(fake_build / "maps" / model / f"{image}.npz")


def _map(fake_build, model: str, image_id: str, method: str, layer: int, variant: str) -> np.ndarray:
    """The cached float map of one (model, image, method, layer, variant), straight from the npz."""
    maps = _npz(fake_build, model, image_id)
    if variant != "fused":
        return maps[method][layer, int(variant[1:])]
    return maps[f"{method}_fused"][layer] if f"{method}_fused" in maps.files else maps[method][layer]


def _image_ids(fake_build) -> dict[str, str]:
    """Image slug -> image id of the fake build."""
    manifest = json.loads((fake_build / "maps" / "manifest.json").read_text())
    return {slug(i["id"]): i["id"] for i in manifest["images"]}


TILES = [  # model, image, method, layer, variant, colormap
    ("dinov2", IMAGE, "mean", 1, "h02", "viridis"),  # a per-head tile of the non-square 4 x 6 grid
    ("dinov2", "church_01", "cls", 2, "fused", "turbo"),  # fused, another image
    ("dinov2", IMAGE, "cls", 0, "h00", "inferno"),  # a constant map: all index 0
    ("siglip", IMAGE, "mean", 1, "h02", "viridis"),  # 5 x 5, one NaN cell (index 0); h02 = the last column
    ("resnet50", IMAGE, "gradcam", 3, "fused", "turbo"),  # a CNN stage (7 x 7), the sprite's last row
]


@pytest.mark.parametrize(("model", "image", "method", "layer", "variant", "cmap"), TILES)
def test_shown_tile_is_the_colormapped_cached_map(
    page, site_url, fake_build, model, image, method, layer, variant, cmap
):
    """The canvas of (image, model, method, layer, head) holds exactly that cached map's indices; the screen
    shows them through the colormap."""
    _open(page, site_url, f"atlas/images/{image}/", f"models={model}&method={method}&layer={layer}&view=heads"
          f"&display=heat&boxes=0&cmap={cmap}")  # fmt: skip
    _wait_painted(page)
    assert f"{model}/{image}/{method}/l{layer:02d}/{variant}" in _heat_keys(page)
    expected = to_indices(_map(fake_build, model, image, method, layer, variant))
    assert np.array_equal(_canvas_indices(page, ".atlas-grid " + _heat(model, image, method, layer, variant)), expected)

    # what the screen shows: each cell's centre has colour lut[index] (pixelated, heatmap only)
    pixels = _tile_pixels(page, model=model, variant=variant)
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
        before_srcs = _heat_keys(page)
        before_px = _tile_pixels(page, model, variant) if pixels else None
        action()
        page.wait_for_load_state("networkidle")
        if srcs:
            assert _heat_keys(page) != before_srcs
        if pixels:
            after = _tile_pixels(page, model, variant)
            assert after.shape != before_px.shape or np.abs(after - before_px).max() > 10

    changes(lambda: form.locator("input[name=method][value=mean]").check(), srcs=True)
    changes(lambda: form.locator("input[name=layer]").fill("0"), srcs=True)
    n_heads = len(_heat_keys(page))
    form.locator("input[name=view][value=fused]").check()
    assert len(_heat_keys(page)) == 2 and n_heads == 5 + 4  # dinov2 fused only + siglip fused only (resnet: no mean)
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
    before = _heat_keys(page)
    form.locator("input[name=composite]").check()
    assert page.locator(".atlas-tile[data-variant=composite] canvas.atlas-composite").count() == 2
    assert _heat_keys(page) == before  # the composite comes beside the per-head tiles
    form.locator("input[name=composite]").uncheck()
    rows = page.eval_on_selector_all(".atlas-row", "els => els.map(e => e.dataset.model)")
    form.locator("input[name=models][value=siglip]").uncheck()
    assert page.eval_on_selector_all(".atlas-row", "els => els.map(e => e.dataset.model)") == [
        r for r in rows if r != "siglip"
    ]
    # play steps through the layers
    before = _heat_keys(page)
    page.locator("[data-action=play]").click()
    page.wait_for_timeout(1000)
    page.locator("[data-action=play]").click()
    assert _heat_keys(page) != before


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
    keys = _heat_keys(page)
    assert keys[0] == "dinov2/astronaut/cls/l01/fused" and len(keys) == 5
    assert page.locator(".atlas-mask").count() == 5
    assert page.eval_on_selector(".atlas-root", "e => e.dataset.cmap") == "turbo"

    form.locator("input[name=layer]").fill("2")
    form.locator("input[name=method][value=mean]").check()
    assert _heat_keys(page)[0] == "dinov2/astronaut/mean/l02/fused"
    page.go_back()
    assert _heat_keys(page)[0] == "dinov2/astronaut/cls/l02/fused"
    page.go_forward()
    assert _heat_keys(page)[0] == "dinov2/astronaut/mean/l02/fused"

    url = page.url
    other = page.context.new_page()
    other.goto(url)
    other.wait_for_selector(".atlas-root[data-atlas-ready]")
    assert _heat_keys(other) == _heat_keys(page)
    other.close()


def test_unsupported_options_are_hidden(page, site_url):
    _open(page, site_url, IMAGE_PAGE, "models=siglip")
    form = page.locator("form.atlas-controls")
    assert form.locator("[data-method=cls]").is_hidden() and form.locator("[data-method=gradcam]").is_hidden()
    assert form.locator("[data-method=mean]").is_visible()
    _open(page, site_url, IMAGE_PAGE, "models=dinov2&method=rollout&view=heads&composite=1")
    assert form.locator("[data-role=view]").is_hidden() and form.locator("[data-role=composite]").is_hidden()
    assert _heat_keys(page) == ["dinov2/astronaut/rollout/l02/fused"]
    assert page.locator(".atlas-composite").count() == 0
    _open(page, site_url, IMAGE_PAGE, "models=resnet50&method=gradcam&layer=9")
    assert form.locator("[data-role=layer-name]").inner_text() == "Stage"
    assert form.locator("input[name=layer]").get_attribute("max") == "3"
    assert _heat_keys(page) == [f"resnet50/{IMAGE}/gradcam/l03/fused"]
    # all models, cls: the rows without cls are hidden and named, not broken
    _open(page, site_url, IMAGE_PAGE, "method=cls")
    assert page.eval_on_selector_all(".atlas-row", "els => els.map(e => e.dataset.model)") == ["dinov2"]
    assert "siglip has no cls" in page.locator("[data-role=hidden-rows]").inner_text()
    # an image the CNN skipped has no resnet50 checkbox
    _open(page, site_url, "atlas/images/church_01/")
    assert page.locator("input[name=models][value=resnet50]").count() == 0


def _composite_heads(page, model: str = "dinov2") -> set[int]:
    """The heads whose legend colour a model's composite canvas shows (nearest legend colour per pixel)."""
    row = f".atlas-row[data-model='{model}']"
    page.wait_for_selector(f"{row} .atlas-composite[data-ready]")
    legend = page.eval_on_selector_all(f"{row} .atlas-legend .atlas-swatch", "els => els.map(e => e.style.background)")
    colours = np.array([[int(x) for x in c[4:-1].split(",")] for c in legend])
    data = page.eval_on_selector(
        f"{row} .atlas-composite",
        "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)",
    )
    px = np.array(data).reshape(-1, 4)
    shown = px[px[:, 3] > 0][:, :3]
    distance = np.abs(shown[:, None, :] - colours[None]).max(axis=2)
    assert (distance.min(axis=1) <= 6).all()  # every coloured cell is one head's colour
    return set(distance.argmin(axis=1).tolist())


def _pressed(page, model: str) -> list[str]:
    return page.eval_on_selector_all(
        f".atlas-row[data-model='{model}'] .atlas-legend button", "els => els.map(e => e.getAttribute('aria-pressed'))"
    )


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
    assert "off.dinov2=0%2C1%2C3" in page.url
    page.wait_for_timeout(500)
    page.locator(".atlas-legend button[data-head='2']").dblclick()  # un-solo: all heads again
    assert _composite_heads(page) == before | {0}


def test_composite_hidden_heads_are_per_model(page, site_url):
    """Hiding a head in one model's composite leaves the other models' heads alone, in the URL too."""
    state = "models=dinov2,siglip&method=mean&layer=1&composite=1"
    _open(page, site_url, IMAGE_PAGE, state)
    dino, sig = _composite_heads(page, "dinov2"), _composite_heads(page, "siglip")
    assert 0 in dino and 0 in sig  # head 0 shows in both rows: hiding it in one row must not hide it in the other
    page.locator(".atlas-row[data-model=dinov2] .atlas-legend button[data-head='0']").click()
    page.wait_for_timeout(500)
    assert _pressed(page, "dinov2") == ["false", "true", "true", "true"]
    assert _pressed(page, "siglip") == ["true", "true", "true"]
    assert 0 not in _composite_heads(page, "dinov2") and _composite_heads(page, "siglip") == sig
    assert "off.dinov2=0" in page.url and "off.siglip" not in page.url
    page.locator(".atlas-row[data-model=siglip] .atlas-legend button[data-head='2']").click()
    page.wait_for_timeout(500)
    assert _pressed(page, "dinov2") == ["false", "true", "true", "true"]
    assert _pressed(page, "siglip") == ["true", "true", "false"]

    permalink = page.url  # the per-model state survives a reload of the permalink
    other = page.context.new_page()
    other.goto(permalink)
    other.wait_for_selector(".atlas-root[data-atlas-ready]")
    assert _pressed(other, "dinov2") == ["false", "true", "true", "true"]
    assert _pressed(other, "siglip") == ["true", "true", "false"]
    assert 0 not in _composite_heads(other, "dinov2") and 2 not in _composite_heads(other, "siglip")
    other.close()

    # an older permalink's off=1 hid head 1 in every model: it still does
    _open(page, site_url, IMAGE_PAGE, state + "&off=1")
    assert _pressed(page, "dinov2") == ["true", "false", "true", "true"]
    assert _pressed(page, "siglip") == ["true", "false", "true"]


THRESHOLD_CASES = [  # model, method, layer, mode, argument
    ("dinov2", "cls", 0, "top", 30),  # h00 is constant, h01 has ties
    ("dinov2", "cls", 0, "top", 7),
    ("dinov2", "cls", 0, "mass", 0.6),
    ("dinov2", "cls", 0, "mass", 0.35),
    ("siglip", "mean", 1, "top", 10),  # 5 x 5 cells: n * p / 100 = 2.5 exactly, rounded half up: k = 3
    ("siglip", "mean", 1, "top", 96),  # k = 24 of 25: h02 drops exactly its NaN cell
    ("siglip", "mean", 1, "mass", 0.6),  # the NaN cell carries no mass
]


@pytest.mark.parametrize(("model", "method", "layer", "mode", "arg"), THRESHOLD_CASES)
def test_thresholded_cells_equal_python_masks(page, site_url, built_site, fake_build, model, method, layer, mode, arg):
    """The page's veils keep exactly the cells Python keeps on the published values: those decoded from the
    site's sprite sheet (atlas.site.map_values), the data the page itself reads."""
    from atlas.site.map_values import decode_sprite
    from ssl_attention.thresholds import mass_threshold_mask, top_percent_mask

    maps = _npz(fake_build, model, IMAGE)
    heads = maps[method].shape[1]
    published = decode_sprite((built_site.site_dir / map_sprite(model, IMAGE, method)).read_bytes())[layer]
    assert np.array_equal(np.isnan(published[1:]), np.isnan(maps[method][layer]))  # non-finite cells kept as such
    key = "p" if mode == "top" else "mass"
    _open(page, site_url, IMAGE_PAGE, f"models={model}&method={method}&layer={layer}&view=heads&thr={mode}&{key}={arg}")
    _wait_until(page, f"() => document.querySelectorAll('.atlas-mask[data-ready]').length === {heads + 1}")
    for variant, values in [("fused", published[0])] + [(f"h{h:02d}", published[h + 1]) for h in range(heads)]:
        alpha = page.eval_on_selector(
            f".atlas-tile[data-variant={variant}] canvas.atlas-mask",
            "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
            ".filter((_, i) => i % 4 === 3)",
        )
        shown = np.array(alpha).reshape(values.shape) == 0
        expected = top_percent_mask(values, arg) if mode == "top" else mass_threshold_mask(values, arg)
        assert np.array_equal(shown, expected), (mode, arg, variant)
        nan = np.isnan(values)
        if (mode, arg) == ("top", 10):
            assert shown.sum() == 3  # round half up, not Python's half to even (2)
        if nan.any():
            assert not shown[nan].any()  # a NaN cell is never kept
            if (mode, arg) == ("top", 96):
                assert np.array_equal(~shown, nan)
    assert model != "siglip" or np.isnan(maps[method][layer]).any()  # the NaN case is really exercised


def test_zoom_keyboard_and_help(page, site_url, fake_build):
    _open(page, site_url, IMAGE_PAGE, "models=dinov2&method=cls&layer=1")
    page.locator(".atlas-tile[data-variant=h01] .atlas-tile-open").click()
    assert page.locator("dialog.atlas-zoom").is_visible() and "zoom=dinov2%3Ah01" in page.url
    assert _heat_keys(page, "dialog.atlas-zoom") == ["dinov2/astronaut/cls/l01/h01"]
    _wait_painted(page, "dialog.atlas-zoom")
    zoomed = _canvas_indices(page, "dialog.atlas-zoom " + _heat("dinov2", IMAGE, "cls", 1, "h01"))
    assert np.array_equal(zoomed, to_indices(_map(fake_build, "dinov2", IMAGE, "cls", 1, "h01")))
    page.keyboard.press("Escape")
    _wait_until(page, "() => !location.hash.includes('zoom=dinov2')")  # the close event runs after Escape
    assert not page.locator("dialog.atlas-zoom").is_visible()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("ArrowRight")
    assert _heat_keys(page)[0] == "dinov2/astronaut/cls/l02/fused"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert _heat_keys(page)[0] == "dinov2/astronaut/cls/l00/fused"
    page.keyboard.press("h")
    assert len(_heat_keys(page)) == 1
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
    page.select_option("select[name=label]", "")
    tags = page.eval_on_selector_all("select[name=tag] option", "els => els.map(e => e.value)")
    assert tags == ["", *sorted({t for ts in TAGS.values() for t in ts})]
    page.select_option("select[name=tag]", "Gothic")
    assert sorted(visible()) == sorted(i for i, ts in TAGS.items() if "Gothic" in ts)
    page.select_option("select[name=tag]", "<i>x</i> & \"q\"")  # a hostile tag is plain text
    assert visible() == [IMAGES[2][0]]


def test_image_page_tags_link_to_the_filtered_gallery(page, site_url):
    _open(page, site_url, IMAGE_PAGE.replace("astronaut", "church_01"))
    links = page.locator("figcaption a.atlas-tag")
    assert links.all_text_contents() == ["Gothic", "Romanesque"]
    links.first.click()
    page.wait_for_selector(".atlas-root[data-atlas-page=gallery][data-atlas-ready]")
    assert page.locator("select[name=tag]").input_value() == "Gothic"
    shown = page.eval_on_selector_all(".atlas-card:not([hidden]) .atlas-card-title",
                                      "els => els.map(e => e.textContent)")
    assert sorted(shown) == sorted(i for i, ts in TAGS.items() if "Gothic" in ts)


def test_layer_and_display_toggles_request_nothing_and_keep_the_tiles(page, site_url, fake_build):
    """Once a method's sprites are loaded, layer, colormap, opacity and smoothing changes repaint the existing
    canvases from them: no request, no new DOM."""
    _open(page, site_url, IMAGE_PAGE, "models=dinov2,siglip&method=mean&layer=0&view=heads")
    _wait_painted(page)
    assert len(_heat_keys(page)) == 5 + 4
    requests: list[str] = []  # every request but the favicon, which Chromium fetches again on each history entry
    page.on("request", lambda r: r.url.endswith("/favicon.png") or requests.append(r.url))
    page.evaluate("() => document.querySelectorAll('.atlas-grid canvas.atlas-heat').forEach(c => { c.atlasMark = 1; })")
    form = page.locator("form.atlas-controls")
    # the slider's input event repaints every tile synchronously from the decoded sprites it keeps
    assert page.evaluate("""() => {
        const slider = document.querySelector("form.atlas-controls input[name=layer]");
        slider.value = "1";
        slider.dispatchEvent(new Event("input", { bubbles: true }));
        return [...document.querySelectorAll(".atlas-grid canvas.atlas-heat")]
            .every((c) => c.dataset.ready && c.dataset.layer === "1");
    }""")
    assert all(k.split("/")[3] == "l01" for k in _heat_keys(page))
    for model, variant in (("dinov2", "h03"), ("siglip", "h02")):
        shown = _canvas_indices(page, _heat(model, IMAGE, "mean", 1, variant))
        assert np.array_equal(shown, to_indices(_map(fake_build, model, IMAGE, "mean", 1, variant)))
    form.locator("select[name=cmap]").select_option("turbo")
    form.locator("input[name=opacity]").fill("30")
    form.locator("input[name=smooth]").check()
    page.keyboard.press("Tab")
    _wait_painted(page)
    assert page.eval_on_selector_all(".atlas-grid canvas.atlas-heat", "els => els.every(c => c.atlasMark === 1)")
    assert page.eval_on_selector(".atlas-grid canvas.atlas-heat", "c => c.style.opacity") == "0.3"
    form.locator("input[name=view][value=fused]").check()  # fewer tiles: rebuilt, from the same sprites
    _wait_painted(page)
    assert len(_heat_keys(page)) == 2
    page.wait_for_timeout(200)
    assert requests == [], requests
    form.locator("input[name=method][value=rollout]").check()  # another method: its sprites, once each
    _wait_painted(page)
    assert sorted(requests) == sorted(
        f"{site_url}atlas-data/maps/{m}/{IMAGE}/rollout.png" for m in ("dinov2", "siglip")
    )


def test_model_and_head_pages(page, site_url, fake_build):
    ids = _image_ids(fake_build)
    requests: list[str] = []
    page.on("request", lambda r: "/atlas-data/maps/" in r.url and requests.append(r.url))
    _open(page, site_url, "atlas/models/dinov2/")
    grid = ".atlas-layer-grid"
    _wait_painted(page, grid)
    keys = _heat_keys(page, grid)
    assert len(keys) == 3 * 5
    assert keys[0] == f"dinov2/{IMAGE}/cls/l00/fused" and keys[-1] == f"dinov2/{IMAGE}/cls/l02/h03"
    assert requests == [f"{site_url}atlas-data/maps/dinov2/{IMAGE}/cls.png"]  # the whole grid: one sprite
    for layer, variant in ((0, "fused"), (1, "h02"), (2, "h03")):
        shown = _canvas_indices(page, f"{grid} " + _heat("dinov2", IMAGE, "cls", layer, variant))
        assert np.array_equal(shown, to_indices(_map(fake_build, "dinov2", IMAGE, "cls", layer, variant)))
    # the image choice: a click lists every image, as a menu; typed text narrows the list; a click picks
    chooser = page.locator("[data-role=image-chooser]")
    field, options = chooser.locator("input[role=combobox]"), chooser.locator("[role=option]")
    assert field.input_value() == IMAGE
    field.click()
    assert options.all_text_contents() == list(ids.values())
    odd = next(s for s, i in ids.items() if "<" in i)
    field.fill("QUOTES")
    assert options.all_text_contents() == [ids[odd]]  # the raw id, as text
    options.first.click()
    _wait_painted(page, grid)
    assert all(k.split("/")[1] == odd for k in _heat_keys(page, grid))
    assert field.input_value() == ids[odd] and f"image={odd}" in page.url
    chooser.locator("[data-action=next-image]").click()  # the last image: next wraps around to the first
    _wait_painted(page, grid)
    assert {k.split("/")[1] for k in _heat_keys(page, grid)} == {IMAGE}
    chooser.locator("[data-action=prev-image]").click()
    _wait_painted(page, grid)
    assert all(k.split("/")[1] == odd for k in _heat_keys(page, grid))
    shown = _canvas_indices(page, f"{grid} " + _heat("dinov2", odd, "cls", 2, "h01"))
    assert np.array_equal(shown, to_indices(_map(fake_build, "dinov2", ids[odd], "cls", 2, "h01")))
    page.locator("input[name=method][value=rollout]").check()
    _wait_painted(page, grid)
    assert _heat_keys(page, grid) == [f"dinov2/{odd}/rollout/l{layer:02d}/fused" for layer in range(3)]
    shown = _canvas_indices(page, f"{grid} " + _heat("dinov2", odd, "rollout", 1, "fused"))
    assert np.array_equal(shown, to_indices(_map(fake_build, "dinov2", ids[odd], "rollout", 1, "fused")))
    assert page.locator(".atlas-random-banner").is_visible()

    page.set_viewport_size({"width": 1400, "height": 3000})  # every card in view: all of them painted
    _open(page, site_url, "atlas/heads/dinov2/", "l02-h03")
    grid = ".atlas-head-gallery[data-role=grid]"
    for method in ("cls", "mean"):
        if method == "mean":
            page.locator("input[name=method][value=mean]").check()
            _wait_until(page, "() => location.hash.includes('method=mean')")
        _wait_until(page, f"() => document.querySelectorAll('{grid} canvas.atlas-heat[data-method={method}]').length")
        _wait_painted(page, grid)
        keys = _heat_keys(page, grid)
        assert sorted(keys) == sorted(f"dinov2/{s}/{method}/l02/h03" for s in ids)
        for image_slug, image_id in ids.items():
            shown = _canvas_indices(page, f"{grid} " + _heat("dinov2", image_slug, method, 2, "h03"))
            assert np.array_equal(shown, to_indices(_map(fake_build, "dinov2", image_id, method, 2, "h03")))
    label = page.locator(f"{grid} canvas.atlas-heat[data-image='{odd}']").get_attribute("aria-label")
    assert label == f'dinov2 mean layer 2 head 3 on {ids[odd]}'  # the raw id, as text
    assert page.locator(f"{grid} canvas.atlas-heat").first.get_attribute("role") == "img"
