/* Threshold rules of the image page: a bit-exact port of ssl_attention/thresholds.py (pure). */

/** Top-p % rule: keep the k = max(1, floor(n*p/100 + 0.5)) largest cells; ties: lower index. */
export function topPercentMask(values, p) {
  const n = values.length;
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = Number.isNaN(values[i]) ? -Infinity : values[i];
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => (v[a] > v[b] ? -1 : v[a] < v[b] ? 1 : a - b));
  const k = Math.max(1, Math.floor(n * p / 100 + 0.5));
  const keep = new Uint8Array(n);
  for (let j = 0; j < Math.min(k, n); j++) keep[order[j]] = 1;
  return keep;
}

/** Mass rule (DINO): smallest set of cells holding `mass` of the non-negative weight. */
export function massMask(values, mass) {
  const n = values.length;
  const w = new Float64Array(n);
  let anyPosInf = false;
  for (let i = 0; i < n; i++) if (values[i] === Infinity) anyPosInf = true;
  for (let i = 0; i < n; i++) {
    const x = values[i];
    w[i] = anyPosInf ? (x === Infinity ? 1 : 0) : (x > 0 ? x : 0);
  }
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => (w[a] < w[b] ? -1 : w[a] > w[b] ? 1 : b - a));
  const c = new Float64Array(n);
  let run = 0;
  for (let j = 0; j < n; j++) { run += w[order[j]]; c[j] = run; }
  const keep = new Uint8Array(n);
  const total = n ? c[n - 1] : 0;
  if (total > 0) for (let j = 0; j < n; j++) if (c[j] / total > 1 - mass) keep[order[j]] = 1;
  return keep;
}

/** The threshold rules, in the order the `t` key cycles through them. */
export const THRESHOLDS = ["none", "top", "mass"];
