"""``load_model``: one entry point for every supported checkpoint and weights mode."""

from __future__ import annotations

import logging
import warnings

from ssl_attention.errors import ModelLoadError, RandomWeightsWarning
from ssl_attention.models import hf, timm_models
from ssl_attention.models.base import VisionModel
from ssl_attention.models.hub import checkpoint_revision, is_local, use_offline_mode_if_unreachable
from ssl_attention.models.seeding import seed_for
from ssl_attention.models.specs import ModelRequest

WEIGHTS_MODES = ("pretrained", "random", "auto")
logger = logging.getLogger(__name__)


def load_model(request: ModelRequest, *, weights: str = "auto", device: str = "cpu",
               image_size: tuple[int, int] | None = None, explain: bool = False) -> VisionModel:
    """Load ``request`` in eval mode on ``device``.

    ``weights``: ``pretrained`` (fail if the weights cannot be had), ``random`` (the same architecture,
    randomly initialised with a seed derived from the name and checkpoint) or ``auto`` (pretrained where
    obtainable, else random; the returned model's ``weights`` and ``note`` say which and why, and a fall
    back to random weights is a ``RandomWeightsWarning`` and a WARNING record of the
    ``ssl_attention.models.loader`` logger).
    ``image_size`` (height, width) overrides the checkpoint's input size (rounded to the patch size).
    ``explain``: also load what gradient methods explain where the checkpoint has it (a ViT's classifier
    head, a CLIP/SigLIP text tower): the model's ``explainer``.
    """
    if weights not in WEIGHTS_MODES:
        raise ModelLoadError(f"weights must be one of {', '.join(WEIGHTS_MODES)}, got {weights!r}")
    local = _is_local_checkpoint(request)
    if not local:
        use_offline_mode_if_unreachable()
    load = _load_timm if request.is_timm or timm_models.is_timm_dir(request.checkpoint) else _load_hf
    if weights == "auto":
        try:
            model = load(request, pretrained=True, image_size=image_size, explain=explain)
        except ModelLoadError as exc:
            if local:
                raise
            model = load(request, pretrained=False, image_size=image_size, explain=explain)
            model.note = f"pretrained weights unavailable, using RANDOM weights ({exc})"
            _warn_random(request, exc)
    else:
        model = load(request, pretrained=weights == "pretrained", image_size=image_size, explain=explain)
        if weights == "random":  # the build's --weights, or the request's own mode (the sample's variant)
            model.note = ("RANDOM weights: this model always has random weights" if request.weights == "random"
                          else "RANDOM weights requested (--weights random)")
    if model.weights == "pretrained":
        model.revision = checkpoint_revision(request.checkpoint)
    model.module.to(device)
    return model


def _warn_random(request: ModelRequest, exc: ModelLoadError) -> None:
    """Say that ``weights="auto"`` fell back to random weights: a ``RandomWeightsWarning`` and a WARNING
    record of this module's logger (the ``atlas`` CLI says it in its own words and hides the warning)."""
    message = (f"model {request.name}: pretrained weights of {request.checkpoint} unavailable ({exc}); "
               "using RANDOM weights: its maps show no learned attention")
    warnings.warn(message, RandomWeightsWarning, stacklevel=3)
    logger.warning(message)


def _is_local_checkpoint(request: ModelRequest) -> bool:
    if request.is_timm:
        _, _, weights_file = request.checkpoint.partition("@")
        return bool(weights_file)
    return is_local(request.checkpoint)


def _load_hf(request: ModelRequest, *, pretrained: bool, image_size, explain: bool = False) -> VisionModel:
    seed = seed_for(request.name, request.checkpoint)
    if pretrained or is_local(request.checkpoint):
        config = hf.load_hf_config(request.checkpoint)
    else:
        config = hf.builtin_config(request.checkpoint) or hf.load_hf_config(request.checkpoint)
    return hf.load_hf_model(request.name, request.checkpoint, config, pretrained=pretrained,
                            image_size=image_size, seed=seed, explain=explain)


def _load_timm(request: ModelRequest, *, pretrained: bool, image_size, explain: bool = False) -> VisionModel:
    return timm_models.load_timm_model(request.name, request.checkpoint, pretrained=pretrained,
                                       image_size=image_size, seed=seed_for(request.name, request.checkpoint),
                                       explain=explain)
