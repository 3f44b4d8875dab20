/* Colour levels of a map (pure): the greyscale index each cell is drawn with, the per-map min-max of
 * the sprite sheets (atlas/render.py to_indices) or one shared range, and the cell under a pointer.
 *
 * Shared scale: one [min, max] per (model, image, method), over every layer and every variant (fused
 * map and heads); each cell is then drawn at floor(255 * (x - min) / (max - min) + 0.5). */

/** [min, max] over the finite values of ``arrays`` (each a list of numbers); [0, 0] if there are none. */
export function rangeOf(arrays) {
  let lo = Infinity, hi = -Infinity;
  for (const a of arrays) for (const x of a) if (Number.isFinite(x)) { if (x < lo) lo = x; if (x > hi) hi = x; }
  return lo <= hi ? [lo, hi] : [0, 0];
}

/** The colormap index 0..255 of ``x`` on [lo, hi]: 0 for a non-finite value or an empty range. */
export function levelOf(x, lo, hi) {
  if (!Number.isFinite(x) || !(hi > lo)) return 0;
  return Math.min(255, Math.max(0, Math.floor(((x - lo) / (hi - lo)) * 255 + 0.5)));
}

/** The indices of ``values`` on [lo, hi] (Uint8Array). */
export function levelsOf(values, lo, hi) {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = levelOf(values[i], lo, hi);
  return out;
}

/** Index of the grid cell (row-major, ``grid`` = [gh, gw]) under the point (x, y) of a w x h box. */
export function cellAt(x, y, w, h, grid) {
  const [gh, gw] = grid;
  const col = Math.min(gw - 1, Math.max(0, Math.floor((x / w) * gw)));
  const row = Math.min(gh - 1, Math.max(0, Math.floor((y / h) * gh)));
  return row * gw + col;
}

/** A raw value for people: 4 significant digits, exponent notation for very small or large ones. */
export function formatValue(x) {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? x.toExponential(3) : String(Number(x.toPrecision(4)));
}
