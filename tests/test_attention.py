"""Every map kind of every ViT family against the independent reference, to 1e-5."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssl_attention.errors import AtlasError, ModelLoadError, UnsupportedError
from ssl_attention.maps import compute_maps
from ssl_attention.models import ModelRequest, load_model
from ssl_attention.preprocess import to_tensor
from tests import reference

HF_FAMILIES = ["dinov2_registers", "dinov2", "dinov3", "mae", "clip", "siglip", "siglip2_naflex", "vit"]


def _load(tiny_checkpoints, key: str, **kwargs):
    return load_model(ModelRequest(key.replace("_", "-"), str(tiny_checkpoints[key])), weights="pretrained", **kwargs)


def _pixels(model, seed: int = 0, batch: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, *model.preprocessing.size, generator=generator)


def _hf_outputs(model, pixels: torch.Tensor, **flags):
    """transformers' own output for ``pixels`` with ``flags`` (e.g. output_attentions=True)."""
    from ssl_attention.models.hf import _naflex_inputs

    module = model.module
    with torch.no_grad():
        if model.family == "siglip2":
            return module(**_naflex_inputs(pixels, model.patch_size), **flags)
        if model.family == "mae":
            n = model.grid[0] * model.grid[1]
            noise = torch.arange(n, dtype=torch.float32).expand(pixels.shape[0], -1)
            return module(pixel_values=pixels, noise=noise, interpolate_pos_encoding=True, **flags)
        if model.family in ("dinov2", "dinov3"):
            return module(pixel_values=pixels, **flags)
        return module(pixel_values=pixels, interpolate_pos_encoding=True, **flags)


def _hf_attentions(model, pixels: torch.Tensor) -> np.ndarray:
    """[B, L, H, T, T] from transformers' own output_attentions path."""
    out = _hf_outputs(model, pixels, output_attentions=True)
    return torch.stack(out.attentions, dim=1).double().numpy()


def _check_against_reference(model, maps: dict, attentions: np.ndarray) -> None:
    prefix, grid = model.prefix_tokens, model.grid
    for b in range(attentions.shape[0]):
        if model.has_cls:
            expected = reference.cls_maps(attentions[b], prefix, grid)
            np.testing.assert_allclose(maps["cls"][b], expected, atol=1e-5, rtol=0)
            np.testing.assert_allclose(maps["cls_fused"][b], expected.mean(axis=1), atol=1e-5, rtol=0)
        else:
            assert "cls" not in maps and "cls_fused" not in maps
        expected = reference.mean_maps(attentions[b], prefix, grid)
        np.testing.assert_allclose(maps["mean"][b], expected, atol=1e-5, rtol=0)
        np.testing.assert_allclose(maps["mean_fused"][b], expected.mean(axis=1), atol=1e-5, rtol=0)
        expected = reference.rollout_maps(attentions[b], prefix, grid, model.has_cls)
        np.testing.assert_allclose(maps["rollout"][b], expected, atol=1e-5, rtol=0)
    for values in maps.values():
        assert values.dtype == np.float32


@pytest.mark.parametrize("family", HF_FAMILIES)
def test_hf_maps_match_reference(tiny_checkpoints, family):
    model = _load(tiny_checkpoints, family)
    pixels = _pixels(model)
    maps = compute_maps(model, pixels)
    layers, heads = model.layers, model.heads
    assert maps["mean"].shape == (2, layers, heads, *model.grid)
    assert maps["rollout"].shape == (2, layers, *model.grid)
    _check_against_reference(model, maps, _hf_attentions(model, pixels))


@pytest.mark.parametrize("family", ["siglip2_naflex", "siglip", "dinov2_registers", "dinov3", "clip"])
def test_non_square_grid(tiny_checkpoints, family):
    """Grid = input size / patch (rows 6, cols 10 here), never sqrt(N)."""
    model = _load(tiny_checkpoints, family, image_size=(24, 40))
    assert model.grid == (6, 10)
    pixels = _pixels(model, seed=3)
    maps = compute_maps(model, pixels)
    assert maps["mean"].shape[-2:] == (6, 10)
    _check_against_reference(model, maps, _hf_attentions(model, pixels))


def test_naflex_patches_match_the_siglip2_processor():
    """Our SigLIP2 patchification equals the processor's own (channel order inside each patch)."""
    from transformers.models.siglip2.image_processing_siglip2 import convert_image_to_patches

    from ssl_attention.models.hf import _naflex_inputs

    image = torch.randn(1, 3, 12, 20)
    ours = _naflex_inputs(image, 4)
    expected = convert_image_to_patches(image[0], 4)
    torch.testing.assert_close(ours["pixel_values"][0], expected)
    assert ours["spatial_shapes"].tolist() == [[3, 5]]


