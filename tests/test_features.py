"""Issue 26's arrays against an independent computation from transformers' ``output_hidden_states=True``:
``pca``, ``box_similarity`` and the int8 ``features`` at a non-square grid (6 x 10 patches), and the
``probe`` method against SigLIP's pooling head recomputed from its query and key projection."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from atlas.cli import app
from atlas.metrics.rows import SUFFIX, read_rows
from atlas.models.cache import image_identity
from ssl_attention.annotations import Box
from ssl_attention.capabilities import Capabilities
from ssl_attention.errors import UnsupportedError
from ssl_attention.features import FeatureRequest, box_cells, decode_tokens, relative_boxes
from ssl_attention.maps import compute_maps
from ssl_attention.methods import get_method, methods_for
from ssl_attention.metrics import MapGeometry, score_map
from tests.test_attention import _hf_outputs, _load, _pixels
from tests.test_cli import _small_build

FAMILIES = ["dinov2_registers", "clip", "siglip"]
GRID = (6, 10)
# image 0: a box of cells, a thin box between cell centres (no centre inside: the centre cell), a box on an
# edge; image 1: none. Pixel boxes of a 400 x 300 image.
BOXES = ((Box(40, 30, 120, 100, "a"), Box(101, 10, 6, 8, "thin"), Box(360, 250, 40, 50, "edge")), ())


def _hidden(model, pixels) -> np.ndarray:
    """[B, L, N, D] float64 patch tokens of each layer's output: transformers' ``hidden_states[l + 1]``."""
    out = _hf_outputs(model, pixels, output_hidden_states=True)
    hidden = torch.stack(out.hidden_states[1:], dim=1).double().numpy()
    return hidden[:, :, model.prefix_tokens:]


def _request(layers=()) -> FeatureRequest:
    boxes = tuple(relative_boxes(b, 400, 300) for b in BOXES)
    return FeatureRequest(tuple(layers), boxes, max(len(b) for b in boxes))


def _cells_by_hand(box: Box) -> np.ndarray:
    """The cells of a 400 x 300 image's box on the 6 x 10 grid, from the pixel rule at cell resolution."""
    rows, cols = GRID
    cx, cy = (np.arange(cols) + 0.5) * 400 / cols, (np.arange(rows) + 0.5) * 300 / rows
    inside = ((cy >= box.y) & (cy < box.y + box.h))[:, None] & ((cx >= box.x) & (cx < box.x + box.w))[None]
    if not inside.any():
        inside[int((box.y + box.h / 2) * rows / 300), int((box.x + box.w / 2) * cols / 400)] = True
    return inside


def test_box_cells_follow_the_centre_rule():
    thin = relative_boxes([BOXES[0][1]], 400, 300)[0]
    assert box_cells(thin, GRID).sum() == 1 and box_cells(thin, GRID)[0, 2]  # no centre inside: centre cell
    for box in BOXES[0]:
        np.testing.assert_array_equal(box_cells(relative_boxes([box], 400, 300)[0], GRID), _cells_by_hand(box))
    assert _cells_by_hand(BOXES[0][0]).sum() == 3 * 2  # columns 1-3, rows 1-2


@pytest.mark.parametrize("family", FAMILIES)
def test_pca_box_similarity_and_features_match_transformers(tiny_checkpoints, family):
    model = _load(tiny_checkpoints, family, image_size=(24, 40))
    assert model.grid == GRID
    pixels = _pixels(model, seed=7)
    maps = compute_maps(model, pixels, features=_request(layers=(0, model.layers - 1)))
    hidden = _hidden(model, pixels)  # [B, L, N, D]
    batch, layers, n, _ = hidden.shape
    assert maps["pca"].shape == (batch, layers, 3, *GRID) and maps["pca"].dtype == np.float32
    assert maps["box_similarity"].shape == (batch, 3, layers, *GRID) and maps["box_similarity"].dtype == np.float32
    assert maps["features"].shape == (batch, 2, n, hidden.shape[-1]) and maps["features"].dtype == np.int8
    assert maps["features_scale"].shape == (batch, 2, n) and maps["features_scale"].dtype == np.float32
    for b in range(batch):
        for layer in range(layers):
            _check_pca(maps["pca"][b, layer].reshape(3, n), hidden[b, layer])
            _check_boxes(maps["box_similarity"][b, :, layer], hidden[b, layer], BOXES[b])
        for i, layer in enumerate((0, layers - 1)):
            _check_features(decode_tokens(maps["features"][b, i], maps["features_scale"][b, i]), hidden[b, layer])


def _check_pca(projections: np.ndarray, tokens: np.ndarray) -> None:
    """Norms = the top three singular values; mutually orthogonal; the same axes up to sign (the singular
    values of a random model's tokens are distinct); each axis' largest-magnitude projection positive."""
    centred = tokens - tokens.mean(axis=0)
    _, singular, vh = np.linalg.svd(centred, full_matrices=False)
    assert np.all(np.diff(singular[:4]) < -1e-3 * singular[0])  # distinct
    np.testing.assert_allclose(np.linalg.norm(projections, axis=1), singular[:3], rtol=1e-4)
    gram = projections @ projections.T
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-3 * singular[0] ** 2)
    expected = centred @ vh[:3].T  # [N, 3]
    for k in range(3):
        sign = np.sign(expected[np.abs(expected[:, k]).argmax(), k])
        np.testing.assert_allclose(projections[k], sign * expected[:, k], atol=1e-4 * singular[0])
        assert projections[k][np.abs(projections[k]).argmax()] > 0


