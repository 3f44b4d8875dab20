"""``compute_maps``: the maps of a batch for any model, with checks on what may be requested."""

from __future__ import annotations

import numpy as np
import torch

from ssl_attention.attention import vit_attention_maps
from ssl_attention.errors import UnsupportedError
from ssl_attention.gradcam import gradcam_maps
from ssl_attention.models.base import VisionModel

ALL_METHODS = ("cls", "mean", "rollout", "gradcam")
HEADLESS_METHODS = ("rollout", "gradcam")


def check_methods(methods: tuple[str, ...], per_head: bool | None = None) -> None:
    """Raise UnsupportedError (one line) for an unknown method name or per-head maps that do not exist."""
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        names = ", ".join(repr(m) for m in unknown)
        raise UnsupportedError(f"unknown method {names}; methods are {', '.join(ALL_METHODS)}")
    if per_head:
        for method in methods:
            if method in HEADLESS_METHODS:
                why = "it fuses all heads" if method == "rollout" else "a CNN has no heads"
                raise UnsupportedError(f"{method} has no per-head maps ({why})")


def check_request(model: VisionModel, methods: tuple[str, ...], per_head: bool | None = None) -> None:
    """Raise UnsupportedError (one line) for a method the model lacks or per-head maps that do not exist."""
    check_methods(methods, per_head)
    for method in methods:
        if method not in model.methods:
            raise UnsupportedError(_why_unsupported(model, method))


def unsupported_reason(kind: str, method: str) -> str:
    """Why a model of ``kind`` ("vit" or "cnn") that lacks ``method`` lacks it."""
    if method == "gradcam":
        return "Grad-CAM is implemented for CNNs only"
    if method == "cls" and kind == "vit":
        return "it has no CLS token"
    return "it is a CNN without attention"


def _why_unsupported(model: VisionModel, method: str) -> str:
    offers = ", ".join(model.methods)
    reason = unsupported_reason(model.kind, method)
    return f"model {model.name} ({model.architecture}) does not support {method}: {reason}; it offers {offers}"


def compute_maps(model: VisionModel, pixel_values: torch.Tensor, methods: tuple[str, ...] | None = None,
                 per_head: bool | None = None) -> dict[str, np.ndarray]:
    """Maps for a batch: float32 arrays with a leading batch axis, keyed as in the export contract.

    ``per_head``: None keeps per-head maps where they exist; False keeps fused maps only; True demands
    per-head maps, which is an error for methods without heads (rollout, gradcam) named in ``methods``.
    With ``methods`` None (every method of the model), True is the same as None.
    """
    if methods is None:
        methods = model.methods
        if per_head:  # nothing was named that could lack heads: keep them where they exist
            per_head = None
    check_request(model, methods, per_head)
    pixel_values = pixel_values.to(next(model.module.parameters()).device)
    if model.kind == "cnn":
        return gradcam_maps(model, pixel_values)
    maps = vit_attention_maps(model, pixel_values, methods)
    if per_head is False:
        maps = {name: values for name, values in maps.items() if name not in ("cls", "mean")}
    return maps
