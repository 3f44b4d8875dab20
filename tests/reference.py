"""Independent reference computations of the definitions in site_src/methods.md, plainly with numpy loops.

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


def head_statistics(attn: np.ndarray, hidden: np.ndarray, prefix: int, grid: tuple[int, int],
                    patch: int) -> dict[str, np.ndarray]:
    """The issue-15 statistics of one image, plainly, per layer, head and patch query.

    attn [L, H, T, T] from ``output_attentions``; hidden [L + 1, T, D] from ``output_hidden_states``
    (entry l + 1 is layer l's output). Prefix statistics only where ``prefix`` > 0.
    """
    layers, heads, tokens, _ = attn.shape
    gh, gw = grid
    patches = range(prefix, tokens)
    centre = {prefix + r * gw + c: (r, c) for r in range(gh) for c in range(gw)}
    out = {name: np.zeros((layers, heads)) for name in ("distance", "entropy", "prefix_mass")}
    for layer in range(layers):
        for head in range(heads):
            for i in patches:
                row = attn[layer, head, i]
                d = np.array([patch * np.hypot(centre[i][0] - centre[j][0], centre[i][1] - centre[j][1])
                              for j in patches])
                out["distance"][layer, head] += (row[prefix:] * d).sum() / row[prefix:].sum()
                out["entropy"][layer, head] -= sum(a * np.log(a) for a in row if a > 0)
                out["prefix_mass"][layer, head] += row[:prefix].sum()
    for name in out:
        out[name] /= len(patches)
    norms = np.sqrt((hidden[1:].astype(np.float64) ** 2).sum(axis=-1))  # [L, T]
    out["token_norm"] = norms[:, prefix:].reshape(layers, gh, gw)
    out["prefix_norm"] = norms[:, :prefix]
    if prefix == 0:
        del out["prefix_mass"], out["prefix_norm"]
    return out
