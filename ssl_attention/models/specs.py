"""Model names on the command line: ``NAME`` (a default checkpoint) or ``NAME=CHECKPOINT``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ssl_attention.capabilities import Capabilities
from ssl_attention.errors import ModelLoadError

# name -> default checkpoint (site_src/models.md). timm checkpoints are written "timm:MODEL_NAME[@WEIGHTS]".
DEFAULT_MODELS: dict[str, str] = {
    "dinov2": "facebook/dinov2-with-registers-base",
    "dinov3": "facebook/dinov3-vitb16-pretrain-lvd1689m",
    "mae": "facebook/vit-mae-base",
    "clip": "openai/clip-vit-base-patch16",
    "siglip": "google/siglip-base-patch16-224",
    "siglip2": "google/siglip2-base-patch16-224",
    "resnet50": "timm:resnet50.a1_in1k",
}
# the capabilities of the default checkpoints, known without loading them (as loaded for the default
# methods: nothing to explain is loaded)
DEFAULT_CAPABILITIES: dict[str, Capabilities] = {
    "dinov2": Capabilities("vit", cls=True, registers=4),
    "dinov3": Capabilities("vit", cls=True, registers=4),
    "mae": Capabilities("vit", cls=True),
    "clip": Capabilities("vit", cls=True),
    "siglip": Capabilities("vit", probe=True),
    "siglip2": Capabilities("vit", probe=True),
    "resnet50": Capabilities("cnn"),
}


def default_methods(name: str) -> tuple[str, ...]:
    """The methods the default checkpoint of the known model ``name`` offers (without loading it)."""
    from ssl_attention.methods import methods_for

    return methods_for(DEFAULT_CAPABILITIES.get(name, Capabilities("vit", cls=True)))

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class ModelRequest:
    """A model asked for by the user: the label used in outputs and where its weights come from."""

    name: str
    checkpoint: str
    weights: str | None = None  # this model's weights mode when not the build's (e.g. the sample's random variant)

    @property
    def is_timm(self) -> bool:
        """True for ``timm:MODEL_NAME[@WEIGHTS_FILE]`` checkpoints."""
        return self.checkpoint.startswith("timm:")


def parse_model_request(text: str) -> ModelRequest:
    """Parse ``NAME`` or ``NAME=CHECKPOINT``; raise ModelLoadError (one line) for unknown names."""
    name, sep, checkpoint = text.partition("=")
    name = name.strip()
    checkpoint = checkpoint.strip()
    if not _NAME.match(name):
        raise ModelLoadError(
            f"model name {name!r} is invalid: use lowercase letters, digits, '-' or '_' (e.g. dinov2)"
        )
    if not sep:
        if name not in DEFAULT_MODELS:
            known = ", ".join(DEFAULT_MODELS)
            raise ModelLoadError(
                f"unknown model {name!r}: known names are {known}; for any other checkpoint use NAME=CHECKPOINT"
            )
        checkpoint = DEFAULT_MODELS[name]
    if not checkpoint:
        raise ModelLoadError(f"model {name!r}: empty checkpoint after '='")
    return ModelRequest(name=name, checkpoint=checkpoint)
