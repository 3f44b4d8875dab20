"""Per-layer statistics of a ViT's heads and tokens (the ``Statistic`` entries of ``ssl_attention.methods``).

With A = A[l] a layer's post-softmax attention [B, heads, T, T], P the patch tokens, "prefix" the CLS and
register tokens before them, and d(i, j) = p * ||(r_i, c_i) - (r_j, c_j)|| the distance between patch
centres in model-input pixels (p the patch size), per head:

* distance:     mean over i in P of  sum_{j in P} A[i, j] d(i, j) / sum_{j in P} A[i, j]
* entropy:      mean over i in P of  -sum_{j < T} A[i, j] ln A[i, j]   (0 ln 0 = 0; nats)
* prefix_mass:  mean over i in P of  sum_{j in prefix} A[i, j]          (the attention sink)

and, from the layer's output hidden states H [B, T, D]:

* token_norm:   ||H[i]||_2 for i in P, as the grid [gh, gw]
* prefix_norm:  ||H[j]||_2 for j in prefix

Each factory is called once per batch with the model's ``TokenLayout`` and returns the per-layer step;
the steps run in float32 inside the maps' forward pass (``ssl_attention.attention``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ssl_attention.methods import TokenLayout

Step = Callable[[int, torch.Tensor], torch.Tensor]


def patch_distances(layout: TokenLayout, device: torch.device | None = None) -> torch.Tensor:
    """d(i, j) [N, N] float32: distances between patch centres (row-major patches) in model-input pixels."""
    gh, gw = layout.grid
    rows, cols = torch.meshgrid(torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64),
                                indexing="ij")
    centres = torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=1)
    return (layout.patch_size * torch.cdist(centres, centres)).to(device=device, dtype=torch.float32)


def distance_reduction(layout: TokenLayout) -> Step:
    """distance [B, heads]; a query that gives its patches no attention at all (underflow) counts 0."""
    patches = layout.patches
    distances: dict[torch.device, torch.Tensor] = {}

    def step(_layer: int, attn: torch.Tensor) -> torch.Tensor:
        if attn.device not in distances:
            distances[attn.device] = patch_distances(layout, attn.device)
        to_patches = attn[:, :, patches, patches]
        weighted = torch.einsum("bhij,ij->bhi", to_patches, distances[attn.device])
        mass = to_patches.sum(dim=-1).clamp_min(torch.finfo(attn.dtype).tiny)
        return (weighted / mass).mean(dim=-1)

    return step


def entropy_reduction(layout: TokenLayout) -> Step:
    """entropy [B, heads] in nats, over all T keys (xlogy: 0 ln 0 = 0)."""
    patches = layout.patches

    def step(_layer: int, attn: torch.Tensor) -> torch.Tensor:
        rows = attn[:, :, patches, :]
        return -torch.special.xlogy(rows, rows).sum(dim=-1).mean(dim=-1)

    return step


def prefix_mass_reduction(layout: TokenLayout) -> Step:
    """prefix_mass [B, heads]: the attention the patch queries give the prefix tokens."""
    patches, prefix = layout.patches, layout.prefix
    return lambda _layer, attn: attn[:, :, patches, :prefix].sum(dim=-1).mean(dim=-1)


def token_norm_reduction(layout: TokenLayout) -> Step:
    """token_norm [B, gh, gw] from a layer's output hidden states [B, T, D]."""
    patches = layout.patches
    return lambda _layer, hidden: torch.linalg.vector_norm(hidden[:, patches], dim=-1).reshape(-1, *layout.grid)


def prefix_norm_reduction(layout: TokenLayout) -> Step:
    """prefix_norm [B, prefix] from a layer's output hidden states [B, T, D]."""
    prefix = layout.prefix
    return lambda _layer, hidden: torch.linalg.vector_norm(hidden[:, :prefix], dim=-1)
