"""Earth mover's distances solved once: a per-pair memo kept beside the pair's maps.

``emd`` (``ssl_attention.soft_metrics``) is an exact transport problem per map, the one costly metric. Each
``SoftTarget`` remembers the problems it solved, by the SHA-256 of the map's distribution on the EMD grid
(``SoftTarget.memo``); this module keeps that memo in ``OUT/emd-memo/<model>/<image>.npz``, beside the map
cache, with the key of the soft ground truth it belongs to (``SoftTarget.key``: the boxes' soft ground truth, the
grid and the image's size).

* The models stage's sink solves each pair's problems on its writer threads, while the next batch computes
  (:func:`presolve`): the fused maps of every method the metrics stage scores against the boxes, and the
  two baselines.
* The metrics stage loads the memo into the pair's target before it scores (:func:`load_memo`), solves only
  what is missing (an older cache, changed boxes) and keeps the memo again when it solved anything
  (:func:`save_memo`), so a rebuild never solves a problem twice.

A memo only ever answers for the same distribution against the same ground truth, so it cannot change a
value: a build with it writes the same bytes as one without.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from atlas.core.atomic import write_via_temp
from atlas.core.build_dir import BuildDir
from atlas.core.manifest import ModelEntry
from ssl_attention.annotations import Box
from ssl_attention.methods import get_method
from ssl_attention.metrics import baseline_maps, usable_boxes
from ssl_attention.soft_metrics import SoftTarget


def memo_path(npz: Path) -> Path:
    """Where the EMD memo of the pair whose maps are ``npz`` is kept (``OUT/emd-memo/<model>/<image>.npz``)."""
    return BuildDir.emd_memo_of(npz)


def scored_against_boxes(entry: ModelEntry, method: str) -> bool:
    """Whether the metrics stage scores ``method``'s fused maps against the image's boxes (the maps per
    prompt are scored per label instead: text grounding, no ``emd``)."""
    return not (get_method(method).unit == "target" and entry.target_kind == "prompt")


def load_memo(npz: Path, soft: SoftTarget) -> None:
    """Add the memo kept for ``npz`` to ``soft``'s, if it was kept for the same soft ground truth."""
    try:
        with np.load(memo_path(npz), allow_pickle=False) as data:
            if str(data["key"]) != soft.key:
                return
            soft.memo.update(zip((bytes(d) for d in data["digests"]), data["values"].tolist(), strict=True))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # none yet, or unreadable: solved again
        return


def save_memo(npz: Path, soft: SoftTarget) -> None:
    """Keep ``soft``'s memo beside ``npz`` (atomically; in digest order, so the file's bytes do not depend
    on which stage solved what first)."""
    solved = sorted(soft.memo.items())
    digests = np.frombuffer(b"".join(d for d, _ in solved), dtype=np.uint8).reshape(len(solved), -1)
    values = np.array([v for _, v in solved], dtype=np.float64)

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            np.savez(f, key=np.asarray(soft.key), digests=digests, values=values)

    write_via_temp(memo_path(npz), write)


def presolve(entry: ModelEntry, arrays: Mapping[str, np.ndarray], boxes: tuple[Box, ...],
             image_size: tuple[int, int], npz: Path) -> None:
    """Solve the EMD problems the metrics stage will meet for one pair and keep them (the sink's writer
    threads): every scored method's fused maps and the two baselines; nothing for an image without boxes."""
    boxes = tuple(usable_boxes(boxes, image_size))
    fused = [np.asarray(arrays[get_method(m).fused_array]) for m in entry.methods
             if scored_against_boxes(entry, m) and get_method(m).fused_array in arrays]
    if not boxes or not fused:
        return
    soft = SoftTarget(boxes, image_size, tuple(fused[0].shape[1:]))
    for maps in (*fused, baseline_maps(soft.grid)):
        if tuple(maps.shape[1:]) == soft.grid:
            soft.emd(maps.reshape(maps.shape[0], -1))
    save_memo(npz, soft)
