"""The capability and metric registries: a method states what it needs of a model's ``Capabilities`` (and why
a model is refused); a metric is one registry entry that reaches the rows, the summary and the pages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import ssl_attention.methods as method_registry
import ssl_attention.metrics as metric_registry
from atlas.cli import app
from atlas.core.manifest import Manifest
from atlas.dataset.stage import sample_paths
from atlas.metrics.data import load_metrics
from atlas.metrics.rows import SUFFIX, read_rows
from atlas.metrics.stage import compute_metrics
from atlas.site.stage import build_site
from ssl_attention.aggregate import best_layer, index_rows
from ssl_attention.capabilities import REGISTERS, Capabilities
from ssl_attention.errors import UnsupportedError
from ssl_attention.images import image_id, load_image
from ssl_attention.maps import check_request
from ssl_attention.methods import Method, TokenLayout, get_method, methods_for, statistics_for
from ssl_attention.metrics import (
    MapStack,
    Metric,
    MetricConfig,
    Target,
    higher_is_better,
    make_target,
    top_percent_chance,
    top_percent_iou,
    uniform_scores,
)
from ssl_attention.models import ModelRequest, load_model
from ssl_attention.models.specs import DEFAULT_CAPABILITIES, DEFAULT_MODELS
from ssl_attention.preprocess import to_tensor
from tests.fixtures.fake_maps import write_fake_build

ROOT = Path(__file__).resolve().parent.parent

# -- capabilities ------------------------------------------------------------------------------------------


def register_reduction(layout: TokenLayout):
    """Toy method: per head, the attention each patch pays to the register tokens (A[l][h, patch, registers])."""
    registers, patches = slice(int(layout.has_cls), layout.prefix), layout.patches
    return lambda _layer, attn: attn[:, :, patches, registers].sum(dim=-1)


SINK = Method("register_sink", "attention paid to the registers", kinds=("vit",), per_head=True,
              wrong_kind="it is a CNN without attention", requires=(REGISTERS,), reduction=register_reduction)


@pytest.fixture()
def sink_method(monkeypatch):
    monkeypatch.setattr(method_registry, "METHODS", (*method_registry.METHODS, SINK))
    return SINK


def test_capabilities_decide_the_methods_and_the_reason_of_a_refusal():
    cls_vit, siglip = Capabilities("vit", cls=True), Capabilities("vit")
    assert methods_for(cls_vit) == ("cls", "mean", "rollout")
    assert methods_for(Capabilities("vit", text_tower=True)) == ("mean", "rollout", "relevance", "gradcam_vit")
    assert methods_for(Capabilities("vit", cls=True, classifier=True))[-2:] == ("relevance", "gradcam_vit")
    assert methods_for(Capabilities("cnn")) == ("gradcam",)
    assert get_method("cls").refusal(siglip) == "it has no CLS token"
    assert get_method("cls").refusal(cls_vit) == "" and get_method("cls").offered_to(cls_vit)
    assert get_method("gradcam").refusal(cls_vit) == "Grad-CAM is implemented for CNNs only"
    assert get_method("relevance").refusal(cls_vit).startswith("it has no score to explain (")
    assert statistics_for(Capabilities("vit", registers=4)) == statistics_for(cls_vit)
    assert "prefix_mass" not in statistics_for(siglip) and statistics_for(Capabilities("cnn")) == ()
    assert set(DEFAULT_CAPABILITIES) == set(DEFAULT_MODELS)  # every default model, known without loading it


def test_a_method_requiring_registers_is_offered_to_dinov2_with_registers_and_refused_for_clip(
        sink_method, tiny_checkpoints, tmp_path):
    size = (28, 28)
    dinov2 = load_model(ModelRequest("dinov2", str(tiny_checkpoints["dinov2_registers"])), weights="pretrained",
                        image_size=size)
    clip = load_model(ModelRequest("clip", str(tiny_checkpoints["clip"])), weights="pretrained", image_size=size)
    assert dinov2.capabilities.registers == 2 and "register_sink" in dinov2.methods
    assert clip.capabilities == Capabilities("vit", cls=True) and "register_sink" not in clip.methods
    assert sink_method.refusal(clip.capabilities) == "it has no register tokens"
    with pytest.raises(UnsupportedError, match="does not support register_sink: it has no register tokens"):
        check_request(clip, ("register_sink",))

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", "--model", f"dinov2={tiny_checkpoints['dinov2_registers']}",
                                      "--model", f"clip={tiny_checkpoints['clip']}", "--method", "register_sink",
                                      "--weights", "pretrained", "--image-size", "28", "--no-site",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert ("model clip (CLIPVisionModel) does not support register_sink: it has no register tokens; it offers "
            "cls, mean, rollout") in report["skipped"]
    (entry,) = json.loads((out / "maps" / "manifest.json").read_text())["models"]
    assert (entry["name"], entry["methods"]) == ("dinov2", ["register_sink"])

    # the exported maps are the rule computed here from transformers' own attentions
    path = sorted(sample_paths()[0].iterdir())[0]
    with torch.no_grad():
        attentions = dinov2.module(pixel_values=to_tensor([load_image(path)], dinov2.preprocessing),
                                   output_attentions=True).attentions
    attn = torch.stack(attentions, dim=1)[0].double().numpy()  # [L, H, T, T]
    prefix, (gh, gw) = dinov2.prefix_tokens, dinov2.grid
    expected = attn[:, :, prefix:prefix + gh * gw, 1:prefix].sum(axis=-1).reshape(*attn.shape[:2], gh, gw)
    with np.load(out / "maps" / entry["maps"][image_id(path)]) as npz:
        np.testing.assert_allclose(npz["register_sink"], expected, atol=1e-6, rtol=0)
    assert {r.method for r in read_rows(out / "metrics" / f"dinov2{SUFFIX}")} >= {"register_sink"}


# -- metrics -----------------------------------------------------------------------------------------------


def test_the_metric_registry_names_the_columns_and_gives_the_chance_levels():
    config = MetricConfig()
    assert config.names() == ["iou@10", "iou@15", "iou@20", "iou@25", "iou@30", "iou@40", "iou@50",
                              "iou_mass@60", "coverage", "pointing", "pointing@15px", "mse", "kl", "emd"]
    assert config.box_names() == ["box_iou@25", "box_coverage"]
    assert MetricConfig(percents=(33,), mass=0.5, tolerance_px=7).names()[:2] == ["iou@33", "iou_mass@50"]
    assert [n for n in config.names() if not higher_is_better(n)] == ["mse", "kl", "emd"]  # issue 27
    target = make_target([], (8, 8), (2, 2), 2)
    assert uniform_scores(target) == []  # no boxes: no columns


def miss(stack: MapStack, region: int, _value=None):
    """Toy metric: 1 - IoU of the top 25 % cells (lower is better)."""
    return 1.0 - top_percent_iou(stack, region, 25)


def miss_chance(target: Target, region: int, _value=None) -> float:
    return 1.0 - top_percent_chance(target, region, 25)


MISS = Metric("miss@25", miss, miss_chance, "1 - iou@25", higher_is_better=False)


@pytest.fixture()
def miss_metric(monkeypatch):
    monkeypatch.setattr(metric_registry, "METRICS", (*metric_registry.METRICS, MISS))
    return MISS


def _values(rows, metric: str) -> dict[tuple, float]:
    return {(r.image, r.method, r.layer, r.head): r.value for r in rows if r.metric == metric and r.box is None}


def test_a_metric_added_to_the_registry_alone_reaches_rows_summary_and_pages(miss_metric, tmp_path):
    write_fake_build(tmp_path)
    report = compute_metrics(tmp_path)
    assert not higher_is_better("miss@25") and MetricConfig().names()[-1] == "miss@25"

    rows = read_rows(tmp_path / "metrics" / f"dinov2{SUFFIX}")
    iou, missed = _values(rows, "iou@25"), _values(rows, "miss@25")
    assert missed.keys() == iou.keys() and ("astronaut", "uniform", None, "") in missed
    for key, value in iou.items():  # every map and both baselines, the uniform one at its chance level
        assert missed[key] == pytest.approx(1 - value, nan_ok=True)
    index = index_rows(rows)
    for method in ("cls", "mean", "rollout"):  # the best layer of a lower-is-better metric: its lowest mean
        assert best_layer(index, "dinov2", method, "miss@25")[0] == best_layer(index, "dinov2", method)[0]

    summary = json.loads((tmp_path / "metrics" / "summary.json").read_text())
    assert all("miss@25" in entry["metrics"] for entry in summary["leaderboard"] + summary["baselines"])
    assert report.summary is not None and "miss@25" in report.summary.leaderboard[0].metrics

    site = build_site(tmp_path, tmp_path / "site").site_dir
    leaderboard = (site / "atlas" / "leaderboard" / "index.html").read_text(encoding="utf-8")
    assert '<th scope="col">miss@25 <span class="atlas-direction">↓</span></th>' in leaderboard  # lower is better
    assert re.search(r'<td data-metric="miss@25"><span class="atlas-mean">\d\.\d{3}</span>', leaderboard)
    image = (site / "atlas" / "images" / "astronaut" / "index.html").read_text(encoding="utf-8")
    assert '"miss@25"' in image  # the image page's metric panel names it


def test_compute_metrics_takes_the_manifest_and_returns_the_summary(tmp_path):
    write_fake_build(tmp_path)
    manifest = Manifest.load(tmp_path / "maps")
    (tmp_path / "maps" / "manifest.json").unlink()  # the stage reads the manifest it is given, not the file
    report = compute_metrics(tmp_path, manifest)
    assert report.images_with_boxes == 3 and report.rows > 0
    assert repr(report.summary) == repr(load_metrics(tmp_path).summary)  # NaN-safe equality
    manifest.write(tmp_path / "maps")
    again = compute_metrics(tmp_path)  # the build folder alone, as before
    assert again.rows == report.rows and repr(again.summary) == repr(report.summary)
