"""Expert boxes: readers for COCO detection JSON and WikiChurches ``building_parts.json``.

Every box is returned in the pixels of the image *as the user sees it* (after EXIF orientation),
``x, y`` = top-left corner, clamped to the image. Two kinds of bad input are distinguished:

* problems of the whole file (unreadable, not JSON, unknown format, missing or mistyped top-level
  keys, a COCO annotation pointing at an image the file does not list, no usable box at all although
  the file has boxes) raise :class:`~ssl_attention.errors.AnnotationError` with one line naming the file;
* problems confined to one box or one image (a non-numeric, NaN/inf or negative coordinate, an integer
  too long for Python to convert (over about 4300 digits), relative coordinates far outside ``[0, 1]``,
  a box that is empty after clamping, an image id that is not in the image set, a COCO image whose
  stated size does not match the real one, a COCO image id listed by more than one image) skip that item. Each skipped
  item is described by one :class:`~ssl_attention.skips.Skip` (stage ``"annotations"``, subject the
  file) in the ``skipped`` list that :func:`read_annotations` returns, so that a build can list what
  was left out.

Modules: ``geometry`` (:class:`Box`, clamping, rescaling, masks), ``parsing`` (shared helpers),
``coco`` and ``wikichurches`` (the two formats), ``reader`` (:func:`read_annotations`).
"""

from ssl_attention.annotations.coco import ASPECT_TOLERANCE
from ssl_attention.annotations.geometry import Box, box_mask, clamp_box, rescale_boxes
from ssl_attention.annotations.reader import Annotations, load_annotations, read_annotations
from ssl_attention.annotations.wikichurches import RELATIVE_TOLERANCE

__all__ = [
    "ASPECT_TOLERANCE",
    "RELATIVE_TOLERANCE",
    "Annotations",
    "Box",
    "box_mask",
    "clamp_box",
    "load_annotations",
    "read_annotations",
    "rescale_boxes",
]
