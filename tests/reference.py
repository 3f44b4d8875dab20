"""Independent reference computations of DESIGN.md §3, written plainly with numpy loops.

They take the full attention matrices that a model returns with ``output_attentions=True`` (or that
timm's own AttentionExtract collects), so they share no code with ``ssl_attention.attention``.
"""

from __future__ import annotations

import numpy as np


def cls_maps(attn: np.ndarray, prefix: int, grid: tuple[int, int]) -> np.ndarray:
    """attn [L, H, T, T] -> [L, H, gh, gw]: row 0 (CLS query), patch columns."""
    layers, heads = attn.shape[:2]
    out = np.zeros((layers, heads, *grid))
    for layer in range(layers):
        for head in range(heads):
            out[layer, head] = attn[layer, head, 0, prefix:].reshape(grid)
    return out


def mean_maps(attn: np.ndarray, prefix: int, grid: tuple[int, int]) -> np.ndarray:
    """attn [L, H, T, T] -> [L, H, gh, gw]: attention each patch receives, averaged over patch queries."""
    layers, heads, tokens, _ = attn.shape
    out = np.zeros((layers, heads, *grid))
    for layer in range(layers):
        for head in range(heads):
            received = np.zeros(tokens - prefix)
            for query in range(prefix, tokens):
                received += attn[layer, head, query, prefix:]
            out[layer, head] = (received / (tokens - prefix)).reshape(grid)
    return out


def rollout_maps(attn: np.ndarray, prefix: int, grid: tuple[int, int], has_cls: bool) -> np.ndarray:
    """Abnar & Zuidema rollout through each layer: [L, gh, gw]."""
    layers, _, tokens, _ = attn.shape
    joint = np.eye(tokens)
    out = np.zeros((layers, *grid))
    for layer in range(layers):
        fused = attn[layer].mean(axis=0)
        step = 0.5 * fused + 0.5 * np.eye(tokens)
        for row in range(tokens):
            step[row] = step[row] / step[row].sum()
        joint = step @ joint
        if has_cls:
            out[layer] = joint[0, prefix:].reshape(grid)
        else:
            out[layer] = joint[prefix:, prefix:].mean(axis=0).reshape(grid)
    return out
