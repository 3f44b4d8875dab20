"""What a build's gradient methods (relevance, ViT Grad-CAM) explain: ``--prompts``, ``--target-class``.

Classifiers explain the top-1 class of each image, or ``--target-class N``. CLIP and SigLIP explain the
image-text similarity of each prompt: the lines of ``--prompts FILE``, or by default one prompt per box
label of the dataset ("a photo of a {label}.").
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ssl_attention.errors import AtlasError, UnsupportedError
from ssl_attention.methods import target_methods
from ssl_attention.prompts import box_label_prompts

if TYPE_CHECKING:
    from ssl_attention.models.base import VisionModel

MAX_PROMPTS = 256


@dataclass(frozen=True)
class TargetOptions:
    """The build's choice of targets (``--prompts``, ``--target-class``)."""

    prompts: tuple[str, ...] | None = None  # from --prompts FILE; None: one per box label
    target_class: int | None = None  # None: each image's top-1 class

    def identity(self, labels: list[str]) -> dict:
        """What the targets of a model depend on (part of its cached entry's identity)."""
        return {"prompts": list(self.prompts_for(labels)), "target_class": self.target_class}

    def prompts_for(self, labels: list[str]) -> tuple[str, ...]:
        """The prompts: the file's, else one per distinct box label."""
        return self.prompts if self.prompts is not None else tuple(box_label_prompts(labels))


def read_prompts(path: Path) -> tuple[str, ...]:
    """The prompts of ``path``, one per non-empty line; AtlasError (one line) for a bad file.

    Only a regular file (or a link to one) is opened: reading a FIFO would wait forever for a writer."""
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else "a device or socket"
            raise AtlasError(f"{path}: the prompts file is {kind}, not a regular file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AtlasError(f"{path}: prompts file not found") from None
    except UnicodeDecodeError:
        raise AtlasError(f"{path}: prompts file is not UTF-8 text") from None
    except OSError as exc:
        raise AtlasError(f"{path}: cannot read the prompts file ({exc.strerror or exc})") from None
    prompts = tuple(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    if not prompts:
        raise AtlasError(f"{path}: no prompts (expected one prompt per line)")
    if len(prompts) > MAX_PROMPTS:
        raise AtlasError(f"{path}: {len(prompts)} prompts, at most {MAX_PROMPTS}")
    return prompts


def wants_targets(methods: tuple[str, ...] | None) -> bool:
    """Whether any of ``methods`` explains a target (then models load their head or text tower)."""
    return any(m in target_methods() for m in methods or ())


def set_targets(model: VisionModel, options: TargetOptions, labels: list[str]) -> None:
    """Point the model's explainer at the build's targets; UnsupportedError (one line) if it cannot be.

    A classifier ignores prompts, a two-tower model ignores ``--target-class``.
    """
    explainer = model.explainer
    if explainer is None:
        return
    if explainer.kind == "class":
        explainer.set_class(options.target_class)
        return
    prompts = options.prompts_for(labels)
    if not prompts:
        raise UnsupportedError("no prompts: give --prompts FILE or boxes with labels")
    explainer.set_prompts(prompts)
