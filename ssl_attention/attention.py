"""Attention maps of ViTs, every layer from one forward pass (definitions: site_src/methods.md).

Hooks reduce each layer's post-softmax attention A[l] of shape [B, heads, T, T] as soon as it is
produced, so only the reduced maps and one running rollout matrix are kept, never all layers' matrices:

* cls, head h:   A[l][h, 0, P]                       (P = patch tokens, after CLS and registers)
* mean, head h:  mean over patch queries i in P of A[l][h, i, P]   (the attention each patch receives)
* rollout to l:  R = I; for k <= l: M = mean_h A[k]; M = (M + I) / 2; M /= M.sum(-1, keepdim); R = M @ R
                 map = R[0, P] with a CLS token, else the mean over patch rows of R[P, P]
Fused cls/mean maps are the mean over heads. Each reduction is a method of the registry
(``ssl_attention.methods``), which says which of them a model offers. The same pass computes the
registry's statistics (``ssl_attention.head_statistics``): those of the attention from the same hooks,
those of the hidden states from a second hook on each layer's output (``VisionModel.block_outputs``),
and, for the layers asked for, the quantised query-patch rows A[l][h, P, P] (``ssl_attention.query_rows``).

On a GPU the forward pass runs under bf16/fp16 autocast; every reduction here (including rollout's
matrix product, which autocast would otherwise run in reduced precision) runs in float32 with autocast
disabled (``_float32``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from ssl_attention.errors import AtlasError
from ssl_attention.features import FeatureCollector, FeatureRequest
from ssl_attention.methods import Method, Statistic, TokenLayout
from ssl_attention.query_rows import ROWS_ARRAY, SCALE_ARRAY, patch_rows

if TYPE_CHECKING:
    from ssl_attention.models.base import VisionModel


def cls_reduction(layout: TokenLayout) -> Callable[[int, torch.Tensor], torch.Tensor]:
    """cls, head h: A[l][h, 0, P] -> [B, heads, patches]."""
    patches = layout.patches
    return lambda _layer, attn: attn[:, :, 0, patches].clone()  # a view would keep all of attn alive


def mean_reduction(layout: TokenLayout) -> Callable[[int, torch.Tensor], torch.Tensor]:
    """mean, head h: mean over patch queries i of A[l][h, i, P] -> [B, heads, patches]."""
    patches = layout.patches
    return lambda _layer, attn: attn[:, :, patches, patches].mean(dim=2)


def rollout_reduction(layout: TokenLayout) -> Callable[[int, torch.Tensor], torch.Tensor]:
    """rollout to layer l (the layers arrive in depth order) -> [B, patches]; one running matrix is kept."""
    patches = layout.patches
    rollout: torch.Tensor | None = None

    def step(_layer: int, attn: torch.Tensor) -> torch.Tensor:
        nonlocal rollout
        fused = attn.mean(dim=1)
        eye = torch.eye(fused.shape[-1], device=fused.device, dtype=fused.dtype)
        mixed = 0.5 * fused + 0.5 * eye
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed if rollout is None else mixed @ rollout
        if layout.has_cls:
            return rollout[:, 0, patches].clone()
        return rollout[:, patches, patches].mean(dim=1)

    return step


class _Reducer:
    """Receives each layer's attention and output hidden states and keeps every requested method's and
    statistic's per-layer reduction."""

    def __init__(self, model: VisionModel, methods: tuple[Method, ...], statistics: tuple[Statistic, ...] = (),
                 query_layers: tuple[int, ...] = (), features: FeatureRequest | None = None):
        self.query_layers = tuple(query_layers)
        self.query: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # layer -> (codes, scales)
        self.layout = TokenLayout(model.prefix_tokens, model.grid, model.has_cls, model.patch_size)
        self.layers = model.layers
        self.methods = methods
        self.statistics = statistics
        self.steps = {
            source: {e.name: e.reduction_factory()(self.layout) for e in entries}
            for source, entries in (
                ("attention", (*(m for m in methods if m.source == "attention"),
                               *(s for s in statistics if s.source == "attention"))),
                ("hidden", tuple(s for s in statistics if s.source == "hidden")),
                ("pool", tuple(m for m in methods if m.source == "pool")),
            )
        }
        names = [*(m.name for m in methods), *(s.name for s in statistics)]
        self.out: dict[str, list[torch.Tensor | None]] = {name: [None] * model.layers for name in names}
        self.out.update({name: [None] for name in self.steps["pool"]})  # one step: the pooling head
        self.seen = {"attention": 0, "hidden": 0, "pool": 0}
        self.features = None if features is None or features.empty else \
            FeatureCollector(self.layout, model.layers, features)

    @property
    def needs_hidden(self) -> bool:
        """Whether any requested statistic or feature reads the layers' hidden states."""
        return bool(self.steps["hidden"] or self.features)

    @property
    def needs_attention(self) -> bool:
        """Whether any method, statistic or query layer reads the attention."""
        return bool(self.steps["attention"] or self.query_layers)

    def __call__(self, layer: int, attn: torch.Tensor | None) -> None:
        if attn is None:
            raise AtlasError("the model returned no attention weights: it must run with eager attention")
        with _float32(attn.device):
            self._reduce("attention", layer, attn.detach().float())

    def hidden(self, layer: int, hidden: torch.Tensor) -> None:
        """Receive layer ``layer``'s output hidden states [B, T, D]."""
        with _float32(hidden.device):
            self._reduce("hidden", layer, hidden.detach().float())

    def pool(self, attn: torch.Tensor) -> None:
        """Receive the pooling head's attention [B, heads, T] (``ssl_attention.probe``)."""
        with _float32(attn.device):
            self._reduce("pool", 0, attn.detach().float())

    def _reduce(self, source: str, layer: int, values: torch.Tensor) -> None:
        tokens = values.shape[1] if source == "hidden" else values.shape[-1]
        prefix, grid = self.layout.prefix, self.layout.grid
        n = grid[0] * grid[1]
        if tokens != prefix + n:
            raise AtlasError(f"layer {layer}: {tokens} tokens, expected {prefix} prefix + {n} patches for grid {grid}")
        for name, step in self.steps[source].items():
            self.out[name][layer] = step(layer, values)
        if source == "attention" and layer in self.query_layers:
            self.query[layer] = patch_rows(self.layout, values)
        if source == "hidden" and self.features is not None:
            self.features.step(layer, values)
        self.seen[source] += 1

    def result(self) -> dict[str, np.ndarray]:
        """Arrays of the export contract with a leading batch axis."""
        for source, seen in self.seen.items():
            needed = {"attention": self.needs_attention, "hidden": self.needs_hidden}.get(source, self.steps[source])
            expected = 1 if source == "pool" else self.layers
            if needed and seen != expected:
                what = {"attention": "attention", "hidden": "output hidden states"}.get(source, "pooling attention")
                raise AtlasError(f"captured {what} of {seen} layers, expected {expected}")
        gh, gw = self.layout.grid
        maps: dict[str, np.ndarray] = {}
        for method in self.methods:
            stacked = torch.stack(self.out[method.name], dim=1)  # [B, L, (H,) N]
            stacked = stacked.reshape(*stacked.shape[:-1], gh, gw)
            if method.per_head:
                maps[method.head_array] = stacked.cpu().numpy().astype(np.float32)
                stacked = stacked.mean(dim=2)
            maps[method.fused_array] = stacked.cpu().numpy().astype(np.float32)
        for statistic in self.statistics:
            maps[statistic.name] = torch.stack(self.out[statistic.name], dim=1).cpu().numpy().astype(np.float32)
        if self.query_layers:
            rows = [self.query[layer] for layer in self.query_layers]
            maps[ROWS_ARRAY] = torch.stack([codes for codes, _ in rows], dim=1).cpu().numpy()
            maps[SCALE_ARRAY] = torch.stack([scale for _, scale in rows], dim=1).cpu().numpy().astype(np.float32)
        if self.features is not None:
            maps.update(self.features.result())
        return maps


