"""Gradient methods of ViTs for a target (``VisionModel.explainer``): relevance and ViT Grad-CAM.

One forward pass per batch, then one backward pass per target (``torch.autograd.grad`` with respect to
the captured tensors only, reproducibly: ``reproducible_backward``). The images of a batch are
independent, so the gradient of the batch's summed score is each image's own gradient.

* **relevance** (Chefer et al. 2021, "Generic Attention-model Explainability"): with A[l] the
  post-softmax attention [heads, T, T] and G[l] the gradient of the target score with respect to it,
  R = I; for each layer l: Ā = mean over heads of (G[l] ⊙ A[l])⁺; R = R + Ā·R.
  Map = R[0, P] with a CLS token, else the mean over patch rows of R[P, P] (registers stay in the
  matrix and are dropped at the end). Fused only: there are no per-head maps.
* **gradcam_vit** (Selvaraju et al. 2017 on a ViT): X = the output of the last block's first norm
  (``norm1``; the last block's output gives the CLS gradient zero) at the patch tokens, G its gradient;
  w_c = mean over patches of G_c; map = ReLU(sum_c w_c X_c), the grid from the token count.

Both return ``<name>`` [B, targets, gh, gw] float32 and ``<name>_class`` [B, targets] (the output index
explained: the class, or the prompt's position).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ssl_attention.errors import AtlasError, UnsupportedError
from ssl_attention.explainers import NO_TARGET
from ssl_attention.gradcam import reproducible_backward
from ssl_attention.methods import TokenLayout
from ssl_attention.models.base import VisionModel

_NORM1_NAMES = ("norm1", "layernorm_before", "layer_norm1")


def relevance_maps(model: VisionModel, pixel_values: torch.Tensor) -> dict[str, np.ndarray]:
    """``relevance`` [B, targets, gh, gw] and ``relevance_class`` [B, targets] (see the module docs)."""
    layout = _layout(model)
    points = model.attention_points
    per_layer = len(points) // model.layers

    def reduce(captured: list[torch.Tensor], grads: tuple[torch.Tensor, ...]) -> torch.Tensor:
        attns = [torch.cat(captured[i:i + per_layer], dim=1).float() for i in range(0, len(points), per_layer)]
        grad_layers = [torch.cat(grads[i:i + per_layer], dim=1).float() for i in range(0, len(points), per_layer)]
        return relevance_rule(attns, grad_layers, layout)

    return _per_target(model, pixel_values, "relevance", list(points), reduce)


def relevance_rule(attns: list[torch.Tensor], grads: list[torch.Tensor], layout: TokenLayout) -> torch.Tensor:
    """The rule on per-layer attentions and their gradients (each [B, heads, T, T]) -> [B, patches]."""
    batch, tokens = attns[0].shape[0], attns[0].shape[-1]
    relevance = torch.eye(tokens, dtype=torch.float32, device=attns[0].device).expand(batch, -1, -1)
    for attn, grad in zip(attns, grads, strict=True):
        fused = (grad * attn).clamp(min=0).mean(dim=1)
        relevance = relevance + fused @ relevance
    patches = layout.patches
    if layout.has_cls:
        return relevance[:, 0, patches]
    return relevance[:, patches, patches].mean(dim=1)


def gradcam_vit_maps(model: VisionModel, pixel_values: torch.Tensor) -> dict[str, np.ndarray]:
    """``gradcam_vit`` [B, targets, gh, gw] and ``gradcam_vit_class`` [B, targets] (see the module docs)."""
    layout = _layout(model)
    norm1 = last_norm1(model)

    def reduce(captured: list[torch.Tensor], grads: tuple[torch.Tensor, ...]) -> torch.Tensor:
        act, grad = captured[0].float()[:, layout.patches], grads[0].float()[:, layout.patches]
        weights = grad.mean(dim=1, keepdim=True)
        return torch.relu((weights * act).sum(dim=-1))

    return _per_target(model, pixel_values, "gradcam_vit", [(norm1, _identity)], reduce)


def last_norm1(model: VisionModel) -> nn.Module:
    """The first norm of the last block (timm ``norm1``, transformers ``layernorm_before``/``layer_norm1``)."""
    if not model.block_outputs:
        raise AtlasError(f"model {model.name}: no blocks to take Grad-CAM gradients from")
    block = model.block_outputs[-1][0]
    for name in _NORM1_NAMES:
        if isinstance(getattr(block, name, None), nn.Module):
            return getattr(block, name)
    raise AtlasError(f"model {model.name}: its last block {type(block).__name__} has no norm1 for Grad-CAM")


def check_explainable(model: VisionModel) -> None:
    """UnsupportedError (one line) when the model has nothing to explain."""
    if model.explainer is None:
        raise UnsupportedError(f"model {model.name} ({model.architecture}): {NO_TARGET}")


def _layout(model: VisionModel) -> TokenLayout:
    check_explainable(model)
    return TokenLayout(model.prefix_tokens, model.grid, model.has_cls, model.patch_size)


Reduce = Callable[[list[torch.Tensor], tuple[torch.Tensor, ...]], torch.Tensor]  # captured, grads -> [B, patches]


def _per_target(model: VisionModel, pixel_values: torch.Tensor, name: str,
                points: list[tuple[nn.Module, Callable]], reduce: Reduce) -> dict[str, np.ndarray]:
    """Forward once with ``points`` captured, backward once per target, ``reduce`` each to [B, patches]."""
    explainer = model.explainer
    captured: list[torch.Tensor] = []
    handles = [module.register_forward_hook(lambda _m, _i, out, get=getter: captured.append(get(out)))
               for module, getter in points]
    try:
        with torch.enable_grad(), torch.autocast(pixel_values.device.type, enabled=False):
            inputs = pixel_values.detach().float().requires_grad_(True)
            scores, classes = explainer.scores(inputs)
            if any(t is None for t in captured) or len(captured) != len(points):
                raise AtlasError(f"model {model.name}: captured {len(captured)} of {len(points)} tensors "
                                 "(attention weights need eager attention)")
            maps = []
            with reproducible_backward(pixel_values.device):
                for target in range(scores.shape[1]):
                    grads = torch.autograd.grad(scores[:, target].sum(), captured, retain_graph=True)
                    with torch.no_grad():
                        maps.append(reduce([c.detach() for c in captured], grads))
    finally:
        for handle in handles:
            handle.remove()
    gh, gw = model.grid
    stacked = torch.stack(maps, dim=1).reshape(pixel_values.shape[0], len(maps), gh, gw)
    return {name: stacked.cpu().numpy().astype(np.float32),
            f"{name}_class": classes.cpu().numpy().astype(np.int64)}


def _identity(output):
    return output
