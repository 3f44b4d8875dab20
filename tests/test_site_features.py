"""The image page's feature views in Chromium: box similarity, patch similarity and PCA colours drawn from
``features.bin`` (atlas/site/feature_bytes.py) equal the npz (the patch cosines within 0.02 of the exact
ones of the float tokens), permalinks restore each view, axe passes in both palettes, the console stays
clean and nothing overflows at 390 px. The fake build's dinov2 (grid 4 x 6, 3 layers) gets features made
here from known float tokens: the exact cosines are known."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from atlas.metrics import compute_metrics
from atlas.site import build_site
from ssl_attention.features import box_cells, pca_projections, quantise_tokens
from tests.fixtures.fake_maps import write_fake_build
from tests.fixtures.site_fixtures import checked_page
from tests.fixtures.site_server import serve_site
from tests.test_site_browser import _canvas_indices, _wait_until

GRID, LAYERS, WIDTH = (4, 6), 3, 16
MODEL, IMAGE = "dinov2", "astronaut"


def _tokens(seed: int) -> np.ndarray:
    """[L, N, D] float tokens with some structure (two groups of cells), so cosines spread over [-1, 1]."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(LAYERS, 2, WIDTH))
    group = (np.arange(GRID[0] * GRID[1]) % 3 == 0).astype(int)
    return (centres[:, group] + 0.7 * rng.normal(size=(LAYERS, GRID[0] * GRID[1], WIDTH))).astype(np.float32)


def _add_features(build: Path) -> dict[str, np.ndarray]:
    """Give the fake dinov2 npz files pca, box_similarity and last-layer features from ``_tokens``."""
    manifest_path = build / "maps" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    images = {image["id"]: image for image in manifest["images"]}
    (entry,) = [m for m in manifest["models"] if m["name"] == MODEL]
    entry["feature_layers"], entry["statistics"] = [LAYERS - 1], sorted({*entry["statistics"], "pca"})
    kept = {}
    for n, (image_id, rel) in enumerate(sorted(entry["maps"].items())):
        tokens = _tokens(n)
        with np.load(build / "maps" / rel) as npz:
            arrays = dict(npz)
        arrays["pca"] = pca_projections(torch.from_numpy(tokens)).numpy().reshape(LAYERS, 3, *GRID)
        codes, scale = quantise_tokens(torch.from_numpy(tokens[-1:]))
        arrays["features"], arrays["features_scale"] = codes.numpy(), scale.numpy()
        image = images[image_id]
        sims = []
        for box in image["boxes"]:
            x, y, w, h = box["bbox"]
            cells = box_cells((x / image["width"], y / image["height"], w / image["width"], h / image["height"]), GRID)
            query = tokens[:, cells.reshape(-1)].mean(axis=1, keepdims=True)
            unit = tokens / np.linalg.norm(tokens, axis=2, keepdims=True)
            sims.append((unit * (query / np.linalg.norm(query, axis=2, keepdims=True))).sum(-1).reshape(LAYERS, *GRID))
        if sims:
            arrays["box_similarity"] = np.stack(sims).astype(np.float32)
        np.savez(build / "maps" / rel, **arrays)
        if image_id == IMAGE:
            kept = {**arrays, "tokens": tokens}
    _add_probe(build, manifest)
    manifest_path.write_text(json.dumps(manifest))
    return kept


def _add_probe(build: Path, manifest: dict) -> None:
    """Give the fake siglip (3 heads, grid 5 x 5) the probe method: one softmax over the patches per head."""
    (entry,) = [m for m in manifest["models"] if m["name"] == "siglip"]
    entry["methods"] = [*entry["methods"], "probe"]
    for n, rel in enumerate(sorted(entry["maps"].values())):
        with np.load(build / "maps" / rel) as npz:
            arrays = dict(npz)
        logits = np.random.default_rng(n).normal(size=(1, 3, 25)) * 2
        probe = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32).reshape(1, 3, 5, 5)
        arrays["probe"], arrays["probe_fused"] = probe, probe.mean(axis=1)
        np.savez(build / "maps" / rel, **arrays)


@pytest.fixture(scope="module")
def feature_site(tmp_path_factory) -> Iterator[tuple[str, dict[str, np.ndarray], Path]]:
    build = tmp_path_factory.mktemp("features-build")
    write_fake_build(build)
    arrays = _add_features(build)
    compute_metrics(build)
    report = build_site(build, build / "site")
    with serve_site(report.site_dir) as url:
        yield url, arrays, report.site_dir


