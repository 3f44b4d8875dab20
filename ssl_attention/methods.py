"""The method registry: every kind of map the atlas computes, defined once.

Everything that needs to know a method reads it from ``METHODS``: which models offer it, whether it has
per-head maps, the arrays it exports, its label on the pages (which receive the table in their data
block), its unit of depth, and how it is computed. Adding a method is one ``Method`` entry plus its
computation (a per-layer attention reduction for ViTs, or a whole-batch function) plus its docs.

Which models offer a method: the model kinds it lists, and its ``requires`` (``Requirement``s of
``ssl_attention.capabilities``: a CLS token, register tokens, a score to explain), asked of each model's
``Capabilities``; a model that lacks one is refused with that requirement's reason.

Two ways to compute:

* ``reduction``: for ViTs, a factory called once per batch with the model's ``TokenLayout``; it returns
  a step ``(layer, attn) -> maps`` called for each layer's post-softmax attention ``attn``
  [B, heads, T, T] (float32), returning [B, heads, patches] for a per-head method, else [B, patches].
  All reductions of a batch share one forward pass (``ssl_attention.attention``).
* ``compute``: a function ``(model, pixel_values) -> {array name: [B, ...] float32}`` that does its own
  passes (Grad-CAM's forward and backward).

Statistics of a ViT's heads and tokens (``Statistic``: attention distance, entropy, the attention
sink, token norms) are registered beside the methods in ``STATISTICS``. They are not maps: every ViT
exports those its token layout allows, from the same forward pass as its maps, and nothing renders them.

Every computation is a callable or a ``"module:function"`` reference, imported when first used: the
registry itself imports no torch, so the command line can read it (``atlas --help``) and stay fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ssl_attention.capabilities import CLS_TOKEN, PROBE_HEAD, SCORE_TO_EXPLAIN, Capabilities, Requirement
from ssl_attention.errors import UnsupportedError

if TYPE_CHECKING:
    import torch

LayerStep = Callable[[int, "torch.Tensor"], "torch.Tensor"]
Reduction = Callable[["TokenLayout"], LayerStep]
Compute = Callable[..., dict]  # (VisionModel, pixel_values) -> {array name: [B, ...] float32 ndarray}


@dataclass(frozen=True)
class TokenLayout:
    """Where the patch tokens are in a ViT's sequence: ``prefix`` tokens (CLS, registers) first."""

    prefix: int
    grid: tuple[int, int]
    has_cls: bool
    patch_size: int  # pixels of the model input per patch side

    @property
    def patches(self) -> slice:
        """The patch tokens' positions."""
        return slice(self.prefix, self.prefix + self.grid[0] * self.grid[1])


@dataclass(frozen=True)
class Method:
    """One kind of map, as the library, the build and the pages know it."""

    name: str  # CLI value, npz array name, URL value
    label: str  # shown on the pages
    kinds: tuple[str, ...]  # model kinds that offer it: "vit", "cnn"
    per_head: bool  # per-head maps exist: ``<name>`` [L, H, gh, gw] beside ``<name>_fused`` [L, gh, gw]
    wrong_kind: str  # why a model of another kind lacks it
    no_heads: str = ""  # why it has no per-head maps (where it has none)
    requires: tuple[Requirement, ...] = ()  # what else a model needs to offer it (a CLS token, a score to explain)
    default: bool = True  # computed when no --method is given (gradient methods are asked for by name)
    unit: str = "layer"  # what its depth axis counts: "layer", "stage", "target" (one map per target) or
    # "pool" (one map: an attention-pooling head after the last layer)
    term: str | None = None  # glossary term of the label, where it is not the label itself
    reduction: Reduction | str | None = None
    compute: Compute | str | None = None
    extra_arrays: tuple[str, ...] = ()  # further npz arrays it writes (e.g. the Grad-CAM target class)
    source: str = "attention"  # what its reduction's step receives: "attention" of each layer, or "pool":
    # the pooling head's attention [B, heads, T] (one step)

    @property
    def fused_array(self) -> str:
        """The npz array of its fused maps [L, gh, gw]."""
        return f"{self.name}_fused" if self.per_head else self.name

    @property
    def head_array(self) -> str | None:
        """The npz array of its per-head maps [L, H, gh, gw], or None."""
        return self.name if self.per_head else None

    def refusal(self, capabilities: Capabilities) -> str:
        """Why a model with ``capabilities`` does not offer this method (its first unmet need); "" if it does."""
        if capabilities.kind not in self.kinds:
            return self.wrong_kind
        return next((r.reason for r in self.requires if not r.met_by(capabilities)), "")

    def offered_to(self, capabilities: Capabilities) -> bool:
        """Whether a model with ``capabilities`` offers this method."""
        return not self.refusal(capabilities)

    def reduction_factory(self) -> Reduction | None:
        """The per-layer reduction factory (imported on first use when given as a reference)."""
        return _resolve(self.reduction)

    def compute_function(self) -> Compute | None:
        """The whole-batch computation (imported on first use when given as a reference)."""
        return _resolve(self.compute)

    def page_data(self) -> dict[str, Any]:
        """What the page JavaScript needs to know of it."""
        return {"key": self.name, "label": self.label, "unit": self.unit}


