"""Adapter for timm models: any timm ViT (attention maps) and ResNets (Grad-CAM).

Checkpoints are written ``timm:MODEL_NAME`` (weights from the Hub through timm),
``timm:MODEL_NAME@WEIGHTS_FILE`` (a local ``.safetensors`` file, or a torch file read with
``weights_only=True``), or a local directory saved with ``timm.models.push_to_hub.save_for_hf``.
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import torch
from torch import nn

from ssl_attention.errors import PICKLED_WEIGHTS_REFUSED, ModelLoadError, first_line
from ssl_attention.explainers import Explainer
from ssl_attention.models.base import VisionModel
from ssl_attention.models.limits import check_model_size
from ssl_attention.models.seeding import seeded
from ssl_attention.preprocess import Preprocessing, check_input_size, check_normalisation

_STAGES = ("layer1", "layer2", "layer3", "layer4")
_INTERPOLATION = {"bicubic", "bilinear", "nearest", "lanczos"}


def is_timm_dir(checkpoint: str) -> bool:
    """True for a local directory holding a timm ``config.json`` (it names an ``architecture``)."""
    config = Path(checkpoint).expanduser() / "config.json"
    if not config.is_file():
        return False
    try:
        return "architecture" in json.loads(config.read_text())
    except (OSError, ValueError):
        return False


def load_timm_model(name: str, checkpoint: str, *, pretrained: bool, image_size: tuple[int, int] | None,
                    seed: int, explain: bool = False) -> VisionModel:
    """Create the timm model of ``checkpoint``, with its weights if ``pretrained`` else seeded random ones.

    ``explain``: a ViT with a classification head explains its logits (``VisionModel.explainer``).
    """
    import timm

    model_name, weights_file = _parse(checkpoint)
    is_vit = _is_vit(model_name)
    kwargs = {"dynamic_img_size": True} if is_vit else {}
    where = str(Path(checkpoint).expanduser() / "config.json") if is_timm_dir(checkpoint) else checkpoint
    try:
        check_model_size(lambda: timm.create_model(model_name, pretrained=False, **kwargs), where)
        with seeded(seed):
            if weights_file is not None:
                module = timm.create_model(model_name, pretrained=False, **kwargs)
                if pretrained:
                    _load_weights(module, weights_file, checkpoint)
            else:
                module = timm.create_model(model_name, pretrained=pretrained, **kwargs)
    except (RuntimeError, OSError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, ModelLoadError):
            raise
        raise ModelLoadError(f"{checkpoint}: cannot create timm model ({first_line(exc)})") from None
    module.eval()
    weights = "pretrained" if pretrained else "random"
    if hasattr(module, "blocks") and hasattr(module, "patch_embed"):
        model = _vit(name, checkpoint, weights, module, image_size)
        if explain and getattr(module, "num_classes", 0):
            model.explainer = Explainer("class", module.forward, class_names=_imagenet_names(module),
                                        num_outputs=int(module.num_classes))
        return model
    if all(hasattr(module, s) for s in _STAGES):
        return _resnet(name, checkpoint, weights, module, image_size)
    raise ModelLoadError(f"{checkpoint}: timm model {type(module).__name__} is neither a ViT nor a ResNet")


def _parse(checkpoint: str) -> tuple[str, Path | None]:
    if is_timm_dir(checkpoint):
        return f"local-dir:{Path(checkpoint).expanduser()}", None
    spec = checkpoint.removeprefix("timm:")
    model_name, sep, weights = spec.partition("@")
    if not model_name:
        raise ModelLoadError(f"{checkpoint}: expected timm:MODEL_NAME[@WEIGHTS_FILE]")
    if sep:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"{weights}: weights file not found")
        return model_name, path
    return model_name, None


def _is_vit(model_name: str) -> bool:
    base = model_name.split(":")[-1].split("/")[-1]
    if model_name.startswith("local-dir:"):
        cfg = json.loads((Path(model_name.removeprefix("local-dir:")) / "config.json").read_text())
        base = cfg.get("architecture", "")
    return base.startswith(("vit_", "deit", "eva", "beit", "flexivit", "vit"))


def _load_weights(module: nn.Module, path: Path, checkpoint: str) -> None:
    """Load a state dict without executing pickled code (safetensors, or torch with weights_only)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the refusal below says it all
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
        module.load_state_dict(state, strict=True)
    except pickle.UnpicklingError:  # weights_only met a pickled object that is not a tensor
        raise ModelLoadError(f"{path}: {PICKLED_WEIGHTS_REFUSED}") from None
    except Exception as exc:
        raise ModelLoadError(f"{path}: cannot load weights for {checkpoint} ({first_line(exc)})") from None