def test_timm_vit_maps_match_timm_attention_extract(tiny_checkpoints):
    """timm ViT with 2 registers: our hooks vs timm's own AttentionExtract (FX graph)."""
    from timm.utils import AttentionExtract

    model = _load(tiny_checkpoints, "timm_vit")
    assert (model.prefix_tokens, model.num_registers, model.has_cls) == (3, 2, True)
    pixels = _pixels(model)
    maps = compute_maps(model, pixels)
    with torch.no_grad():
        collected = AttentionExtract(model.module, method="fx")(pixels)
    attentions = torch.stack(list(collected.values()), dim=1).double().numpy()
    assert attentions.shape[1] == model.layers
    _check_against_reference(model, maps, attentions)


def test_registers_are_not_patches(tiny_checkpoints):
    """DINOv2 with registers: patches start at 1 + registers; the copy-pasted [1:] slice is wrong."""
    model = _load(tiny_checkpoints, "dinov2_registers")
    assert model.num_registers == 2 and model.prefix_tokens == 3
    pixels = _pixels(model, batch=1)
    maps = compute_maps(model, pixels)
    attentions = _hf_attentions(model, pixels)[0]
    n = model.grid[0] * model.grid[1]
    naive = attentions[-1, :, 0, 1:1 + n].reshape(model.heads, *model.grid)
    correct = attentions[-1, :, 0, 3:3 + n].reshape(model.heads, *model.grid)
    np.testing.assert_allclose(maps["cls"][0, -1], correct, atol=1e-7, rtol=0)
    # random tiny models attend almost uniformly, so the wrong slice is off by ~1e-4, far above 1e-7
    assert np.abs(maps["cls"][0, -1] - naive).max() > 1e-5


def test_mae_keeps_every_patch_in_order_and_is_deterministic(tiny_checkpoints):
    """MAE masks 75% by default and shuffles even at ratio 0: we load with ratio 0 and fixed noise."""
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(tiny_checkpoints["mae"]).mask_ratio == 0.75  # the checkpoint's default
    model = _load(tiny_checkpoints, "mae")
    assert model.module.config.mask_ratio == 0.0
    pixels = _pixels(model)
    first = compute_maps(model, pixels)
    second = compute_maps(model, pixels)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    # an image's maps do not depend on the other images of the batch (no random noise per batch)
    alone = compute_maps(model, pixels[:1])
    np.testing.assert_allclose(alone["cls"][0], first["cls"][0], atol=1e-6)


def test_eager_attention_is_enforced(tiny_checkpoints):
    """SDPA returns no attention weights: we load eager, and say so clearly if someone switches it."""
    model = _load(tiny_checkpoints, "dinov2")
    assert model.module.config._attn_implementation == "eager"
    model.module.set_attn_implementation("sdpa")
    with pytest.raises(AtlasError, match="no attention weights"):
        compute_maps(model, _pixels(model, batch=1))


def test_rollout_rows_are_normalised(tiny_checkpoints):
    """With rows renormalised (keepdim), the CLS rollout row over all tokens sums to 1, so patches < 1."""
    model = _load(tiny_checkpoints, "clip")
    maps = compute_maps(model, _pixels(model))
    sums = maps["rollout"].sum(axis=(-2, -1))
    assert np.all(sums > 0) and np.all(sums < 1 + 1e-6)


def test_per_head_requests(tiny_checkpoints):
    model = _load(tiny_checkpoints, "dinov2")
    pixels = _pixels(model, batch=1)
    with pytest.raises(UnsupportedError, match="rollout has no per-head maps"):
        compute_maps(model, pixels, ("rollout",), per_head=True)
    fused_only = compute_maps(model, pixels, ("cls", "rollout"), per_head=False, statistics=False)
    assert sorted(fused_only) == ["cls_fused", "rollout"]
    every_method = compute_maps(model, pixels, per_head=True)  # heads where they exist, rollout fused
    statistics = ["distance", "entropy", "pca", "prefix_mass", "prefix_norm", "token_norm"]  # the statistics stay
    assert sorted(every_method) == sorted(["cls", "cls_fused", "mean", "mean_fused", "rollout", *statistics])


def test_unsupported_methods_name_the_reason(tiny_checkpoints):
    siglip = _load(tiny_checkpoints, "siglip")
    with pytest.raises(UnsupportedError, match="no CLS token"):
        compute_maps(siglip, _pixels(siglip, batch=1), ("cls",))
    with pytest.raises(UnsupportedError, match="Grad-CAM is implemented for CNNs only"):
        compute_maps(siglip, _pixels(siglip, batch=1), ("gradcam",))


