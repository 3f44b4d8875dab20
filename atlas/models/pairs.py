"""Do a declared variant and its base have the same architecture and grid? Checked twice.

Before any model runs (``check_before_loading``): from each checkpoint's config (a local
``save_pretrained`` folder's ``config.json``, a default model's built-in config, a Hub id's config where it
can be read) or, for timm, the model built on PyTorch's meta device (no memory, no weights, nothing run),
compared on the model type, layers, heads, width and patch size. The input size is not compared there
(it may come from an image processor rather than the config): after loading, ``check_entries`` compares
the manifest entries' layers, heads, patch size and grid, before any metric is computed; it also catches a
checkpoint whose config could not be read beforehand. Either way a mismatch is one ``AtlasError`` line
naming both models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from atlas.core.manifest import ModelEntry
from atlas.core.variants import VariantPair
from ssl_attention.errors import AtlasError, ModelLoadError
from ssl_attention.models import ModelRequest

Shape = dict[str, object]  # what is compared: name -> value, in the order the line says them


def _first_difference(variant: Shape, base: Shape) -> str | None:
    """``"heads 6 vs 12"`` for the first compared key whose values differ; None when all agree."""
    for key, value in variant.items():
        if key in base and base[key] != value:
            return f"{key} {_text(value)} vs {_text(base[key])}"
    return None


def _text(value: object) -> str:
    return "x".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def _refuse(pair: VariantPair, difference: str) -> AtlasError:
    return AtlasError(f"--base {pair.variant}={pair.base}: {pair.variant} and {pair.base} differ in architecture "
                      f"({difference}); a variant must have its base's layers, heads, patch size and input size")


def config_shape(request: ModelRequest) -> Shape | None:
    """The architecture of a checkpoint read without loading its weights or running it: a transformers
    config, or a timm model built on the meta device; None where it cannot be read here."""
    from ssl_attention.models import hf, timm_models
    from ssl_attention.models.hub import is_local, use_offline_mode_if_unreachable

    checkpoint = request.checkpoint
    if request.is_timm or timm_models.is_timm_dir(checkpoint):
        return _timm_shape(checkpoint)
    try:
        config = hf.builtin_config(checkpoint) if not is_local(checkpoint) else None
        if config is None:
            if not is_local(checkpoint):
                use_offline_mode_if_unreachable()
            config = hf.load_hf_config(checkpoint)
    except ModelLoadError:
        return None
    vcfg = getattr(config, "vision_config", config)
    patch = getattr(vcfg, "patch_size", None)
    patch = patch[0] if isinstance(patch, list | tuple) else patch
    return {"model type": getattr(vcfg, "model_type", config.model_type),
            "layers": getattr(vcfg, "num_hidden_layers", None), "heads": getattr(vcfg, "num_attention_heads", None),
            "width": getattr(vcfg, "hidden_size", None), "patch size": patch}


def _timm_shape(checkpoint: str) -> Shape | None:
    """A timm ViT's layers, heads, width and patch size from the model built on the meta device (None for
    other models or where it cannot be built)."""
    import timm
    import torch

    from ssl_attention.models.timm_models import _parse

    try:
        name, _ = _parse(checkpoint)
        with torch.device("meta"):
            module = timm.create_model(name, pretrained=False)
        patch = module.patch_embed.patch_size
        patch = int(patch[0] if isinstance(patch, tuple | list) else patch)
        return {"layers": len(module.blocks), "heads": int(module.blocks[0].attn.num_heads),
                "width": int(module.embed_dim), "patch size": patch}
    except Exception:  # not a ViT, or not buildable here: compared on the loaded entries instead
        return None


def check_before_loading(pairs: Sequence[VariantPair], requests: Iterable[ModelRequest]) -> None:
    """Refuse a pair whose configs differ (one line), before any model is built or run."""
    if not pairs:
        return
    by_name = {r.name: r for r in requests}
    shapes: dict[str, Shape | None] = {}
    for pair in pairs:
        for name in (pair.variant, pair.base):
            if name not in shapes and name in by_name:
                shapes[name] = config_shape(by_name[name])
        variant, base = shapes.get(pair.variant), shapes.get(pair.base)
        if variant is not None and base is not None:
            difference = _first_difference(variant, base)
            if difference:
                raise _refuse(pair, difference)


def entry_shape(entry: ModelEntry) -> Shape:
    """What a pair must share, from a loaded (or cached) model's manifest entry."""
    return {"kind": entry.kind, "layers": entry.layers, "heads": entry.heads, "patch size": entry.patch_size,
            "grid": tuple(entry.grid)}


def check_entries(pairs: Sequence[VariantPair], entries: Mapping[str, ModelEntry]) -> list[VariantPair]:
    """The pairs whose two models were both built, each checked on the built entries (``AtlasError``, one
    line, for a mismatch that the configs could not show)."""
    built = []
    for pair in pairs:
        if pair.variant in entries and pair.base in entries:
            difference = _first_difference(entry_shape(entries[pair.variant]), entry_shape(entries[pair.base]))
            if difference:
                raise _refuse(pair, difference)
            built.append(pair)
    return built
