"""Model input preparation: the whole image is resized to the input size, never cropped.

Because nothing is cropped, grid cell (r, c) of a map covers exactly the fraction
[c/gw, (c+1)/gw) x [r/gh, (r+1)/gh) of the image as the user sees it, so heatmaps, images and boxes
register exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image

from ssl_attention.errors import ModelLoadError
from ssl_attention.integers import shown, whole_number

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)
MAX_INPUT_SIDE = 1024  # px per side of --image-size: attention memory grows with the 4th power of the side
# patch tokens per image, whatever gives the input size: 1024 px at patch 8 (DINO ViT-S/8) is 16,384 tokens,
# 268 M attention weights per head and layer; at patch 4 it would be 65,536 (4.3 G)
MAX_TOKENS = 16_384

_RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
             "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes a model input: resize to ``size`` = (height, width), then normalise."""

    size: tuple[int, int]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resample: str = "bicubic"
    crop: None = None  # recorded explicitly: this tool never crops
    resize: str = "squash"  # "squash": every image to ``size``; "keep": see ``input_size``
    max_tokens: int = 0  # keep: the most patch tokens an image may give (0: MAX_TOKENS)
    unit: int = 0  # keep: sides are snapped to multiples of this (the patch size; a CNN's stride, 32)

    def to_dict(self) -> dict:
        """JSON-ready description (for the manifest and the cache key); ``resize`` and ``max_tokens`` only
        for ``keep`` (squash descriptions are as they always were)."""
        d = asdict(self)
        d["size"] = list(self.size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        if self.resize == "squash":
            del d["resize"], d["max_tokens"], d["unit"]
        return d

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        """The inverse of ``to_dict`` (a manifest entry's ``preprocessing``)."""
        return cls(size=tuple(data.get("size", (224, 224))), mean=tuple(data.get("mean", IMAGENET_MEAN)),
                   std=tuple(data.get("std", IMAGENET_STD)), resample=str(data.get("resample", "bicubic")),
                   resize=str(data.get("resize", "squash")), max_tokens=int(data.get("max_tokens", 0)),
                   unit=int(data.get("unit", 0)))

    def input_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """The model input (height, width) for an image of ``image_size`` = (width, height) px: ``size``
        when squashing, else ``keep_size`` of the shorter side of ``size`` at ``unit``."""
        return self.keep(image_size)[0]

    def keep(self, image_size: tuple[int, int]) -> tuple[tuple[int, int], bool]:
        """``input_size`` and whether ``max_tokens`` lowered it (always False when squashing)."""
        if self.resize != "keep":
            return self.size, False
        return keep_size(image_size, min(self.size), self.unit, self.max_tokens or MAX_TOKENS)


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``N`` or ``HxW`` into (height, width); raises ValueError with a readable message."""
    parts = text.lower().split("x")
    nums = [whole_number(p) for p in parts]
    if len(parts) not in (1, 2) or None in nums:
        raise ValueError(f"image size must be N or HxW in digits 0-9, got {shown(text)}")
    if min(nums) <= 0:
        raise ValueError(f"image size must be positive, got {shown(text)}")
    if max(nums) > MAX_INPUT_SIDE:
        raise ValueError(f"image size must be at most {MAX_INPUT_SIDE} px per side, got {shown(text)}")
    return (nums[0], nums[0]) if len(nums) == 1 else (nums[0], nums[1])


def snap_to_patch(size: tuple[int, int], patch: int) -> tuple[int, int]:
    """Round each side to the nearest multiple of ``patch``, halves up (20 at patch 8 -> 24), at least one patch."""
    return tuple(max(patch, (2 * s + patch) // (2 * patch) * patch) for s in size)  # type: ignore[return-value]


def keep_size(image_size: tuple[int, int], side: int, patch: int,
              max_tokens: int = MAX_TOKENS) -> tuple[tuple[int, int], bool]:
    """Aspect-preserving input size of an image of ``image_size`` = (width, height) px: its shorter side
    scaled to ``side``, the longer by the same factor (halves up), each side snapped to the patch size
    (``snap_to_patch``); if that gives more than ``max_tokens`` patch tokens the shorter side is lowered
    until it fits. Returns ((height, width), whether the cap lowered it)."""
    width, height = image_size
    short = max(1, min(width, height))

    def at(s: int) -> tuple[int, int]:
        scaled = tuple((2 * v * s + short) // (2 * short) for v in (height, width))
        return snap_to_patch(scaled, patch)  # type: ignore[arg-type]

    size = at(side)
    if (size[0] // patch) * (size[1] // patch) <= max_tokens:
        return size, False
    lo, hi = 1, side  # the largest shorter side that fits: tokens grow with the side
    while lo < hi:
        mid = (lo + hi + 1) // 2
        h, w = at(mid)
        lo, hi = (mid, hi) if (h // patch) * (w // patch) <= max_tokens else (lo, mid - 1)
    h, w = at(lo)
    if (h // patch) * (w // patch) > max_tokens:  # a sliver (e.g. 1 x 10,000 px): one patch across, cut along
        cells = max(1, max_tokens // (min(h, w) // patch))
        h, w = (min(h, cells * patch), w) if h > w else (h, min(w, cells * patch))
    return (h, w), True


def check_input_size(size: tuple[int, int], patch: int, where: str) -> tuple[int, int]:
    """``size`` rounded to the patch size (``snap_to_patch``), refused when it is larger than
    MAX_INPUT_SIDE per side (before rounding) or gives more than MAX_TOKENS patch tokens: ModelLoadError
    naming ``where`` the size came from (``--image-size``, or the checkpoint file and key)."""
    height, width = size
    if max(size) > MAX_INPUT_SIDE:
        raise ModelLoadError(f"{where}: input size {height}x{width} px is larger than the {MAX_INPUT_SIDE} px "
                             "per side limit; choose one with --image-size")
    snapped = snap_to_patch(size, patch)
    tokens = (snapped[0] // patch) * (snapped[1] // patch)
    if tokens > MAX_TOKENS:
        raise ModelLoadError(f"{where}: input size {snapped[0]}x{snapped[1]} px at patch {patch} px is {tokens:,} "
                             f"patch tokens, more than the {MAX_TOKENS:,} limit; choose a smaller --image-size")
    return snapped


def check_normalisation(mean: tuple[float, ...], std: tuple[float, ...], where: str,
                        keys: tuple[str, str] = ("image_mean", "image_std")) -> None:
    """Refuse a normalisation that would make every map NaN or meaningless: three finite means, three
    finite stds > 0 (ModelLoadError naming ``where``, the config file, and the key)."""
    for key, values in zip(keys, (mean, std), strict=True):
        if len(values) != 3 or not all(math.isfinite(v) for v in values):
            raise ModelLoadError(f"{where}: {key} must be three finite numbers, got {list(values)}")
    if min(std) <= 0:
        raise ModelLoadError(f"{where}: {keys[1]} must be > 0 (inputs are divided by it), got {list(std)}")


def to_tensor(images: list[Image.Image], prep: Preprocessing,
              size: tuple[int, int] | None = None) -> torch.Tensor:
    """Resize each RGB image to ``size`` (default ``prep.size``; height, width) and normalise: a float32
    tensor [B, 3, H, W]."""
    h, w = size or prep.size
    mean = np.asarray(prep.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(prep.std, dtype=np.float32)[:, None, None]
    arrays = []
    for img in images:
        resized = img.convert("RGB").resize((w, h), _RESAMPLE[prep.resample])
        arr = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / 255.0
        arrays.append((arr - mean) / std)
    return torch.from_numpy(np.stack(arrays))
