"""Heatmap, image and boxes register exactly: the model sees the whole image, resized, never cropped."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from ssl_attention.annotations import Box, box_mask, rescale_boxes
from ssl_attention.models import ModelRequest, load_model
from ssl_attention.preprocess import Preprocessing, to_tensor
from tests import tiny_models


def _synthetic(width: int, height: int, box: tuple[int, int, int, int]) -> Image.Image:
    """Black image with a white rectangle (x, y, w, h)."""
    array = np.zeros((height, width, 3), dtype=np.uint8)
    x, y, w, h = box
    array[y:y + h, x:x + w] = 255
    return Image.fromarray(array)


def test_processor_crop_is_replaced_by_a_resize(tmp_path):
    """A DINOv2-style processor (resize 40, centre-crop 32) would cut the image; we resize to 32x32 instead."""
    from transformers import BitImageProcessor

    processor = BitImageProcessor(size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32},
                                  do_center_crop=True, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    folder = tiny_models.dinov2_registers(tmp_path / "d", processor=processor)
    model = load_model(ModelRequest("d", str(folder)), weights="pretrained")
    assert model.preprocessing.size == (32, 32)
    assert model.preprocessing.crop is None and model.preprocessing.to_dict()["crop"] is None
    assert model.preprocessing.mean == (0.5, 0.5, 0.5)


def test_box_lands_on_the_same_input_pixels():
    """A white box in a 120x60 image lands where rescale_boxes puts it in the 32x48 model input."""
    box = (30, 15, 48, 30)
    image = _synthetic(120, 60, box)
    prep = Preprocessing(size=(32, 48), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), resample="nearest")
    tensor = to_tensor([image], prep)[0, 0].numpy()
    scaled = rescale_boxes([Box(*map(float, box), label="b")], (120, 60), (48, 32))
    mask = box_mask(scaled, 48, 32)
    bright = tensor > 0.5
    assert bright.sum() > 0
    np.testing.assert_array_equal(bright, mask)


def test_sample_annotations_fit_their_images():
    """Every sample box lies inside its image (COCO pixels of the stored file)."""
    from atlas.dataset.stage import sample_paths

    images_dir, annotations = sample_paths()
    data = json.loads(annotations.read_text())
    sizes = {img["id"]: (img["width"], img["height"], img["file_name"]) for img in data["images"]}
    for ann in data["annotations"]:
        width, height, name = sizes[ann["image_id"]]
        with Image.open(images_dir / name) as img:
            assert img.size == (width, height)
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height and w > 0 and h > 0
