"""Heatmap rasters: min-max indices, PNG encoding, sprite sheets, the render cache."""

from __future__ import annotations

import io
import math
import os

import numpy as np
from PIL import Image

from atlas.core import layout
from atlas.core.colormaps import COLORMAPS, lut
from atlas.site.catalog import load_catalog
from atlas.site.map_values import decode_sprite, decode_values, range_chunk
from atlas.site.render import encode_png, layer_maps, render_all, sprite_indices, to_indices
from tests.fixtures.fake_maps import write_fake_build


def test_indices_are_min_max_rounded_half_up():
    m = np.array([[1.0, 3.0], [2.0, 1.0 + 2.0 * 0.5 / 255]], dtype=np.float32)
    idx = to_indices(m)
    assert idx.dtype == np.uint8
    assert idx[0, 0] == 0 and idx[0, 1] == 255 and idx[1, 0] == 128  # 127.5 rounds up
    assert idx[1, 1] == 1  # 0.5 rounds up


def test_constant_and_nan_maps_are_zero():
    assert not to_indices(np.full((3, 4), 7.0)).any()
    assert to_indices(np.array([np.nan, 1.0, 2.0])).tolist() == [0, 0, 255]


def test_png_is_patch_resolution_greyscale_and_deterministic():
    rng = np.random.default_rng(1)
    idx = to_indices(rng.random((5, 7)))
    png = encode_png(idx)
    assert png == encode_png(idx)
    assert b"tIME" not in png and b"tEXt" not in png
    image = Image.open(io.BytesIO(png))
    assert image.mode == "L" and image.size == (7, 5)
    assert np.array_equal(np.asarray(image), idx)


def test_colormap_tables():
    for name in COLORMAPS:
        table = lut(name)
        assert table.shape == (256, 3) and table.dtype == np.uint8
        assert len({tuple(c) for c in table}) > 200  # no accidental constant stretches
    assert tuple(lut("viridis")[0]) == (68, 1, 84) and tuple(lut("viridis")[-1]) == (253, 231, 37)


def _index(x: float, lo: float, hi: float) -> int:
    """One cell's colormap index, restated cell by cell in plain Python (no numpy)."""
    if math.isnan(x) or not hi > lo:
        return 0
    return min(255, max(0, math.floor((x - lo) / (hi - lo) * 255 + 0.5)))


def _expected_sprite(model, npz, method: str) -> np.ndarray:
    """The sprite sheet of one (model, image, method) computed independently: one tile per map, placed by hand."""
    gh, gw = model.grid
    heads = model.heads if method in model.head_methods else 0
    sheet = np.full((model.layers * gh, (1 + heads) * gw), -1, dtype=int)
    for layer in range(model.layers):
        for column in range(1 + heads):
            if heads:
                values = npz[f"{method}_fused"][layer] if column == 0 else npz[method][layer, column - 1]
            else:
                values = npz[method][layer]
            cells = [float(v) for v in values.ravel()]
            finite = [v for v in cells if not math.isnan(v)]
            lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
            for r in range(gh):
                for c in range(gw):
                    sheet[layer * gh + r, column * gw + c] = _index(cells[r * gw + c], lo, hi)
    return sheet


def test_sprite_indices_tile_layers_by_variants():
    maps = np.arange(2 * 3 * 2 * 4, dtype=np.float32).reshape(2, 3, 2, 4)  # 2 layers, 3 variants, 2 x 4 grid
    maps[1, 2] = 5.0  # a constant tile
    sheet = sprite_indices(maps)
    assert sheet.shape == (2 * 2, 3 * 4) and sheet.dtype == np.uint8
    for layer in range(2):
        for variant in range(3):
            x, y, w, h = layout.sprite_tile((2, 4), layer, variant)
            assert np.array_equal(sheet[y : y + h, x : x + w], to_indices(maps[layer, variant]))
    assert not sheet[2:4, 8:12].any() and sheet[0, 0] == 0 and sheet[1, 3] == 255