def test_different_checkpoints_give_different_maps(tmp_path, tiny_checkpoints):
    """Byte-identical maps from two checkpoints would mean the weights were never loaded."""
    from tests import tiny_models

    other = tiny_models.dinov2_registers(tmp_path / "other", seed=1)
    a = _load(tiny_checkpoints, "dinov2_registers")
    b = load_model(ModelRequest("other", str(other)), weights="pretrained")
    again = _load(tiny_checkpoints, "dinov2_registers")
    pixels = _pixels(a, batch=1)
    maps_a, maps_b, maps_again = (compute_maps(m, pixels) for m in (a, b, again))
    assert not np.allclose(maps_a["cls"], maps_b["cls"], atol=1e-4)
    np.testing.assert_array_equal(maps_a["cls"], maps_again["cls"])


def test_loaded_weights_equal_saved_weights(tiny_checkpoints):
    from safetensors.torch import load_file

    model = _load(tiny_checkpoints, "dinov3")
    saved = load_file(str(tiny_checkpoints["dinov3"] / "model.safetensors"))
    state = model.module.state_dict()
    matched = 0
    for key, tensor in saved.items():
        ours = [name for name in state if name.endswith(key) or key.endswith(name)]
        assert len(ours) == 1, key
        torch.testing.assert_close(state[ours[0]], tensor)
        matched += 1
    assert matched == len(state)


def test_preprocessing_feeds_the_whole_image(tiny_checkpoints):
    """to_tensor on a real image gives the model input size; the tensor is what the model sees."""
    from PIL import Image

    model = _load(tiny_checkpoints, "dinov2")
    image = Image.new("RGB", (50, 20), (255, 0, 0))
    pixels = to_tensor([image], model.preprocessing)
    assert tuple(pixels.shape) == (1, 3, *model.preprocessing.size)


def test_reductions_do_not_keep_attention_matrices_alive(tiny_checkpoints):
    """Each layer keeps only its reduced maps: no stored tensor is a view into a [B, H, T, T] matrix.

    (A view would hold every layer's full attention until the batch ends: 2.6 GB instead of 0.5 GB
    for a 518 px DINOv2 batch of two, measured with bench/.)
    """
    from ssl_attention.attention import _Reducer
    from ssl_attention.methods import get_method

    model = _load(tiny_checkpoints, "dinov2_registers")
    reducer = _Reducer(model, tuple(get_method(m) for m in ("cls", "mean", "rollout")))
    tokens = model.prefix_tokens + model.grid[0] * model.grid[1]
    for layer in range(model.layers):
        reducer(layer, torch.softmax(torch.randn(2, model.heads, tokens, tokens), dim=-1))
    for method in ("cls", "mean", "rollout"):
        for kept in reducer.out[method]:
            assert kept.untyped_storage().nbytes() == kept.numel() * kept.element_size(), method


def maps_under_bf16_autocast(model, pixels: torch.Tensor, points: dict[str, list]) -> tuple[dict, dict]:
    """``compute_maps`` under bf16 autocast (as on a GPU), and what the hooks ``points`` (name -> one
    (module, getter) per layer) saw in that very pass: name -> float64 array [B, L, ...]."""
    captured: dict[tuple[str, int], torch.Tensor] = {}

    def keep(key, getter):
        return lambda _m, _i, output: captured.__setitem__(key, getter(output).detach().double().clone())

    handles = [module.register_forward_hook(keep((name, layer), getter))
               for name, hooks in points.items() for layer, (module, getter) in enumerate(hooks)]
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            maps = compute_maps(model, pixels)
    finally:
        for handle in handles:
            handle.remove()
    stacked = {name: torch.stack([captured[name, layer] for layer in range(len(hooks))], dim=1).numpy()
               for name, hooks in points.items()}
    return maps, stacked


@pytest.mark.parametrize("family", ["dinov2_registers", "siglip"])
def test_reductions_run_in_float32_under_autocast(tiny_checkpoints, family):
    """Under bf16 autocast (as on a GPU) the model's attention is bf16-ish, but every reduction of it
    (cls, mean, rollout's matrix product) is float32: the maps equal the float64 reference computed from
    the very attention weights of that autocast forward pass to float32 precision (bf16 gives ~1e-3)."""
    model = _load(tiny_checkpoints, family)
    pixels = _pixels(model)
    maps, captured = maps_under_bf16_autocast(model, pixels, {"attn": model.attention_points})
    attentions = captured["attn"]
    prefix, grid = model.prefix_tokens, model.grid
    for b in range(attentions.shape[0]):
        expected = {"mean": reference.mean_maps(attentions[b], prefix, grid),
                    "rollout": reference.rollout_maps(attentions[b], prefix, grid, model.has_cls)}
        if model.has_cls:
            expected["cls"] = reference.cls_maps(attentions[b], prefix, grid)
        for name, values in expected.items():
            np.testing.assert_allclose(maps[name][b], values, rtol=2e-6, atol=1e-8, err_msg=name)
            if name != "rollout":
                np.testing.assert_allclose(maps[f"{name}_fused"][b], values.mean(axis=1), rtol=2e-6, atol=1e-8)