def _resolve(target: Callable | str | None) -> Callable | None:
    if not isinstance(target, str):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


_NOT_A_VIT = "it is a CNN without attention"
_RELEVANCE = "ssl_attention.relevance"

METHODS: tuple[Method, ...] = (
    Method("cls", "CLS attention", kinds=("vit",), per_head=True, requires=(CLS_TOKEN,), wrong_kind=_NOT_A_VIT,
           reduction="ssl_attention.attention:cls_reduction"),
    Method("mean", "mean attention received", kinds=("vit",), per_head=True, wrong_kind=_NOT_A_VIT,
           term="mean attention", reduction="ssl_attention.attention:mean_reduction"),
    Method("rollout", "rollout", kinds=("vit",), per_head=False, wrong_kind=_NOT_A_VIT,
           no_heads="it fuses all heads", reduction="ssl_attention.attention:rollout_reduction"),
    Method("gradcam", "Grad-CAM", kinds=("cnn",), per_head=False, wrong_kind="Grad-CAM is implemented for CNNs only",
           no_heads="a CNN has no heads", unit="stage", compute="ssl_attention.gradcam:gradcam_maps",
           extra_arrays=("gradcam_class",)),
    Method("relevance", "relevance", kinds=("vit",), per_head=False, wrong_kind=_NOT_A_VIT,
           requires=(SCORE_TO_EXPLAIN,), default=False, no_heads="it fuses all heads", unit="target",
           compute=f"{_RELEVANCE}:relevance_maps", extra_arrays=("relevance_class",)),
    Method("gradcam_vit", "Grad-CAM (ViT)", kinds=("vit",), per_head=False, wrong_kind=_NOT_A_VIT,
           requires=(SCORE_TO_EXPLAIN,), default=False, no_heads="it weights channels, not heads", unit="target",
           term="ViT Grad-CAM", compute=f"{_RELEVANCE}:gradcam_vit_maps", extra_arrays=("gradcam_vit_class",)),
    Method("probe", "probe attention", kinds=("vit",), per_head=True, requires=(PROBE_HEAD,), wrong_kind=_NOT_A_VIT,
           unit="pool", term="probe attention", reduction="ssl_attention.probe:probe_reduction", source="pool"),
)


def all_methods() -> tuple[Method, ...]:
    """Every registered method, in the registry's order (the order of pages, manifests and tables).

    Read the table through this function (or the others here), never by importing ``METHODS``: a test
    or a plugin may extend the module's table.
    """
    return METHODS


def method_names() -> tuple[str, ...]:
    """Every method name, in the registry's order."""
    return tuple(m.name for m in all_methods())


def get_method(name: str) -> Method:
    """The registered method ``name``; UnsupportedError (one line) for an unknown name."""
    for method in all_methods():
        if method.name == name:
            return method
    known = ", ".join(method_names())
    raise UnsupportedError(f"unknown method {name!r}; methods are {known}")


def methods_for(capabilities: Capabilities) -> tuple[str, ...]:
    """The methods a model with ``capabilities`` offers, in registry order."""
    return tuple(m.name for m in all_methods() if m.offered_to(capabilities))


