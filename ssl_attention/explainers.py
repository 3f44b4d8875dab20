"""What a gradient method explains: the scalar score of a target, per image.

A ViT with something to explain carries an ``Explainer`` (``VisionModel.explainer``):

* a supervised classifier (timm ViT with a head, transformers ``ViTForImageClassification``): the logit of
  the top-1 class of each image (the default) or of one chosen class;
* a two-tower image-text model (CLIP, SigLIP): the image-text similarity logit of each prompt
  (``set_prompts``); the text side is embedded once, without gradients.

Self-supervised backbones without a head have none: there is no scalar to explain.
``scores(pixel_values)`` runs the forward pass (the model's attention hooks fire in it) and returns
[B, targets] scores; ``classes`` the explained output index per image and target (for the record).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ssl_attention.errors import UnsupportedError

TOP1 = "top-1 class"
NO_TARGET = "a self-supervised backbone without a head has no scalar to explain"


@dataclass
class Explainer:
    """The explained scores of a model: classes of a classifier head or prompts of a text tower."""

    kind: str  # "class" | "prompt"
    logits: Callable[[torch.Tensor], torch.Tensor]  # pixel_values -> [B, outputs] (runs the forward pass)
    class_names: list[str] | None = None
    num_outputs: int | None = None  # "class": the head's classes, where the names are unknown
    target_class: int | None = None  # "class": None = the top-1 class of each image
    prompts: tuple[str, ...] = ()
    embed_text: Callable[[Sequence[str]], torch.Tensor] | None = None  # "prompt": prompts -> [P, D] (no grad)
    text_error: str = ""  # why prompts cannot be embedded (e.g. no tokenizer offline)
    _text: torch.Tensor | None = field(default=None, repr=False)

    def set_prompts(self, prompts: Sequence[str]) -> None:
        """Explain the similarity with each of ``prompts`` (UnsupportedError, one line, without a tokenizer)."""
        if self.kind != "prompt":
            raise UnsupportedError("prompts are for image-text models (CLIP, SigLIP); this model is a classifier")
        if self.embed_text is None:
            raise UnsupportedError(self.text_error or "this model has no text tower")
        if not prompts:
            raise UnsupportedError("no prompts to explain")
        self.prompts = tuple(prompts)
        with torch.no_grad():
            self._text = self.embed_text(self.prompts)

    def set_class(self, index: int | None) -> None:
        """Explain class ``index`` (None: each image's top-1 class); UnsupportedError outside the head."""
        if self.kind != "class":
            raise UnsupportedError("--target-class is for classifiers; this model explains prompts")
        outputs = len(self.class_names) if self.class_names else self.num_outputs
        if index is not None and (index < 0 or (outputs is not None and index >= outputs)):
            raise UnsupportedError(f"target class {index} is outside the head's {outputs} classes")
        self.target_class = index

    @property
    def targets(self) -> tuple[str, ...]:
        """One name per explained target, in the order of the exported maps."""
        if self.kind == "prompt":
            return self.prompts
        if self.target_class is None:
            return (TOP1,)
        name = self.class_names[self.target_class] if self.class_names else ""
        return (f"class {self.target_class}" + (f": {name}" if name else ""),)

    def scores(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scores [B, targets], classes [B, targets])``: the explained logits and their output index."""
        logits = self.logits(pixel_values).float()
        if self.kind == "prompt":
            if self._text is None:
                raise UnsupportedError("no prompts set: call set_prompts first")
            classes = torch.arange(logits.shape[1], device=logits.device).expand(logits.shape[0], -1)
            return logits, classes
        if self.target_class is None:
            classes = logits.detach().argmax(dim=1, keepdim=True)
        else:
            classes = torch.full((logits.shape[0], 1), self.target_class, device=logits.device, dtype=torch.long)
        return logits.gather(1, classes), classes

    def text_features(self) -> torch.Tensor:
        """The embedded prompts [P, D] (set by ``set_prompts``)."""
        if self._text is None:
            raise UnsupportedError("no prompts set: call set_prompts first")
        return self._text


def similarity_logits(image_features: torch.Tensor, text: torch.Tensor, scale: torch.Tensor,
                      bias: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP/SigLIP logits: exp(scale) * cosine(image, text) (+ bias), [B, P]."""
    image = image_features / image_features.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    logits = scale.exp() * image @ text.T
    return logits if bias is None else logits + bias
