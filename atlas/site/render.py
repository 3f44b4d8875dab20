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
which its indices decode to the values the page thresholds (``atlas.site.map_values``): no other map files.
PNG bytes are deterministic: no timestamps or text chunks. Every file is written atomically
(``atlas.core.atomic``), and a pair's stamp only after its files, so a killed build never leaves a torn
file that a later build would take as up to date. Everything here can be re-created from the maps
cache, so the writes skip ``fsync`` (``durable=False``): safe against a killed process, not against a
power loss (delete ``BUILD/render*`` after one).
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from atlas.core import layout
from atlas.core.atomic import write_bytes_atomic, write_text_atomic
from atlas.core.build_dir import BuildDir
from atlas.core.manifest import ModelEntry
from atlas.core.pool import parallel_map
from atlas.site.catalog import Catalog
from atlas.site.feature_bytes import feature_bytes
from atlas.site.map_values import CHUNK, range_chunk
from ssl_attention.query_rows import ROWS_ARRAY, SCALE_ARRAY

RENDER_VERSION = 6  # bump when the output of this module changes, to invalidate caches
THUMB_SIZE = 320


def _write(path: Path, data: bytes) -> None:
    """Write a render output atomically, without ``fsync`` (it can be re-created from the maps cache)."""
    write_bytes_atomic(path, data, durable=False)


def to_indices(values: np.ndarray) -> np.ndarray:
    """Min-max normalise a map to colormap indices 0..255 (uint8); NaN and constant maps give 0."""
    v = np.asarray(values)
    return tile_indices(v.reshape(1, -1)).reshape(v.shape)


def tile_indices(tiles: np.ndarray) -> np.ndarray:
    """``to_indices`` of each row of ``[tiles, cells]`` at once: each row min-max normalised on its own
    (in float64, ``floor(255 * (x - lo) / (hi - lo) + 0.5)``), 0 for NaN cells and constant rows."""
    v = np.asarray(tiles, dtype=np.float64)
    finite = np.isfinite(v)
    lo = np.where(finite, v, np.inf).min(axis=1, keepdims=True)
    hi = np.where(finite, v, -np.inf).max(axis=1, keepdims=True)
    varies = hi > lo  # False for a constant row and for one without finite cells
    span = np.where(varies, hi - lo, 1.0)
    base = np.where(varies, lo, 0.0)
    scaled = np.floor((np.where(finite, v, base) - base) / span * 255.0 + 0.5)
    return np.where(varies, np.clip(scaled, 0, 255), 0).astype(np.uint8)


def encode_png(indices: np.ndarray, ranges: bytes | None = None) -> bytes:
    """An 8-bit greyscale PNG of a ``[gh, gw]`` uint8 array (deterministic bytes), with the ``atRg``
    chunk data ``ranges`` (``atlas.site.map_values.range_chunk``) if given."""
    info = PngImagePlugin.PngInfo()
    if ranges is not None:
        info.add(CHUNK, ranges)
    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(indices, dtype=np.uint8), "L")
    image.save(buffer, "PNG", compress_level=9, pnginfo=info)  # optimize=True: 0.1 % smaller, 1.5x the time
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
    tiles = tile_indices(maps.reshape(layers * variants, gh * gw))
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


def _stamps(out: Path) -> Path:
    """The folder of the render stamps beside ``out``."""
    return BuildDir.stamps_of(out)


def stamp_file(out: Path, model: ModelEntry, image_slug: str) -> Path:
    """Where the stamp of one pair's render lives: the npz state its files were rendered from."""
    return _stamps(out) / model.slug / f"{image_slug}.json"


def render_pair(model: ModelEntry, image_slug: str, arrays: dict[str, np.ndarray], npz: Path, out: Path) -> None:
    """Write one (model, image) pair's sprite sheets (and query rows) from its maps ``arrays``, the
    contents of ``npz``, then its stamp. Called by the render stage, and by the compute stage's writer
    pool right after it wrote ``npz`` (so a build's sprites are encoded while its next batch computes)."""
    stamp = _stamp(npz)
    written = set()
    for method in model.methods:
        maps = np.stack([layer_maps(arrays, model, method, layer) for layer in range(model.depth(method))])
        sprite = out / layout.map_sprite(model.slug, image_slug, method)
        _write(sprite, encode_png(sprite_indices(maps), range_chunk(maps)))
        written.add(sprite.name)
    if model.query_layers and ROWS_ARRAY in arrays:
        rows = out / layout.query_rows(model.slug, image_slug)
        _write(rows, query_bytes(arrays[ROWS_ARRAY], arrays[SCALE_ARRAY]))
        written.add(rows.name)
    features = feature_bytes(arrays)
    if features is not None:
        path = out / layout.feature_file(model.slug, image_slug)
        _write(path, features)
        written.add(path.name)
    for stale in (out / layout.pair_dir(model.slug, image_slug)).iterdir():  # e.g. an older format's files
        if stale.name not in written:
            stale.unlink()
    write_text_atomic(stamp_file(out, model, image_slug), stamp, durable=False)  # last: marks the pair done


