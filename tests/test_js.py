"""The page scripts' pure ES modules (templates/assets/atlas/*.mjs) under Node: their unit tests
(tests/js/*.test.mjs, ``node --test``) and the threshold port checked against ssl_attention/thresholds.py.

Without Node these tests are skipped with the reason (they fail instead where CI=true).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from ssl_attention.thresholds import mass_threshold_mask, top_percent_mask
from tests.fixtures.site_fixtures import missing_tool

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "templates" / "assets" / "atlas"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        missing_tool("node is not installed (apt-get install -y nodejs)")
    return node


def test_node_unit_tests_of_the_page_modules_pass():
    result = subprocess.run([_node(), "--test", "tests/js"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"^# pass [1-9]", result.stdout, re.M), result.stdout[-2000:]


def _js_masks(maps: list[list[float]], p: float, mass: float) -> dict[str, list[list[int]]]:
    encoded = [[x if np.isfinite(x) else str(x) for x in m] for m in maps]  # "nan", "inf", "-inf"
    result = subprocess.run(
        [_node(), str(ROOT / "tests" / "js" / "masks_cli.mjs")],
        input=json.dumps({"maps": encoded, "p": p, "mass": mass}), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(("p", "mass"), [(20, 0.6), (1, 0.05), (50, 0.9), (100, 1.0), (33.3, 0.333)])
def test_js_thresholds_match_the_python_rules_bit_for_bit(p, mass):
    rng = np.random.default_rng(int(p * 10))
    maps = [rng.random(37).astype(np.float32) for _ in range(20)]
    maps += [np.round(rng.random(49) * 4).astype(np.float32) for _ in range(10)]  # many ties
    maps += [(rng.standard_normal(16) * 3).astype(np.float32) for _ in range(10)]  # negative cells
    maps += [np.array([0.5, np.nan, np.inf, 0.2, np.inf, -np.inf], dtype=np.float32), np.zeros(9, np.float32)]
    values = [[float(x) for x in m] for m in maps]
    js = _js_masks(values, p, mass)
    for i, m in enumerate(maps):
        assert js["top"][i] == top_percent_mask(m, p).astype(int).tolist(), (i, p)
        assert js["keep"][i] == mass_threshold_mask(m, mass).astype(int).tolist(), (i, mass)


def test_the_page_scripts_name_no_method_themselves():
    """The method list and units come from the page's data block (atlas.site.pages.method_data)."""
    from ssl_attention.methods import method_names

    quoted = re.compile("[\"']({})[\"']".format("|".join(method_names())))
    found = [f"{f.name}: {m[0]}" for f in SCRIPTS.rglob("*.mjs") for m in quoted.finditer(f.read_text())]
    assert found == []


def test_the_data_block_lists_the_python_methods_in_order():
    from atlas.site.pages import method_data
    from ssl_attention.methods import get_method, method_names

    methods = method_data()
    assert [m["key"] for m in methods] == list(method_names())
    assert all(m["label"] == get_method(m["key"]).label for m in methods)
    units = {m["key"]: m["unit"] for m in methods}
    assert units == {"cls": "layer", "mean": "layer", "rollout": "layer", "gradcam": "stage", "relevance": "target",
                     "gradcam_vit": "target", "probe": "pool"}


def _hard_maps(rng: np.random.Generator) -> np.ndarray:
    """``[layers, variants, gh, gw]`` float32 maps with the cases the value encoding must carry: smooth and
    noisy tiles, ties, a constant tile, negative values, NaN and infinite cells, a tile without finite cell."""
    maps = rng.random((3, 4, 5, 7)).astype(np.float32) ** 3
    maps[0, 1] = np.round(maps[0, 1] * 3)  # many ties
    maps[1, 0] = 0.25  # constant
    maps[1, 2] -= 0.5  # negative cells
    maps[2, 1, 0, :3] = [np.nan, np.inf, -np.inf]
    maps[2, 3] = np.nan  # no finite cell
    return maps


@pytest.mark.parametrize(("p", "mass"), [(20, 0.6), (50, 0.35)])
def test_js_decodes_sprite_values_exactly_as_python(tmp_path, p, mass):
    from atlas.site.map_values import decode_sprite, range_chunk
    from atlas.site.render import encode_png, sprite_indices

    maps = _hard_maps(np.random.default_rng(int(p)))
    png = tmp_path / "cls.png"
    png.write_bytes(encode_png(sprite_indices(maps), range_chunk(maps)))
    result = subprocess.run([_node(), str(ROOT / "tests" / "js" / "values_cli.mjs"), str(png), str(p), str(mass)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    js = json.loads(result.stdout)
    decoded = decode_sprite(png.read_bytes())
    assert (js["layers"], js["variants"]) == maps.shape[:2]
    tiles = decoded.reshape(-1, maps.shape[2] * maps.shape[3])
    for i, tile in enumerate(tiles):
        got = np.array([float(x) for x in js["values"][i]])  # "nan", "inf", "-inf" parse as floats
        assert np.array_equal(got, tile.astype(np.float64), equal_nan=True), i  # the same float32 numbers
        assert js["top"][i] == top_percent_mask(tile, p).astype(int).tolist(), i
        assert js["mass"][i] == mass_threshold_mask(tile, mass).astype(int).tolist(), i
    # the published values stay within half an index step of the maps, and keep their non-finite cells
    finite = np.isfinite(maps)
    assert np.array_equal(np.isnan(decoded), np.isnan(maps)) and np.array_equal(decoded[~finite & ~np.isnan(maps)],
                                                                                maps[~finite & ~np.isnan(maps)])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all-NaN tile
        kept = np.where(finite, maps, np.nan)
        span = np.nanmax(kept, axis=(2, 3)) - np.nanmin(kept, axis=(2, 3))
    half_ulp = np.spacing(np.abs(np.where(finite, decoded, 0)).astype(np.float32)) / 2  # the documented rounding
    step = np.nan_to_num(span, nan=0.0)[..., None, None] / 510 + half_ulp
    assert (np.abs(np.where(finite, decoded, 0) - np.where(finite, maps, 0)) <= step).all()
