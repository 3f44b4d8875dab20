/* The compare view's pure parts: its permalink state (one side = model:method:layer:variant) and the shift
 * map, the signed difference right - left of two maps on the same grid, drawn on a diverging scale centred
 * on 0 with a symmetric range (blue: left higher, white: equal, red: right higher). Pure. */

export const MODES = ["side", "slider", "shift"];

/** "model:method:layer:variant" as {model, method, layer, variant}; null when malformed. */
export function parseSide(text) {
  const parts = String(text || "").split(":");
  if (parts.length !== 4 || !/^\d+$/.test(parts[2]) || !/^(fused|h\d\d+)$/.test(parts[3])) return null;
  return { model: parts[0], method: parts[1], layer: Number(parts[2]), variant: parts[3] };
}

/** A side as its permalink text. */
export const sideText = (s) => [s.model, s.method, s.layer, s.variant].join(":");

/** The signed differences right - left, cell by cell, and the symmetric range m = max |d| (0 when all equal
 *  or none is finite); null when the maps have different lengths. */
export function shiftOf(left, right) {
  if (left.length !== right.length) return null;
  const values = new Float64Array(left.length);
  let m = 0;
  for (let i = 0; i < left.length; i++) {
    values[i] = right[i] - left[i];
    if (Number.isFinite(values[i]) && Math.abs(values[i]) > m) m = Math.abs(values[i]);
  }
  return { values: values, range: m };
}

const BLUE = [33, 102, 172], RED = [178, 24, 43], WHITE = [247, 247, 247];

/** [r, g, b, a] (0..255) of ``d`` on the diverging scale [-m, m]: white at 0 blending to blue (negative) or red
 *  (positive), the opacity growing with |d| / m so that the dimmed photo shows where nothing moved. */
export function divergingColour(d, m) {
  if (!Number.isFinite(d) || !(m > 0)) return [0, 0, 0, 0];
  const t = Math.min(1, Math.abs(d) / m), end = d < 0 ? BLUE : RED;
  const rgb = WHITE.map((w, k) => Math.round(w + (end[k] - w) * t));
  return [...rgb, Math.round(255 * (0.25 + 0.75 * t))];
}

/** The RGBA pixels of a shift map (Uint8ClampedArray, 4 per cell). */
export function shiftPixels(shift) {
  const px = new Uint8ClampedArray(shift.values.length * 4);
  shift.values.forEach((d, i) => px.set(divergingColour(d, shift.range), 4 * i));
  return px;
}

/** Whether two models' maps can be subtracted cell by cell: the same grid. */
export const sameGrid = (a, b) => a.grid[0] === b.grid[0] && a.grid[1] === b.grid[1];
