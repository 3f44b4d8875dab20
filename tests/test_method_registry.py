"""The method registry is the one place a method is defined: a toy method added there alone is computed,
exported, scored, rendered and offered by the pages."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import ssl_attention.methods as registry
from atlas.cli import app
from atlas.dataset.stage import sample_paths
from ssl_attention.capabilities import Capabilities
from ssl_attention.images import image_id, load_image
from ssl_attention.methods import Method, TokenLayout, get_method, method_names, methods_for
from ssl_attention.models import ModelRequest, load_model
from ssl_attention.preprocess import to_tensor


def last_patch_reduction(layout: TokenLayout):
    """Toy method: per head, where the last patch token looks (A[l][h, last patch, P])."""
    patches = layout.patches
    return lambda _layer, attn: attn[:, :, patches.stop - 1, patches].clone()


TOY = Method("toy", "last patch's attention", kinds=("vit",), per_head=True, wrong_kind="toy needs attention",
             reduction=last_patch_reduction)


@pytest.fixture()
def toy_method(monkeypatch):
    monkeypatch.setattr(registry, "METHODS", (*registry.METHODS, TOY))
    return TOY


def test_the_registry_describes_every_method():
    assert method_names() == ("cls", "mean", "rollout", "gradcam", "relevance", "gradcam_vit", "probe")
    assert methods_for(Capabilities("vit", probe=True)) == ("mean", "rollout", "probe")
    assert methods_for(Capabilities("vit", cls=True)) == ("cls", "mean", "rollout")
    assert methods_for(Capabilities("vit", text_tower=True)) == ("mean", "rollout", "relevance", "gradcam_vit")
    assert methods_for(Capabilities("vit")) == ("mean", "rollout")
    assert methods_for(Capabilities("cnn")) == ("gradcam",)
    assert get_method("cls").fused_array == "cls_fused" and get_method("rollout").head_array is None
    assert get_method("gradcam").unit == "stage" and get_method("relevance").unit == "target"


def _data_block(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="atlas-data">(.*?)</script>', html, re.S)
    assert match, "no data block"
    return json.loads(match.group(1))


def test_a_method_added_to_the_registry_alone_reaches_the_export_and_the_pages(toy_method, tiny_checkpoints,
                                                                            tmp_path):
    checkpoint = tiny_checkpoints["dinov2_registers"]
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", "--model", f"dinov2={checkpoint}", "--weights", "pretrained",
                                      "--image-size", "28", "--out", str(out)])
    assert result.exit_code == 0, result.output

    manifest = json.loads((out / "maps" / "manifest.json").read_text())
    assert manifest["methods"] == ["cls", "mean", "rollout", "toy"]
    (entry,) = manifest["models"]
    assert entry["methods"] == ["cls", "mean", "rollout", "toy"]

    # the exported maps equal the rule computed here from transformers' own attentions
    model = load_model(ModelRequest("dinov2", str(checkpoint)), weights="pretrained", image_size=(28, 28))
    images_dir, _ = sample_paths()
    path = sorted(images_dir.iterdir())[0]
    pixels = to_tensor([load_image(path)], model.preprocessing)
    with torch.no_grad():
        attentions = model.module(pixel_values=pixels, output_attentions=True).attentions
    attn = torch.stack(attentions, dim=1)[0].double().numpy()  # [L, H, T, T]
    gh, gw = model.grid
    expected = attn[:, :, model.prefix_tokens + gh * gw - 1, model.prefix_tokens:].reshape(*attn.shape[:2], gh, gw)
    with np.load(out / "maps" / entry["maps"][image_id(path)]) as npz:
        np.testing.assert_allclose(npz["toy"], expected, atol=1e-6, rtol=0)
        np.testing.assert_allclose(npz["toy_fused"], expected.mean(axis=1), atol=1e-6, rtol=0)

    # scored by the metrics stage, rendered, and offered by the pages (label from the registry)
    from atlas.metrics.rows import SUFFIX, read_rows

    scored = {(r.method, r.head) for r in read_rows(out / "metrics" / f"dinov2{SUFFIX}")}
    assert ("toy", "fused") in scored and ("toy", "0") in scored
    site = out / "site"
    ident = image_id(path)
    assert (site / "atlas-data" / "maps" / "dinov2" / ident / "toy.png").is_file()
    page = (site / "atlas" / "images" / ident / "index.html").read_text(encoding="utf-8")
    data = _data_block(page)
    assert {"key": "toy", "label": TOY.label, "unit": "layer"} in data["methods"]
    assert "toy" in data["models"][0]["methods"] and "toy" in data["models"][0]["headMethods"]
    assert 'value="toy"' in page and TOY.label in page
