"""``compute_maps``: the maps of a batch for any model, with checks on what may be requested."""

from __future__ import annotations

import numpy as np
import torch

from ssl_attention.aspect import at_input_size
from ssl_attention.attention import vit_attention_maps
from ssl_attention.capabilities import Capabilities
from ssl_attention.errors import UnsupportedError
from ssl_attention.features import FeatureRequest
from ssl_attention.methods import Method, default_only, get_method, get_statistic, method_names
from ssl_attention.models.base import VisionModel
from ssl_attention.query_rows import check_query_layers


def check_methods(methods: tuple[str, ...], per_head: bool | None = None) -> None:
    """Raise UnsupportedError (one line) for an unknown method name or per-head maps that do not exist."""
    unknown = [m for m in methods if m not in method_names()]
    if unknown:
        names = ", ".join(repr(m) for m in unknown)
        raise UnsupportedError(f"unknown method {names}; methods are {', '.join(method_names())}")
    for method in [get_method(name) for name in methods]:
        if per_head and not method.per_head:
            raise UnsupportedError(f"{method.name} has no per-head maps ({method.no_heads})")


def check_request(model: VisionModel, methods: tuple[str, ...], per_head: bool | None = None) -> None:
    """Raise UnsupportedError (one line) for a method the model lacks or per-head maps that do not exist."""
    check_methods(methods, per_head)
    for method in methods:
        if method not in model.methods:
            raise UnsupportedError(_why_unsupported(model, method))


def unsupported_reason(capabilities: Capabilities, method: str) -> str:
    """Why a model with ``capabilities`` that lacks ``method`` lacks it (the method's one readable reason)."""
    return get_method(method).refusal(capabilities)


def _why_unsupported(model: VisionModel, method: str) -> str:
    offers = ", ".join(model.methods)
    reason = unsupported_reason(model.capabilities, method)
    return f"model {model.name} ({model.architecture}) does not support {method}: {reason}; it offers {offers}"


def compute_maps(model: VisionModel, pixel_values: torch.Tensor, methods: tuple[str, ...] | None = None,
                 per_head: bool | None = None, statistics: bool = True,
                 query_layers: tuple[int, ...] = (), features: FeatureRequest | None = None) -> dict[str, np.ndarray]:
    """Maps for a batch: float32 arrays with a leading batch axis, keyed as in the export contract.

    ``statistics``: also the registry's statistics the model exports (``model.statistics``: attention
    distance, entropy, prefix mass, token norms; ViTs only), from the maps' forward pass.

    ``per_head``: None keeps per-head maps where they exist; False keeps fused maps only; True demands
    per-head maps, which is an error for methods without heads (rollout, gradcam) named in ``methods``.
    With ``methods`` None (every method of the model but the gradient methods, which are asked for by
    name), True is the same as None.

    ``query_layers``: also the quantised query-patch rows of these layers (``query_rows``, ``query_scale``;
    see ``ssl_attention.query_rows``), from the same forward pass; a layer the model lacks is an error.

    ``features``: also the box similarities of the boxes it gives per image and the quantised patch
    features of its layers (``ssl_attention.features``), from the same forward pass (ViTs only).
    """
    if methods is None:
        methods = default_only(model.methods)
        if per_head:  # nothing was named that could lack heads: keep them where they exist
            per_head = None
    check_request(model, methods, per_head)
    check_query_layers(tuple(query_layers), model.layers, model.kind, model.name)
    if features is not None and model.kind != "vit":
        features = None  # a CNN has no patch tokens
    check_feature_layers(features.layers if features else (), model.layers, model.name)
    pixel_values = pixel_values.to(next(model.module.parameters()).device)
    model = at_input_size(model, tuple(pixel_values.shape[-2:]))  # keep: each batch its own grid
    chosen = [get_method(name) for name in methods]
    maps: dict[str, np.ndarray] = {}
    reductions = tuple(m for m in chosen if m.reduction is not None)
    stats = tuple(get_statistic(name) for name in model.statistics) if statistics else ()
    if reductions or stats or query_layers or (features and not features.empty):
        maps.update(vit_attention_maps(model, pixel_values, reductions, stats, tuple(query_layers), features))
    for method in chosen:
        compute = method.compute_function()
        if compute is not None:
            maps.update(compute(model, pixel_values))
    if per_head is False:
        maps = {name: values for name, values in maps.items() if name not in _head_arrays(chosen)}
    return maps


def check_feature_layers(layers: tuple[int, ...], model_layers: int, name: str) -> None:
    """UnsupportedError (one line) for feature layers a model does not have."""
    bad = [layer for layer in layers if not 0 <= layer < model_layers]
    if bad:
        raise UnsupportedError(f"model {name}: no layer {bad[0]} for features (it has layers 0-{model_layers - 1})")


def _head_arrays(methods: list[Method]) -> set[str]:
    return {m.head_array for m in methods if m.head_array}
