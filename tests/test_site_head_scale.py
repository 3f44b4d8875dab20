"""The head viewer's head scale (issue 25, item 2: one head compared across images) in headless Chromium on the
fake site: with ``scale=head`` every card of the head is drawn on one range, the min and max of that head's map
over the images shown, which the colour bar shows; the readout under the pointer gives the decoded sprite value
of the card's image and its level on that range, which is the level the card draws. The option is in the
permalink, passes axe, and the page stays within a 390 px screen. The model page's colour bar shows its shared
range (one per grid: one image) as soon as the grid is drawn.

Runs under the page fixture's checks: no console error, no failed request, no request off 127.0.0.1.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from atlas.core.layout import map_sprite, slug
from atlas.site.map_values import decode_sprite
from tests.fixtures.node_tools import axe_source
from tests.test_site_browser import _wait_until
from tests.test_site_drawn import _drawn_pixel, _f32, _hover
from tests.test_site_hostile import AXE_RUN, SETTLED

pytestmark = pytest.mark.browser

MODEL, METHOD, LAYER, HEAD, GRID = "dinov2", "cls", 2, 1, (4, 6)
VIEWER = f"atlas/heads/{MODEL}/#l{LAYER:02d}-h{HEAD:02d}&method={METHOD}&display=heat"


def _head_maps(built_site, fake_build) -> dict[str, np.ndarray]:
    """This head's map on every image of the model, as the page decodes it from each sprite: ``{slug: [gh * gw]}``."""
    manifest = json.loads((fake_build / "maps" / "manifest.json").read_text(encoding="utf-8"))
    model = next(m for m in manifest["models"] if m["name"] == MODEL)
    out = {}
    for image in model["maps"]:
        sprite = built_site.site_dir / map_sprite(MODEL, slug(image), METHOD)
        out[slug(image)] = decode_sprite(sprite.read_bytes()).astype(np.float64)[LAYER, 1 + HEAD].ravel()
    return out


def _level(x: float, lo: float, hi: float) -> int:
    """scale.mjs levelOf: the colormap index of ``x`` on [lo, hi]."""
    return 0 if not math.isfinite(x) or not hi > lo else min(255, max(0, math.floor((x - lo) / (hi - lo) * 255 + 0.5)))


def _bar(page) -> tuple[np.float32 | None, np.float32 | None]:
    lo, hi = page.eval_on_selector("[data-role=readout] .atlas-colourbar", "e => [e.dataset.lo, e.dataset.hi]")
    return _f32(lo), _f32(hi)


def test_head_scale_draws_one_head_on_one_range_across_the_images(page, site_url, built_site, fake_build):
    maps = _head_maps(built_site, fake_build)
    assert len(maps) == 3  # every image of the fake model is shown (one page)
    lo = float(min(m[np.isfinite(m)].min() for m in maps.values()))
    hi = float(max(m[np.isfinite(m)].max() for m in maps.values()))
    assert any((m.min(), m.max()) != (lo, hi) for m in maps.values())  # the range is not any one map's own

    page.goto(site_url + VIEWER + "&scale=head")
    page.wait_for_selector(".atlas-root[data-drawn]")
    assert page.locator("form.atlas-controls input[name=scale][value=head]").is_checked()
    # the colour bar shows the head's range across the images before any pointer moves
    _wait_until(page, "() => document.querySelector('[data-role=readout] .atlas-colourbar').dataset.lo !== undefined")
    assert _bar(page) == (np.float32(lo), np.float32(hi))
    title = page.locator("[data-role=readout] .atlas-colourbar").get_attribute("title")
    assert f"head {HEAD} of layer {LAYER}" in title and "across the 3 images shown" in title

    for image, values in maps.items():
        card = f"[data-role=grid] a[data-image='{image}'] .atlas-stack"
        page.locator(card).first.scroll_into_view_if_needed()
        _wait_until(page, f"() => document.querySelector(\"{card} canvas.atlas-heat[data-ready]\")")
        for row, col in ((1, 2), (3, 5), (0, 0)):
            cell = _hover(page, card, row, col)
            _wait_until(page, f"() => {{ const d = document.querySelector('[data-role=readout]').dataset;"
                        f" return d.image === {json.dumps(image)} && d.cell === '{cell}'; }}")  # fmt: skip
            got = page.eval_on_selector("[data-role=readout]", "e => Object.assign({}, e.dataset)")
            assert got["kind"] == "head" and got["variant"] == f"h{HEAD:02d}" and got["layer"] == str(LAYER)
            assert _f32(got["value"]) == np.float32(values[cell]), (image, cell, got)
            level = _level(float(values[cell]), lo, hi)
            assert int(got["level"]) == level == _drawn_pixel(page, card, cell), (image, cell)
            assert _bar(page) == (np.float32(lo), np.float32(hi))

    # the option is in the permalink: each map's own range and back
    page.locator("form.atlas-controls input[name=scale][value=map]").check()
    _wait_until(page, "() => !location.hash.includes('scale=')")
    page.locator("form.atlas-controls input[name=scale][value=head]").check()
    _wait_until(page, "() => location.hash.includes('scale=head')")

    page.evaluate(SETTLED)
    page.evaluate(axe_source())
    assert page.evaluate(AXE_RUN) == []
    page.set_viewport_size({"width": 390, "height": 844})
    page.evaluate(SETTLED)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390