def _canvas(page) -> str:
    return f"[data-role=features-rows] canvas[data-model='{MODEL}']"


def _ready(page) -> None:
    found = f"document.querySelector(\"{_canvas(page)}\")"
    _wait_until(page, f"() => {{ const c = {found}; return c && c.dataset.ready; }}")


def _values(page) -> np.ndarray:
    return np.array(page.eval_on_selector(_canvas(page), "c => c.atlasValues"), dtype=np.float64)


def _rgb(page) -> np.ndarray:
    pixels = "Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
    width, height, data = page.eval_on_selector(_canvas(page), f"c => [c.width, c.height, {pixels}]")
    return np.array(data, dtype=np.uint8).reshape(height, width, 4)


def _open(page, url: str, hash_: str, layer: int = 2) -> None:
    page.goto(url + f"atlas/images/{IMAGE}/#models={MODEL}&method=cls&layer={layer}&{hash_}")
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    _ready(page)


def test_box_similarity_is_drawn_from_the_npz_and_a_click_on_a_box_chooses_it(browser, feature_site):
    from atlas.site.render import to_indices

    url, arrays, _ = feature_site
    with checked_page(browser) as page:
        _open(page, url, "feat=box&fbox=1")
        expected = arrays["box_similarity"][1, 2].reshape(-1)
        assert np.array_equal(_values(page), expected.astype(np.float64))  # the npz's float32 values exactly
        assert (_canvas_indices(page, _canvas(page)) == to_indices(expected).reshape(GRID)).all()
        assert "Box: 1: flag" in page.text_content("[data-role=features-note]")
        page.reload()  # the permalink restores the view and the box
        page.wait_for_selector(".atlas-root[data-atlas-ready]")
        _ready(page)
        assert np.array_equal(_values(page), expected.astype(np.float64))
        # a click on the face box, (40, 30) + (80, 90) of 320 x 240
        picker = page.locator("[data-role=query-picker]").bounding_box()
        page.mouse.click(picker["x"] + picker["width"] * 80 / 320, picker["y"] + picker["height"] * 75 / 240)
        _wait_until(page, "() => location.hash.includes('fbox=0')")
        _ready(page)
        assert np.array_equal(_values(page), arrays["box_similarity"][0, 2].reshape(-1).astype(np.float64))
        assert "query=" not in page.evaluate("location.hash")  # the click chose the box, not a query patch
        page.select_option("select[name=fbox]", "1")  # the box list, keyboard-operable as any select
        _wait_until(page, "() => location.hash.includes('fbox=1')")


def test_patch_similarity_follows_the_query_patch_within_0_02(browser, feature_site):
    url, arrays, _ = feature_site
    tokens = arrays["tokens"][-1].astype(np.float64)
    unit = tokens / np.linalg.norm(tokens, axis=1, keepdims=True)
    with checked_page(browser) as page:
        _open(page, url, "feat=patch&query=0.5,0.1")  # row 0, column 3
        assert np.abs(_values(page) - unit @ unit[3]).max() < 0.02
        page.focus("[data-role=query-picker]")
        page.keyboard.press("ArrowDown")  # the query-patch explorer's picking: cell 9
        _wait_until(page, "() => location.hash.includes('query=0.5833%2C0.3750')")
        _wait_until(page, f"() => document.querySelector(\"{_canvas(page)}\").dataset.want.endsWith('|9')")
        _ready(page)
        assert np.abs(_values(page) - unit @ unit[9]).max() < 0.02
        page.reload()
        page.wait_for_selector(".atlas-root[data-atlas-ready]")
        _ready(page)
        assert np.abs(_values(page) - unit @ unit[9]).max() < 0.02
        page.focus("[data-role=query-picker]")
        page.keyboard.press("Escape")
        _wait_until(page, f"() => !document.querySelector(\"{_canvas(page)}\")")
        assert "dinov2: pick a query patch" in page.text_content("[data-role=features-note]")
        page.goto(url + f"atlas/images/{IMAGE}/#models={MODEL}&method=cls&layer=1&feat=patch&query=0.5,0.1")
        _wait_until(page, "() => document.querySelector('[data-role=features-note]').textContent.includes('only')")
        assert "dinov2: patch features exported for layers 2 only" in page.text_content("[data-role=features-note]")


