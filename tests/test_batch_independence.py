"""A map never depends on which images share its batch (issue 28, item 6).

PyTorch picks its kernels, and the order of their sums, by tensor shape: the maps of an image computed in
a pass of 1 image and in one of 4 differed in the 7th digit (the distance statistic), so ``--batch-size 1``
and ``4`` gave different npz bytes, and a rebuild after deleting one image shifted its neighbours into
other passes and changed their cached maps. Every forward pass now has one shape per model (blank inputs
fill the last), so the bytes depend on the image and the model only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from atlas.cli import app
from atlas.core.manifest import ModelEntry
from atlas.dataset.stage import sample_paths
from atlas.models.cache import forward_batch
from atlas.models.compute import fixed_shape_maps
from atlas.models.plan import Recipe
from ssl_attention.images import load_image
from ssl_attention.models import ModelRequest, load_model
from ssl_attention.preprocess import to_tensor
from tests.fixtures.interrupt import finished_files

runner = CliRunner()
PHOTOS = sorted(sample_paths()[0].glob("*.jpg"))[:9]  # two forward passes of 8


def _build(tiny_checkpoints, images: Path, out: Path, *extra: str) -> dict[str, dict[str, bytes]]:
    """A random-weight build (the tiny models' own input size, as in the issue's report); its maps and site."""
    args = ["build", "--images", str(images), "--weights", "random", "--device", "cpu", "--out", str(out),
            "--model", f"d={tiny_checkpoints['dinov2']}", "--model", f"r={tiny_checkpoints['timm_resnet']}", *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return {"maps": finished_files(out / "maps"), "site": finished_files(out / "site")}


def test_batch_sizes_and_a_removed_image_give_the_same_bytes(tiny_checkpoints, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for photo in PHOTOS:
        shutil.copy(photo, images / photo.name)
    builds = {size: _build(tiny_checkpoints, images, tmp_path / f"b{size}", "--batch-size", str(size))
              for size in (1, 3, 8)}
    assert builds[1]["maps"] == builds[3]["maps"] == builds[8]["maps"]
    assert builds[1]["site"] == builds[3]["site"] == builds[8]["site"]
    (images / PHOTOS[0].name).unlink()  # every other image moves one place: other passes, other neighbours
    rebuilt = _build(tiny_checkpoints, images, tmp_path / "b8", "--batch-size", "8")
    clean = _build(tiny_checkpoints, images, tmp_path / "clean", "--batch-size", "8")
    assert rebuilt["site"] == clean["site"]
    removed = f"/{PHOTOS[0].stem}.npz"
    assert {k: v for k, v in rebuilt["maps"].items() if not k.endswith(removed)} == clean["maps"]


@pytest.mark.parametrize("family", ["dinov2", "timm_resnet"])
def test_an_images_maps_do_not_depend_on_its_neighbours_its_place_or_the_memory_layout(tiny_checkpoints, family):
    """The same image first in a pass of 8 real images, alone beside blank ones, last in a pass of other
    neighbours, and from a contiguous copy of ``to_tensor``'s (channels-last) tensor: equal bytes."""
    model = load_model(ModelRequest("m", str(tiny_checkpoints[family])), weights="random")
    size = forward_batch(ModelEntry.of_model(model, model.methods, None))
    pixels = to_tensor([load_image(p) for p in PHOTOS], model.preprocessing)
    assert size == 8 and not pixels.is_contiguous()
    recipe = Recipe(model.methods)
    full = fixed_shape_maps(model, pixels, size, recipe)
    others = {
        "alone": (fixed_shape_maps(model, pixels[:1], size, recipe), 0),
        "moved": (fixed_shape_maps(model, torch.cat([pixels[2:2 + size - 1], pixels[:1]]), size, recipe), size - 1),
        "contiguous": (fixed_shape_maps(model, pixels.contiguous(), size, recipe), 0),
    }
    for name, values in full.items():
        assert len(values) == len(PHOTOS)
        for case, (maps, index) in others.items():
            assert np.array_equal(values[0], maps[name][index]), (name, case)
