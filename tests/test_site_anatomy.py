"""The head-anatomy pages and the image page's high-norm overlay in headless Chromium on the fake site.

Every test runs under the page fixture's checks: no console error (CSP violations included), no failed
request, no request that leaves 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from atlas.site.anatomy_data import load_anatomy
from atlas.site.catalog import load_catalog
from ssl_attention.aggregate.anatomy import high_norm_cells
from tests.fixtures.node_tools import axe_source
from tests.test_site_hostile import AXE_RUN, SETTLED
from tests.test_site_instrument import _open

pytestmark = pytest.mark.browser


def _axe_both_palettes(page) -> dict[str, list[str]]:
    page.evaluate(axe_source())  # CDP evaluation: not subject to the page's CSP
    found = {}
    for scheme in ("default", "slate"):
        page.evaluate(f"() => document.body.setAttribute('data-md-color-scheme', '{scheme}')")
        page.evaluate(SETTLED)  # axe must not measure colours halfway through the theme's transitions
        found[scheme] = page.evaluate(AXE_RUN)
    return found


@pytest.mark.parametrize("path", ["atlas/anatomy/", "atlas/anatomy/dinov2/"])
def test_anatomy_pages_render_and_pass_axe_in_both_palettes(page, site_url, path):
    _open(page, site_url, path)
    nav = page.eval_on_selector_all("nav.md-nav--primary .md-nav__link", "els => els.map(e => e.textContent.trim())")
    assert "Head anatomy" in nav
    if path.endswith("dinov2/"):
        assert page.locator("svg.atlas-dot-chart a[data-head]").count() == 3 * 4
        assert page.locator("table.atlas-heat-table a").count() == 3 * 3 * 4
        page.locator("svg.atlas-dot-chart a[data-layer='2'][data-head='1']").click()
        page.wait_for_load_state("networkidle")
        page.wait_for_selector("[data-role=head-title]:has-text('layer 2 · head 1')")  # the head viewer on that head
        assert page.url.endswith("heads/dinov2/#l02-h01")
        page.go_back()
        page.wait_for_selector(".atlas-root[data-atlas-ready]")
    else:
        assert page.locator("svg.atlas-line-chart").count() == 2
    assert _axe_both_palettes(page) == {"default": [], "slate": []}


def _marked(page) -> dict[str, list[set[int]]]:
    """Per row (model), the cells each tile's high-norm canvas marks, read from its pixels."""
    return page.evaluate("""() => {
      const out = {};
      for (const row of document.querySelectorAll('.atlas-row')) {
        out[row.dataset.model] = [...row.querySelectorAll('canvas.atlas-highnorm')].map((c) => {
          const ctx = c.getContext('2d'), scale = 8, gw = c.width / scale, cells = [];
          for (let i = 0; i < gw * (c.height / scale); i++) {
            const x = (i % gw) * scale + 2, y = Math.floor(i / gw) * scale + 2;
            const [r, g, b, a] = ctx.getImageData(x, y, 1, 1).data;
            if (a === 255 && r === 255 && g === 0 && b === 255) cells.push(i);
          }
          return cells;
        });
      }
      return out;
    }""")


def test_high_norm_toggle_marks_exactly_the_python_cells(page, site_url, fake_build: Path):
    catalog = load_catalog(fake_build)
    expected = {}
    for model in catalog.models:
        if model.kind == "vit":
            with np.load(catalog.maps_file(model, "astronaut")) as data:
                expected[model.slug] = high_norm_cells(data["token_norm"])
    assert expected["dinov2"][1] and expected["siglip"][1]  # the fake build plants some in layer 1
    _open(page, site_url, "atlas/images/astronaut/", "method=mean&layer=1&view=heads")
    assert page.locator("canvas.atlas-highnorm").count() == 0
    page.locator("input[name=hn]").check()
    page.wait_for_function("() => location.hash.includes('hn=1')")
    for layer in (1, 0):
        marked = _marked(page)
        assert sorted(marked) == ["dinov2", "siglip"]  # resnet50 has no mean map: no row
        for slug, tiles in marked.items():
            assert len(tiles) == 1 + next(m.heads for m in catalog.models if m.slug == slug)  # fused + heads
            assert all(cells == expected[slug][layer] for cells in tiles), (slug, layer)
        note = page.locator("[data-role=high-norm-note]").inner_text()
        counts = ", ".join(f"{slug}: {len(expected[slug][layer])}" for slug in ("dinov2", "siglip"))
        assert f"layer {layer}: {counts}." in note
        if layer:
            page.evaluate("() => document.activeElement.blur()")  # shortcuts wait while a control has the focus
            page.keyboard.press("ArrowLeft")
            page.wait_for_function("() => location.hash.includes('layer=0')")
    page.locator("input[name=hn]").uncheck()
    page.wait_for_function("() => location.hash.includes('hn=0')")
    assert page.locator("canvas.atlas-highnorm").count() == 0


def test_model_page_colours_heads_by_their_statistics_cluster(page, site_url, fake_build: Path):
    catalog = load_catalog(fake_build)
    model = next(m for m in catalog.models if m.name == "dinov2")
    clusters = load_anatomy(catalog)["dinov2"].clusters
    _open(page, site_url, "atlas/models/dinov2/", "method=cls")
    assert page.locator("td[data-cluster]").count() == 0 and page.locator("[data-role=cluster-legend]").is_hidden()
    page.locator("input[name=clusters]").check()
    page.wait_for_function("() => location.hash.includes('clusters=1')")
    shown = page.eval_on_selector_all(
        "table.atlas-layer-grid tbody tr",
        "rows => rows.map(r => [...r.querySelectorAll('td')].slice(1).map(td => Number(td.dataset.cluster)))",
    )
    assert shown == [clusters[layer * model.heads : (layer + 1) * model.heads] for layer in range(model.layers)]
    assert len(set(clusters)) > 1 and page.locator("[data-role=cluster-legend]").is_visible()
