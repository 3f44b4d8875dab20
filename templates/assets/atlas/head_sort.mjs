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

/** The best and the worst ``k`` images (finite values only; each list starts at its extreme), read off
 *  ``order`` = ``sortedImages(values, descending)`` (given when the caller has it: no second sort); the worst
 *  are the same as the first ``k`` finite ones of ``sortedImages(values, !descending)``, ties by index. */
export function extremes(values, descending, k, order = sortedImages(values, descending)) {
  const finite = order.filter((i) => Number.isFinite(values[i]));
  const worst = [];
  for (let end = finite.length; end > 0 && worst.length < k;) {
    let start = end - 1;  // the group of values tied with finite[end - 1], lowest index first
    while (start > 0 && values[finite[start - 1]] === values[finite[end - 1]]) start--;
    for (let j = start; j < end && worst.length < k; j++) worst.push(finite[j]);
    end = start;
  }
  return { best: finite.slice(0, k), worst: worst };
}

/** The head ``delta`` heads or layers away (``axis`` "head" or "layer"), wrapping around. */
export function stepHead(key, axis, delta, layers, heads) {
  if (axis === "head") return { layer: key.layer, head: (key.head + delta + heads) % heads };
  return { layer: (key.layer + delta + layers) % layers, head: key.head };
}
