"""Adapter for Hugging Face transformers ViTs: DINOv2 (+registers), DINOv3, MAE, CLIP, SigLIP, SigLIP2, ViT."""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn

from ssl_attention.errors import PICKLED_WEIGHTS_REFUSED, ModelLoadError, first_line
from ssl_attention.models.base import VisionModel
from ssl_attention.models.limits import check_model_size
from ssl_attention.models.seeding import seeded
from ssl_attention.preprocess import CLIP_MEAN, CLIP_STD, HALF, IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from ssl_attention.probe import find_probe_head


@dataclass(frozen=True)
class Family:
    """How to build and run one transformers architecture."""

    name: str
    model_class: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    forward_kwargs: tuple[tuple[str, Any], ...] = (("interpolate_pos_encoding", True),)
    naflex: bool = False  # SigLIP2 NaFlex: patchified input with spatial shapes
    extra_prefix: int = 0  # prefix tokens beyond CLS and registers (DeiT's distillation token, counted as one)


_DINO = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD)
FAMILIES: dict[str, Family] = {
    "dinov2": Family("dinov2", "Dinov2Model", **_DINO, forward_kwargs=()),
    "dinov2_with_registers": Family("dinov2", "Dinov2WithRegistersModel", **_DINO, forward_kwargs=()),
    "dinov3_vit": Family("dinov3", "DINOv3ViTModel", **_DINO, forward_kwargs=()),
    "vit_mae": Family("mae", "ViTMAEModel", **_DINO),
    "vit": Family("vit", "ViTModel", **_DINO),
    "deit": Family("deit", "DeiTModel", **_DINO, extra_prefix=1),
    "clip": Family("clip", "CLIPVisionModel", CLIP_MEAN, CLIP_STD),
    "clip_vision_model": Family("clip", "CLIPVisionModel", CLIP_MEAN, CLIP_STD),
    "siglip": Family("siglip", "SiglipVisionModel", HALF, HALF),
    "siglip_vision_model": Family("siglip", "SiglipVisionModel", HALF, HALF),
    "siglip2": Family("siglip2", "Siglip2VisionModel", HALF, HALF, forward_kwargs=(), naflex=True),
    "siglip2_vision_model": Family("siglip2", "Siglip2VisionModel", HALF, HALF, forward_kwargs=(), naflex=True),
}

