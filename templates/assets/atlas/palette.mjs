/* The colours of the colour-per-head composite and its legend (pure).
 *
 * HEAD_PALETTE: 12 Glasbey-style colours picked for distance, not hue order: a greedy max-min search
 * over the sRGB grid (steps of 17, CIELAB L* between 35 and 92), whose objective was the smallest
 * CIEDE2000 difference between any two colours as seen with normal vision, and as simulated for
 * deuteranopia and protanopia (Machado, Oliveira & Fernandes 2009, severity 1, on linear RGB).
 * tests/js/palette.test.mjs checks it with its own CIEDE2000: at least 15 between any two colours in
 * all three views (17.6 measured). A model with more heads than colours falls back to evenly spaced hues. */

import { hslToRgb } from "./colour.mjs";

export const HEAD_PALETTE = [
  "#ff4411", "#4488ff", "#eeee11", "#991177", "#66ccff", "#aa0000",
  "#779977", "#5511ff", "#ccddaa", "#556655", "#cceeee", "#888899",
];

/** [r, g, b] (0..255) of a "#rrggbb" string. */
export const hexToRgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

/** Colour [r, g, b] of head ``h`` of ``heads``: the palette while it has enough colours, else hue h/heads*360. */
export const headColour = (h, heads) =>
  heads <= HEAD_PALETTE.length ? hexToRgb(HEAD_PALETTE[h]) : hslToRgb((h / heads) * 360, 0.9, 0.55);
