"""Do a declared variant and its base have the same architecture and grid? Checked twice.

Before any model runs (``check_before_loading``): from each checkpoint's config (a local
``save_pretrained`` folder's ``config.json``, a default model's built-in config, a Hub id's config where it
can be read), compared on the model type, layers, heads, width, patch size and input size. A checkpoint
whose config cannot be read without loading it (a timm model, an unreachable Hub id) is compared after
loading instead (``check_entries``: layers, heads, patch size and grid of the manifest entries), still
before any metric is computed. Either way a mismatch is one ``AtlasError`` line naming both models.
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


def config_shape(request: ModelRequest, image_size: tuple[int, int] | None) -> Shape | None:
    """The architecture of a transformers checkpoint read from its config alone (nothing is built or run);
    None for timm checkpoints and configs that cannot be read here."""
    from ssl_attention.models import hf, timm_models
    from ssl_attention.models.hub import is_local, use_offline_mode_if_unreachable

    checkpoint = request.checkpoint
    if request.is_timm or timm_models.is_timm_dir(checkpoint):
        return None
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
    side = getattr(vcfg, "image_size", None)
    size = image_size or ((int(side), int(side)) if side else None)
    return {"model type": getattr(vcfg, "model_type", config.model_type),
            "layers": getattr(vcfg, "num_hidden_layers", None), "heads": getattr(vcfg, "num_attention_heads", None),
            "width": getattr(vcfg, "hidden_size", None), "patch size": patch, "input size": size}


def check_before_loading(pairs: Sequence[VariantPair], requests: Iterable[ModelRequest],
                         image_size: tuple[int, int] | None) -> None:
    """Refuse a pair whose configs differ (one line), before any model is built or run."""
    if not pairs:
        return
    by_name = {r.name: r for r in requests}
    shapes: dict[str, Shape | None] = {}
    for pair in pairs:
        for name in (pair.variant, pair.base):
            if name not in shapes and name in by_name:
                shapes[name] = config_shape(by_name[name], image_size)
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
