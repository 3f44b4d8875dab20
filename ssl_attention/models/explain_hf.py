"""What the gradient methods explain for transformers checkpoints (loaded only when they are asked for).

* ``ViTForImageClassification`` and DeiT classifier checkpoints: the classifier head's logits (the
  class names from ``id2label``; DeiT with a teacher: the mean of its two heads, as it predicts).
* CLIP and SigLIP two-tower checkpoints (``CLIPModel``, ``SiglipModel``): the image-text similarity of
  each prompt. The text tower needs its tokenizer: the checkpoint's own files where it has them, else
  CLIP's BPE vocabulary as shipped by ``open_clip_torch`` (CLIP's vocabulary size only). SigLIP's
  SentencePiece model ships with no installed package: without local tokenizer files prompts are not
  offered (one line says so).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssl_attention.errors import UnsupportedError
from ssl_attention.explainers import Explainer, similarity_logits

TWO_TOWER = {"clip": "CLIPModel", "siglip": "SiglipModel"}  # model_type -> class with both towers
CLASSIFIERS = ("ViTForImageClassification", "DeiTForImageClassification", "DeiTForImageClassificationWithTeacher")
_CLIP_VOCAB = 49408  # the BPE vocabulary open_clip ships (bpe_simple_vocab_16e6)
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "spiece.model", "tokenizer.model")


def explain_class(config, family_name: str, pretrained: bool) -> str | None:
    """The transformers class holding what there is to explain for ``config``, or None (nothing to explain).

    Random weights of a vision-only CLIP/SigLIP config get a two-tower model (``two_tower_config``).
    """
    head = [a for a in getattr(config, "architectures", None) or [] if a in CLASSIFIERS]
    if family_name in ("vit", "deit") and head:
        return head[0]
    if not pretrained and family_name in TWO_TOWER:
        return TWO_TOWER[family_name]
    return TWO_TOWER.get(config.model_type)


def two_tower_config(config, family_name: str):
    """A two-tower config for a vision-only default config (random weights: the text tower's default size)."""
    from transformers import CLIPConfig, SiglipConfig

    if config.model_type in TWO_TOWER:
        return config
    if family_name == "clip":
        return CLIPConfig(vision_config=config.to_dict(), projection_dim=512)
    if family_name == "siglip":
        return SiglipConfig(vision_config=config.to_dict())
    return config


def vision_part(module: nn.Module) -> nn.Module:
    """The vision tower of a two-tower model (the module itself otherwise)."""
    return getattr(module, "vision_model", module) if type(module).__name__ in TWO_TOWER.values() else module


def make_explainer(module: nn.Module, checkpoint: str, forward_kwargs: dict[str, Any]) -> Explainer | None:
    """The Explainer of a loaded classifier or two-tower model (None for anything else)."""
    name = type(module).__name__
    if name in CLASSIFIERS:
        labels = getattr(module.config, "id2label", None) or {}
        names = [str(labels.get(i, labels.get(str(i), i))) for i in range(module.config.num_labels)]
        return Explainer("class", lambda pv: module(pixel_values=pv, **forward_kwargs).logits, class_names=names)
    if name not in TWO_TOWER.values():
        return None
    explainer = Explainer("prompt", lambda pv: None)
    explainer.logits = lambda pv: similarity_logits(_image_features(module, pv, forward_kwargs),
                                                    explainer.text_features(), module.logit_scale,
                                                    getattr(module, "logit_bias", None))
    try:
        tokenize = prompt_tokenizer(checkpoint, module.config.text_config)
    except UnsupportedError as exc:
        explainer.text_error = str(exc)
        return explainer
    explainer.embed_text = lambda prompts: _text_features(module, tokenize(prompts))
    return explainer


def _image_features(module: nn.Module, pixel_values: torch.Tensor, forward_kwargs: dict[str, Any]) -> torch.Tensor:
    pooled = module.vision_model(pixel_values=pixel_values, **forward_kwargs).pooler_output
    projection = getattr(module, "visual_projection", None)
    return pooled if projection is None else projection(pooled)


def _text_features(module: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    device = next(module.parameters()).device
    out = module.get_text_features(input_ids=input_ids.to(device))
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def prompt_tokenizer(checkpoint: str, text_config) -> Callable[[Sequence[str]], torch.Tensor]:
    """prompts -> input_ids [P, L]: the checkpoint's tokenizer, else open_clip's CLIP BPE vocabulary.

    UnsupportedError (one line) when neither is available offline.
    """
    length = int(getattr(text_config, "max_position_embeddings", 77))
    local = Path(checkpoint)
    if not local.is_dir() or any((local / f).is_file() for f in _TOKENIZER_FILES):
        tokenizer = _auto_tokenizer(checkpoint)
        if tokenizer is not None:
            return lambda prompts: tokenizer(list(prompts), padding="max_length", truncation=True,
                                             max_length=length, return_tensors="pt")["input_ids"]
    if text_config.model_type.startswith("clip") and int(text_config.vocab_size) == _CLIP_VOCAB:
        from open_clip.tokenizer import SimpleTokenizer

        bpe = SimpleTokenizer(context_length=length)
        return lambda prompts: bpe(list(prompts))
    raise UnsupportedError(
        f"{checkpoint}: no tokenizer for its text tower offline (SigLIP's SentencePiece model ships with no "
        "installed package; put its tokenizer files in a local checkpoint folder); prompts skipped"
    )


def _auto_tokenizer(checkpoint: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(checkpoint, trust_remote_code=False)
    except (OSError, ValueError, KeyError, ImportError, TypeError):
        return None
