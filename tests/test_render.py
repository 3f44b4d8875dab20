"""Heatmap rasters: min-max indices, PNG encoding, the render cache."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from atlas import layout
from atlas.catalog import load_catalog
from atlas.colormaps import COLORMAPS, lut
from atlas.render import encode_png, layer_maps, render_all, to_indices
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


def test_render_all_writes_every_map_and_caches(tmp_path):
    write_fake_build(tmp_path)
    catalog = load_catalog(tmp_path)
    out = tmp_path / "render"
    stats = render_all(catalog, out)
    expected = sum(len(m.variants(method)) * m.layers for m in catalog.models for method in m.methods for _ in m.maps)
    assert stats.pngs == expected and stats.rendered_pairs == sum(len(m.maps) for m in catalog.models)
    assert stats.png_bytes / stats.pngs < 2048

    model = next(m for m in catalog.models if m.name == "dinov2")
    image = catalog.images[0]
    with np.load(model.maps[image.id]) as npz:
        maps = layer_maps(dict(npz), model, "cls", 2)
        assert np.array_equal(maps[0], npz["cls_fused"][2]) and np.array_equal(maps[3], npz["cls"][2, 2])
    raw = np.fromfile(out / layout.map_raw(model.slug, image.slug, "cls", 2), dtype="<f4")
    assert np.array_equal(raw.reshape(maps.shape), maps)
    png = out / layout.map_png(model.slug, image.slug, "cls", 2, "h02")
    assert np.array_equal(np.asarray(Image.open(png)), to_indices(maps[3]))

    again = render_all(catalog, out)
    assert again.rendered_pairs == 0 and again.cached_pairs == stats.rendered_pairs
    npz_path = model.maps[image.id]
    os.utime(npz_path, ns=(npz_path.stat().st_atime_ns, npz_path.stat().st_mtime_ns + 10**9))
    assert render_all(catalog, out).rendered_pairs == 1
