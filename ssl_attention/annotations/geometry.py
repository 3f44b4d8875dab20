"""Box geometry: the :class:`Box` record, clamping, rescaling and rasterising boxes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in image pixels: top-left ``(x, y)``, size ``w x h``, and its label."""

    x: float
    y: float
    w: float
    h: float
    label: str

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """COCO-style ``(x, y, w, h)``."""
        return self.x, self.y, self.w, self.h

    @property
    def x2(self) -> float:
        """Right edge (exclusive)."""
        return self.x + self.w

    @property
    def y2(self) -> float:
        """Bottom edge (exclusive)."""
        return self.y + self.h

    @property
    def area(self) -> float:
        """Area in square pixels."""
        return self.w * self.h


def clamp_box(box: Box, width: float, height: float) -> Box:
    """Clip ``box`` to the image ``[0, width] x [0, height]``; the result may have zero area."""
    x1, y1 = min(max(box.x, 0.0), width), min(max(box.y, 0.0), height)
    x2, y2 = min(max(box.x2, 0.0), width), min(max(box.y2, 0.0), height)
    return replace(box, x=x1, y=y1, w=max(x2 - x1, 0.0), h=max(y2 - y1, 0.0))


def rescale_boxes(
    boxes: Sequence[Box], from_size: tuple[float, float], to_size: tuple[float, float]
) -> list[Box]:
    """Map boxes from an image of ``from_size = (width, height)`` to a resized copy of ``to_size``.

    The whole image is resized (never cropped), so x scales by ``to_w / from_w`` and y by
    ``to_h / from_h`` (aspect ratio may change, e.g. 640x480 -> 224x224).
    """
    (fw, fh), (tw, th) = from_size, to_size
    if min(fw, fh, tw, th) <= 0:
        raise ValueError(f"sizes must be positive, got {from_size} -> {to_size}")
    sx, sy = tw / fw, th / fh
    return [replace(b, x=b.x * sx, y=b.y * sy, w=b.w * sx, h=b.h * sy) for b in boxes]


def box_mask(boxes: Sequence[Box], width: int, height: int) -> np.ndarray:
    """Rasterise the union of ``boxes`` on a ``[height, width]`` boolean pixel grid.

    Pixel-centre sampling: pixel ``(i, j)`` (row ``i``, column ``j``) is inside a box when its centre
    ``(j + 0.5, i + 0.5)`` satisfies ``x <= j + 0.5 < x + w`` and ``y <= i + 0.5 < y + h``
    (half-open, so two boxes sharing an edge never both claim a pixel row). Boxes partly outside the
    grid are clipped; an empty list gives an all-False mask.
    """
    mask = np.zeros((height, width), dtype=bool)
    for b in boxes:
        c0, c1 = _centre_span(b.x, b.x2, width)
        r0, r1 = _centre_span(b.y, b.y2, height)
        mask[r0:r1, c0:c1] = True
    return mask


def _centre_span(lo: float, hi: float, n: int) -> tuple[int, int]:
    """Indices ``[a, b)`` of the pixels whose centre ``k + 0.5`` is in ``[lo, hi)``, clipped to ``[0, n)``."""
    a = math.ceil(lo - 0.5)
    b = math.ceil(hi - 0.5)
    return min(max(a, 0), n), min(max(b, 0), n)
