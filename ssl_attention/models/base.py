"""The one type every adapter produces: a loaded model plus what the extractors need to know."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ssl_attention.capabilities import Capabilities
from ssl_attention.explainers import Explainer
from ssl_attention.methods import methods_for, statistics_for
from ssl_attention.preprocess import Preprocessing


@dataclass
class VisionModel:
    """A loaded model in eval mode.

    ViTs (kind "vit") expose ``attention_points``: one (module, getter) per layer, in depth order, where
    ``getter(module_output)`` returns that layer's post-softmax attention [B, heads, T, T]; a layer of
    several parallel attentions has that many consecutive points, whose heads together make ``heads``.
    They also expose ``block_outputs``: one (module, getter) per layer, in depth order, where
    ``getter(module_output)`` returns that layer's output hidden states [B, T, D] (before any final norm:
    transformers' ``hidden_states[l + 1]``).
    CNNs (kind "cnn") expose ``stages``: the modules whose outputs Grad-CAM uses.
    A ViT loaded with ``explain`` and something to explain has an ``explainer`` (``ssl_attention.explainers``).
    ``run(pixel_values)`` performs the forward pass (and returns logits for CNNs).
    """

    name: str
    checkpoint: str
    weights: str  # "pretrained" | "random"
    family: str
    architecture: str
    kind: str  # "vit" | "cnn"
    module: nn.Module
    preprocessing: Preprocessing
    run: Callable[[torch.Tensor], Any]
    patch_size: int
    layers: int
    heads: int = 0
    num_registers: int = 0
    has_cls: bool = True
    attention_points: list[tuple[nn.Module, Callable[[Any], torch.Tensor]]] = field(default_factory=list)
    block_outputs: list[tuple[nn.Module, Callable[[Any], torch.Tensor]]] = field(default_factory=list)
    stages: list[nn.Module] = field(default_factory=list)
    class_names: list[str] | None = None
    note: str = ""  # e.g. why weights are random
    revision: str = ""  # Hub commit or local fingerprint of the weights ("" when random or unknown)
    explainer: Explainer | None = None  # the scores gradient methods explain (a head, a text tower), if any
    any_input_size: bool = True  # whether it takes inputs of other sizes (position embeddings interpolated)
    probe_head: nn.Module | None = None  # an attention-pooling head (``ssl_attention.probe``), if any

    @property
    def prefix_tokens(self) -> int:
        """Tokens before the first patch token (CLS and registers)."""
        return int(self.has_cls) + self.num_registers

    @property
    def capabilities(self) -> Capabilities:
        """What this model offers the methods: its kind, CLS and register tokens, what it can explain."""
        vit = self.kind == "vit"
        explains = self.explainer.kind if self.explainer is not None else ""
        return Capabilities(self.kind, cls=self.has_cls and vit, registers=self.num_registers if vit else 0,
                            classifier=explains == "class", text_tower=explains == "prompt",
                            probe=vit and self.probe_head is not None)

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods of the registry this model supports."""
        return methods_for(self.capabilities)

    @property
    def statistics(self) -> tuple[str, ...]:
        """The statistics of the registry this model exports (ViTs; some need CLS or register tokens)."""
        return statistics_for(self.capabilities)

    @property
    def grid(self) -> tuple[int, int]:
        """Map grid (rows, cols) for this model's input size: input size / patch size, not sqrt(N)."""
        h, w = self.preprocessing.size
        return h // self.patch_size, w // self.patch_size
