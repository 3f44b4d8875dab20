"""Query-patch rows (``--query-layers``): the exported rows against transformers' own attentions, the
quantisation bound, the build's option and its cache key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_attention.errors import UnsupportedError
from ssl_attention.maps import compute_maps
from ssl_attention.query_rows import LEVELS, decode_rows, quantise_rows
from tests.test_attention import _hf_attentions, _load, _pixels


@pytest.mark.parametrize("family", ["dinov2_registers", "siglip"])
def test_rows_equal_the_eager_attentions_within_the_quantisation_bound(tiny_checkpoints, family):
    """A tiny DINOv2 with registers (CLS + 2 registers) and a tiny SigLIP (no prefix) at a 6 x 10 grid:
    each decoded row is A[l][h, i, P] from ``output_attentions=True`` to within half a code step."""
    model = _load(tiny_checkpoints, family, image_size=(24, 40))
    assert model.grid == (6, 10)
    pixels = _pixels(model, seed=5)
    layers = (model.layers - 1, 0)  # in the order asked for
    maps = compute_maps(model, pixels, query_layers=layers)
    attn = _hf_attentions(model, pixels)  # [B, L, H, T, T]
    patches = slice(model.prefix_tokens, model.prefix_tokens + 60)
    expected = attn[:, list(layers)][:, :, :, patches, patches]  # [B, Lq, H, P, P]
    codes, scale = maps["query_rows"], maps["query_scale"]
    assert codes.dtype == np.uint8 and codes.shape == (2, 2, model.heads, 60, 60)
    assert scale.dtype == np.float32 and scale.shape == (2, 2, model.heads, 60)
    decoded = decode_rows(codes, scale)
    bound = expected.max(axis=-1, keepdims=True) / (2 * LEVELS)  # the documented max / 510
    assert (np.abs(decoded - expected) <= bound + 1e-6).all()
    assert (codes.max(axis=-1) == LEVELS).all()  # each row's maximum is code 255
    if model.prefix_tokens:  # the prefix tokens' share is left out of the rows
        assert (expected.sum(axis=-1) < 0.999).any()


def test_quantisation_bound_and_zero_rows():
    rows = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.1, 0.0003], [1.0, 0.5, 0.25]])
    codes, scale = quantise_rows(rows)
    assert codes.tolist()[0] == [0, 0, 0] and float(scale[0]) == 0.0
    generator = torch.Generator().manual_seed(3)  # and many softmax rows of several sharpnesses
    many = torch.cat([torch.softmax(torch.randn(2000, 64, generator=generator) * s, dim=-1) for s in (1, 3, 8)])
    for values in (rows, many):
        codes, scale = quantise_rows(values)
        decoded = decode_rows(codes.numpy(), scale.numpy()).astype(np.float64)
        top = values.numpy().max(axis=1, keepdims=True)
        bound = top / 510 + 2 * np.spacing(top).astype(np.float64)  # the documented max / 510 + 2 ulp(max)
        assert (np.abs(decoded - values.numpy()) <= bound).all()


def test_query_layers_a_model_lacks_are_refused(tiny_checkpoints):
    model = _load(tiny_checkpoints, "siglip")
    with pytest.raises(UnsupportedError, match=r"no layer 7 for query rows \(it has layers 0-2\)"):
        compute_maps(model, _pixels(model), query_layers=(7,))


def _pairs(out: Path, model: str) -> dict:
    manifest = json.loads((out / "maps" / "manifest.json").read_text())
    return {m["name"]: m for m in manifest["models"]}[model]


def test_the_default_is_the_last_layer_for_the_bundled_sample_and_none_for_own_images(tmp_path):
    from rich.console import Console

    from atlas.build import Build, BuildOptions

    for images, expected in ((None, "last"), (tmp_path, "none")):
        options = BuildOptions(requests=[], images=images)
        Build(options, Console(quiet=True)).inputs()
        assert options.query_layers == expected


def test_build_exports_the_rows_keys_the_cache_by_them_and_renders_one_file_per_pair(tiny_checkpoints, tmp_path):
    """Rows of the layers asked for; another value recomputes (the cache key holds the layers), a layer a model
    lacks is one skipped line, none drops them; the site file is the npz's scales + codes."""
    import shutil

    from atlas.dataset.stage import sample_paths
    from atlas.site.catalog import load_catalog
    from atlas.site.render import render_all
    from tests.test_cli import _small_build

    images = tmp_path / "images"
    images.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg"):
        shutil.copy(sample_paths()[0] / name, images / name)
    out = tmp_path / "build"
    models = {"d": "dinov2_registers", "r": "timm_resnet"}
    result = _small_build(tiny_checkpoints, out, models, "--images", str(images))
    assert result.exit_code == 0, result.output
    assert _pairs(out, "d")["query_layers"] == []  # own images: none by default
    result = _small_build(tiny_checkpoints, out, models, "--images", str(images), "--query-layers", "last,0,5")
    assert result.exit_code == 0, result.output
    entry = _pairs(out, "d")
    assert entry["query_layers"] == [0, 2]
    skipped = json.loads((out / "report.json").read_text())["skipped"]
    assert [s for s in skipped if "no query rows" in s] == [
        "model d: --query-layers last,0,5: it has layers 0-2, no query rows for layer 5"], skipped
    with np.load(out / "maps" / entry["maps"]["chelsea"]) as data:
        codes, scale = data["query_rows"], data["query_scale"]
        assert json.loads(str(data["meta"]))["query_layers"] == [0, 2]
    cells = entry["grid"][0] * entry["grid"][1]
    assert codes.shape == (2, entry["heads"], cells, cells)
    site = tmp_path / "rendered"
    render_all(load_catalog(out), site)
    file = site / "atlas-data" / "maps" / "d" / "chelsea" / "query.bin"
    assert file.read_bytes() == scale.astype("<f4").tobytes() + codes.tobytes()
    assert not list((site / "atlas-data" / "maps" / "r").rglob("query.bin"))
    result = _small_build(tiny_checkpoints, out, models, "--images", str(images), "--query-layers", "none")
    assert result.exit_code == 0, result.output
    with np.load(out / "maps" / entry["maps"]["chelsea"]) as data:
        assert "query_rows" not in data.files
    render_all(load_catalog(out), site)
    assert not list(site.rglob("query.bin"))


