// The composite's head palette (templates/assets/atlas/palette.mjs): every pair of colours at least
// 15 CIEDE2000 apart, with normal vision and under simulated deuteranopia and protanopia. The colour
// science below is this test's own (it shares no code with the page scripts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { hslToRgb } from "../../templates/assets/atlas/colour.mjs";
import { HEAD_PALETTE, headColour } from "../../templates/assets/atlas/palette.mjs";

const MIN_DE = 15;

const toLinear = (c) => { const x = c / 255; return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
const mul = (m, v) => m.map((row) => row[0] * v[0] + row[1] * v[1] + row[2] * v[2]);

// Machado, Oliveira & Fernandes (2009), severity 1.0, applied to linear RGB
const DEUTERANOPIA = [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]];
const PROTANOPIA = [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]];

/** CIELAB (D65) of an sRGB colour [0..255]^3, optionally through a colour-vision simulation matrix. */
function lab(rgb, simulation) {
  let lin = rgb.map(toLinear);
  if (simulation) lin = mul(simulation, lin).map((x) => Math.min(1, Math.max(0, x)));
  const xyz = mul([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]], lin);
  const f = xyz.map((t, i) => t / [0.95047, 1, 1.08883][i]).map((t) => (t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116));
  return [116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])];
}

/** CIEDE2000 colour difference (Sharma, Wu & Dalal 2005), kL = kC = kH = 1. */
function deltaE2000([L1, a1, b1], [L2, a2, b2]) {
  const rad = Math.PI / 180, deg = 180 / Math.PI;
  const cBar = (Math.hypot(a1, b1) + Math.hypot(a2, b2)) / 2;
  const g = 0.5 * (1 - Math.sqrt(cBar ** 7 / (cBar ** 7 + 25 ** 7)));
  const a1p = a1 * (1 + g), a2p = a2 * (1 + g);
  const c1 = Math.hypot(a1p, b1), c2 = Math.hypot(a2p, b2);
  const hue = (b, a) => { const h = Math.atan2(b, a) * deg; return h < 0 ? h + 360 : h; };
  const h1 = c1 === 0 ? 0 : hue(b1, a1p), h2 = c2 === 0 ? 0 : hue(b2, a2p);
  let dh = 0;
  if (c1 * c2 !== 0) dh = Math.abs(h2 - h1) <= 180 ? h2 - h1 : h2 - h1 > 180 ? h2 - h1 - 360 : h2 - h1 + 360;
  const dL = L2 - L1, dC = c2 - c1, dH = 2 * Math.sqrt(c1 * c2) * Math.sin((dh / 2) * rad);
  const lBar = (L1 + L2) / 2, cpBar = (c1 + c2) / 2;
  let hBar = h1 + h2;
  if (c1 * c2 !== 0) hBar = Math.abs(h1 - h2) <= 180 ? (h1 + h2) / 2 : h1 + h2 < 360 ? (h1 + h2 + 360) / 2 : (h1 + h2 - 360) / 2;
  const t = 1 - 0.17 * Math.cos((hBar - 30) * rad) + 0.24 * Math.cos(2 * hBar * rad)
    + 0.32 * Math.cos((3 * hBar + 6) * rad) - 0.2 * Math.cos((4 * hBar - 63) * rad);
  const sl = 1 + (0.015 * (lBar - 50) ** 2) / Math.sqrt(20 + (lBar - 50) ** 2);
  const sc = 1 + 0.045 * cpBar, sh = 1 + 0.015 * cpBar * t;
  const rt = -2 * Math.sqrt(cpBar ** 7 / (cpBar ** 7 + 25 ** 7)) * Math.sin(60 * Math.exp(-(((hBar - 275) / 25) ** 2)) * rad);
  return Math.sqrt((dL / sl) ** 2 + (dC / sc) ** 2 + (dH / sh) ** 2 + rt * (dC / sc) * (dH / sh));
}

test("this test's CIEDE2000 reproduces Sharma et al.'s reference pairs", () => {
  const pairs = [  // Lab 1, Lab 2, ΔE00 (Sharma, Wu & Dalal 2005, table 1)
    [[50, 2.6772, -79.7751], [50, 0, -82.7485], 2.0425],
    [[50, 0, 0], [50, -1, 2], 2.3669],
    [[50, 2.5, 0], [73, 25, -18], 27.1492],
    [[60.2574, -34.0099, 36.2677], [60.4626, -34.1751, 39.4387], 1.2644],
  ];
  for (const [x, y, want] of pairs) assert.ok(Math.abs(deltaE2000(x, y) - want) < 1e-4, `${x} ${y}`);
});

test("lab() gives the D65 white point and sRGB red", () => {
  assert.ok(lab([255, 255, 255]).every((v, i) => Math.abs(v - [100, 0, 0][i]) < 0.01));
  assert.ok(lab([255, 0, 0]).every((v, i) => Math.abs(v - [53.24, 80.09, 67.20][i]) < 0.05));
});

/** The smallest ΔE00 between two palette colours in one view (the pair too, for the message). */
function minPair(simulation) {
  const labs = HEAD_PALETTE.map((_, h) => lab(headColour(h, HEAD_PALETTE.length), simulation));
  let best = [Infinity, -1, -1];
  for (let i = 0; i < labs.length; i++) {
    for (let j = i + 1; j < labs.length; j++) {
      const d = deltaE2000(labs[i], labs[j]);
      if (d < best[0]) best = [d, i, j];
    }
  }
  return best;
}

test("12 head colours, every pair at least 15 ΔE00 apart: normal vision, deuteranopia, protanopia", () => {
  assert.equal(HEAD_PALETTE.length, 12);
  for (const [name, simulation] of [["normal", null], ["deuteranopia", DEUTERANOPIA], ["protanopia", PROTANOPIA]]) {
    const [d, i, j] = minPair(simulation);
    assert.ok(d >= MIN_DE, `${name}: h${i} and h${j} are only ${d.toFixed(2)} apart`);
  }
});

test("the evenly spaced hues it replaces fail the same check (so the check can fail)", () => {
  const labs = Array.from({ length: 12 }, (_, h) => lab(hslToRgb((h / 12) * 360, 0.9, 0.55)));
  let d = Infinity;
  for (let i = 0; i < 12; i++) for (let j = i + 1; j < 12; j++) d = Math.min(d, deltaE2000(labs[i], labs[j]));
  assert.ok(d < MIN_DE, String(d));
});

test("models with more heads than colours get distinct evenly spaced hues", () => {
  const colours = Array.from({ length: 16 }, (_, h) => headColour(h, 16).join(","));
  assert.equal(new Set(colours).size, 16);
});