def test_render_all_writes_one_sprite_per_method_and_caches(tmp_path):
    write_fake_build(tmp_path)
    catalog = load_catalog(tmp_path)
    out = tmp_path / "render"
    stats = render_all(catalog, out)
    assert stats.pngs == sum(len(m.methods) * len(m.maps) for m in catalog.models)
    assert stats.rendered_pairs == sum(len(m.maps) for m in catalog.models)

    checked = 0
    for model in catalog.models:
        for image in catalog.images:
            if image.id not in model.maps:
                continue
            pair = out / layout.pair_dir(model.slug, image.slug)
            with np.load(catalog.maps_file(model, image.id)) as npz:
                for method in model.methods:
                    sprite = Image.open(out / layout.map_sprite(model.slug, image.slug, method))
                    assert sprite.mode == "L"
                    assert np.array_equal(np.asarray(sprite).astype(int), _expected_sprite(model, npz, method))
                    checked += 1
            expected_files = {f"{m}.png" for m in model.methods} | (
                {"query.bin"} if model.query_layers else set()  # the fake dinov2's query-patch rows
            )
            assert {f.name for f in pair.iterdir()} == expected_files  # one sheet per method: no per-layer files
    assert checked == stats.pngs

    siglip = next(m for m in catalog.models if m.name == "siglip")  # the fixture's NaN cell: index 0
    with np.load(catalog.maps_file(siglip, "astronaut")) as npz:
        assert np.isnan(npz["mean"][1, 2, 1, 2])
    sheet = np.asarray(Image.open(out / layout.map_sprite(siglip.slug, "astronaut", "mean")))
    x, y, _, _ = layout.sprite_tile(siglip.grid, 1, 3)
    assert sheet[y + 1, x + 2] == 0 and sheet[y : y + 5, x : x + 5].max() == 255

    model = next(m for m in catalog.models if m.name == "dinov2")
    image = catalog.images[0]
    with np.load(catalog.maps_file(model, image.id)) as npz:
        maps = layer_maps(dict(npz), model, "cls", 2)
        assert np.array_equal(maps[0], npz["cls_fused"][2]) and np.array_equal(maps[3], npz["cls"][2, 2])
    values = decode_sprite((out / layout.map_sprite(model.slug, image.slug, "cls")).read_bytes())[2]
    lo, hi = maps.min(axis=(1, 2), keepdims=True), maps.max(axis=(1, 2), keepdims=True)
    assert values.shape == maps.shape and (np.abs(values - maps) <= _documented_bound(values, lo, hi)).all()
    assert np.array_equal(values.min(axis=(1, 2)), lo.ravel()) and np.array_equal(values.max(axis=(1, 2)), hi.ravel())

    again = render_all(catalog, out)
    assert again.rendered_pairs == 0 and again.cached_pairs == stats.rendered_pairs
    npz_path = catalog.maps_file(model, image.id)
    os.utime(npz_path, ns=(npz_path.stat().st_atime_ns, npz_path.stat().st_mtime_ns + 10**9))
    assert render_all(catalog, out).rendered_pairs == 1


def _documented_bound(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How far a published value may be from its map (export format): half an index step plus half a
    float32 ulp of the value."""
    half_ulp = np.spacing(np.abs(values).astype(np.float32)).astype(np.float64) / 2
    return (hi.astype(np.float64) - lo.astype(np.float64)) / 510 + half_ulp


def test_published_values_keep_the_documented_bound_at_every_scale():
    """Decoded sprite values against their float32 maps, over maps of many scales and offsets: within
    ``(hi - lo) / 510 + ulp(value) / 2``; half a step alone is missed by the final float32 rounding."""
    rng = np.random.default_rng(7)
    missed_half_step = 0
    for scale, offset in [(1e-3, 0.0), (1.0, 0.5), (1.0, -2.0), (1e3, 100.0), (5e-6, 1e-3), (1.0, 1e4)]:
        maps = (rng.random((4, 5, 7, 9)) * scale + offset).astype(np.float32)
        indices = sprite_indices(maps)
        values = decode_values(indices, range_chunk(maps))
        lo, hi = maps.min(axis=(2, 3), keepdims=True), maps.max(axis=(2, 3), keepdims=True)
        error = np.abs(values.astype(np.float64) - maps.astype(np.float64))
        assert (error <= _documented_bound(values, lo, hi)).all(), (scale, offset)
        missed_half_step += int((error > (hi.astype(np.float64) - lo) / 510).sum())
    assert missed_half_step > 0  # why the bound has its ulp term


def test_sprites_are_deterministic_and_replace_an_older_format(tmp_path):
    write_fake_build(tmp_path)
    catalog = load_catalog(tmp_path)
    first, second = tmp_path / "a", tmp_path / "b"
    model, image = catalog.models[0], catalog.images[0]
    stale = first / layout.pair_dir(model.slug, image.slug) / "cls-l00-fused.png"  # a per-map PNG of format 1
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    render_all(catalog, first)
    render_all(catalog, second)
    assert not stale.exists()
    files = sorted(p.relative_to(first) for p in first.rglob("*.png"))
    assert files == sorted(p.relative_to(second) for p in second.rglob("*.png"))
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    assert all(b"tIME" not in (first / f).read_bytes() for f in files)
