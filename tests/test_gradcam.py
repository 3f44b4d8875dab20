"""Grad-CAM of every ResNet stage against a computation from the definition."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ssl_attention.maps import compute_maps
from ssl_attention.models import ModelRequest, load_model


def _resnet(tiny_checkpoints):
    return load_model(ModelRequest("resnet", str(tiny_checkpoints["timm_resnet"])), weights="pretrained",
                      image_size=(64, 96))


def _reference(module, pixels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Forward through the stages by hand, .backward() on the top-1 logits, cam from the definition."""
    x = pixels.clone()
    x = module.maxpool(module.act1(module.bn1(module.conv1(x))))
    stages = []
    for name in ("layer1", "layer2", "layer3", "layer4"):
        x = getattr(module, name)(x)
        x.retain_grad()
        stages.append(x)
    logits = module.fc(module.global_pool(x))
    top1 = logits.argmax(dim=1)
    module.zero_grad()
    logits[torch.arange(len(top1)), top1].sum().backward()
    grid = stages[0].shape[-2:]
    cams = []
    for act in stages:
        weights = act.grad.mean(dim=(2, 3))  # [B, C]
        cam = torch.relu(torch.einsum("bc,bchw->bhw", weights, act.detach()))
        cams.append(F.interpolate(cam[:, None], size=grid, mode="bilinear", align_corners=False)[:, 0])
    return torch.stack(cams, dim=1).numpy(), top1.numpy()


def test_gradcam_matches_definition(tiny_checkpoints):
    model = _resnet(tiny_checkpoints)
    assert model.kind == "cnn" and model.methods == ("gradcam",)
    assert model.grid == (16, 24)  # stage-1 grid = input / 4, non-square
    pixels = torch.randn(3, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    maps = compute_maps(model, pixels)
    expected, top1 = _reference(model.module, pixels)
    assert maps["gradcam"].shape == (3, 4, 16, 24) and maps["gradcam"].dtype == np.float32
    np.testing.assert_allclose(maps["gradcam"], expected, atol=1e-5, rtol=1e-4)
    np.testing.assert_array_equal(maps["gradcam_class"], top1)
    assert (maps["gradcam"] >= 0).all() and maps["gradcam"].max() > 0


def test_gradcam_repeats_exactly_and_leaves_no_parameter_gradients(tiny_checkpoints):
    """Gradients must not accumulate between calls (a classic Grad-CAM bug)."""
    model = _resnet(tiny_checkpoints)
    pixels = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    first = compute_maps(model, pixels)["gradcam"]
    second = compute_maps(model, pixels)["gradcam"]
    np.testing.assert_array_equal(first, second)
    assert all(p.grad is None for p in model.module.parameters())
