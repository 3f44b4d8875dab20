"""The head statistics of every ViT npz (issue 15's export contract) against an independent reference
from transformers' own ``output_attentions`` and ``output_hidden_states`` (eager attention), to 1e-5."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from atlas.core.manifest import ModelEntry
from atlas.dataset.stage import sample_paths
from atlas.models.cache import cache_key, write_maps
from ssl_attention.capabilities import Capabilities
from ssl_attention.head_statistics import distance_reduction, entropy_reduction, prefix_mass_reduction
from ssl_attention.maps import compute_maps
from ssl_attention.methods import TokenLayout, all_statistics, get_statistic, statistics_for
from tests import reference
from tests.test_attention import _hf_outputs, _load, _pixels, maps_under_bf16_autocast
from tests.test_cli import _small_build

PREFIX_STATISTICS = {"prefix_mass", "prefix_norm"}


def test_the_registry_describes_every_statistic():
    assert statistics_for(Capabilities("vit", cls=True)) == ("distance", "entropy", "prefix_mass", "token_norm",
                                                             "prefix_norm", "pca")
    assert statistics_for(Capabilities("vit")) == ("distance", "entropy", "token_norm", "pca")
    assert statistics_for(Capabilities("cnn")) == ()
    assert {s.name for s in all_statistics() if s.needs_prefix} == PREFIX_STATISTICS
    assert get_statistic("token_norm").axes == ("layer", "row", "col")


@pytest.mark.parametrize("family", ["dinov2_registers", "clip", "siglip"])
def test_statistics_match_transformers_outputs(tiny_checkpoints, family):
    """Non-square input (6 x 10 patches of 4 px): every statistic equals the reference to 1e-5."""
    model = _load(tiny_checkpoints, family, image_size=(24, 40))
    assert model.grid == (6, 10)
    pixels = _pixels(model, seed=5)
    maps = compute_maps(model, pixels)
    out = _hf_outputs(model, pixels, output_attentions=True, output_hidden_states=True)
    attentions = torch.stack(out.attentions, dim=1).double().numpy()  # [B, L, H, T, T]
    hidden = torch.stack(out.hidden_states, dim=1).double().numpy()  # [B, L + 1, T, D]
    assert hidden.shape[1] == model.layers + 1
    if family != "clip":  # the last entry is before the final norm (CLIP's post_layernorm norms only the pooled CLS)
        assert not np.allclose(hidden[:, -1], out.last_hidden_state.numpy(), atol=1e-3)
    expected_names = set(model.statistics) - {"pca"}  # pca: tests/test_features.py
    assert (expected_names >= PREFIX_STATISTICS) == (model.prefix_tokens > 0)
    for b in range(pixels.shape[0]):
        expected = reference.head_statistics(attentions[b], hidden[b], model.prefix_tokens, model.grid,
                                             model.patch_size)
        assert set(expected) == expected_names
        for name, values in expected.items():
            assert maps[name].dtype == np.float32
            np.testing.assert_allclose(maps[name][b], values, atol=1e-5, rtol=0, err_msg=name)


def test_timm_token_norms_match_forward_intermediates(tiny_checkpoints):
    """timm ViT (CLS + 2 registers): the norms equal those of timm's own un-normed block outputs."""
    model = _load(tiny_checkpoints, "timm_vit", image_size=(24, 40))
    pixels = _pixels(model, seed=2)
    maps = compute_maps(model, pixels)
    with torch.no_grad():
        blocks = model.module.forward_intermediates(pixels, norm=False, output_fmt="NLC", return_prefix_tokens=True,
                                                    intermediates_only=True)
    patches = torch.stack([p for p, _ in blocks], dim=1).double()  # [B, L, N, D]
    prefix = torch.stack([q for _, q in blocks], dim=1).double()  # [B, L, prefix, D]
    expected = patches.norm(dim=-1).reshape(*patches.shape[:2], *model.grid).numpy()
    np.testing.assert_allclose(maps["token_norm"], expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(maps["prefix_norm"], prefix.norm(dim=-1).numpy(), atol=1e-5, rtol=0)
    assert maps["prefix_norm"].shape == (2, model.layers, 3)


def _layout(grid=(2, 3), prefix=1, patch=2) -> TokenLayout:
    return TokenLayout(prefix=prefix, grid=grid, has_cls=True, patch_size=patch)


def test_entropy_counts_zero_attention_as_zero():
    """One-hot rows (exact zeros elsewhere) have entropy 0, not NaN; uniform rows ln T."""
    layout = _layout()
    tokens = 1 + 6
    one_hot = torch.zeros(1, 2, tokens, tokens)
    one_hot[..., 3] = 1.0
    uniform = torch.full((1, 1, tokens, tokens), 1.0 / tokens)
    step = entropy_reduction(layout)
    assert torch.equal(step(0, one_hot), torch.zeros(1, 2))
    torch.testing.assert_close(step(0, uniform), torch.full((1, 1), float(np.log(tokens))))


def test_distance_is_in_pixels_between_patch_centres_row_major():
    """Grid 2 x 3, patch 2 px: each patch query looks only at patch 5 (row 1, col 2)."""
    layout = _layout()
    attn = torch.zeros(1, 1, 7, 7)
    attn[..., 0] = 0.5  # attention to the CLS token does not count towards the distance
    attn[..., 1 + 5] = 0.5
    rows, cols = np.divmod(np.arange(6), 3)
    expected = np.mean(2 * np.hypot(rows - 1, cols - 2))
    torch.testing.assert_close(distance_reduction(layout)(0, attn), torch.tensor([[expected]], dtype=torch.float32))
    torch.testing.assert_close(prefix_mass_reduction(layout)(0, attn), torch.full((1, 1), 0.5))


def test_statistics_change_the_cache_key():
    """An npz cached before the statistics existed (or with others) is recomputed."""
    entry = ModelEntry(name="m", checkpoint="c", weights="random", kind="vit", layers=2, grid=(2, 3),
                       methods=("mean",), statistics=statistics_for(Capabilities("vit", cls=True)))
    assert cache_key("0" * 64, entry) != cache_key("0" * 64, replace(entry, statistics=()))


def test_a_build_exports_the_statistics_with_the_documented_shapes(tiny_checkpoints, tmp_path):
    models = {"d": "dinov2_registers", "s": "siglip", "r": "timm_resnet"}
    result = _small_build(tiny_checkpoints, tmp_path, models, "--image-size", "16x24")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "maps" / "manifest.json").read_text())
    entries = {m["name"]: m for m in manifest["models"]}
    assert entries["d"]["statistics"] == list(statistics_for(Capabilities("vit", cls=True)))
    assert entries["s"]["statistics"] == list(statistics_for(Capabilities("vit")))
    assert entries["r"]["statistics"] == []
    for name in ("d", "s"):
        entry = entries[name]
        sizes = {"layer": entry["layers"], "head": entry["heads"], "row": entry["grid"][0],
                 "col": entry["grid"][1], "prefix": entry["prefix_tokens"], "component": 3}
        assert entry["grid"] == [4, 6]
        with np.load(tmp_path / "maps" / entry["maps"]["chelsea"]) as npz:
            for statistic in map(get_statistic, entry["statistics"]):
                values = npz[statistic.name]
                assert values.dtype == np.float32
                assert values.shape == tuple(sizes[axis] for axis in statistic.axes), statistic.name
            assert {s.name for s in all_statistics()} & set(npz.files) == set(entry["statistics"])
    with np.load(tmp_path / "maps" / entries["r"]["maps"]["chelsea"]) as npz:
        assert not {s.name for s in all_statistics()} & set(npz.files)

    # a cache from before the statistics (npz and model.json without them) is recomputed
    _strip_statistics(tmp_path / "maps", "d", "chelsea")
    result = _small_build(tiny_checkpoints, tmp_path, models, "--image-size", "16x24")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "maps" / "d" / "chelsea.npz") as npz:
        assert set(statistics_for(Capabilities("vit", cls=True))) <= set(npz.files)