def _block_inputs(model, pixels: torch.Tensor) -> list[torch.Tensor]:
    """The input of every timm block during one forward pass."""
    inputs: list[torch.Tensor] = []
    handles = [block.register_forward_pre_hook(lambda _m, args: inputs.append(args[0].detach()))
               for block in model.module.blocks]
    try:
        with torch.no_grad():
            model.module.forward_features(pixels)
    finally:
        for handle in handles:
            handle.remove()
    return inputs


def _softmax_attention(q: torch.Tensor, k: torch.Tensor, heads: int) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) per head, from [B, N, C] queries and keys: [B, heads, N, N]."""
    b, n, c = q.shape
    q = q.double().reshape(b, n, heads, c // heads).transpose(1, 2)
    k = k.double().reshape(b, n, heads, c // heads).transpose(1, 2)
    return torch.softmax(q @ k.transpose(-2, -1) / (c // heads) ** 0.5, dim=-1)


def _parallel_scaling_attention(block, x: torch.Tensor) -> torch.Tensor:
    """ParallelScalingBlock: in_proj(in_norm(x)) = [mlp | q | k | v]."""
    assert isinstance(block.q_norm, torch.nn.Identity) and isinstance(block.k_norm, torch.nn.Identity)
    _, q, k, _ = torch.split(block.in_proj(block.in_norm(x)), block.in_split, dim=-1)
    return _softmax_attention(q, k, block.num_heads)


def _parallel_things_attention(block, x: torch.Tensor) -> torch.Tensor:
    """ParallelThingsBlock: each branch's qkv(norm(x)) = [q | k | v]; the branches' heads side by side."""
    per_branch = []
    for branch in block.attns:
        q, k, _ = branch.attn.qkv(branch.norm(x)).chunk(3, dim=-1)
        per_branch.append(_softmax_attention(q, k, branch.attn.num_heads))
    return torch.cat(per_branch, dim=1)


@pytest.mark.parametrize(("key", "attention_of", "heads", "has_cls"), [
    ("timm_vit_parallel_scaling", _parallel_scaling_attention, 4, False),
    ("timm_vit_parallel_things", _parallel_things_attention, 8, True),
])
def test_timm_parallel_blocks_match_their_attention_computed_by_hand(tiny_checkpoints, key, attention_of,
                                                                     heads, has_cls):
    """vit_pwee (ParallelScalingBlock, 1 register, no CLS) and vit_small_18x2 (two attentions per block):
    our maps vs softmax(q k^T / sqrt(d)) computed from each block's weights and input."""
    model = _load(tiny_checkpoints, key)
    assert (model.layers, model.heads, model.has_cls) == (3, heads, has_cls)
    assert model.num_registers == (1 if key.endswith("scaling") else 0)
    pixels = _pixels(model)
    maps = compute_maps(model, pixels)
    with torch.no_grad():
        attentions = [attention_of(block, x) for block, x in zip(model.module.blocks, _block_inputs(model, pixels),
                                                                  strict=True)]
    _check_against_reference(model, maps, torch.stack(attentions, dim=1).numpy())


def test_timm_blocks_without_hookable_attention_are_refused_in_one_line():
    """Differential attention (two softmaxes subtracted) has no single attention matrix to map."""
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRequest("d", "timm:vit_dpwee_patch16_reg1_gap_256"), weights="random")
    message = str(err.value)
    assert "DiffParallelScalingBlock does not expose weights" in message and "\n" not in message, message


def test_sides_snap_to_the_nearest_patch_multiple_halves_up():
    from ssl_attention.preprocess import snap_to_patch

    assert snap_to_patch((20, 28), 8) == (24, 32)  # 2.5 and 3.5 patches: both up (not to even)
    assert snap_to_patch((19, 27), 8) == (16, 24)
    assert snap_to_patch((1, 3), 14) == (14, 14)  # never below one patch
    assert snap_to_patch((21, 518), 14) == (28, 518)


@pytest.mark.parametrize(("resample", "expected"), [(0, "nearest"), (2, "bilinear"), (3, "bicubic"),
                                                    (None, "bicubic")])
def test_processor_resample_codes_are_read_as_given(tmp_path, tiny_checkpoints, resample, expected):
    """PIL code 0 is NEAREST, not 'unset' (it used to be read as bicubic)."""
    import json
    import shutil

    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoints["dinov2"], folder)
    config = {"image_processor_type": "BitImageProcessor", "size": {"shortest_edge": 32}}
    if resample is not None:
        config["resample"] = resample
    (folder / "preprocessor_config.json").write_text(json.dumps(config))
    model = load_model(ModelRequest("x", str(folder)), weights="pretrained")
    assert model.preprocessing.resample == expected