def _data_prep(module: nn.Module, checkpoint: str, default_size: tuple[int, int], image_size,
               patch: int) -> Preprocessing:
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=module)
    size = image_size or tuple(int(v) for v in cfg.get("input_size", (3, *default_size))[1:])
    interpolation = cfg.get("interpolation", "bicubic")
    mean, std = tuple(float(v) for v in cfg.get("mean")), tuple(float(v) for v in cfg.get("std"))
    where = Path(checkpoint).expanduser() / "config.json" if is_timm_dir(checkpoint) else checkpoint
    check_normalisation(mean, std, f"{where} (pretrained_cfg)", keys=("mean", "std"))
    source = "--image-size" if image_size else f"{where} (pretrained_cfg input_size)"
    return Preprocessing(
        size=check_input_size(size, patch, source), mean=mean, std=std,
        resample=interpolation if interpolation in _INTERPOLATION else "bicubic",
    )


def _vit(name, checkpoint, weights, module, image_size) -> VisionModel:
    patch = module.patch_embed.patch_size
    patch = patch[0] if isinstance(patch, (tuple, list)) else int(patch)
    points = []
    for block in module.blocks:
        for attn in _block_attentions(block, checkpoint):
            attn.fused_attn = False  # the explicit softmax path, so the weights exist
            points.append((attn.attn_drop, _identity))
    has_cls = getattr(module, "cls_token", None) is not None
    num_prefix = int(getattr(module, "num_prefix_tokens", int(has_cls)))
    return VisionModel(
        name=name, checkpoint=checkpoint, weights=weights, family="timm-vit",
        architecture=type(module).__name__, kind="vit", module=module,
        preprocessing=_data_prep(module, checkpoint, (224, 224), image_size, patch),
        run=module.forward_features, patch_size=patch, layers=len(module.blocks),
        heads=sum(a.num_heads for a in _block_attentions(module.blocks[0], checkpoint)),
        num_registers=num_prefix - int(has_cls), has_cls=has_cls,
        attention_points=points, block_outputs=[(block, _identity) for block in module.blocks],
        any_input_size=bool(getattr(module, "dynamic_img_size", False)),  # else one position-embedding grid
    )


def _block_attentions(block: nn.Module, checkpoint: str) -> list[nn.Module]:
    """The attention modules of one ViT block whose post-softmax weights pass through ``attn_drop``.

    Usually ``block.attn``. A ParallelThingsBlock runs several attentions side by side (``attns``): their
    heads are taken together as the heads of one layer. A ParallelScalingBlock computes q, k, v in one
    projection with the MLP and its softmax is the block's own. Anything else is refused.
    """
    from timm.models.vision_transformer import ParallelScalingBlock

    if hasattr(block, "attns"):
        found = [getattr(branch, "attn", None) for branch in block.attns]
    elif hasattr(block, "attn"):
        found = [block.attn]
    else:
        found = [block if isinstance(block, ParallelScalingBlock) else None]
    for attn in found:
        if attn is None or not hasattr(attn, "fused_attn") or not hasattr(attn, "attn_drop"):
            name = type(block if attn is None else attn).__name__
            raise ModelLoadError(f"{checkpoint}: attention block {name} does not expose weights")
    return found


def _resnet(name, checkpoint, weights, module, image_size) -> VisionModel:
    return VisionModel(
        name=name, checkpoint=checkpoint, weights=weights, family="resnet",
        architecture=type(module).__name__, kind="cnn", module=module,
        preprocessing=_data_prep(module, checkpoint, (224, 224), image_size, 32),
        run=module, patch_size=4, layers=len(_STAGES),
        has_cls=False, stages=[getattr(module, s) for s in _STAGES], class_names=_imagenet_names(module),
    )


def _imagenet_names(module: nn.Module) -> list[str] | None:
    if getattr(module, "num_classes", 0) != 1000:
        return None
    try:
        from timm.data import ImageNetInfo

        info = ImageNetInfo()
        return [info.index_to_description(i) for i in range(1000)]
    except Exception:
        return None


def _identity(output):
    return output

