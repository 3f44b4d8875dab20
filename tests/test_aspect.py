"""``--resize keep`` (issue 24): each image's shorter side to the input side, a grid per image.

The data path: the size rule, the maps of a portrait, a landscape and a square image against the
libraries' own eager attentions on the same resized tensor, buckets of one input size, per-image grids in
the manifest and the npz files, the ``--max-tokens`` cap, and a model that cannot interpolate its
position embeddings built squashed.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_attention.aspect import DEFAULT_MAX_TOKENS, at_input_size, keeping_aspect
from ssl_attention.errors import UnsupportedError
from ssl_attention.maps import compute_maps
from ssl_attention.preprocess import keep_size, snap_to_patch, to_tensor
from tests.test_attention import _check_against_reference, _hf_attentions, _load

# (width, height) px: a portrait, a landscape and a square photo
SHAPES = {"portrait": (30, 52), "landscape": (61, 26), "square": (40, 40)}


def _photo(size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_keep_size_scales_the_shorter_side_and_snaps_each_side_to_the_patch():
    assert keep_size((300, 520), 224, 16) == ((384, 224), False)  # 388.3 -> 384 (24 patches)
    assert keep_size((520, 300), 224, 16) == ((224, 384), False)
    assert keep_size((640, 480), 480, 14) == ((476, 644), False)  # DINO's 480 px: 480 -> 476, 640 -> 644
    assert keep_size((500, 500), 224, 14) == ((224, 224), False)
    for size in [(37, 91), (1000, 333), (224, 224)]:
        (h, w), _ = keep_size(size, 224, 16)
        short = 224 * max(size) / min(size)
        assert (h, w) == snap_to_patch((round(short) if size[1] > size[0] else 224,
                                        round(short) if size[0] > size[1] else 224), 16)


def test_max_tokens_lowers_the_side_until_the_image_fits():
    (h, w), capped = keep_size((1600, 400), 448, 16, max_tokens=300)
    assert capped and (h // 16) * (w // 16) <= 300 and w > 3 * h  # the aspect is kept
    one_more = keep_size((1600, 400), h + 16, 16, max_tokens=10**9)[0]
    assert (one_more[0] // 16) * (one_more[1] // 16) > 300  # the largest side that fits
    assert keep_size((1600, 400), 224, 16, max_tokens=10**6)[1] is False
    (h, w), capped = keep_size((10_000, 1), 224, 16, max_tokens=100)  # a sliver: one patch high
    assert capped and (h, w) == (16, 1600)


@pytest.mark.parametrize("family", ["dinov2_registers", "clip", "timm_vit"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_keep_maps_equal_eager_attentions_on_the_same_tensor(tiny_checkpoints, family, shape):
    """DINOv2 with registers, CLIP with interpolated positions and a timm ViT with dynamic image size:
    every map of the image's own grid equals the reference made from the library's eager attentions."""
    model = keeping_aspect(_load(tiny_checkpoints, family), DEFAULT_MAX_TOKENS)
    image = _photo(SHAPES[shape])
    size = model.preprocessing.input_size(image.size)
    assert min(size) == min(model.preprocessing.size)
    assert (size[0] > size[1]) == (shape == "portrait") and (size[1] > size[0]) == (shape == "landscape")
    pixels = to_tensor([image], model.preprocessing, size)
    maps = compute_maps(model, pixels)
    seen = at_input_size(model, size)
    assert maps["mean"].shape[-2:] == seen.grid == (size[0] // model.patch_size, size[1] // model.patch_size)
    if family == "timm_vit":
        from timm.utils import AttentionExtract

        with torch.no_grad():
            collected = AttentionExtract(model.module, method="hook")(pixels)
        attentions = torch.stack(list(collected.values()), dim=1).double().numpy()
    else:
        attentions = _hf_attentions(seen, pixels)
    _check_against_reference(seen, maps, attentions)


def test_a_model_with_one_input_size_is_refused_in_one_line(tiny_checkpoints):
    model = replace(_load(tiny_checkpoints, "timm_vit"), any_input_size=False)
    with pytest.raises(UnsupportedError, match="cannot interpolate its position embeddings") as info:
        keeping_aspect(model)
    assert "\n" not in str(info.value)


def test_squash_descriptions_and_keys_are_unchanged(tiny_checkpoints):
    """Squash preprocessing is described as it always was (the bytes of squash builds are kept)."""
    model = _load(tiny_checkpoints, "dinov2")
    assert set(model.preprocessing.to_dict()) == {"size", "mean", "std", "resample", "crop"}
    kept = keeping_aspect(model, 500).preprocessing.to_dict()
    assert (kept["resize"], kept["max_tokens"], kept["unit"]) == ("keep", 500, model.patch_size)


# -- a build -----------------------------------------------------------------------------------------------

BOXES = {"portrait": [(3.0, 30.0, 20.0, 18.0)], "landscape": [(40.0, 2.0, 15.0, 20.0)],
         "square": [(0.0, 0.0, 25.0, 9.0)]}


def keep_build(checkpoints: dict, root, max_tokens: int = 120):
    """A keep build of three photos (portrait, landscape, square; one box each) with three tiny models:
    DINOv2 (keeps the aspect; ``max_tokens`` caps the landscape), a ResNet (Grad-CAM, keeps it at its
    32 px stride) and a timm ViT without dynamic image size (one position-embedding grid: built squashed,
    one line). Returns (build folder, output)."""
    from typer.testing import CliRunner

    import ssl_attention.models.timm_models as timm_models
    from atlas.cli import app

    images = root / "images"
    images.mkdir()
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "part"}]}
    for k, (name, size) in enumerate(sorted(SHAPES.items())):
        _photo(size, k).save(images / f"{name}.png")
        coco["images"].append({"id": k, "file_name": f"{name}.png", "width": size[0], "height": size[1]})
        coco["annotations"] += [{"id": 10 * k + b, "image_id": k, "category_id": 1, "bbox": list(box)}
                                for b, box in enumerate(BOXES[name])]
    (root / "boxes.json").write_text(json.dumps(coco))
    fixed = root / "fixed-vit"
    fixed.symlink_to(checkpoints["timm_vit"], target_is_directory=True)
    out = root / "out"
    args = ["build", "--images", str(images), "--annotations", str(root / "boxes.json"), "--weights", "random",
            "--device", "cpu", "--out", str(out), "--model", f"d={checkpoints['dinov2']}",
            "--model", f"r={checkpoints['timm_resnet']}", "--model", f"t={fixed}", "--resize", "keep",
            "--image-size", "32", "--max-tokens", str(max_tokens), "--query-layers", "last"]
    original = timm_models._is_vit
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timm_models, "_is_vit", lambda name: False if "fixed" in name else original(name))
        result = CliRunner().invoke(app, args, terminal_width=400)
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.mark.parametrize(("args", "expected"), [
    (["--resize", "crop"], "--resize must be squash or keep, got 'crop'"),
    (["--max-tokens", "0"], "--max-tokens"),
    (["--max-tokens", "99999"], "above the maximum of 16,384"),
])
def test_bad_resize_values_are_one_line_before_any_model_runs(tmp_path, args, expected):
    from typer.testing import CliRunner

    from atlas.cli import app

    result = CliRunner().invoke(app, ["build", "--out", str(tmp_path / "out"), *args], terminal_width=400)
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()