@pytest.mark.parametrize("scheme", ["default", "slate"])
def test_pca_colours_draw_the_three_components_and_pass_axe(browser, feature_site, scheme):
    from tests.fixtures.node_tools import axe_source
    from tests.test_site_instrument import AXE_RUN, SETTLED

    url, arrays, _ = feature_site
    with checked_page(browser) as page:
        _open(page, url, "feat=pca", layer=1)
        pca = arrays["pca"][1].reshape(3, -1).astype(np.float64)
        rgb = _rgb(page).reshape(-1, 4)
        for c in range(3):
            lo, hi = pca[c].min(), pca[c].max()
            assert (np.abs(rgb[:, c] - np.floor((pca[c] - lo) / (hi - lo) * 255 + 0.5)) <= 1).all()
        assert (rgb[:, 3] == 255).all()
        assert "colours do not compare across images" in page.text_content("[data-role=features-note]")
        page.evaluate(f"() => document.body.setAttribute('data-md-color-scheme', '{scheme}')")
        page.evaluate(SETTLED)  # axe must not measure colours halfway through the theme's transitions
        page.evaluate(axe_source())
        assert page.evaluate(AXE_RUN) == []


def test_nothing_overflows_at_390_px_and_the_budget_line_names_the_feature_bytes(browser, feature_site):
    url, _, site = feature_site
    with checked_page(browser) as page:
        page.set_viewport_size({"width": 390, "height": 844})
        _open(page, url, "feat=pca")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.evaluate("document.querySelector('[data-role=features-view]').getBoundingClientRect().right") <= 390
    files = list(site.rglob("features.bin"))
    assert files and all(f.parent.parent.name == MODEL for f in files)  # the fake build's other ViT has no pca


def test_the_probe_method_draws_its_heads_with_one_depth_step(browser, feature_site):
    """siglip's probe attention: a method of the page (fused and each head, one map each), its sprite
    sheet one row high, its metrics in the panel's table; the console stays clean."""
    from atlas.site.render import to_indices

    url, _, site = feature_site
    with np.load(site.parent / "maps" / "siglip" / f"{IMAGE}.npz") as npz:
        probe = npz["probe"][0]
    with checked_page(browser) as page:
        page.goto(url + f"atlas/images/{IMAGE}/#models=siglip&method=probe&view=heads")
        page.wait_for_selector(".atlas-root[data-atlas-ready]")
        tile = ".atlas-tile[data-model='siglip'][data-variant='h01'] canvas.atlas-heat"
        _wait_until(page, f"() => document.querySelector(\"{tile}\").dataset.ready")
        assert (_canvas_indices(page, tile) == to_indices(probe[1]).reshape(5, 5)).all()
        assert page.get_attribute("input[name=layer]", "max") == "0"
        assert page.is_checked("input[name=method][value=probe]")


def test_the_leaderboard_says_which_layer_separates_the_boxes(browser, feature_site):
    """The summary's box_similarity section as a table: dinov2's mean box_iou@25 per layer, the best marked."""
    from tests.fixtures.node_tools import axe_source
    from tests.test_site_instrument import AXE_RUN

    url, _, site = feature_site
    summary = json.loads((site.parent / "metrics" / "summary.json").read_text())
    (entry,) = [s for s in summary["box_similarity"] if s["model"] == MODEL and s["metric"] == "box_iou@25"]
    with checked_page(browser) as page:
        page.goto(url + "atlas/leaderboard/")
        row = page.locator(f"table.atlas-box-similarity tr[data-model='{MODEL}'] td")
        cells = row.all_text_contents()
        assert cells[1] == str(entry["best_layer"])
        assert cells[2:] == [f"{v:.3f}" for v in entry["layers"]]
        page.evaluate(axe_source())
        assert page.evaluate(AXE_RUN) == []


def _pca_rgb(pca: np.ndarray) -> np.ndarray:
    """[3, N] components -> [N, 3] uint8: each channel min-max scaled on its own, floor(x * 255 + 0.5)."""
    out = np.zeros((pca.shape[1], 3), dtype=np.uint8)
    for c in range(3):
        lo, hi = pca[c].min(), pca[c].max()
        out[:, c] = np.floor((pca[c] - lo) / (hi - lo) * 255 + 0.5) if hi > lo else 0
    return out


