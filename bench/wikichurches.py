"""The WikiChurches-shaped bench case: 139 images of up to 800 px and a building_parts.json-like file of
about 600 relative boxes (WikiChurches' format: ``meta`` names, ``annotations`` with ``styles`` and
``bbox_groups`` of relative ``left/top/width/height`` elements), built with the seven default models."""

from __future__ import annotations

import json
import random
from pathlib import Path

IMAGES = 139
BOXES = 594
PARTS = ["Portal", "Tower", "Rose window", "Window", "Arch", "Buttress", "Spire", "Apse", "Dome", "Gable"]
STYLES = ["Gothic", "Romanesque", "Baroque", "Renaissance"]


def write_annotations(images: list[Path], path: Path, boxes: int = BOXES, seed: int = 0) -> int:
    """A building_parts.json for ``images`` with ``boxes`` boxes spread over them; returns the box count."""
    rng = random.Random(seed)
    per_image = [boxes // len(images) + (i < boxes % len(images)) for i in range(len(images))]
    annotations = {}
    for image, count in zip(images, per_image, strict=True):
        elements = []
        for _ in range(count):
            w, h = rng.uniform(0.08, 0.5), rng.uniform(0.08, 0.5)
            elements.append({"left": rng.uniform(0, 1 - w), "top": rng.uniform(0, 1 - h), "width": w, "height": h,
                             "label": rng.randrange(len(PARTS))})
        annotations[image.stem] = {"styles": rng.sample(STYLES, rng.randint(1, 2)),
                                   "bbox_groups": [{"group_label": 0, "elements": elements}]}
    data = {"meta": [{"name": name, "parents": []} for name in PARTS], "annotations": annotations}
    path.write_text(json.dumps(data), encoding="utf-8")
    return sum(per_image)
