"""The image page as an inspector (issue 16, items 2-4), in headless Chromium on the fake site, one page
load: the zoom dialog (caption, fit to the window on a portrait image, arrow keys, metrics), the value
readout, the shared scale and the colour-per-head composite, each against values computed here from the
cached maps; axe in both palettes with all of it on screen.

Runs under the page fixture's checks: no console error, no failed request, no request off 127.0.0.1.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from atlas.core.layout import map_sprite
from atlas.site.render import to_indices
from ssl_attention.thresholds import mass_threshold_mask
from tests.fixtures.node_tools import axe_source
from tests.test_site_browser import _canvas_indices, _heat, _map, _open, _wait_painted, _wait_until
from tests.test_site_hostile import AXE_RUN, SETTLED
from tests.test_site_instrument import _hash

pytestmark = pytest.mark.browser

IMAGE = "church_01"  # portrait, 200 x 300 px
MODEL, METHOD, LAYER, GRID = "dinov2", "cls", 1, (4, 6)
CAPTION = "[data-role=zoom-caption]"


def _published(built_site) -> np.ndarray:
    """The values the page reads: decoded from the site's sprite sheet, ``[layers, variants, gh, gw]`` (fused,
    then each head)."""
    from atlas.site.map_values import decode_sprite

    return decode_sprite((built_site.site_dir / map_sprite(MODEL, IMAGE, METHOD)).read_bytes()).astype(np.float64)


def _shared_levels(built_site, variant: int = 2) -> np.ndarray:
    """Python's levels of the shared scale: one min-max over every layer and variant of (model, method), of
    ``variant`` (default h01) of the shown layer."""
    values = _published(built_site)
    lo, hi = values.min(), values.max()
    return np.floor((values[LAYER, variant] - lo) / (hi - lo) * 255 + 0.5).astype(np.uint8)


def _dominant(built_site) -> np.ndarray:
    """Per cell, the head with the highest min-max-scaled value among the heads whose 60 % mass mask keeps it
    (-1: none): the Python reference of the composite's hover."""
    heads = _published(built_site)[LAYER, 1:]
    masks = np.stack([mass_threshold_mask(h, 0.6) for h in heads])
    low, high = heads.min(axis=(1, 2), keepdims=True), heads.max(axis=(1, 2), keepdims=True)
    scaled = np.where(high > low, (heads - low) / np.where(high > low, high - low, 1), 0.0)
    return np.where(masks.any(axis=0), np.where(masks, scaled, -np.inf).argmax(axis=0), -1)


def _hover_cell(page, tile: str, row: int, col: int, scope: str = ".atlas-grid") -> None:
    stack = page.locator(f"{scope} .atlas-tile[data-model={MODEL}][data-variant={tile}] .atlas-stack")
    box = stack.bounding_box()
    stack.hover(position={"x": (col + 0.5) * box["width"] / GRID[1], "y": (row + 0.5) * box["height"] / GRID[0]})


def _readout(page, role: str = "readout") -> dict[str, str]:
    return page.eval_on_selector(f"[data-role={role}]", "e => Object.assign({}, e.dataset)")


def _wait_readout(page, cell: int, key: str, role: str = "readout") -> dict[str, str]:
    _wait_until(page, f"() => {{ const d = document.querySelector('[data-role={role}]').dataset;"
                f" return d.cell === '{cell}' && d.{key} !== undefined; }}")  # fmt: skip
    return _readout(page, role)


