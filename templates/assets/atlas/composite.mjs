/* The colour-per-head composite (DINO Fig. 3), pure: each shown head's threshold mask (mass 60 % by
 * default, the page's threshold rule when one is chosen) drawn as its outline in the head's colour, and
 * a sparse hatch in the colour of the cell's dominant head (the masked head with the highest
 * min-max-scaled value; ties: the lower head). Cells in no mask stay clear. */

import { minmax } from "./colour.mjs";
import { massMask, topPercentMask } from "./thresholds.mjs";

/** Canvas pixels per grid cell: about 200 pixels along the longer side, at least 4 per cell. */
export const cellPx = ([gh, gw]) => Math.max(4, Math.ceil(200 / Math.max(gh, gw)));

/** The mask of each head (null where the head is hidden): top-p % if ``rule.thr`` is "top", else mass. */
export function headMasks(heads, hidden, rule) {
  return heads.map((values, h) => (hidden.has(h) ? null
    : rule.thr === "top" ? topPercentMask(values, rule.p) : massMask(values, rule.mass)));
}

/** Per cell, the dominant head among the heads whose mask keeps it (-1: none). */
export function dominantHeads(heads, masks) {
  const scaled = heads.map(minmax);
  const out = new Int16Array(heads[0] ? heads[0].length : 0).fill(-1);
  for (let i = 0; i < out.length; i++) {
    let best = -1;
    for (let h = 0; h < heads.length; h++) {
      if (masks[h] && masks[h][i] && (best < 0 || scaled[h][i] > scaled[best][i])) best = h;
    }
    out[i] = best;
  }
  return out;
}

/** RGBA pixels (Uint8ClampedArray) of a (gw * s) x (gh * s) composite, s = cellPx(grid); ``colours[h]`` = [r, g, b].
 *  Outlines are about a tenth of a cell wide; the hatch covers about a third of the cell. ``detail`` false (a
 *  small tile, where a dozen outlines and hatches cannot be read): the dominant head's colour fills its cells,
 *  and nothing else is drawn. */
export function compositePixels(masks, dominant, colours, grid, detail = true) {
  const [gh, gw] = grid, s = cellPx(grid), width = gw * s;
  const line = Math.max(1, Math.round(s / 10)), period = 3 * line;
  const px = new Uint8ClampedArray(width * gh * s * 4);
  const put = (x, y, rgb, alpha) => px.set([rgb[0], rgb[1], rgb[2], alpha], 4 * (y * width + x));
  if (!detail) {
    for (let i = 0; i < gh * gw; i++) {
      if (dominant[i] < 0) continue;
      const r = Math.floor(i / gw), c = i % gw;
      for (let y = r * s; y < (r + 1) * s; y++) for (let x = c * s; x < (c + 1) * s; x++) put(x, y, colours[dominant[i]], 190);
    }
    return px;
  }
  for (let i = 0; i < gh * gw; i++) {  // sparse fill: every third diagonal of the dominant head's cells
    if (dominant[i] < 0) continue;
    const r = Math.floor(i / gw), c = i % gw;
    for (let y = r * s; y < (r + 1) * s; y++) for (let x = c * s; x < (c + 1) * s; x++) {
      if ((x + y) % period < line) put(x, y, colours[dominant[i]], 200);
    }
  }
  masks.forEach((mask, h) => {  // outlines: the cell edges between a kept cell and one that is not
    if (!mask) return;
    const kept = (r, c) => r >= 0 && c >= 0 && r < gh && c < gw && mask[r * gw + c] === 1;
    for (let r = 0; r < gh; r++) for (let c = 0; c < gw; c++) {
      if (!kept(r, c)) continue;
      for (let k = 0; k < s; k++) for (let t = 0; t < line; t++) {
        if (!kept(r - 1, c)) put(c * s + k, r * s + t, colours[h], 255);
        if (!kept(r + 1, c)) put(c * s + k, r * s + s - 1 - t, colours[h], 255);
        if (!kept(r, c - 1)) put(c * s + t, r * s + k, colours[h], 255);
        if (!kept(r, c + 1)) put(c * s + s - 1 - t, r * s + k, colours[h], 255);
      }
    }
  });
  return px;
}
