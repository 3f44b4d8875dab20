/* The head viewer's state in the URL hash (#lLL-hHH&method=..&sort=..&order=..&page=..) and its sort
 * order, the same as atlas/head_scores.py's ``order``. Pure. */

import { clamp } from "./hash.mjs";
import { pad } from "./layout.mjs";

/** {layer, head} named by the hash's ``lLL-hHH`` key (clamped to the model), else the last layer's head 0. */
export function parseHeadKey(q, layers, heads) {
  for (const key of q.keys()) {
    const m = /^l(\d+)-h(\d+)$/.exec(key);
    if (m) return { layer: clamp(Number(m[1]), 0, layers - 1), head: clamp(Number(m[2]), 0, heads - 1) };
  }
  return { layer: layers - 1, head: 0 };
}

/** The hash of a head viewer state ``s`` = {layer, head, ...other keys}: the head's key first. */
export function headHash(s) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(s)) if (k !== "layer" && k !== "head" && v !== "" && v !== undefined) params.set(k, String(v));
  const rest = params.toString();
  return "#l" + pad(s.layer) + "-h" + pad(s.head) + (rest ? "&" + rest : "");
}

/** Indices 0..n-1 of ``values`` sorted highest first (``descending``) or lowest first; NaN last; ties by index. */
export function sortedImages(values, descending) {
  const idx = [], nan = [];
  for (let i = 0; i < values.length; i++) (Number.isFinite(values[i]) ? idx : nan).push(i);
  idx.sort((a, b) => (descending ? values[b] - values[a] : values[a] - values[b]) || a - b);
  return idx.concat(nan);
}

/** The best and the worst ``k`` images (finite values only; each list starts at its extreme). */
export function extremes(values, descending, k) {
  const finite = (list) => list.filter((i) => Number.isFinite(values[i])).slice(0, k);
  return { best: finite(sortedImages(values, descending)), worst: finite(sortedImages(values, !descending)) };
}

/** The head ``delta`` heads or layers away (``axis`` "head" or "layer"), wrapping around. */
export function stepHead(key, axis, delta, layers, heads) {
  if (axis === "head") return { layer: key.layer, head: (key.head + delta + heads) % heads };
  return { layer: (key.layer + delta + layers) % layers, head: key.head };
}
