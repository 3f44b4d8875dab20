"""The map values the site publishes: a sprite sheet's 8-bit indices plus a range chunk in the same PNG.

The page's thresholds (top-p %, mass) and the colour-per-head composite need values, not colours. The
site does not ship the float32 maps: each heatmap sprite sheet (``atlas.site.render``) carries a private
ancillary PNG chunk ``atRg`` (ignored by image viewers and browsers) from which its indices decode to
values. Chunk layout, all little-endian:

* header: ``uint16`` version (1), layers, variants, gh, gw;
* ``float32`` ``lo, hi`` per tile, layer-major then variant (the tile's finite min and max; NaN, NaN
  for a tile without finite cell);
* ``uint32`` count of exceptional cells, then per cell ``uint32`` flat index
  ``(layer * variants + variant) * gh * gw + cell`` and its ``float32`` value (NaN, +inf, -inf).

Decoded value of a cell with index ``q``: ``float32(lo + (hi - lo) * q / 255)`` evaluated in float64 in
exactly that order (JavaScript: ``Math.fround(lo + (hi - lo) * q / 255)``), then each exceptional cell
takes its stored value. The page decodes with ``templates/assets/atlas/values.mjs``; this module is its
twin, so Python applying ``ssl_attention.thresholds`` to :func:`decode_sprite`'s values selects exactly
the cells the page selects. The decoded values are the published data: within half an index step plus
the rounding to float32 of the maps in the npz files (which the metrics read):
``|value - map| <= (hi - lo) / 510 + np.spacing(np.float32(abs(value))) / 2``.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

CHUNK = b"atRg"
VERSION = 1
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tile_ranges(maps: np.ndarray) -> np.ndarray:
    """``[layers, variants, 2]`` float32 finite (min, max) of each tile of ``[layers, variants, gh, gw]``
    maps (NaN, NaN where a tile has no finite cell): the ``lo, hi`` that ``render.to_indices`` uses."""
    flat = np.asarray(maps, dtype=np.float32).reshape(*maps.shape[:2], -1)
    finite = np.isfinite(flat)
    with np.errstate(invalid="ignore"):
        lo = np.where(finite, flat, np.inf).min(axis=-1)
        hi = np.where(finite, flat, -np.inf).max(axis=-1)
    none = ~finite.any(axis=-1)
    lo[none], hi[none] = np.nan, np.nan
    return np.stack([lo, hi], axis=-1).astype(np.float32)


def range_chunk(maps: np.ndarray) -> bytes:
    """The ``atRg`` chunk data of the sprite sheet of ``[layers, variants, gh, gw]`` float32 maps."""
    maps = np.asarray(maps, dtype=np.float32)
    layers, variants, gh, gw = maps.shape
    header = struct.pack("<5H", VERSION, layers, variants, gh, gw)
    flat = maps.ravel()
    odd = np.flatnonzero(~np.isfinite(flat)).astype("<u4")
    cells = np.empty(len(odd), dtype=[("index", "<u4"), ("value", "<f4")])
    cells["index"], cells["value"] = odd, flat[odd]
    return header + tile_ranges(maps).astype("<f4").tobytes() + struct.pack("<I", len(odd)) + cells.tobytes()


def decode_values(indices: np.ndarray, chunk: bytes) -> np.ndarray:
    """``[layers, variants, gh, gw]`` float32 values of a sprite's ``[layers * gh, variants * gw]`` indices."""
    version, layers, variants, gh, gw = struct.unpack_from("<5H", chunk)
    if version != VERSION:
        raise ValueError(f"unknown {CHUNK.decode()} chunk version {version}")
    tiles = layers * variants
    ranges = np.frombuffer(chunk, "<f4", tiles * 2, 10).astype(np.float64).reshape(layers, variants, 1, 1, 2)
    (count,) = struct.unpack_from("<I", chunk, 10 + tiles * 8)
    cells = np.frombuffer(chunk, [("index", "<u4"), ("value", "<f4")], count, 14 + tiles * 8)
    q = np.asarray(indices, dtype=np.float64).reshape(layers, gh, variants, gw).transpose(0, 2, 1, 3)
    lo, hi = ranges[..., 0], ranges[..., 1]
    values = np.ascontiguousarray((lo + (hi - lo) * q / 255).astype(np.float32))
    values.reshape(-1)[cells["index"]] = cells["value"]
    return values


def png_chunk(png: bytes, name: bytes) -> bytes:
    """The data of the first chunk called ``name`` of a PNG file; ``ValueError`` if it has none."""
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    at = len(_PNG_SIGNATURE)
    while at + 8 <= len(png):
        length, kind = struct.unpack_from(">I4s", png, at)
        if kind == name:
            data = png[at + 8 : at + 8 + length]
            if zlib.crc32(kind + data) != struct.unpack_from(">I", png, at + 8 + length)[0]:
                raise ValueError(f"PNG chunk {name.decode()}: bad CRC")
            return data
        at += 12 + length
    raise ValueError(f"PNG without a {name.decode()} chunk")


def decode_sprite(png: bytes) -> np.ndarray:
    """``[layers, variants, gh, gw]`` float32 values published by one sprite sheet (see the module doc)."""
    with Image.open(io.BytesIO(png)) as im:
        indices = np.asarray(im)
    return decode_values(indices, png_chunk(png, CHUNK))