def _check_boxes(similarity: np.ndarray, tokens: np.ndarray, boxes: tuple[Box, ...]) -> None:
    """[slots, gh, gw]: each box's cosine map to the mean of its cells' tokens; slots past the boxes zero."""
    unit = tokens / np.linalg.norm(tokens, axis=1, keepdims=True)
    for s, box in enumerate(boxes):
        query = tokens[_cells_by_hand(box).reshape(-1)].mean(axis=0)
        expected = unit @ (query / np.linalg.norm(query))
        np.testing.assert_allclose(similarity[s].reshape(-1), expected, atol=1e-5)
    assert not similarity[len(boxes):].any()


def _check_features(decoded: np.ndarray, tokens: np.ndarray) -> None:
    """Cosines between decoded tokens within 0.02 of the exact ones; every token within half a step."""
    def cosines(x):
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        return unit @ unit.T

    assert np.abs(cosines(decoded) - cosines(tokens)).max() < 0.02
    step = np.abs(tokens).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(decoded - tokens) <= step * 0.5 + 1e-5 * step * 127)


def test_feature_layers_the_model_lacks_are_refused(tiny_checkpoints):
    model = _load(tiny_checkpoints, "clip", image_size=(24, 40))
    with pytest.raises(UnsupportedError, match="no layer 7 for features"):
        compute_maps(model, _pixels(model), features=FeatureRequest((7,)))


@pytest.mark.parametrize("family", ["siglip", "siglip2_naflex"])
def test_probe_equals_the_pooling_heads_attention(tiny_checkpoints, family):
    """probe [B, 1, H, gh, gw] = softmax(q_h K_h^T / sqrt(d)) of SigLIP's MAP head, recomputed from its probe,
    its key projection and the last hidden state (after the final norm), and torch's own weights."""
    model = _load(tiny_checkpoints, family, image_size=(24, 40))
    assert "probe" in model.methods and model.capabilities.probe
    pixels = _pixels(model, seed=3)
    maps = compute_maps(model, pixels, methods=("probe",))
    last = _hf_outputs(model, pixels).last_hidden_state.double()  # [B, T, D]
    head = model.probe_head
    mha = head.attention
    dim, heads = mha.embed_dim, mha.num_heads
    w, bias = mha.in_proj_weight.detach().double(), mha.in_proj_bias.detach().double()
    query = (head.probe.detach().double().reshape(1, dim) @ w[:dim].T + bias[:dim]).reshape(heads, -1)
    keys = (last @ w[dim:2 * dim].T + bias[dim:2 * dim]).reshape(*last.shape[:2], heads, -1)
    expected = torch.einsum("hc,bthc->bht", query, keys).div(np.sqrt(dim // heads)).softmax(-1).numpy()
    with torch.no_grad():  # and torch's own multi-head attention weights, per head
        _, own = mha(head.probe.repeat(len(pixels), 1, 1), last.float(), last.float(), average_attn_weights=False)
    np.testing.assert_allclose(own[:, :, 0].numpy(), expected, atol=1e-5)
    assert maps["probe"].shape == (len(pixels), 1, heads, *GRID)
    np.testing.assert_allclose(maps["probe"][:, 0].reshape(len(pixels), heads, -1), expected, atol=1e-5)
    np.testing.assert_allclose(maps["probe_fused"], maps["probe"].mean(axis=2), atol=1e-7)


def test_probe_is_offered_only_to_models_with_a_pooling_head(tiny_checkpoints):
    assert "probe" not in methods_for(Capabilities("vit", cls=True))
    assert get_method("probe").refusal(Capabilities("vit")).startswith("it has no attention-pooling head")
    model = _load(tiny_checkpoints, "clip")
    with pytest.raises(UnsupportedError, match="does not support probe: it has no attention-pooling head"):
        compute_maps(model, _pixels(model), methods=("probe",))


def test_a_sample_build_exports_features_and_box_similarity(tiny_checkpoints, tmp_path):
    """The bundled sample: features of the last layer (the default), box_similarity for images with boxes
    only (each box's map equals the cosines of the decoded features to within 0.02), nothing for a CNN;
    --feature-layers none drops the features and recomputes the maps."""
    out = tmp_path / "out"
    result = _small_build(tiny_checkpoints, out, {"d": "dinov2_registers", "r": "timm_resnet"})
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "maps" / "manifest.json").read_text())
    entries = {m["name"]: m for m in manifest["models"]}
    last = entries["d"]["layers"] - 1
    assert entries["d"]["feature_layers"] == [last] and entries["r"]["feature_layers"] == []
    assert "pca" in entries["d"]["statistics"]
    images = {image["id"]: image for image in manifest["images"]}
    with np.load(out / "maps" / "d" / "hubble_deep_field.npz") as npz:
        assert "box_similarity" not in npz.files and npz["features"].shape[0] == 1
    with np.load(out / "maps" / "r" / "chelsea.npz") as npz:
        assert not {"box_similarity", "features", "pca"} & set(npz.files)
    image = images["chelsea"]
    with np.load(out / "maps" / "d" / "chelsea.npz") as npz:
        similarity, pca = npz["box_similarity"], npz["pca"]
        tokens = decode_tokens(npz["features"][0], npz["features_scale"][0])
        assert json.loads(str(npz["meta"]))["feature_layers"] == [last]
    grid = tuple(entries["d"]["grid"])
    assert similarity.shape == (len(image["boxes"]), entries["d"]["layers"], *grid)
    assert pca.shape == (entries["d"]["layers"], 3, *grid)
    unit = tokens / np.linalg.norm(tokens, axis=1, keepdims=True)
    for b, box in enumerate(image["boxes"]):
        x, y, w, h = box["bbox"]
        cells = box_cells((x / image["width"], y / image["height"], w / image["width"], h / image["height"]), grid)
        query = tokens[cells.reshape(-1)].mean(axis=0)
        expected = unit @ (query / np.linalg.norm(query))
        assert np.abs(similarity[b, last].reshape(-1) - expected).max() < 0.02
    _check_box_similarity_metrics(out, entries["d"], images)
    before = json.loads(str(np.load(out / "maps" / "d" / "chelsea.npz")["meta"]))["cache_key"]
    result = _small_build(tiny_checkpoints, out, {"d": "dinov2_registers", "r": "timm_resnet"},
                          "--feature-layers", "none")
    assert result.exit_code == 0, result.output
    with np.load(out / "maps" / "d" / "chelsea.npz") as npz:
        assert "features" not in npz.files and "box_similarity" in npz.files
        assert json.loads(str(npz["meta"]))["cache_key"] != before