def default_only(names: Any) -> tuple[str, ...]:
    """The methods among ``names`` computed when none is named (not the gradient methods), in order."""
    return tuple(name for name in in_order(names) if get_method(name).default)


def target_methods() -> tuple[str, ...]:
    """The methods with one map per target (relevance, ViT Grad-CAM)."""
    return tuple(m.name for m in all_methods() if m.unit == "target")


def in_order(names: Any) -> tuple[str, ...]:
    """The registered methods among ``names``, in registry order (unknown names dropped)."""
    wanted = set(names)
    return tuple(name for name in method_names() if name in wanted)


def per_head_methods() -> tuple[str, ...]:
    """The methods that have per-head maps."""
    return tuple(m.name for m in all_methods() if m.per_head)


@dataclass(frozen=True)
class Statistic:
    """One per-layer statistic of a ViT, exported beside its maps (``<name>`` in each npz).

    ``source`` says what its per-layer step receives: ``"attention"``, the layer's post-softmax attention
    [B, heads, T, T], or ``"hidden"``, the layer's output hidden states [B, T, D] (before any final norm,
    transformers' ``hidden_states[l + 1]``); both float32. The step returns the layer's values with a
    leading batch axis ([B, *axes[1:]]); stacked over layers they give ``axes``.
    """

    name: str  # npz array name
    description: str
    source: str  # "attention" | "hidden"
    axes: tuple[str, ...]  # the exported array's axes, e.g. ("layer", "head")
    unit: str
    reduction: Reduction | str
    needs_prefix: bool = False  # exported only by ViTs with a CLS token or registers

    def offered_to(self, capabilities: Capabilities) -> bool:
        """Whether a model with ``capabilities`` exports this statistic (ViTs; some need CLS or registers)."""
        return capabilities.kind == "vit" and (capabilities.prefix or not self.needs_prefix)

    def reduction_factory(self) -> Reduction:
        """The per-layer step factory, called with the model's ``TokenLayout``."""
        return _resolve(self.reduction)


_STATS = "ssl_attention.head_statistics"

STATISTICS: tuple[Statistic, ...] = (
    Statistic("distance", "mean attention distance between patch centres, over patch queries", "attention",
              ("layer", "head"), "model-input pixels", f"{_STATS}:distance_reduction"),
    Statistic("entropy", "mean entropy of the patch queries' attention over all tokens", "attention",
              ("layer", "head"), "nats", f"{_STATS}:entropy_reduction"),
    Statistic("prefix_mass", "mean attention the patch queries give the CLS and register tokens (the sink)",
              "attention", ("layer", "head"), "fraction of attention", f"{_STATS}:prefix_mass_reduction",
              needs_prefix=True),
    Statistic("token_norm", "L2 norm of each patch token's hidden state at the layer's output", "hidden",
              ("layer", "row", "col"), "hidden-state units", f"{_STATS}:token_norm_reduction"),
    Statistic("prefix_norm", "L2 norm of the CLS and register tokens' hidden states at the layer's output",
              "hidden", ("layer", "prefix"), "hidden-state units", f"{_STATS}:prefix_norm_reduction",
              needs_prefix=True),
    Statistic("pca", "projections of the centred patch tokens on their first three principal axes (RGB)",
              "hidden", ("layer", "component", "row", "col"), "hidden-state units",
              "ssl_attention.features:pca_reduction"),
)


def all_statistics() -> tuple[Statistic, ...]:
    """Every registered statistic, in the registry's order (read it through this function)."""
    return STATISTICS


def get_statistic(name: str) -> Statistic:
    """The registered statistic ``name``; UnsupportedError (one line) for an unknown name."""
    for statistic in all_statistics():
        if statistic.name == name:
            return statistic
    known = ", ".join(s.name for s in all_statistics())
    raise UnsupportedError(f"unknown statistic {name!r}; statistics are {known}")


def statistics_for(capabilities: Capabilities) -> tuple[str, ...]:
    """The statistics a model with ``capabilities`` exports, in registry order."""
    return tuple(s.name for s in all_statistics() if s.offered_to(capabilities))
