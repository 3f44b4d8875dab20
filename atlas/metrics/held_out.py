"""The held-out estimate of ``--select-on FRACTION``: the best layer and head chosen on one part of the images,
scored on the rest.

The leaderboard's best layer (and best single head) is chosen by its mean primary metric over the images and
then scored on the same images, which flatters it. With ``--select-on`` the images with boxes are split in
two by a fixed rule on their ids: an image belongs to the *selection* part when the first 8 bytes of the
SHA-256 of its id (UTF-8), read as a big-endian number and divided by 2**64, are below FRACTION; every other
image is *held out*. Each image's side depends on its own id only, so adding or removing images moves no
other image across the split. The layer (head) is chosen on the selection part exactly as the leaderboard
chooses it (``ssl_attention.aggregate.best_layer`` / ``best_head``: the metric's direction, ties to the first),
and its mean and bootstrap CI (``bootstrap_ci``: the same resamples, confidence and seed as every other
figure of ``summary.json``) are computed on the held-out part.

Written as the ``held_out`` key of ``summary.json`` (layout: the Metrics docs page), only when the option is
given, so builds without it keep their bytes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from ssl_attention.aggregate import FUSED, Index, best_head, best_layer, bootstrap_ci
from ssl_attention.aggregate.rows import BASELINES
from ssl_attention.errors import AtlasError
from ssl_attention.integers import shown

FLAG = "--select-on"
NUMBER = re.compile(r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?")
SPLIT_RULE = "sha256(image id)[:8] / 2**64 < fraction"  # written into summary.json beside the fraction


def parse_fraction(value: Any) -> float | None:
    """``--select-on``'s value (command-line text or an ``atlas.toml`` number) as a float in (0, 1); None stays
    None (off). Anything else: ``AtlasError``, one line naming the flag."""
    if value is None:
        return None
    text = isinstance(value, str) and NUMBER.fullmatch(value.strip())  # ASCII only: float() takes '٠.٥' and '0_5'
    number = isinstance(value, int | float) and not isinstance(value, bool)
    fraction = float(value) if text or number else math.nan
    if not 0.0 < fraction < 1.0:  # NaN fails too
        raise AtlasError(f"{FLAG}: expected a fraction between 0 and 1 (both excluded), such as 0.5; got "
                         f"{shown(str(value))}")
    return fraction


def split_position(image_id: str) -> float:
    """Where ``image_id`` falls in [0, 1): the first 8 bytes of SHA-256 of the id (UTF-8) over 2**64."""
    return int.from_bytes(hashlib.sha256(image_id.encode("utf-8")).digest()[:8], "big") / 2.0**64


def in_selection(image_id: str, fraction: float) -> bool:
    """Whether ``image_id`` is in the selection part of ``--select-on fraction`` (else it is held out)."""
    return split_position(image_id) < fraction


def split_images(ids: Iterable[str], fraction: float) -> tuple[list[str], list[str]]:
    """``(selection, held_out)``: the ``ids`` (sorted) on each side of the split."""
    selection, held = [], []
    for image_id in sorted(set(ids)):
        (selection if in_selection(image_id, fraction) else held).append(image_id)
    return selection, held


def check_split(ids: Iterable[str], fraction: float) -> None:
    """Refuse (``AtlasError``, one line) a fraction that leaves no image with boxes on one side of the split."""
    ids = list(ids)
    selection, held = split_images(ids, fraction)
    if not selection or not held:
        raise AtlasError(f"{FLAG} {fraction:g}: of the {len(set(ids))} images with boxes, {len(selection)} would "
                         f"select the layer and head and {len(held)} be held out; each side needs at least 1 image")


def _restricted(index: Index, metric: str, images: set[str]) -> Index:
    """The whole-image values of ``metric`` on ``images`` only (the other metrics left out)."""
    return {k: {i: v for i, v in values.items() if i in images} for k, values in index.items() if k[4] == metric}


def _figure(index: Index, key: tuple, images: set[str] | None) -> dict[str, Any]:
    """``{layer, head, mean, lo, hi, n}`` of one map kind on ``images`` (None: all), the values in image-id order
    (the order of the rows and of the leaderboard's figures), NaN written as null."""
    values = index.get(key, {})
    e = bootstrap_ci([values[i] for i in sorted(values) if images is None or i in images])
    return {"layer": key[2], "head": key[3],
            **{name: None if isinstance(v, float) and not math.isfinite(v) else v for name, v in asdict(e).items()}}


def _entries(index: Index, selection_index: Index, held: set[str], metric: str,
             choose: Callable[[Index, str, str, str], tuple | None]) -> list[dict[str, Any]]:
    """Per (model, method): the in-sample figure (chosen and scored on every image) beside the held-out one."""
    pairs = sorted({k[:2] for k in index if k[1] not in BASELINES})
    out = []
    for model, method in pairs:
        everywhere, chosen = choose(index, model, method, metric), choose(selection_index, model, method, metric)
        if everywhere is None or chosen is None:
            continue
        out.append({"model": model, "method": method, "metric": metric,
                    "in_sample": _figure(index, (model, method, *_kind(everywhere), metric), None),
                    "held_out": _figure(index, (model, method, *_kind(chosen), metric), held)})
    return out


def _kind(choice: tuple) -> tuple[int, str]:
    """``(layer, head)`` of a ``best_layer`` (fused) or ``best_head`` result."""
    return (choice[0], FUSED) if len(choice) == 2 else (choice[0], choice[1])


def held_out_summary(index: Index, fraction: float, metric: str) -> dict[str, Any]:
    """The ``held_out`` key of ``summary.json``: the split and, per model x method, the best layer's (fused
    map) and the best single head's in-sample and held-out figures of ``metric``."""
    images = sorted({i for k, values in index.items() if k[4] == metric for i in values})
    selection, held = split_images(images, fraction)
    selection_index = _restricted(index, metric, set(selection))
    held_set = set(held)
    return {
        "fraction": fraction,
        "split": SPLIT_RULE,
        "metric": metric,
        "n_selection": len(selection),
        "n_held_out": len(held),
        "leaderboard": _entries(index, selection_index, held_set, metric, best_layer),
        "best_heads": _entries(index, selection_index, held_set, metric, best_head),
    }