@dataclass(frozen=True)
class PairRenderer:
    """Renders each pair as the compute stage writes its npz (``compute_model_maps(render=...)``): into
    ``out`` (``BUILD/render``), for the images in ``ids`` (the published ones; None: all). ``encoded``
    lists the (model, image id) pairs it rendered, for the build's render line."""

    out: Path
    ids: frozenset[str] | None = None
    encoded: list[tuple[str, str]] = field(default_factory=list, compare=False)

    def __call__(self, model: ModelEntry, image_id: str, arrays: dict[str, np.ndarray], npz: Path) -> None:
        if self.ids is None or image_id in self.ids:
            render_pair(model, layout.slug(image_id), arrays, npz, self.out)
            self.encoded.append((model.name, image_id))  # list.append is atomic: the writer threads share it


def _render_task(task: tuple[ModelEntry, str, Path, Path]) -> None:
    model, image_slug, npz, out = task
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files}
    render_pair(model, image_slug, arrays, npz, out)


def _photo_current(display: Path, image_slug: str, out: Path) -> bool:
    """Whether an image's photo and thumbnail are there and not older than its display copy."""
    photo, thumb = out / layout.photo(image_slug), out / layout.thumb(image_slug)
    return thumb.exists() and thumb.stat().st_mtime_ns >= display.stat().st_mtime_ns and photo.exists()


def _render_photo(task: tuple[Path, str, Path]) -> None:
    display, image_slug, out = task
    photo, thumb = out / layout.photo(image_slug), out / layout.thumb(image_slug)
    _write(photo, display.read_bytes())
    with Image.open(display) as im:
        im.draft("RGB", (THUMB_SIZE, THUMB_SIZE))  # JPEG: decode at the smallest scale >= the thumbnail
        small = im.convert("RGB")
        small.thumbnail((THUMB_SIZE, THUMB_SIZE))
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=80)
    _write(thumb, buffer.getvalue())  # last: its presence marks the photo pair as done


def render_all(catalog: Catalog, out: Path, on_pair: Callable[[], None] | None = None) -> RenderStats:
    """Render photos and sprite sheets of every (model, image) into ``out`` (laid out as in the site).

    Pairs whose npz is unchanged since their last render are skipped; the others are rendered by a
    process pool (``atlas.core.pool``). ``on_pair`` is called after each pair. Files of images and models no
    longer in the catalog are removed (``prune``), so ``out`` holds what a clean build of the same
    inputs renders.
    """
    stats = RenderStats()
    photos = [(catalog.display_file(image), image.slug, out) for image in catalog.images]
    list(parallel_map(_render_photo, [task for task in photos if not _photo_current(*task)]))
    todo = []
    for model in catalog.models:
        bare = model.with_maps({})  # sent with every task: without its maps, one per image
        for image in catalog.images:
            if image.id not in model.maps:
                continue
            npz = catalog.maps_file(model, image.id)
            stamp = stamp_file(out, model, image.slug)
            if stamp.exists() and stamp.read_text() == _stamp(npz):
                stats.cached_pairs += 1
                if on_pair:
                    on_pair()
            else:
                todo.append((bare, image.slug, npz, out))
    for _ in parallel_map(_render_task, todo, on_done=on_pair):
        stats.rendered_pairs += 1
    for model in catalog.models:
        for image in catalog.images:
            if image.id in model.maps:
                for f in (out / layout.pair_dir(model.slug, image.slug)).glob("*.png"):
                    stats.pngs += 1
                    stats.png_bytes += f.stat().st_size
    prune(catalog, out)
    return stats


def prune(catalog: Catalog, out: Path) -> None:
    """Remove the photos, thumbnails, map folders and stamps of images and models not in ``catalog``."""
    pairs = {(m.slug, i.slug) for m in catalog.models for i in catalog.images if i.id in m.maps}
    keep = {out / layout.photo(i.slug) for i in catalog.images} | {out / layout.thumb(i.slug) for i in catalog.images}
    keep |= {out / layout.pair_dir(model, image) for model, image in pairs}
    stamps = _stamps(out)
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