def _check_box_similarity_metrics(out, entry: dict, images: dict) -> None:
    """Each box's box_similarity is scored against its own box (box_iou@25 of the rows equals the metric
    of that box alone), and the summary says the mean of each layer over the boxes and the best layer."""
    rows = [r for r in read_rows(out / "metrics" / f"d{SUFFIX}") if r.method == "box_similarity"]
    assert {r.head for r in rows} == {"fused"} and {r.layer for r in rows} == set(range(entry["layers"]))
    image = images["chelsea"]
    with np.load(out / "maps" / "d" / "chelsea.npz") as npz:
        similarity = npz["box_similarity"]
    geometry = MapGeometry((image["width"], image["height"]), tuple(entry["grid"]), entry["patch_size"])
    for b, box in enumerate(image["boxes"]):
        own = Box(*box["bbox"], label=box["label"])
        expected = [s.value for s in score_map(similarity[b, 1], geometry.target([own]))
                    if s.metric == "box_iou@25" and s.box == 0]
        (got,) = [r.value for r in rows if r.image == "chelsea" and r.box == b and r.layer == 1
                  and r.metric == "box_iou@25"]
        assert got == pytest.approx(expected[0]) and rows[0].label
    summary = json.loads((out / "metrics" / "summary.json").read_text())
    (iou,) = [s for s in summary["box_similarity"] if s["model"] == "d" and s["metric"] == "box_iou@25"]
    values = [r.value for r in rows if r.metric == "box_iou@25" and r.layer == 0]
    assert iou["boxes"] == len(values) and iou["layers"][0] == pytest.approx(np.mean(values))
    assert iou["best_layer"] == int(np.argmax(iou["layers"]))
    assert all(s["model"] != "r" for s in summary["box_similarity"])


def test_the_cache_key_of_a_vit_map_includes_its_boxes():
    boxes = (Box(1, 2, 3, 4, "a"),)
    moved = (Box(1, 2, 3, 5, "a"),)
    assert image_identity("f" * 64, (), "vit") == "f" * 64 == image_identity("f" * 64, boxes, "cnn")
    assert len({image_identity("f" * 64, b, "vit") for b in ((), boxes, moved)}) == 3


def test_bad_feature_layers_are_one_line(tmp_path):
    result = CliRunner().invoke(app, ["build", "--feature-layers", "eleven", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "--feature-layers: 'eleven' is not none, last, all or a comma list of layer numbers" in result.output


def test_the_project_key_sets_the_feature_layers(tmp_path):
    from atlas.project import ConfigError, load_project

    (tmp_path / "images").mkdir()
    (tmp_path / "atlas.toml").write_text('images = "images"\nfeature_layers = "11, last"\n')
    assert load_project(tmp_path / "atlas.toml").build["feature_layers"] == "11,last"
    (tmp_path / "atlas.toml").write_text('images = "images"\nfeature_layers = "eleven"\n')
    with pytest.raises(ConfigError, match=r"atlas.toml: feature_layers: 'eleven' is not none, last"):
        load_project(tmp_path / "atlas.toml")
