"""Aspect-preserving inputs (``--resize keep``): each image's shorter side to the model's input side, the
longer by the same factor, both snapped to the patch size, so the map grid follows the photo.

Squash (the default) resizes every image whole to one square input; ``keeping_aspect`` turns a loaded
model's preprocessing into keep, and ``at_input_size`` gives the model as it sees one input size (its
``grid`` that size's), which ``compute_maps`` uses for every batch.
"""

from __future__ import annotations

from dataclasses import replace

from ssl_attention.errors import UnsupportedError
from ssl_attention.models.base import VisionModel

RESIZE_MODES = ("squash", "keep")
CNN_STRIDE = 32  # a CNN's input sides are snapped to its last stage's stride (ResNet-50: 32 px)
# patch tokens per image under keep: 2,048 is a 4:3 photo at 480 px and patch 14 (34 x 46 = 1,564) or a
# 16:9 one at 448 px and patch 16 (28 x 50 = 1,400) with room to spare; one ViT-B layer's attention of
# such an image is 12 x 2,053^2 x 4 bytes = 202 MB (bench/aspect.py measures the peak)
DEFAULT_MAX_TOKENS = 2048


def keeping_aspect(model: VisionModel, max_tokens: int = DEFAULT_MAX_TOKENS) -> VisionModel:
    """``model`` with keep preprocessing (its input side as the shorter side, at most ``max_tokens``
    patch tokens per image); UnsupportedError (one line) for a model that takes one input size only."""
    if not model.any_input_size:
        raise UnsupportedError(f"model {model.name} ({model.architecture}) cannot interpolate its position "
                               "embeddings: --resize keep refused, its inputs are squashed")
    unit = CNN_STRIDE if model.kind == "cnn" else model.patch_size
    prep = replace(model.preprocessing, resize="keep", max_tokens=max_tokens, unit=unit)
    return replace(model, preprocessing=prep)


def at_input_size(model: VisionModel, size: tuple[int, int]) -> VisionModel:
    """``model`` as it sees inputs of ``size`` = (height, width): the same modules, its ``grid`` that size's."""
    size = (int(size[0]), int(size[1]))
    if size == tuple(model.preprocessing.size):
        return model
    return replace(model, preprocessing=replace(model.preprocessing, size=size))
