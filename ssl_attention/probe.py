"""``probe``: the attention of a multihead-attention pooling head (SigLIP's and SigLIP2's MAP head).

Such a head pools the image with one learned query, the probe ``p`` [1, D], attending over the last
layer's output ``Z`` [T, D] (after the final norm, as the head receives it). Per head h, with the
``nn.MultiheadAttention`` input projections ``W_q, b_q, W_k, b_k`` split into heads of ``d = D / H``:

    q_h = (p W_q^T + b_q)_h,   K_h = (Z W_k^T + b_k)_h,   a_h = softmax(q_h K_h^T / sqrt(d))   [1, T]

The map of head h is ``a_h`` over the patch tokens (SigLIP has no prefix tokens, so all of them), and the
fused map the mean over heads; it has one depth step (the head sits after the last layer).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ssl_attention.methods import TokenLayout


def find_probe_head(vision: nn.Module) -> nn.Module | None:
    """The attention-pooling head of a vision tower (a module with a ``probe`` parameter and an
    ``nn.MultiheadAttention`` ``attention``), or None."""
    from torch import nn

    for module in vision.modules():
        if hasattr(module, "probe") and isinstance(getattr(module, "attention", None), nn.MultiheadAttention):
            return module
    return None


def probe_attention(head: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The head's post-softmax attention per head ``[B, H, T]`` over ``hidden`` ``[B, T, D]`` (float32)."""
    import torch
    from torch.nn.functional import linear

    attention = head.attention
    dim, heads = attention.embed_dim, attention.num_heads
    weight, bias = attention.in_proj_weight.float(), attention.in_proj_bias.float()
    query = linear(head.probe.float().reshape(1, dim), weight[:dim], bias[:dim]).reshape(heads, dim // heads)
    keys = linear(hidden.float(), weight[dim:2 * dim], bias[dim:2 * dim])
    keys = keys.reshape(*hidden.shape[:2], heads, dim // heads)
    scores = torch.einsum("hc,bthc->bht", query, keys) / math.sqrt(dim // heads)
    return scores.softmax(dim=-1)


def probe_reduction(layout: TokenLayout):
    """The probe method's step: the head's attention ``[B, H, T]`` -> ``[B, H, patches]``."""
    patches = layout.patches
    return lambda _layer, attn: attn[:, :, patches]