def _strip_statistics(maps_dir, model: str, image: str) -> None:
    """Make ``model``'s cache look as an older build left it: no statistics in its npz or model.json."""
    record_file = maps_dir / model / "model.json"
    record = json.loads(record_file.read_text())
    del record["entry"]["statistics"]
    record_file.write_text(json.dumps(record))
    old_entry = ModelEntry.from_json(record["entry"])
    assert old_entry.statistics == ()
    npz_file = maps_dir / model / f"{image}.npz"
    with np.load(npz_file) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "meta" and k not in {s.name for s in all_statistics()}}
        meta = json.loads(str(npz["meta"]))
    images_dir, _ = sample_paths()
    (image_file,) = [p for p in images_dir.iterdir() if p.stem == image]
    meta["cache_key"] = cache_key(hashlib.sha256(image_file.read_bytes()).hexdigest(), old_entry)
    write_maps(npz_file, arrays, meta)


@pytest.mark.parametrize("family", ["dinov2_registers", "siglip"])
def test_statistics_run_in_float32_under_autocast(tiny_checkpoints, family):
    """Under bf16 autocast (as on a GPU) the statistics are still computed in float32: they equal the
    float64 reference from that pass's own attention and hidden states to float32 precision."""
    model = _load(tiny_checkpoints, family)
    pixels = _pixels(model)
    maps, captured = maps_under_bf16_autocast(model, pixels, {"attn": model.attention_points,
                                                              "hidden": model.block_outputs})
    attn, hidden = captured["attn"], captured["hidden"]
    hidden = np.concatenate([np.zeros_like(hidden[:, :1]), hidden], axis=1)  # entry l + 1 is layer l's output
    for b in range(pixels.shape[0]):
        expected = reference.head_statistics(attn[b], hidden[b], model.prefix_tokens, model.grid, model.patch_size)
        for name, values in expected.items():
            np.testing.assert_allclose(maps[name][b], values, rtol=2e-6, atol=1e-6, err_msg=name)


def test_statistics_keep_no_views_of_the_layer_tensors(tiny_checkpoints):
    """Each layer's statistics are their own small tensors, never views keeping a layer's attention alive."""
    from ssl_attention.attention import _Reducer

    model = _load(tiny_checkpoints, "dinov2_registers")
    reducer = _Reducer(model, (), tuple(map(get_statistic, model.statistics)))
    tokens = model.prefix_tokens + model.grid[0] * model.grid[1]
    for layer in range(model.layers):
        reducer(layer, torch.softmax(torch.randn(2, model.heads, tokens, tokens), dim=-1))
        reducer.hidden(layer, torch.randn(2, tokens, 32))
    for name in model.statistics:
        for kept in reducer.out[name]:
            assert kept.untyped_storage().nbytes() == kept.numel() * kept.element_size(), name
