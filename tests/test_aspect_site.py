"""Per-image grids (``--resize keep``, issue 24) downstream of the maps: the metrics against a pixel-level
reference on each image's own grid, the sprite sheets' decoded values against the npz, and in Chromium the
tiles of a portrait image (its aspect, its grid) with the boxes on the cells the metrics count. One keep
build (``tests.test_aspect.keep_build``) for the module: a keep model, a squash-only one and a cap."""

from __future__ import annotations

import json

import numpy as np
import pytest

from atlas.core.layout import map_sprite, slug
from atlas.core.manifest import Manifest
from atlas.metrics.rows import read_rows
from atlas.site.map_values import decode_sprite
from ssl_attention.annotations import Box, box_mask, rescale_boxes
from ssl_attention.methods import get_method
from ssl_attention.metrics import make_target
from ssl_attention.thresholds import top_percent_mask
from tests.fixtures.site_server import serve_site
from tests.test_aspect import BOXES, keep_build
from tests.test_site_browser import _open, _wait_painted


@pytest.fixture(scope="module")
def keep_run(tiny_checkpoints, tmp_path_factory):
    """(build folder, output) of ``keep_build``."""
    return keep_build(tiny_checkpoints, tmp_path_factory.mktemp("keep"))


@pytest.fixture(scope="module")
def kept(keep_run):
    """The build folder of ``keep_build``."""
    return keep_run[0]


def test_a_keep_build_has_a_grid_per_image_and_says_what_it_did(keep_run):
    out, output = keep_run
    said = " ".join(output.split())
    assert "grid 8x8, 3 prefix" in said and said.count("aspect kept, a grid per image") == 2  # d and r; t is squashed
    lines = json.loads((out / "report.json").read_text())["skipped"]  # each also said as one line
    refused = [line for line in lines if "model t" in line and "cannot interpolate" in line]
    assert len(refused) == 1, lines
    capped = [line for line in lines if "--max-tokens 120" in line]
    assert len(capped) == 1 and "landscape" in capped[0] and "model d" in capped[0], lines
    assert "scaled down to 28x68 px (119 tokens)" in capped[0]
    manifest = Manifest.load(out / "maps")
    models = {m.name: m for m in manifest.models}
    assert models["t"].grids == {} and models["t"].resize == "squash"
    grids = models["d"].grids
    assert grids["portrait"] == (14, 8) and grids["square"] == (8, 8)  # 52 x 30 -> 55.5 x 32 -> 56 x 32
    assert grids["landscape"] == (7, 17)  # 32 x 76 (152 tokens) capped to 28 x 68
    assert models["r"].grids["portrait"][0] > models["r"].grids["portrait"][1]
    raw = json.loads((out / "maps" / "manifest.json").read_text())
    assert {m["name"]: "grids" in m for m in raw["models"]} == {"d": True, "r": True, "t": False}
    for model in manifest.models:
        for image, rel in model.maps.items():
            with np.load(out / "maps" / rel) as npz:
                fused = npz["gradcam" if model.kind == "cnn" else "cls_fused"]
                assert fused.shape[-2:] == model.grid_of(image), (model.name, image)
                if model.kind == "vit":
                    cells = model.grid_of(image)[0] * model.grid_of(image)[1]
                    assert npz["query_rows"].shape[-2:] == (cells, cells)
                    assert npz["token_norm"].shape[-2:] == model.grid_of(image)


def _models(kept) -> dict:
    return {m.name: m for m in Manifest.load(kept / "maps").models}


