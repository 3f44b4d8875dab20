"""Numbers describe what is drawn (issue 25, item 1), in headless Chromium on the fake site: in every mode the
fake build has (attention map, shared scale, query-patch row, composite) the value readout, the colour bar,
the zoom dialog's inspector and the threshold veil read the values the tile draws, and the readout follows a
method change made from the keyboard without the pointer moving. The relevance companion tiles are checked in
tests/js/drawn.test.mjs (the fake build has no per-target maps).

Runs under the page fixture's checks: no console error, no failed request, no request off 127.0.0.1.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from atlas.core.layout import map_sprite
from atlas.site.map_values import decode_sprite
from ssl_attention.thresholds import top_percent_mask
from tests.test_site_browser import _open, _wait_painted, _wait_until
from tests.test_site_inspector import _hover_cell, _readout

pytestmark = pytest.mark.browser

IMAGE, MODEL, GRID, HEAD = "astronaut", "dinov2", (4, 6), 1
QUERY = "0.5313,0.4688"  # the patch (row 1, col 3) of dinov2's 4 x 6 grid; rows exported for layer 2
CELL = (2, 4)


def _published(built_site, method: str) -> np.ndarray:
    """``[layers, variants, gh, gw]`` as the page reads them (decoded from the site's sprite sheet)."""
    path = built_site.site_dir / map_sprite(MODEL, IMAGE, method)
    return decode_sprite(path.read_bytes()).astype(np.float64)


def _query_row(fake_build, head: int) -> np.ndarray:
    """The query row of patch (1, 3) at layer 2 in ``head``: code * scale, as query.bin encodes it."""
    with np.load(fake_build / "maps" / MODEL / f"{IMAGE}.npz") as npz:
        codes, scale = npz["query_rows"], npz["query_scale"]
    q = 1 * GRID[1] + 3
    return codes[0, head, q].astype(np.float64) * np.float64(scale[0, head, q])


def _pixel(page, canvas: str, cell: int) -> int:
    """The grey index the tile's ``canvas`` (heat or query) holds at ``cell``."""
    sel = f".atlas-grid .atlas-tile[data-model={MODEL}][data-variant=h{HEAD:02d}] canvas.{canvas}"
    return page.eval_on_selector(sel, f"c => c.getContext('2d').getImageData({cell % GRID[1]}, "
                                 f"{cell // GRID[1]}, 1, 1).data[0]")  # fmt: skip


def _state(page, role: str) -> dict[str, str]:
    got = _readout(page, role)
    bar = page.eval_on_selector(f"[data-role={role}] .atlas-colourbar", "e => [e.dataset.lo, e.dataset.hi]")
    return {**got, "lo": bar[0], "hi": bar[1]}


def _f32(text: str | None) -> np.float32 | None:
    return None if text is None else np.float32(float(text))


def _read(page, values: np.ndarray, lo: float, hi: float, cell: int, role: str = "readout") -> dict[str, str]:
    """The readout ``role`` once it shows ``values[cell]`` on [lo, hi] (as float32), or fail after 5 s with
    what it shows instead."""
    want = [np.float32(values.flat[cell]), np.float32(lo), np.float32(hi)]
    deadline = time.monotonic() + 5
    while True:
        got = _state(page, role)
        if [_f32(got.get("value")), _f32(got["lo"]), _f32(got["hi"])] == want and got.get("level") is not None:
            return got
        assert time.monotonic() < deadline, f"the readout shows {got}, the tile draws {want}"
        page.wait_for_timeout(50)


def test_readout_bar_veil_and_inspector_describe_the_drawn_map(page, site_url, built_site, fake_build):
    cell = CELL[0] * GRID[1] + CELL[1]
    _open(page, site_url, f"atlas/images/{IMAGE}/", f"models={MODEL}&method=cls&layer=2&view=heads&display=heat")
    _wait_painted(page)
    # attention map, own min-max
    cls = _published(built_site, "cls")[2, 1 + HEAD]
    _hover_cell(page, f"h{HEAD:02d}", *CELL)
    got = _read(page, cls, cls.min(), cls.max(), cell)
    assert int(got["level"]) == _pixel(page, "atlas-heat", cell)

    # m (next method) with the pointer still: the readout names the mean map's value, not the CLS map's
    page.keyboard.press("m")
    _wait_until(page, "() => location.hash.includes('method=mean')")
    _wait_painted(page)
    mean = _published(built_site, "mean")[2, 1 + HEAD]
    got = _read(page, mean, mean.min(), mean.max(), cell)
    assert int(got["level"]) == _pixel(page, "atlas-heat", cell)

    # query patch: the tile draws the patch's row, and the readout and the bar read that row
    page.evaluate(f"() => {{ location.hash = 'models={MODEL}&method=cls&layer=2&view=heads&display=heat&boxes=0"
                  f"&query={QUERY}'; }}")  # fmt: skip
    drawn = f".atlas-tile[data-variant=h{HEAD:02d}] canvas.atlas-query[data-ready]"
    _wait_until(page, f"() => document.querySelector('{drawn}')")
    row = _query_row(fake_build, HEAD)
    _hover_cell(page, f"h{HEAD:02d}", *CELL)
    got = _read(page, row, row.min(), row.max(), cell)
    assert got["kind"] == "query" and int(got["level"]) == _pixel(page, "atlas-query", cell)

    # shared scale with the query on: the query row keeps its own range (that is what is drawn)
    page.locator("form.atlas-controls input[name=scale]").check()
    _wait_until(page, "() => location.hash.includes('scale=shared')")
    _read(page, row, row.min(), row.max(), cell)

    # threshold (top 20 %) on: the veil keeps the cells of the query row, not of the CLS map
    page.locator("form.atlas-controls select[name=thr]").select_option("top")
    mask = f".atlas-tile[data-model={MODEL}][data-variant=h{HEAD:02d}] canvas.atlas-mask"
    _wait_until(page, f"() => document.querySelector('{mask}[data-ready]') && document.querySelector('{drawn}')")
    alpha = page.eval_on_selector(mask, "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
                                  ".filter((_, i) => i % 4 === 3)")  # fmt: skip
    kept = np.array(alpha).reshape(GRID) == 0
    assert np.array_equal(kept, top_percent_mask(row.reshape(GRID), 20))

    # the zoom dialog: its caption names the query patch, its readout and bar read the row
    page.locator(f".atlas-grid .atlas-tile[data-model={MODEL}][data-variant=h{HEAD:02d}] .atlas-tile-open").click()
    assert "query patch (row 1, col 3)" in page.locator("[data-role=zoom-caption]").inner_text()
    _hover_cell(page, f"h{HEAD:02d}", *CELL, scope="dialog.atlas-zoom")
    _read(page, row, row.min(), row.max(), cell, "zoom-readout")
    page.keyboard.press("Escape")
    _wait_until(page, "() => !location.hash.includes('zoom=dinov2')")

    # shared scale without the query: one range over every layer and variant of (model, method)
    page.locator("form.atlas-controls select[name=thr]").select_option("none")
    page.locator("[data-action=query-clear]").click()
    _wait_until(page, "() => !location.hash.includes('query=')")
    _wait_painted(page)
    everything = _published(built_site, "cls")
    _hover_cell(page, f"h{HEAD:02d}", *CELL)
    got = _read(page, everything[2, 1 + HEAD], everything.min(), everything.max(), cell)
    assert int(got["level"]) == _pixel(page, "atlas-heat", cell)


def _hover(page, stack: str, row: int, col: int) -> int:
    """Point at cell (row, col) of the first ``stack``; its row-major index."""
    box = page.locator(stack).first.bounding_box()
    page.locator(stack).first.hover(position={"x": (col + 0.5) * box["width"] / GRID[1],
                                              "y": (row + 0.5) * box["height"] / GRID[0]})  # fmt: skip
    return row * GRID[1] + col


def _drawn_pixel(page, stack: str, cell: int) -> int:
    return page.eval_on_selector(f"{stack} canvas.atlas-heat", f"c => c.getContext('2d').getImageData({cell % GRID[1]},"
                                 f" {cell // GRID[1]}, 1, 1).data[0]")  # fmt: skip


def test_model_page_and_head_viewer_have_a_colour_bar_readout_and_shared_scale(page, site_url, built_site):
    """Item 2: the model page and the head viewer read the map under the pointer like the image page does, on its
    own min-max or, with the shared-scale option, on one range per model, image and method."""
    cls = _published(built_site, "cls")
    _open(page, site_url, "atlas/models/dinov2/", f"image={IMAGE}&method=cls&display=heat")
    _wait_painted(page)
    stack = ".atlas-layer-grid tbody tr:nth-child(3) td:nth-of-type(3) .atlas-stack"  # layer 2, h01
    cell = _hover(page, stack, *CELL)
    got = _read(page, cls[2, 2], cls[2, 2].min(), cls[2, 2].max(), cell)
    assert int(got["level"]) == _drawn_pixel(page, stack, cell)
    page.locator("form.atlas-controls input[name=scale]").check()
    _wait_until(page, "() => location.hash.includes('scale=shared')")
    _wait_painted(page)
    cell = _hover(page, stack, *CELL)
    got = _read(page, cls[2, 2], cls.min(), cls.max(), cell)
    assert got["kind"] == "shared" and int(got["level"]) == _drawn_pixel(page, stack, cell)

    page.goto(site_url + "atlas/heads/dinov2/#l02-h01&method=cls&display=heat&scale=shared")
    page.wait_for_selector(".atlas-root[data-drawn]")
    assert page.locator("form.atlas-controls input[name=scale][value=shared]").is_checked()
    card = f"[data-role=grid] a[data-image={IMAGE}] .atlas-stack"
    page.locator(card).first.scroll_into_view_if_needed()
    _wait_until(page, f"() => document.querySelector('{card} canvas.atlas-heat[data-ready]')")
    cell = _hover(page, card, *CELL)
    got = _read(page, cls[2, 2], cls.min(), cls.max(), cell)
    assert int(got["level"]) == _drawn_pixel(page, card, cell)
    page.locator("form.atlas-controls input[name=scale][value=map]").check()  # its own min-max again
    _wait_until(page, "() => !location.hash.includes('scale=shared')")
    page.locator(card).first.scroll_into_view_if_needed()  # the cards paint once they are in view
    _wait_until(page, f"() => document.querySelector('{card} canvas.atlas-heat[data-ready]')")
    cell = _hover(page, card, 1, 1)
    got = _read(page, cls[2, 2], cls[2, 2].min(), cls[2, 2].max(), cell)
    assert int(got["level"]) == _drawn_pixel(page, card, cell)


CELLS = """(sel) => { const c = document.querySelector(sel); const s = c.width / GW;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let mixed = 0;
  for (let r = 0; r < c.height / s; r++) for (let k = 0; k < GW; k++) {
    const seen = new Set();
    for (let y = r * s; y < (r + 1) * s; y++) for (let x = k * s; x < (k + 1) * s; x++) {
      const i = 4 * (y * c.width + x); seen.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2] + ',' + d[i + 3]); }
    if (seen.size > 1) mixed++; }
  return mixed; }""".replace("GW", str(GRID[1]))


def test_composite_small_tile_is_a_fill_and_enlarged_it_has_a_legend_with_toggles(page, site_url):
    """Item 7: the small composite tile draws the dominant head's fill only (one colour per cell); enlarged it
    draws the outlines and hatches, with a legend of the head colours whose buttons hide and show heads."""
    _open(page, site_url, f"atlas/images/{IMAGE}/", f"models={MODEL}&method=cls&layer=2&view=heads&composite=1")
    tile = f".atlas-grid .atlas-tile[data-model={MODEL}][data-variant=composite] canvas.atlas-composite"
    _wait_until(page, f"() => document.querySelector('{tile}[data-ready]')")
    assert page.evaluate(CELLS, tile) == 0  # every cell one colour: no outline, no hatch
    page.locator(f"{tile}").click()
    zoomed = "dialog.atlas-zoom canvas.atlas-composite"
    _wait_until(page, f"() => document.querySelector('{zoomed}[data-mode=detail][data-ready]')")
    assert page.evaluate(CELLS, zoomed) > 0  # outlines and hatches
    legend = page.locator("dialog.atlas-zoom .atlas-legend button[data-head]")
    assert legend.count() == 4
    assert page.locator("dialog.atlas-zoom .atlas-legend .atlas-swatch").count() == 4
    legend.nth(1).click()
    _wait_until(page, f"() => location.hash.includes('off.{MODEL}=1')")
    _wait_until(page, "() => document.querySelector('dialog.atlas-zoom .atlas-legend button[data-head=\"1\"]')"
                ".getAttribute('aria-pressed') === 'false'")  # fmt: skip
    assert page.locator("dialog.atlas-zoom").is_visible()
