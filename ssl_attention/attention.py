"""Attention maps of ViTs, every layer from one forward pass (DESIGN.md §3).

Hooks reduce each layer's post-softmax attention A[l] of shape [B, heads, T, T] as soon as it is
produced, so only the reduced maps and one running rollout matrix are kept, never all layers' matrices:

* cls, head h:   A[l][h, 0, P]                       (P = patch tokens, after CLS and registers)
* mean, head h:  mean over patch queries i in P of A[l][h, i, P]   (the attention each patch receives)
* rollout to l:  R = I; for k <= l: M = mean_h A[k]; M = (M + I) / 2; M /= M.sum(-1, keepdim); R = M @ R
                 map = R[0, P] with a CLS token, else the mean over patch rows of R[P, P]
Fused cls/mean maps are the mean over heads.

On a GPU the forward pass runs under bf16/fp16 autocast; every reduction here (including rollout's
matrix product, which autocast would otherwise run in reduced precision) runs in float32 with autocast
disabled (``_float32``).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from ssl_attention.errors import AtlasError
from ssl_attention.models.base import VisionModel


class _Reducer:
    """Receives each layer's attention and keeps the per-layer reductions."""

    def __init__(self, model: VisionModel, methods: tuple[str, ...]):
        self.methods = methods
        self.prefix = model.prefix_tokens
        self.grid = model.grid
        self.has_cls = model.has_cls
        self.layers = model.layers
        self.out: dict[str, list[torch.Tensor | None]] = {m: [None] * model.layers for m in methods}
        self.rollout: torch.Tensor | None = None
        self.seen = 0

    def __call__(self, layer: int, attn: torch.Tensor | None) -> None:
        if attn is None:
            raise AtlasError("the model returned no attention weights: it must run with eager attention")
        with _float32(attn.device):
            self._reduce(layer, attn.detach().float())

    def _reduce(self, layer: int, attn: torch.Tensor) -> None:
        tokens = attn.shape[-1]
        n = self.grid[0] * self.grid[1]
        if tokens != self.prefix + n:
            raise AtlasError(
                f"layer {layer}: {tokens} tokens, expected {self.prefix} prefix + {n} patches for grid {self.grid}"
            )
        patches = slice(self.prefix, self.prefix + n)
        if "cls" in self.methods:
            self.out["cls"][layer] = attn[:, :, 0, patches].clone()  # a view would keep all of attn alive
        if "mean" in self.methods:
            self.out["mean"][layer] = attn[:, :, patches, patches].mean(dim=2)
        if "rollout" in self.methods:
            self._rollout_step(layer, attn, patches)
        self.seen += 1

    def _rollout_step(self, layer: int, attn: torch.Tensor, patches: slice) -> None:
        fused = attn.mean(dim=1)
        eye = torch.eye(fused.shape[-1], device=fused.device, dtype=fused.dtype)
        step = 0.5 * fused + 0.5 * eye
        step = step / step.sum(dim=-1, keepdim=True)
        self.rollout = step if self.rollout is None else step @ self.rollout
        if self.has_cls:
            self.out["rollout"][layer] = self.rollout[:, 0, patches].clone()
        else:
            self.out["rollout"][layer] = self.rollout[:, patches, patches].mean(dim=1)

    def result(self) -> dict[str, np.ndarray]:
        """Arrays of the export contract with a leading batch axis."""
        if self.seen != self.layers:
            raise AtlasError(f"captured attention of {self.seen} layers, expected {self.layers}")
        gh, gw = self.grid
        maps: dict[str, np.ndarray] = {}
        for method in ("cls", "mean"):
            if method in self.methods:
                per_head = torch.stack(self.out[method], dim=1)  # [B, L, H, N]
                b, layers, heads, _ = per_head.shape
                per_head = per_head.reshape(b, layers, heads, gh, gw)
                maps[method] = per_head.cpu().numpy().astype(np.float32)
                maps[f"{method}_fused"] = per_head.mean(dim=2).cpu().numpy().astype(np.float32)
        if "rollout" in self.methods:
            rollout = torch.stack(self.out["rollout"], dim=1)
            maps["rollout"] = rollout.reshape(rollout.shape[0], -1, gh, gw).cpu().numpy().astype(np.float32)
        return maps


def vit_attention_maps(model: VisionModel, pixel_values: torch.Tensor,
                       methods: tuple[str, ...] = ("cls", "mean", "rollout")) -> dict[str, np.ndarray]:
    """All requested maps of all layers for a batch, from one forward pass.

    Returns float32 arrays keyed as in the export contract, each with a leading batch axis:
    ``cls``/``mean`` [B, L, H, gh, gw], ``cls_fused``/``mean_fused``/``rollout`` [B, L, gh, gw].
    """
    reducer = _Reducer(model, methods)
    per_layer = len(model.attention_points) // model.layers
    parts: list[torch.Tensor | None] = []
    handles = [
        module.register_forward_hook(_hook(reducer, index // per_layer, getter, parts, per_layer))
        for index, (module, getter) in enumerate(model.attention_points)
    ]
    try:
        with torch.inference_mode(), _autocast(pixel_values.device):
            model.run(pixel_values)
    finally:
        for handle in handles:
            handle.remove()
    with _float32(pixel_values.device):  # also when the caller runs this under autocast
        return reducer.result()


def _hook(reducer: _Reducer, layer: int, getter, parts: list, per_layer: int):
    """Pass each layer's attention to ``reducer``; a layer of several parallel attentions (``per_layer``
    points) is passed once all have run, their heads concatenated."""

    def hook(_module, _inputs, output):
        parts.append(getter(output))
        if len(parts) < per_layer:
            return
        attn = None if any(p is None for p in parts) else torch.cat(parts, dim=1)
        parts.clear()
        reducer(layer, attn)

    return hook


def _float32(device: torch.device):
    """Autocast off (the caller passes float32 tensors), so reductions are not run in bf16/fp16."""
    return torch.autocast(device_type=device.type, enabled=False)


def _autocast(device: torch.device):
    """bf16 autocast on CUDA (fp16 on MPS); full precision on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "mps":
        return torch.autocast("mps", dtype=torch.float16)
    return contextlib.nullcontext()