def _dialog_fits(page, width: int, height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.locator(f".atlas-grid .atlas-tile[data-model={MODEL}][data-variant=h01] .atlas-tile-open").click()
    page.wait_for_timeout(100)
    for part in ("dialog.atlas-zoom", "dialog.atlas-zoom form[method=dialog] button",
                 "dialog.atlas-zoom [data-role=zoom-body] .atlas-stack"):  # fmt: skip
        box = page.locator(part).bounding_box()
        assert box["x"] >= 0 and box["y"] >= 0, (part, box)
        assert box["x"] + box["width"] <= width and box["y"] + box["height"] <= height, (part, box, width, height)
    stack = page.locator("dialog.atlas-zoom [data-role=zoom-body] .atlas-stack").bounding_box()
    assert stack["height"] > 0.4 * height  # scaled down to fit, not to a stamp
    assert abs(stack["width"] / stack["height"] - 200 / 300) < 0.02  # the image's aspect ratio kept


def test_inspector_readout_shared_scale_and_composite(page, site_url, built_site, fake_build):
    _open(page, site_url, f"atlas/images/{IMAGE}/", f"models={MODEL}&method={METHOD}&layer={LAYER}&view=heads"
          "&composite=1&display=heat")  # fmt: skip
    variants = page.eval_on_selector_all(
        f".atlas-row[data-model={MODEL}] .atlas-tile", "els => els.map(e => e.dataset.variant)"
    )
    assert variants == ["fused", "composite", "h00", "h01", "h02", "h03"]  # the composite beside the heads

    # readout: the raw value and the drawn level of the cell under the pointer
    values = _map(fake_build, MODEL, IMAGE, METHOD, LAYER, "h01")
    published = _published(built_site)[LAYER, 2]  # h01 as the page reads it
    for row, col in [(0, 0), (2, 3), (3, 5)]:
        _hover_cell(page, "h01", row, col)
        got = _wait_readout(page, row * GRID[1] + col, "value")
        assert np.float32(float(got["value"])) == np.float32(published[row, col])
        assert int(got["level"]) == to_indices(values)[row, col]
    bar = page.eval_on_selector("[data-role=readout] .atlas-colourbar", "e => [e.dataset.lo, e.dataset.hi]")
    assert [np.float32(float(x)) for x in bar] == [values.min(), values.max()]

    # composite: the hover names the dominant head among the masked heads, cell by cell
    dominant = _dominant(built_site)
    assert len(set(dominant.ravel().tolist())) >= 3  # several heads dominate somewhere
    page.wait_for_selector(f".atlas-row[data-model={MODEL}] .atlas-composite[data-ready]")
    shown = np.zeros(GRID, int)
    for row in range(GRID[0]):
        for col in range(GRID[1]):
            _hover_cell(page, "composite", row, col)
            shown[row, col] = int(_wait_readout(page, row * GRID[1] + col, "head")["head"])
    assert np.array_equal(shown, dominant), (shown, dominant)

    # shared scale: one range over the model's layers and heads; the drawn levels follow it
    page.locator("form.atlas-controls input[name=scale]").check()
    assert _hash(page)["scale"] == "shared"
    _wait_painted(page)
    drawn = _canvas_indices(page, ".atlas-grid " + _heat(MODEL, IMAGE, METHOD, LAYER, "h01"))
    assert np.array_equal(drawn, _shared_levels(built_site))
    fused = _canvas_indices(page, ".atlas-grid " + _heat(MODEL, IMAGE, METHOD, LAYER, "fused"))
    assert np.array_equal(fused, _shared_levels(built_site, 0))
    assert not np.array_equal(fused, to_indices(_published(built_site)[LAYER, 0]))  # the shared scale changed it
    _hover_cell(page, "h01", 2, 3)
    assert int(_wait_readout(page, 2 * GRID[1] + 3, "level")["level"]) == _shared_levels(built_site)[2, 3]

    # the zoom dialog fits the window (portrait image) on a desktop and on a phone
    _dialog_fits(page, 1400, 900)
    assert page.locator(CAPTION).inner_text() == "dinov2 · CLS attention · layer 1 · head 1"
    _wait_painted(page, "dialog.atlas-zoom")
    zoomed = _canvas_indices(page, "dialog.atlas-zoom " + _heat(MODEL, IMAGE, METHOD, LAYER, "h01"))
    assert np.array_equal(zoomed, _shared_levels(built_site))  # the dialog draws the tile's scale
    _hover_cell(page, "h01", 1, 4, "dialog.atlas-zoom")
    got = _wait_readout(page, GRID[1] + 4, "value", "zoom-readout")
    assert np.float32(float(got["value"])) == np.float32(published[1, 4])

    # arrows step heads (through the row's tiles) and layers; the caption follows; no page shortcut runs
    steps = [("ArrowRight", "layer 1 · head 2"), ("ArrowUp", "layer 2 · head 2"), ("ArrowUp", "layer 0 · head 2"),
             ("ArrowDown", "layer 2 · head 2"), ("ArrowLeft", "layer 2 · head 1")]  # fmt: skip
    for key, caption in steps:
        page.keyboard.press(key)
        assert page.locator(CAPTION).inner_text() == "dinov2 · CLS attention · " + caption, key
    assert _hash(page)["zoom"] == "dinov2:h01" and _hash(page)["layer"] == "2"
    page.keyboard.press("h")  # a page shortcut: not while the dialog is open
    assert _hash(page)["view"] == "heads" and page.locator("dialog.atlas-zoom").is_visible()
    for _ in range(3):
        page.keyboard.press("ArrowLeft")  # h00, composite, fused
    assert page.locator(CAPTION).inner_text() == "dinov2 · CLS attention · layer 2 · fused"
    panel = page.eval_on_selector_all(
        ".atlas-metric-panel[data-model=dinov2] tbody tr",
        "rows => rows.map(r => [r.dataset.metric, r.querySelector('td[data-col=fused]').textContent])",
    )
    dialog = page.eval_on_selector_all("dialog.atlas-zoom dd", "els => els.map(e => [e.dataset.metric, e.textContent])")
    assert dialog == panel and len(panel) > 3  # the fused map's metrics of this layer on this image
    entry = json.loads((fake_build / "metrics" / "panels.json").read_text())[MODEL][IMAGE]["methods"][METHOD][2]
    page.keyboard.press("ArrowRight")  # composite
    for head in range(4):  # every head: the best one with all its scores, the others with the primary metric
        page.keyboard.press("ArrowRight")
        assert page.locator(CAPTION).inner_text().endswith(f"layer 2 · head {head}")
        dialog = page.eval_on_selector_all("dialog.atlas-zoom dd", "els => els.map(e => e.textContent)")
        want = entry["b"] if head == entry["h"] else [entry["p"][head]]
        assert dialog == ["–" if v is None else f"{v:.3f}" for v in want], head

    page.keyboard.press("Escape")
    _wait_until(page, "() => !location.hash.includes('zoom=dinov2')")
    _dialog_fits(page, 390, 844)

    # axe, with the readout, the composite, the shared scale and the dialog on screen, in both palettes
    source = axe_source()
    page.evaluate(source)
    for scheme in ("default", "slate"):
        page.evaluate(f"() => document.body.setAttribute('data-md-color-scheme', '{scheme}')")
        page.evaluate(SETTLED)
        assert page.evaluate(AXE_RUN) == [], scheme
