"""Query-patch rows (``--query-layers``): the exported rows against transformers' own attentions, the
quantisation bound, the build's option and its cache key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssl_attention.errors import UnsupportedError
from ssl_attention.maps import compute_maps
from ssl_attention.query_rows import LEVELS, decode_rows, quantise_rows
from tests.test_attention import _hf_attentions, _load, _pixels


@pytest.mark.parametrize("family", ["dinov2_registers", "siglip"])
def test_rows_equal_the_eager_attentions_within_the_quantisation_bound(tiny_checkpoints, family):
    """A tiny DINOv2 with registers (CLS + 2 registers) and a tiny SigLIP (no prefix) at a 6 x 10 grid:
    each decoded row is A[l][h, i, P] from ``output_attentions=True`` to within half a code step."""
    model = _load(tiny_checkpoints, family, image_size=(24, 40))
    assert model.grid == (6, 10)
    pixels = _pixels(model, seed=5)
    layers = (model.layers - 1, 0)  # in the order asked for
    maps = compute_maps(model, pixels, query_layers=layers)
    attn = _hf_attentions(model, pixels)  # [B, L, H, T, T]
    patches = slice(model.prefix_tokens, model.prefix_tokens + 60)
    expected = attn[:, list(layers)][:, :, :, patches, patches]  # [B, Lq, H, P, P]
    codes, scale = maps["query_rows"], maps["query_scale"]
    assert codes.dtype == np.uint8 and codes.shape == (2, 2, model.heads, 60, 60)
    assert scale.dtype == np.float32 and scale.shape == (2, 2, model.heads, 60)
    decoded = decode_rows(codes, scale)
    bound = expected.max(axis=-1, keepdims=True) / (2 * LEVELS)  # the documented max / 510
    assert (np.abs(decoded - expected) <= bound + 1e-6).all()
    assert (codes.max(axis=-1) == LEVELS).all()  # each row's maximum is code 255
    if model.prefix_tokens:  # the prefix tokens' share is left out of the rows
        assert (expected.sum(axis=-1) < 0.999).any()


def test_quantisation_bound_and_zero_rows():
    rows = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.1, 0.0003], [1.0, 0.5, 0.25]])
    codes, scale = quantise_rows(rows)
    assert codes.tolist()[0] == [0, 0, 0] and float(scale[0]) == 0.0
    decoded = decode_rows(codes.numpy(), scale.numpy())
    assert (np.abs(decoded - rows.numpy()) <= rows.numpy().max(axis=1, keepdims=True) / 510 + 1e-7).all()


def test_query_layers_a_model_lacks_are_refused(tiny_checkpoints):
    model = _load(tiny_checkpoints, "siglip")
    with pytest.raises(UnsupportedError, match=r"no layer 7 for query rows \(it has layers 0-2\)"):
        compute_maps(model, _pixels(model), query_layers=(7,))