def _head_viewer_pca(page, build: Path, layer: int) -> int:
    """Check every painted PCA card of the head viewer against the npz ``pca`` of its image at ``layer``."""
    cards = "[data-role=grid] canvas.atlas-pca"
    page.locator("[data-role=grid]").scroll_into_view_if_needed()  # cards are painted as they come near the viewport
    _wait_until(page, f"() => document.querySelectorAll('{cards}').length")
    _wait_until(page, f"() => [...document.querySelectorAll('{cards}')].every((c) => c.dataset.ready)")
    manifest = json.loads((build / "maps" / "manifest.json").read_text())
    (entry,) = [m for m in manifest["models"] if m["name"] == MODEL]
    shown = page.eval_on_selector_all(cards, "els => els.map((c) => [c.closest('li').querySelector("
                                      "'.atlas-card-title').textContent, c.width, c.height, Array.from("
                                      "c.getContext('2d').getImageData(0, 0, c.width, c.height).data)])")
    for image_id, width, height, data in shown:
        with np.load(build / "maps" / entry["maps"][image_id]) as npz:
            pca = npz["pca"][layer].reshape(3, -1).astype(np.float64)
        rgba = np.array(data, dtype=np.uint8).reshape(height * width, 4)
        assert (width, height) == (GRID[1], GRID[0])
        assert np.array_equal(rgba[:, :3], _pca_rgb(pca)), image_id  # exactly the npz, min-max per channel
        assert (rgba[:, 3] == 255).all()
    return len(shown)


def test_head_viewer_shows_each_images_pca_colours_at_its_layer(browser, feature_site):
    """Issue 26 item 3: the head viewer's "PCA colours" choice paints every card with its image's PCA RGB at the
    viewer's layer (whatever the head), reading only that layer's bytes of features.bin (an HTTP Range request);
    the permalink restores it; axe passes and the console stays clean."""
    from tests.fixtures.node_tools import axe_source
    from tests.test_site_instrument import AXE_RUN, SETTLED

    url, _, site = feature_site
    build = site.parent
    with checked_page(browser) as page:
        ranges = []
        page.on("response", lambda r: ranges.append((r.request.headers.get("range"), r.status, r.headers.get(
            "content-length"))) if r.url.endswith("/features.bin") else None)
        page.goto(url + f"atlas/heads/{MODEL}/#l01-h02&method=cls")
        page.wait_for_selector(".atlas-root[data-atlas-ready]")
        assert page.locator("[data-role=pca-note]").is_hidden()
        page.check("input[name=feat][value=pca]")
        _wait_until(page, "() => location.hash.includes('feat=pca')")
        assert _head_viewer_pca(page, build, 1) == 3  # every image of the fake build
        note = page.text_content("[data-role=pca-note]")
        assert page.locator("[data-role=pca-note]").is_visible() and "do not compare across images" in note
        cells = GRID[0] * GRID[1]
        start = 20 + 1 * 3 * cells * 4  # the header's five uint32, then pca [L, 3, N] float32
        assert ranges and all(r == (f"bytes={start}-{start + 3 * cells * 4 - 1}", 206, str(3 * cells * 4))
                              for r in ranges), ranges
        # another head of the layer: the same colours; the permalink restores the choice at another layer
        page.locator("h1").click()
        page.keyboard.press("ArrowRight")
        _wait_until(page, "() => location.hash.startsWith('#l01-h03&')")
        assert _head_viewer_pca(page, build, 1) == 3
        page.goto(url + f"atlas/heads/{MODEL}/#l02-h00&method=cls&feat=pca")
        page.reload()
        page.wait_for_selector(".atlas-root[data-atlas-ready]")
        assert page.is_checked("input[name=feat][value=pca]")
        assert _head_viewer_pca(page, build, 2) == 3
        for scheme in ("default", "slate"):
            page.evaluate(f"() => document.body.setAttribute('data-md-color-scheme', '{scheme}')")
            page.evaluate(SETTLED)
            page.evaluate(axe_source())
            assert page.evaluate(AXE_RUN) == []
        page.check("input[name=feat][value=map]")
        _wait_until(page, "() => !location.hash.includes('feat=') && document.querySelector('[data-role=grid] "
                          "canvas.atlas-heat')")
    siglip = site / "atlas" / "heads" / "siglip" / "index.html"  # the fake siglip has no pca: no such choice
    assert siglip.is_file() and 'name="feat"' not in siglip.read_text(encoding="utf-8")