@pytest.mark.parametrize("value", ["1x", "last,,2", "-1", "none,3", ""])
def test_a_bad_query_layers_value_is_one_line_and_exit_2(value):
    from tests.test_cli import _one_line_error

    _one_line_error(["--query-layers", value], "--query-layers:")


def test_the_project_key_sets_the_default(tmp_path):
    from atlas.project import ConfigError, load_project

    images = tmp_path / "images"
    images.mkdir()
    (tmp_path / "atlas.toml").write_text('images = "images"\nquery_layers = "11, last"\n')
    assert load_project(tmp_path / "atlas.toml").build["query_layers"] == "11,last"
    (tmp_path / "atlas.toml").write_text('images = "images"\nquery_layers = "eleven"\n')
    with pytest.raises(ConfigError, match=r"atlas.toml: query_layers: 'eleven' is not none, last"):
        load_project(tmp_path / "atlas.toml")


def _query_canvas(variant: str) -> str:
    return f".atlas-grid .atlas-tile[data-model='dinov2'][data-variant='{variant}'] canvas.atlas-query"


def test_the_page_draws_the_exported_rows_and_keeps_the_query_in_the_hash(page, site_url, built_site):
    """Fake build: dinov2 (grid 4 x 6, 4 heads) has rows of layer 2 only. The drawn query maps are the
    decoded rows of query.bin (min-max indices, as every tile), the query patch is marked, the arrow keys
    on the focused image move it (not the layer), the hash restores it (and axe finds nothing), Escape
    clears it, Shift+click on a tile picks there, and a layer without rows says so."""
    from atlas.site.render import to_indices
    from tests.fixtures.node_tools import axe_source
    from tests.test_site_browser import _canvas_indices, _wait_until
    from tests.test_site_instrument import AXE_RUN

    heads, cells, gw = 4, 24, 6
    raw = (built_site.site_dir / "atlas-data" / "maps" / "dinov2" / "astronaut" / "query.bin").read_bytes()
    scale = np.frombuffer(raw[:heads * cells * 4], "<f4").reshape(heads, cells).astype(np.float64)
    codes = np.frombuffer(raw[heads * cells * 4:], np.uint8).reshape(heads, cells, cells).astype(np.float64)
    rows = codes * scale[..., None]  # [H, query, cells], as decodeQuery computes it

    def check(cell: int) -> None:
        shown = "[...document.querySelectorAll('.atlas-grid canvas.atlas-query')]"
        ready = f"() => {shown}.length === 5 && {shown}.every(c => c.dataset.ready && c.dataset.cell === '{cell}')"
        _wait_until(page, ready)
        fused = rows[:, cell].sum(axis=0) / heads
        assert (_canvas_indices(page, _query_canvas("fused")) == to_indices(fused).reshape(4, gw)).all()
        for h in range(heads):
            shown = _canvas_indices(page, _query_canvas(f"h{h:02d}"))
            assert (shown == to_indices(rows[h, cell]).reshape(4, gw)).all()
        style = page.eval_on_selector(".atlas-tile[data-model='dinov2'][data-variant='h01'] .atlas-query-mark",
                                      "m => [m.style.left, m.style.top]")
        assert [float(v.rstrip("%")) for v in style] == pytest.approx([100 * (cell % gw) / gw, 100 * (cell // gw) / 4])

    page.goto(site_url + "atlas/images/astronaut/#models=dinov2&method=cls&layer=2&view=heads&query=0.5,0.1")
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    check(3)  # row 0, column 3
    page.focus("[data-role=query-picker]")
    page.keyboard.press("ArrowDown")
    _wait_until(page, "() => location.hash.includes('query=0.5833%2C0.3750')")
    assert "layer=2" in page.evaluate("location.hash")  # the arrow moved the query patch, not the layer
    check(9)
    page.reload()
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    check(9)  # the permalink restores it
    assert "row 1, column 3 of the 4 × 6 grid" in page.text_content("[data-role=query-status]")
    page.evaluate(axe_source())  # the picker, the marks and the query canvases pass axe
    assert page.evaluate(AXE_RUN) == []
    page.focus("[data-role=query-picker]")
    page.keyboard.press("Escape")
    _wait_until(page, "() => !location.hash.includes('query=') && !document.querySelector('canvas.atlas-query')")
    tile = page.locator(".atlas-tile[data-model='dinov2'][data-variant='h02'] .atlas-stack")
    tile.evaluate("e => e.scrollIntoView({block: 'center', inline: 'center'})")  # clear of the sticky bars
    box = tile.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 5.5 / 6, box["y"] + box["height"] * 3.5 / 4)
    page.keyboard.down("Shift")
    page.mouse.down()
    page.mouse.up()
    page.keyboard.up("Shift")
    check(23)  # the last cell; Shift+click picked it instead of enlarging the tile
    assert not page.evaluate("document.querySelector('[data-role=zoom]').open")
    page.goto(site_url + "atlas/images/astronaut/#method=mean&layer=1&query=0.5,0.1")
    _wait_until(page, "() => document.querySelector('[data-role=query-notes]').textContent !== ''")
    assert page.text_content("[data-role=query-notes]") == (
        "dinov2: query rows exported for layers 2 only; rebuild with --query-layers. "
        "siglip: no query rows exported; rebuild with --query-layers.")
    assert not page.query_selector("canvas.atlas-query")
