"""Rasters of the atlas: heatmap sprite sheets (which also publish the map values) and photo copies,
rendered once and cached.

Heatmap format: one 8-bit greyscale PNG *sprite sheet* per (model, image, method) at patch
resolution, holding every map of that method: tile row ``l`` is layer ``l``, tile column ``v`` the
variant (fused first, then h00, h01...; rollout and Grad-CAM have one column), each tile ``gh x gw``
pixels, one pixel per grid cell (``layout.map_sprite``, ``layout.sprite_tile``). A pixel is the
colormap index ``floor(255 * (x - min) / (max - min) + 0.5)``, min-max normalised per map (per tile);
a constant map is all 0, NaN cells are 0. The page copies each tile 1:1 into a canvas, scales it up
with CSS and colours it with an SVG ``feComponentTransfer`` table filter (viridis / inferno / turbo,
switchable without new downloads). Each sheet carries an ``atRg`` chunk with every tile's range, from
which its indices decode to the values the page thresholds (``atlas.map_values``): no other map files.
PNG bytes are deterministic: no timestamps or text chunks. Every file is written atomically
(``atlas.atomic``), and a pair's stamp only after its files, so a killed build never leaves a torn
file that a later build would take as up to date. Everything here can be re-created from the maps
cache, so the writes skip ``fsync`` (``durable=False``): safe against a killed process, not against a
power loss (delete ``BUILD/render*`` after one).
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from atlas import layout
from atlas.atomic import write_bytes_atomic, write_text_atomic
from atlas.catalog import Catalog
from atlas.manifest import ImageEntry, ModelEntry
from atlas.map_values import CHUNK, range_chunk
from ssl_attention.query_rows import ROWS_ARRAY, SCALE_ARRAY

RENDER_VERSION = 3  # bump when the output of this module changes, to invalidate caches
THUMB_SIZE = 320


def _write(path: Path, data: bytes) -> None:
    """Write a render output atomically, without ``fsync`` (it can be re-created from the maps cache)."""
    write_bytes_atomic(path, data, durable=False)


def to_indices(values: np.ndarray) -> np.ndarray:
    """Min-max normalise a map to colormap indices 0..255 (uint8); NaN and constant maps give 0."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    if not finite.any():
        return np.zeros(v.shape, np.uint8)
    lo, hi = v[finite].min(), v[finite].max()
    if hi <= lo:
        return np.zeros(v.shape, np.uint8)
    scaled = np.floor((np.where(finite, v, lo) - lo) / (hi - lo) * 255.0 + 0.5)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def encode_png(indices: np.ndarray, ranges: bytes | None = None) -> bytes:
    """An 8-bit greyscale PNG of a ``[gh, gw]`` uint8 array (deterministic bytes), with the ``atRg``
    chunk data ``ranges`` (``atlas.map_values.range_chunk``) if given."""
    info = PngImagePlugin.PngInfo()
    if ranges is not None:
        info.add(CHUNK, ranges)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(indices, dtype=np.uint8), "L").save(buffer, "PNG", optimize=True, pnginfo=info)
    return buffer.getvalue()


def query_bytes(codes: np.ndarray, scale: np.ndarray) -> bytes:
    """The site file of one pair's query-patch rows: the float32 little-endian scales ``[Lq, H, P]``,
    then the uint8 codes ``[Lq, H, P, P]`` (layers as in the model's ``query_layers``, query patch
    row-major in axis 2); a value is ``code * scale`` of its row (``ssl_attention.query_rows``)."""
    return np.ascontiguousarray(scale, "<f4").tobytes() + np.ascontiguousarray(codes, np.uint8).tobytes()


def layer_maps(arrays: dict[str, np.ndarray], model: ModelEntry, method: str, layer: int) -> np.ndarray:
    """``[variants, gh, gw]`` float32 maps of one layer (fused first, then each head)."""
    if method in model.head_methods:
        return np.concatenate([arrays[f"{method}_fused"][layer][None], arrays[method][layer]]).astype(np.float32)
    return arrays[method][layer][None].astype(np.float32)


def sprite_indices(maps: np.ndarray) -> np.ndarray:
    """The sprite sheet of ``[layers, variants, gh, gw]`` maps: ``[layers * gh, variants * gw]`` uint8,
    each tile min-max normalised on its own (``to_indices``)."""
    layers, variants, gh, gw = maps.shape
    tiles = np.stack([to_indices(m) for m in maps.reshape(layers * variants, gh, gw)])
    return tiles.reshape(layers, variants, gh, gw).transpose(0, 2, 1, 3).reshape(layers * gh, variants * gw)


