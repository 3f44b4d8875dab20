/* Colour helpers (pure): HSL to RGB and min-max scaling; the head colours are in palette.mjs. */

export function hslToRgb(h, s, l) {
  const f = (n) => {
    const k = (n + h / 30) % 12;
    const a = s * Math.min(l, 1 - l);
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

/** ``a`` scaled to [0, 1] (all zeros when it is constant). */
export function minmax(a) {
  let lo = Infinity, hi = -Infinity;
  for (const x of a) { if (x < lo) lo = x; if (x > hi) hi = x; }
  const out = new Float64Array(a.length);
  if (hi > lo) for (let i = 0; i < a.length; i++) out[i] = (a[i] - lo) / (hi - lo);
  return out;
}
