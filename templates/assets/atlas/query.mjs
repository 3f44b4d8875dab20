/* Query-patch rows (``atlas build --query-layers``): where one patch attends, per head, in the exported
 * layers. The file of a (model, image), ``query.bin`` (atlas/render.py query_bytes): float32 LE
 * scales [Lq, H, P], then uint8 codes [Lq, H, P, P]; a value is code * scale of its row. The query
 * point is a position in the image (fractions of its width and height), so one point picks the patch
 * under it in every model's own grid. Pure, except fetchQuery. */

import { fetchBytes } from "./fetch_bytes.mjs";

/** The decoded rows of one file: ``row(k, h, cell)`` -> Float64Array of the P cells patch ``cell``
 *  attends to in the k-th exported layer and head h; ``fused(k, cell)``: their mean over heads. */
export function decodeQuery(buffer, layers, heads, cells) {
  const rows = layers * heads * cells;
  if (buffer.byteLength !== rows * 4 + rows * cells) throw new Error("atlas: query rows of the wrong size");
  const scales = new DataView(buffer, 0, rows * 4);
  const codes = new Uint8Array(buffer, rows * 4);
  function row(k, h, cell) {
    const r = (k * heads + h) * cells + cell;
    const scale = scales.getFloat32(r * 4, true);
    const out = new Float64Array(cells);
    for (let i = 0; i < cells; i++) out[i] = codes[r * cells + i] * scale;
    return out;
  }
  function fused(k, cell) {
    const out = new Float64Array(cells);
    for (let h = 0; h < heads; h++) {
      const values = row(k, h, cell);
      for (let i = 0; i < cells; i++) out[i] += values[i];
    }
    for (let i = 0; i < cells; i++) out[i] /= heads;
    return out;
  }
  return { row: row, fused: fused };
}

const cache = new Map();
/** The decoded rows of a model's file (fetched once per page). */
export function fetchQuery(url, model) {
  if (!cache.has(url)) {
    const cells = model.grid[0] * model.grid[1];
    cache.set(url, fetchBytes(url).then((buffer) => decodeQuery(buffer, model.queryLayers.length, model.heads,
      cells)));
  }
  return cache.get(url);
}

/** Colormap indices 0..255 of a map, min-max normalised as the sprite sheets are (atlas/render.py
 *  to_indices): floor(255 * (x - min) / (max - min) + 0.5); a constant map is all 0. */
export function toIndices(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const out = new Uint8Array(values.length);
  if (!(hi > lo)) return out;
  for (let i = 0; i < values.length; i++) out[i] = Math.min(255, Math.max(0, Math.floor((values[i] - lo) / (hi - lo) * 255 + 0.5)));
  return out;
}

const clamp01 = (v) => Math.min(1, Math.max(0, v));

/** The query point of a hash value "x,y" (fractions of the image's width and height), or null. */
export function parseQuery(text) {
  const parts = (text || "").split(",");
  if (parts.length !== 2 || parts.some((p) => p.trim() === "" || !Number.isFinite(Number(p)))) return null;
  return { x: clamp01(Number(parts[0])), y: clamp01(Number(parts[1])) };
}

/** The hash value of a query point (4 decimals). */
export const queryText = (point) => point.x.toFixed(4) + "," + point.y.toFixed(4);

/** The cell (row-major index into a [gh, gw] grid) under ``point``. */
export function queryCell(point, grid) {
  const [gh, gw] = grid;
  const r = Math.min(gh - 1, Math.floor(point.y * gh)), c = Math.min(gw - 1, Math.floor(point.x * gw));
  return r * gw + c;
}

/** The centre of ``cell`` of ``grid`` as a query point. */
export function cellCentre(cell, grid) {
  const gw = grid[1];
  return { x: ((cell % gw) + 0.5) / gw, y: (Math.floor(cell / gw) + 0.5) / grid[0] };
}

const MOVES = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };

/** The query point after arrow key ``key`` in ``grid``: one cell over, stopping at the edges; from no
 *  point, the centre cell. Null for a key that is not an arrow. */
export function stepQuery(point, key, grid) {
  if (!Object.hasOwn(MOVES, key)) return null;
  const [gh, gw] = grid;
  if (point === null) return cellCentre(Math.floor(gh / 2) * gw + Math.floor(gw / 2), grid);
  const cell = queryCell(point, grid);
  const [dr, dc] = MOVES[key];
  const r = Math.min(gh - 1, Math.max(0, Math.floor(cell / gw) + dr));
  const c = Math.min(gw - 1, Math.max(0, (cell % gw) + dc));
  return cellCentre(r * gw + c, grid);
}

/** Why a model shows no query map at ``layer`` (empty when it does): no rows, or rows of other layers. */
export function queryNote(model, layer) {
  if (model.kind !== "vit" || !model.heads) return "";
  const layers = model.queryLayers || [];
  if (layers.includes(layer)) return "";
  if (!layers.length) return model.name + ": no query rows exported; rebuild with --query-layers";
  return model.name + ": query rows exported for layers " + layers.join(", ") + " only; rebuild with --query-layers";
}