@dataclass
class RenderStats:
    pngs: int = 0  # sprite sheets
    png_bytes: int = 0
    rendered_pairs: int = 0  # (model, image) pairs rendered now
    cached_pairs: int = 0  # pairs whose files were up to date


def _stamp(npz: Path) -> str:
    st = npz.stat()
    return json.dumps({"version": RENDER_VERSION, "size": st.st_size, "mtime_ns": st.st_mtime_ns})


def _render_pair(model: ModelEntry, image: ImageEntry, npz: Path, out: Path) -> None:
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files}
    written = set()
    for method in model.methods:
        maps = np.stack([layer_maps(arrays, model, method, layer) for layer in range(model.depth(method))])
        sprite = out / layout.map_sprite(model.slug, image.slug, method)
        _write(sprite, encode_png(sprite_indices(maps), range_chunk(maps)))
        written.add(sprite.name)
    if model.query_layers and ROWS_ARRAY in arrays:
        rows = out / layout.query_rows(model.slug, image.slug)
        _write(rows, query_bytes(arrays[ROWS_ARRAY], arrays[SCALE_ARRAY]))
        written.add(rows.name)
    for stale in (out / layout.pair_dir(model.slug, image.slug)).iterdir():  # e.g. an older format's files
        if stale.name not in written:
            stale.unlink()


def _render_photo(display: Path, image: ImageEntry, out: Path) -> None:
    photo, thumb = out / layout.photo(image.slug), out / layout.thumb(image.slug)
    if thumb.exists() and thumb.stat().st_mtime_ns >= display.stat().st_mtime_ns and photo.exists():
        return
    _write(photo, display.read_bytes())
    with Image.open(display) as im:
        small = im.convert("RGB")
        small.thumbnail((THUMB_SIZE, THUMB_SIZE))
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=80)
    _write(thumb, buffer.getvalue())  # last: its presence marks the photo pair as done


def render_all(catalog: Catalog, out: Path, on_pair: Callable[[], None] | None = None) -> RenderStats:
    """Render photos and sprite sheets of every (model, image) into ``out`` (laid out as in the site).

    Pairs whose npz is unchanged since the last render are skipped. ``on_pair`` is called after each pair.
    Files of images and models no longer in the catalog are removed (``prune``), so ``out`` holds what a
    clean build of the same inputs renders.
    """
    stats = RenderStats()
    stamps = out.parent / (out.name + "-stamps")
    for image in catalog.images:
        _render_photo(catalog.display_file(image), image, out)
    for model in catalog.models:
        for image in catalog.images:
            if image.id not in model.maps:
                continue
            npz = catalog.maps_file(model, image.id)
            stamp_file = stamps / model.slug / f"{image.slug}.json"
            stamp = _stamp(npz)
            if stamp_file.exists() and stamp_file.read_text() == stamp:
                stats.cached_pairs += 1
            else:
                _render_pair(model, image, npz, out)
                write_text_atomic(stamp_file, stamp, durable=False)
                stats.rendered_pairs += 1
            for f in (out / layout.pair_dir(model.slug, image.slug)).glob("*.png"):
                stats.pngs += 1
                stats.png_bytes += f.stat().st_size
            if on_pair:
                on_pair()
    prune(catalog, out)
    return stats


def prune(catalog: Catalog, out: Path) -> None:
    """Remove the photos, thumbnails, map folders and stamps of images and models not in ``catalog``."""
    pairs = {(m.slug, i.slug) for m in catalog.models for i in catalog.images if i.id in m.maps}
    keep = {out / layout.photo(i.slug) for i in catalog.images} | {out / layout.thumb(i.slug) for i in catalog.images}
    keep |= {out / layout.pair_dir(model, image) for model, image in pairs}
    stamps = out.parent / (out.name + "-stamps")
    keep |= {stamps / model / f"{image}.json" for model, image in pairs}
    data = out / layout.DATA_DIR
    for folder, depth in ((data / "images", 1), (data / "thumbs", 1), (data / "maps", 2), (stamps, 2)):
        _remove_all_but(folder, keep, depth)


def _remove_all_but(folder: Path, keep: set[Path], depth: int) -> None:
    """Delete what lies ``depth`` levels below ``folder`` and is not in ``keep`` (and folders left empty)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if depth > 1 and entry.is_dir():
            _remove_all_but(entry, keep, depth - 1)
            if not any(entry.iterdir()):
                entry.rmdir()
        elif entry not in keep and entry.is_dir():
            shutil.rmtree(entry)
        elif entry not in keep:
            entry.unlink()