def test_head_scale_follows_the_head_shown(page, site_url, built_site, fake_build):
    """Another head (the → key) gets its own range over the same images."""
    page.goto(site_url + VIEWER + "&scale=head")
    page.wait_for_selector(".atlas-root[data-drawn]")
    _wait_until(page, "() => document.querySelector('[data-role=readout] .atlas-colourbar').dataset.lo !== undefined")
    page.keyboard.press("ArrowRight")
    _wait_until(page, f"() => location.hash.startsWith('#l{LAYER:02d}-h{HEAD + 1:02d}')")
    manifest = json.loads((fake_build / "maps" / "manifest.json").read_text(encoding="utf-8"))
    images = next(m for m in manifest["models"] if m["name"] == MODEL)["maps"]
    maps = [decode_sprite((built_site.site_dir / map_sprite(MODEL, slug(i), METHOD)).read_bytes())
            .astype(np.float64)[LAYER, 2 + HEAD] for i in images]
    want = (np.float32(min(m.min() for m in maps)), np.float32(max(m.max() for m in maps)))
    _wait_until(page, f"() => document.querySelector('[data-role=readout] .atlas-colourbar').title"
                f".includes('head {HEAD + 1} of layer')")  # fmt: skip
    assert _bar(page) == want
    assert "scale=head" in page.evaluate("location.hash")


def test_model_page_colour_bar_shows_the_shared_range_at_once(page, site_url, built_site):
    """The model page's grid is one image: with the shared scale its colour bar shows that one range before any
    pointer moves (the min and max over every layer and map of the model and method on the image); with each map
    on its own range the bar waits for a tile."""
    everything = decode_sprite((built_site.site_dir / map_sprite(MODEL, "astronaut", METHOD)).read_bytes())
    page.goto(site_url + f"atlas/models/{MODEL}/#image=astronaut&method={METHOD}&scale=shared")
    page.wait_for_selector(".atlas-layer-grid")
    _wait_until(page, "() => document.querySelector('[data-role=readout] .atlas-colourbar').dataset.lo !== undefined")
    assert _bar(page) == (np.float32(everything.min()), np.float32(everything.max()))
    assert "shared scale of dinov2" in page.locator("[data-role=readout] .atlas-colourbar").get_attribute("title")
    page.locator("form.atlas-controls input[name=scale]").uncheck()
    _wait_until(page, "() => !location.hash.includes('scale=shared')")
    _wait_until(page, "() => document.querySelector('[data-role=readout] .atlas-colourbar').dataset.lo === undefined")
    assert page.locator("[data-role=readout] [data-role=lo]").inner_text() == "min"