def test_metrics_count_each_images_own_cells(kept):
    """iou@50 of every fused map, from the published rows, equals a plain pixel-level computation on the
    image's own grid: the selected cells blown up to input pixels against the box mask at input size."""
    manifest = Manifest.load(kept / "maps")
    images = {i.id: i for i in manifest.images}
    for model in manifest.models:
        rows = {(r.image, r.method, r.layer): r.value for r in read_rows(kept / "metrics" / f"{model.name}.parquet")
                if r.metric == "iou@50" and r.head in ("fused", "") and r.box is None}
        array = "gradcam" if model.kind == "cnn" else "cls_fused"
        for image_id, rel in model.maps.items():
            gh, gw = model.grid_of(image_id)
            cell = model.grid_cell
            image = images[image_id]
            boxes = [Box(*b, label="part") for b in BOXES[image_id]]
            scaled = rescale_boxes(boxes, (image.width, image.height), (gw * cell, gh * cell))
            inside = box_mask(scaled, gw * cell, gh * cell)
            with np.load(kept / "maps" / rel) as npz:
                maps = npz[array]
            for layer, m in enumerate(maps):
                selected = np.kron(top_percent_mask(m, 50), np.ones((cell, cell))).astype(bool)
                expected = (selected & inside).sum() / (selected | inside).sum()
                assert rows[(image_id, array.removesuffix("_fused"), layer)] == pytest.approx(expected), \
                    (model.name, image_id, layer)


def test_sprites_decode_to_the_npz_on_each_images_grid(kept):
    site = kept / "site"
    for model in _models(kept).values():
        for image_id, rel in model.maps.items():
            with np.load(kept / "maps" / rel) as npz:
                for method in model.methods:
                    values = decode_sprite((site / map_sprite(model.slug, slug(image_id), method)).read_bytes())
                    assert values.shape[-2:] == model.grid_of(image_id)
                    fused = npz[get_method(method).fused_array].astype(np.float64)
                    lo, hi = fused.min(axis=(1, 2)), fused.max(axis=(1, 2))
                    step = ((hi - lo) / 510)[:, None, None] + np.spacing(np.abs(fused).astype(np.float32))
                    assert (np.abs(values[:, 0] - fused) <= step).all(), (model.name, image_id, method)


@pytest.fixture(scope="module")
def keep_url(kept):
    with serve_site(kept / "site") as url:
        yield url


@pytest.mark.browser
def test_a_portrait_images_tiles_have_its_aspect_and_grid_and_boxes_register(browser, keep_url, kept):
    from tests.fixtures.site_fixtures import checked_page

    model = _models(kept)["d"]
    gh, gw = model.grid_of("portrait")
    manifest = Manifest.load(kept / "maps")
    image = next(i for i in manifest.images if i.id == "portrait")
    target = make_target(list(image.boxes), (image.width, image.height), (gh, gw), model.patch_size)
    with checked_page(browser) as page:
        _open(page, keep_url, "atlas/images/portrait/", "models=d&method=cls&layer=2&view=heads&display=heat")
        _wait_painted(page)
        stack = ".atlas-grid .atlas-tile[data-model=d][data-variant=fused] .atlas-stack"
        got = page.eval_on_selector(stack, """s => {
          const b = s.getBoundingClientRect(), c = s.querySelector('canvas.atlas-heat');
          const r = s.querySelector('svg.atlas-boxes rect').getBoundingClientRect();
          return {w: b.width, h: b.height, x: b.x, y: b.y, cw: c.width, ch: c.height,
                  rect: [r.x, r.y, r.width, r.height]};
        }""")
        assert (got["ch"], got["cw"]) == (gh, gw) == (14, 8)
        assert got["h"] / got["w"] == pytest.approx(image.height / image.width, rel=0.02)  # portrait, not square
        x, y, w, h = got["rect"]
        centres_x = got["x"] + (np.arange(gw) + 0.5) * got["w"] / gw
        centres_y = got["y"] + (np.arange(gh) + 0.5) * got["h"] / gh
        drawn = ((centres_y[:, None] > y) & (centres_y[:, None] < y + h)
                 & (centres_x[None, :] > x) & (centres_x[None, :] < x + w))
        assert drawn.any() and np.array_equal(drawn.ravel(), target.hit)
        # the model page chooses the portrait from the image index: its tiles get its own grid too
        _open(page, keep_url, "atlas/models/d/", "image=portrait")
        _wait_painted(page)
        sizes = page.eval_on_selector_all(".atlas-heat", "cs => cs.map(c => [c.height, c.width])")
        assert sizes and all(tuple(s) == (gh, gw) for s in sizes)
