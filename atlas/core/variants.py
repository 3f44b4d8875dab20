"""Declared variants: ``--base VARIANT=BASE`` says that model VARIANT is a fine-tuned version of model BASE.

This module parses the option's values and checks the names against the build's ``--model`` names; the
architectures are compared in ``atlas.models.pairs`` (before any model runs) and the paired statistics
are ``atlas.metrics.deltas``. It imports nothing heavy (``atlas --help`` reads the option schema).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ssl_attention.errors import AtlasError

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # a model name, as ``--model NAME`` takes it


@dataclass(frozen=True)
class VariantPair:
    """One declared pair: ``variant`` is a fine-tuned version of ``base`` (both model names of the build)."""

    variant: str
    base: str

    def as_json(self) -> dict[str, str]:
        """``{"variant", "base"}`` as ``summary.json`` lists the build's pairs."""
        return {"variant": self.variant, "base": self.base}


def parse_bases(values: Iterable[str] | None) -> tuple[VariantPair, ...]:
    """``--base`` values (``VARIANT=BASE``, repeatable) as pairs, in the given order; ``AtlasError`` (one line)
    for a malformed value, a model declared its own base, or a variant given two bases."""
    pairs: list[VariantPair] = []
    for text in values or ():
        variant, sep, base = str(text).partition("=")
        variant, base = variant.strip(), base.strip()
        if not sep or not _NAME.match(variant) or not _NAME.match(base):
            raise AtlasError(f"--base {text!r}: expected VARIANT=BASE, two model names given with --model "
                             "(lowercase letters, digits, '-' or '_')")
        if variant == base:
            raise AtlasError(f"--base {text!r}: a model cannot be its own base")
        if any(p.variant == variant for p in pairs):
            raise AtlasError(f"--base: variant {variant!r} is given two bases; declare each variant once")
        pairs.append(VariantPair(variant, base))
    return tuple(pairs)


def check_names(pairs: Sequence[VariantPair], models: Sequence[str]) -> None:
    """Each pair names two of the build's models; else ``AtlasError`` naming the unknown one (one line)."""
    for pair in pairs:
        for role, name in (("variant", pair.variant), ("base", pair.base)):
            if name not in models:
                known = ", ".join(models) or "none"
                raise AtlasError(f"--base {pair.variant}={pair.base}: the {role} {name!r} is not a model of this "
                                 f"build (--model names: {known})")


# The bundled sample declares one variant so that its atlas shows the feature: DINOv2's architecture with other
# random weights (a different seed, from its name), labelled random wherever the atlas names its weights.
SAMPLE_VARIANT = VariantPair("dinov2-random", "dinov2")


def sample_variant_request():
    """The ``ModelRequest`` of the sample's variant: the base's checkpoint, always with random weights."""
    from ssl_attention.models.specs import DEFAULT_MODELS, ModelRequest

    return ModelRequest(SAMPLE_VARIANT.variant, DEFAULT_MODELS[SAMPLE_VARIANT.base], weights="random")
