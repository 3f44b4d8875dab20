"""``--resize`` in the models stage: a loaded model's preprocessing for the build, and the lines it says.

``resize_model`` turns a model to keep mode (``ssl_attention.aspect.keeping_aspect``) or says in one line
why it stays squashed; ``capped_lines`` names each image ``--max-tokens`` scaled down for a model. Both
executors (local and Ray) load models through ``resize_model``, and both batch by input size
(``atlas.models.plan.ModelJob.batches``).
"""

from __future__ import annotations

from atlas.core.manifest import ModelEntry
from atlas.dataset.stage import ImageRecord
from ssl_attention.errors import UnsupportedError
from ssl_attention.models.base import VisionModel
from ssl_attention.preprocess import Preprocessing, keep_size


def resize_model(model: VisionModel, resize: str, max_tokens: int) -> tuple[VisionModel, str]:
    """``model`` as the build's ``--resize`` wants it, and one line if it could not (else "")."""
    if resize != "keep":
        return model, ""
    from ssl_attention.aspect import keeping_aspect

    try:
        return keeping_aspect(model, max_tokens), ""
    except UnsupportedError as exc:
        return model, str(exc)


def capped_lines(entry: ModelEntry, images: list[ImageRecord]) -> list[tuple[str, str]]:
    """(image id, line) for each image whose keep input ``--max-tokens`` lowered, for ``entry``'s model."""
    prep = Preprocessing.from_dict(entry.preprocessing)
    if prep.resize != "keep":
        return []
    lines = []
    for record in images:
        (height, width), capped = prep.keep((record.width, record.height))
        if capped:
            (full_h, full_w), _ = keep_size((record.width, record.height), min(prep.size), prep.unit, 1 << 62)
            unit = prep.unit
            lines.append((record.id, f"model {entry.name}: {full_h}x{full_w} px would be "
                          f"{(full_h // unit) * (full_w // unit):,} patch tokens, more than --max-tokens "
                          f"{prep.max_tokens:,}; scaled down to {height}x{width} px "
                          f"({(height // unit) * (width // unit):,} tokens)"))
    return lines
