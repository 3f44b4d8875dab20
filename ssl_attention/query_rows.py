"""Query-patch rows: where each patch attends, per head, for a few chosen layers (an opt-in export).

For a chosen layer l, head h and patch query i, the row is A[l][h, i, P]: the post-softmax attention
patch i gives every patch (P = the patch tokens, after CLS and registers; the prefix tokens' share is
left out, so a row sums to at most 1). The fused row is the mean over heads (the page computes it).

Rows take ``heads x P x P`` values per layer, so they are stored quantised, one code per value: each
row is divided by its own maximum, ``code = round(255 * x / max)`` (uint8) and ``scale = max / 255``
(float32), decoded as ``code * scale``. The error of a decoded value is at most ``scale / 2``, i.e.
``max / 510`` of its row, plus float32 rounding: at most ``max / 510 + 2 * np.spacing(np.float32(max))``
(so never more than about 1/510 ~ 0.00196, as attention is at most 1). A row of zeros has scale 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ssl_attention.errors import UnsupportedError

if TYPE_CHECKING:  # torch is not imported here: the site stage reads the array names without it
    import torch

    from ssl_attention.methods import TokenLayout

LEVELS = 255  # the largest code: each row's maximum
ROWS_ARRAY = "query_rows"  # uint8 [Lq, heads, P, P]: codes, query patch i (row-major) in axis 2
SCALE_ARRAY = "query_scale"  # float32 [Lq, heads, P]: per-row scale


def quantise_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``[..., P]`` of non-negative values -> uint8 codes ``[..., P]`` and float32 scales ``[...]``."""
    scale = rows.amax(dim=-1) / LEVELS
    safe = scale.masked_fill(scale <= 0, 1.0)
    codes = (rows / safe[..., None]).round_().clamp_(0, LEVELS).byte()
    return codes, scale.float()


def decode_rows(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float32 rows of ``codes`` [..., P] and their ``scale`` [...] (the inverse of ``quantise_rows``)."""
    return codes.astype(np.float32) * np.asarray(scale, np.float32)[..., None]


def patch_rows(layout: TokenLayout, attn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer's quantised rows: A[:, :, P, P] of ``attn`` [B, heads, T, T] -> codes, scales."""
    patches = layout.patches
    return quantise_rows(attn[:, :, patches, patches])


def check_query_layers(layers: tuple[int, ...], model_layers: int, kind: str, name: str) -> None:
    """UnsupportedError (one line) for query layers a model does not have (or a CNN, which has no attention)."""
    if layers and kind != "vit":
        raise UnsupportedError(f"model {name}: query rows need attention; a {kind} has none")
    bad = [layer for layer in layers if not 0 <= layer < model_layers]
    if bad:
        raise UnsupportedError(f"model {name}: no layer {bad[0]} for query rows (it has layers 0-{model_layers - 1})")