def vit_attention_maps(model: VisionModel, pixel_values: torch.Tensor, methods: tuple[Method, ...],
                       statistics: tuple[Statistic, ...] = (),
                       query_layers: tuple[int, ...] = (),
                       features: FeatureRequest | None = None) -> dict[str, np.ndarray]:
    """All requested maps and statistics of all layers for a batch, from one forward pass.

    ``methods`` are registry entries with a ``reduction``, ``statistics`` registry ``Statistic``s.
    Returns float32 arrays keyed as in the export contract, each with a leading batch axis: per-head
    methods ``<name>`` [B, L, H, gh, gw] and ``<name>_fused`` [B, L, gh, gw]; the other methods
    ``<name>`` [B, L, gh, gw]; each statistic ``<name>`` [B, L, ...] (its ``axes``); with
    ``query_layers``, ``query_rows`` uint8 [B, Lq, H, P, P] and ``query_scale`` float32 [B, Lq, H, P]
    of those layers in that order (``ssl_attention.query_rows``); with ``features``, ``box_similarity``
    [B, slots, L, gh, gw] and ``features`` int8 / ``features_scale`` [B, Lf, ...] (``ssl_attention.features``).
    """
    reducer = _Reducer(model, methods, statistics, query_layers, features)
    per_layer = len(model.attention_points) // model.layers
    parts: list[torch.Tensor | None] = []
    handles = [
        module.register_forward_hook(_hook(reducer, index // per_layer, getter, parts, per_layer))
        for index, (module, getter) in enumerate(model.attention_points)
    ]
    if reducer.needs_hidden:
        if len(model.block_outputs) != model.layers:
            raise AtlasError(f"model {model.name}: {len(model.block_outputs)} layer outputs, expected {model.layers}")
        handles += [module.register_forward_hook(_hidden_hook(reducer, layer, getter))
                    for layer, (module, getter) in enumerate(model.block_outputs)]
    if reducer.steps["pool"]:
        handles.append(_pool_hook(reducer, model))
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


def _hidden_hook(reducer: _Reducer, layer: int, getter):
    """Pass layer ``layer``'s output hidden states to ``reducer``."""
    return lambda _module, _inputs, output: reducer.hidden(layer, getter(output))


def _pool_hook(reducer: _Reducer, model: VisionModel):
    """Pass the pooling head's attention over its input (the last layer's normed output) to ``reducer``."""
    from ssl_attention.probe import probe_attention

    head = model.probe_head
    if head is None:
        raise AtlasError(f"model {model.name}: no attention-pooling head for the probe method")

    def hook(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_state"]
        with _float32(hidden.device):
            reducer.pool(probe_attention(module, hidden))

    return head.register_forward_pre_hook(hook, with_kwargs=True)


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