_VIT_B = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
# Architectures of the default checkpoints, so that random-weight models can be built offline.
BUILTIN_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "facebook/dinov2-with-registers-base": (
        "dinov2_with_registers",
        dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, mlp_ratio=4, patch_size=14,
             image_size=518, num_register_tokens=4, layerscale_value=1.0),
    ),
    "facebook/dinov3-vitb16-pretrain-lvd1689m": (
        "dinov3_vit", dict(**_VIT_B, patch_size=16, image_size=224, num_register_tokens=4)
    ),
    "facebook/vit-mae-base": ("vit_mae", dict(**_VIT_B, patch_size=16, image_size=224)),
    "openai/clip-vit-base-patch16": ("clip_vision_model", dict(**_VIT_B, patch_size=16, image_size=224)),
    "google/siglip-base-patch16-224": ("siglip_vision_model", dict(**_VIT_B, patch_size=16, image_size=224)),
    "google/siglip2-base-patch16-224": ("siglip_vision_model", dict(**_VIT_B, patch_size=16, image_size=224)),
}
_BUILTIN_INPUT_SIZE = 224
_RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}
_ALLOWED_MISSING = ("pooler",)
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def load_hf_config(checkpoint: str):
    """The transformers config of ``checkpoint`` (ModelLoadError if unreadable or unsupported)."""
    from transformers import AutoConfig

    try:  # never run a checkpoint's own code (config "auto_map"); False also stops transformers' y/N prompt
        config = AutoConfig.from_pretrained(checkpoint, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        if "custom code" in str(exc):
            raise ModelLoadError(
                f"{checkpoint}: the config needs the checkpoint's own Python code (auto_map), "
                "which is never run (no trust_remote_code)"
            ) from None
        raise ModelLoadError(f"{checkpoint}: cannot read the model config ({first_line(exc)})") from None
    family_of(config, checkpoint)
    return config


def builtin_config(checkpoint: str):
    """The config of a default checkpoint, without network access (None for other checkpoints)."""
    from transformers import AutoConfig

    if checkpoint not in BUILTIN_CONFIGS:
        return None
    model_type, kwargs = BUILTIN_CONFIGS[checkpoint]
    return AutoConfig.for_model(model_type, **kwargs)


def family_of(config, checkpoint: str) -> Family:
    """The Family of a config; ModelLoadError for architectures without attention maps."""
    family = FAMILIES.get(config.model_type)
    if family is None:
        known = ", ".join(sorted(FAMILIES))
        raise ModelLoadError(
            f"{checkpoint}: model type {config.model_type!r} is not supported (supported: {known})"
        )
    return family


def load_hf_model(name: str, checkpoint: str, config, *, pretrained: bool, image_size: tuple[int, int] | None,
                  seed: int, explain: bool = False) -> VisionModel:
    """Build the model for ``config``: weights from ``checkpoint`` if ``pretrained``, else seeded random.

    ``explain``: also load what the gradient methods explain where the checkpoint has it (a classifier
    head, a text tower; ``explain_hf``).
    """
    import transformers

    from ssl_attention.models import explain_hf

    family = family_of(config, checkpoint)
    whole = explain_hf.explain_class(config, family.name, pretrained) if explain else None
    if whole in explain_hf.TWO_TOWER.values() and not pretrained:
        config = explain_hf.two_tower_config(config, family.name)
    model_class = getattr(transformers, whole or family.model_class)
    overrides: dict[str, Any] = {"mask_ratio": 0.0} if family.name == "mae" else {}
    init_kwargs: dict[str, Any] = {"add_pooling_layer": False} if family.name in ("vit", "deit") and not whole else {}
    _quiet_transformers()
    vision_config = config if whole else getattr(config, "vision_config", config)
    _check_size(model_class, vision_config, init_kwargs, checkpoint)
    if pretrained:
        module = _from_pretrained(model_class, checkpoint, {**overrides, **init_kwargs})
    else:
        for key, value in overrides.items():
            setattr(vision_config, key, value)
        with seeded(seed):
            module = model_class._from_config(vision_config, attn_implementation="eager", dtype=torch.float32,
                                              **init_kwargs)
    module.eval()
    vision = explain_hf.vision_part(module)
    vcfg = getattr(module.config, "vision_config", module.config)
    if getattr(vcfg, "_attn_implementation", "eager") != "eager":
        raise ModelLoadError(f"{checkpoint}: could not switch to eager attention (needed for attention weights)")
    patch = _int_patch(vcfg.patch_size, checkpoint)
    prep = _preprocessing(checkpoint, vcfg, family, pretrained, image_size, patch)
    has_cls = family.name not in ("siglip", "siglip2")
    return VisionModel(
        name=name,
        checkpoint=checkpoint,
        weights="pretrained" if pretrained else "random",
        family=family.name,
        architecture=type(module).__name__,
        kind="vit",
        module=module,
        preprocessing=prep,
        run=_runner(vision, family, patch),
        patch_size=patch,
        layers=vcfg.num_hidden_layers,
        heads=vcfg.num_attention_heads,
        num_registers=int(getattr(vcfg, "num_register_tokens", 0) or 0) + family.extra_prefix,
        has_cls=has_cls,
        attention_points=_recorded_points(module, vision, "attentions", vcfg.num_hidden_layers, checkpoint),
        block_outputs=_recorded_points(module, vision, "hidden_states", vcfg.num_hidden_layers, checkpoint),
        explainer=explain_hf.make_explainer(module, checkpoint, dict(family.forward_kwargs)) if whole else None,
        probe_head=find_probe_head(vision),
    )


def _quiet_transformers() -> None:
    """Keep transformers' load reports and progress bars out of the CLI output (errors still show)."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _check_size(model_class, config, init_kwargs: dict[str, Any], checkpoint: str) -> None:
    """Refuse, before allocating anything, a config that describes a model too large to build (see
    ``limits``), and one the model class cannot be built from, in one line naming the config."""
    build = partial(model_class._from_config, config, attn_implementation="eager", **init_kwargs)
    try:
        check_model_size(build, _config_file(checkpoint))
    except (RuntimeError, ValueError, TypeError, KeyError, AttributeError, OverflowError, ZeroDivisionError) as exc:
        raise ModelLoadError(f"{_config_file(checkpoint)}: cannot build the model it describes "
                             f"({first_line(exc)})") from None


def _from_pretrained(model_class, checkpoint: str, overrides: dict[str, Any]) -> nn.Module:
    try:
        module, info = model_class.from_pretrained(
            checkpoint, attn_implementation="eager", dtype=torch.float32, output_loading_info=True,
            trust_remote_code=False, **overrides,
        )
    except SafetensorError as exc:  # e.g. a download cut short
        raise ModelLoadError(
            f"{_weights_files(checkpoint, ('.safetensors',))}: truncated or corrupt safetensors file "
            f"({first_line(exc)})"
        ) from None
    except pickle.UnpicklingError:  # torch.load(weights_only=True) met a pickled object that is not a tensor
        raise ModelLoadError(f"{_weights_files(checkpoint, _PICKLE_SUFFIXES)}: {PICKLED_WEIGHTS_REFUSED}") from None
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"{checkpoint}: cannot load weights ({first_line(exc)})") from None
    missing = [k for k in info.get("missing_keys", []) if not k.startswith(_ALLOWED_MISSING)]
    mismatched = info.get("mismatched_keys", [])
    if missing or mismatched:
        bad = (missing or [m[0] if isinstance(m, tuple) else m for m in mismatched])[:3]
        raise ModelLoadError(
            f"{checkpoint}: checkpoint does not fit {model_class.__name__} "
            f"({len(missing)} missing, {len(mismatched)} mismatched weights, e.g. {', '.join(map(str, bad))})"
        )
    return module


def _weights_files(checkpoint: str, suffixes: tuple[str, ...]) -> str:
    """The weights file(s) with ``suffixes`` of a local checkpoint folder, else the checkpoint itself."""
    files = sorted(p for p in Path(checkpoint).glob("*") if p.suffix in suffixes)
    return ", ".join(map(str, files)) or checkpoint


def _int_patch(patch_size, checkpoint: str) -> int:
    if isinstance(patch_size, (list, tuple)):
        if len(set(patch_size)) != 1:
            raise ModelLoadError(f"{checkpoint}: non-square patches {patch_size} are not supported")
        patch_size = patch_size[0]
    return int(patch_size)


def _preprocessing(checkpoint: str, vcfg, family: Family, pretrained: bool,
                   image_size: tuple[int, int] | None, patch: int) -> Preprocessing:
    """Normalisation and input size: the checkpoint's image processor where it has one, else defaults.

    The size, wherever it comes from, is checked against the input limits (``check_input_size``)."""
    from ssl_attention.preprocess import check_input_size, check_normalisation

    mean, std, resample, size, source = family.mean, family.std, "bicubic", None, "--image-size"
    processor = _image_processor(checkpoint) if (pretrained or _has_local_processor(checkpoint)) else None
    if processor is not None:
        mean = tuple(float(v) for v in getattr(processor, "image_mean", mean))
        std = tuple(float(v) for v in getattr(processor, "image_std", std))
        check_normalisation(mean, std, _processor_file(checkpoint))
        code = getattr(processor, "resample", None)  # PIL code; 0 is nearest, not "unset"
        resample = _RESAMPLE_NAMES.get(3 if code is None else int(code), "bicubic")
        size, key = _processor_size(processor)
        source = f"{_processor_file(checkpoint)} ({key})"
    if size is None:
        size = (_BUILTIN_INPUT_SIZE,) * 2 if checkpoint in BUILTIN_CONFIGS else (_native_size(vcfg, patch),) * 2
        source = f"{_config_file(checkpoint)} (image_size)"
    if image_size is not None:
        size, source = image_size, "--image-size"
    return Preprocessing(size=check_input_size(size, patch, source), mean=mean, std=std, resample=resample)


def _native_size(vcfg, patch: int) -> int:
    """The config's image size; NaFlex configs give a patch budget instead (its square side is used)."""
    if getattr(vcfg, "image_size", None):
        return int(vcfg.image_size)
    return math.isqrt(int(getattr(vcfg, "num_patches", 196))) * patch


def _has_local_processor(checkpoint: str) -> bool:
    return (Path(checkpoint) / "preprocessor_config.json").is_file()


def _config_file(checkpoint: str) -> str:
    """The model config of ``checkpoint``, as named in error messages."""
    local = Path(checkpoint) / "config.json"
    return str(local) if local.is_file() else f"{checkpoint} config.json"


def _processor_file(checkpoint: str) -> str:
    """The image processor config of ``checkpoint``, as named in error messages."""
    local = Path(checkpoint) / "preprocessor_config.json"
    return str(local) if local.is_file() else f"{checkpoint} preprocessor_config.json"


def _image_processor(checkpoint: str):
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(checkpoint, trust_remote_code=False)
    except (OSError, ValueError, KeyError, ImportError):
        return None


def _processor_size(processor) -> tuple[tuple[int, int] | None, str]:
    """The size the processor feeds the model: the crop size if it crops (we resize to it instead), and the
    key it came from."""
    key = "crop_size" if getattr(processor, "do_center_crop", False) else "size"
    size = getattr(processor, key, None)
    if size is None:
        return None, key
    size = dict(size)
    if "height" in size and "width" in size:
        return (int(size["height"]), int(size["width"])), key
    if "shortest_edge" in size:
        return (int(size["shortest_edge"]),) * 2, key
    return None, key


def _recorded_points(module: nn.Module, vision: nn.Module, what: str, layers: int, checkpoint: str):
    """One (module, getter) per encoder layer of ``vision`` (``module`` or its vision tower) for the
    output transformers records as ``what``:
    ``"attentions"``: the attention modules, which return ``(attn_output, attn_weights)`` (with eager
    attention the weights are the post-softmax matrix); ``"hidden_states"``: the encoder layers, whose
    output (or its first item) is ``hidden_states[l + 1]``, before any final norm."""
    recordable = getattr(module, "_can_record_outputs", None) or {}
    target = recordable.get(what)
    target = getattr(target, "target_class", target)
    getter = _second if what == "attentions" else _first
    points = [(m, getter) for m in vision.modules() if target is not None and isinstance(m, target)]
    if len(points) != layers:
        kind = "attention modules" if what == "attentions" else "encoder layers"
        raise ModelLoadError(f"{checkpoint}: found {len(points)} {kind} for {layers} layers")
    return points


def _first(output):
    return output[0] if isinstance(output, tuple) else output


def _second(output):
    return output[1]


def _runner(module: nn.Module, family: Family, patch: int):
    kwargs = dict(family.forward_kwargs)

    def run(pixel_values: torch.Tensor):
        if family.naflex:
            return module(**_naflex_inputs(pixel_values, patch))
        if family.name == "mae":  # fixed noise: no shuffling, every patch kept (mask_ratio is 0)
            tokens = (pixel_values.shape[-2] // patch) * (pixel_values.shape[-1] // patch)
            noise = torch.arange(tokens, device=pixel_values.device, dtype=torch.float32)
            return module(pixel_values=pixel_values, noise=noise.expand(pixel_values.shape[0], -1), **kwargs)
        return module(pixel_values=pixel_values, **kwargs)

    return run


def _naflex_inputs(pixel_values: torch.Tensor, patch: int) -> dict[str, torch.Tensor]:
    """SigLIP2 NaFlex takes row-major patches flattened as (patch, patch, channel) plus their grid shape."""
    b, c, h, w = pixel_values.shape
    gh, gw = h // patch, w // patch
    patches = pixel_values.reshape(b, c, gh, patch, gw, patch).permute(0, 2, 4, 3, 5, 1)
    patches = patches.reshape(b, gh * gw, patch * patch * c)
    mask = torch.ones(b, gh * gw, dtype=torch.int32, device=pixel_values.device)
    shapes = torch.tensor([[gh, gw]] * b, dtype=torch.long, device=pixel_values.device)
    return {"pixel_values": patches, "pixel_attention_mask": mask, "spatial_shapes": shapes}

