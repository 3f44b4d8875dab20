/* The image page's view state: read from the URL hash, written from the form, and what it shows. Pure. */

import { headVariants } from "../layout.mjs";
import { depthIn, methodKeys } from "../methods.mjs";
import { parseQuery, queryText } from "../query.mjs";
import { THRESHOLDS } from "../thresholds.mjs";
import { clamp, intOr, numOr } from "../hash.mjs";
import { readView } from "../view.mjs";

/** Layers of the deepest of ``chosen`` models that have ``method`` (at least 1). */
export const depthOf = (chosen, method) =>
  Math.max(1, ...chosen.filter((x) => x.methods.includes(method)).map((x) => depthIn(x, method)));

/** Whether any of ``chosen`` has per-head maps of ``method``. */
export const hasHeadsOf = (chosen, method) => chosen.some((x) => x.headMethods.includes(method));

/** Head indices of a comma list ("0,3"); anything else is dropped. */
const headList = (text) => (text || "").split(",").filter((x) => /^\d+$/.test(x)).map(Number);

/** The state of the hash ``q`` (URLSearchParams): every value checked and clamped, defaults filled in. */
export function parseState(q, data, bySlug) {
  const models = data.models;
  const s = {};
  const picked = (q.get("models") || "").split(",").filter((x) => bySlug.has(x));
  s.models = q.has("models") ? picked : models.map((m) => m.slug);
  const chosen = s.models.map((x) => bySlug.get(x));
  const available = methodKeys(data).filter((m) => chosen.some((x) => x.methods.includes(m)));
  const view = readView(q, data, available, available[0] || "");
  s.method = view.method;
  // the layer asked for (kept across a method with fewer layers or stages) and the one shown (clamped)
  const depth = depthOf(chosen, s.method);
  const deepest = Math.max(1, ...models.flatMap((m) => m.methods.map((x) => depthIn(m, x))));
  s.wantLayer = clamp(intOr(q.get("layer"), depth - 1), 0, deepest - 1);
  s.layer = Math.min(s.wantLayer, depth - 1);
  // the head choices are kept while a method without per-head maps is shown (plan() shows its fused map)
  s.view = q.get("view") === "fused" ? "fused" : "heads";
  s.display = view.display;
  s.opacity = clamp(intOr(q.get("opacity"), 60), 0, 100);
  s.cmap = view.cmap;
  s.boxes = q.get("boxes") === "0" ? 0 : 1;
  s.smooth = q.get("smooth") === "1" ? 1 : 0;
  s.thr = THRESHOLDS.includes(q.get("thr")) ? q.get("thr") : "none";
  s.p = clamp(numOr(q.get("p"), 20), 1, 100);
  s.mass = clamp(numOr(q.get("mass"), 0.6), 0.05, 1);
  s.composite = q.get("composite") === "1" ? 1 : 0;
  s.hn = q.get("hn") === "1" ? 1 : 0;  // mark the high-norm tokens (highnorm.mjs)
  s.scale = q.get("scale") === "shared" ? "shared" : "map";  // shared: one range per model and method
  // heads hidden in the composite, per model: off.<model>=0,3 (an older permalink's off=0,3 hid them in every model)
  s.off = {};
  for (const m of models) {
    const hidden = headList(q.has("off." + m.slug) ? q.get("off." + m.slug) : q.get("off")).filter((h) => h < m.heads);
    if (hidden.length) s.off[m.slug] = hidden;
  }
  s.zoom = q.get("zoom") || "";
  s.fit = q.get("fit") === "1" ? 1 : 0;  // the model × head table fits the page width (no horizontal scroll)
  s.query = parseQuery(q.get("query"));  // the query patch: a point {x, y} in the image, or null
  s.feat = ["pca", "box", "patch"].includes(q.get("feat")) ? q.get("feat") : "";  // the feature view (features.mjs)
  s.fbox = Math.max(0, intOr(q.get("fbox"), 0));  // the box of the box-similarity view
  return s;
}

/** The hash of the form's fields (FormData ``fd``) plus what only the state holds (hidden heads, zoom,
 *  query patch). */
export function formQuery(fd, state) {
  const q = new URLSearchParams();
  q.set("models", fd.getAll("models").join(","));
  for (const k of ["method", "layer", "view", "display", "opacity", "cmap", "thr", "p", "mass", "feat", "fbox"]) {
    if (fd.get(k) !== null) q.set(k, fd.get(k));
  }
  // an untouched slider shows the clamped layer: keep the layer asked for
  if (fd.get("layer") === String(state.layer)) q.set("layer", String(state.wantLayer));
  q.set("boxes", fd.get("boxes") ? "1" : "0");
  q.set("smooth", fd.get("smooth") ? "1" : "0");
  q.set("composite", fd.get("composite") ? "1" : "0");
  q.set("fit", fd.get("fit") ? "1" : "0");
  q.set("hn", fd.get("hn") ? "1" : "0");
  q.set("scale", fd.get("scale") ? "shared" : "map");
  for (const [slug, hidden] of Object.entries(state.off)) q.set("off." + slug, hidden.join(","));
  q.set("zoom", state.zoom);
  if (state.query) q.set("query", queryText(state.query));
  return q;
}

/** The rows the state shows ({model, perHead, variants}) and why other models are hidden. */
export function plan(state, bySlug) {
  const rows = [], hidden = [];
  for (const slug of state.models) {
    const model = bySlug.get(slug);
    if (!model.methods.includes(state.method)) { hidden.push(model.name + " has no " + state.method + " map"); continue; }
    const depth = depthIn(model, state.method);
    if (state.layer >= depth) { hidden.push(model.name + " has only " + depth + " " + (depth === model.layers ? "layers" : "targets")); continue; }
    const perHead = model.headMethods.includes(state.method);
    let variants = ["fused"];
    if (perHead && state.composite) variants.push("composite");  // beside the per-head tiles
    if (perHead && state.view === "heads") variants = variants.concat(model.heads ? headVariants(model.heads) : []);
    // beside a per-target map (relevance): raw attention and rollout of the model's last layer
    for (const other of (model.companions && model.companions[state.method]) || []) variants.push("with:" + other);
    rows.push({ model: model, perHead: perHead, variants: variants });
  }
  return { rows: rows, hidden: hidden };
}

/** Everything that changes the grid's DOM; a state change that keeps it only updates the tiles.
 *  Threshold veils and composites are drawn from one layer's raw values: they depend on the layer; a veil
 *  follows what its tile draws (drawn.mjs): the scale-free values, or the query patch's row. */
export function gridKey(state, rows) {
  const composite = rows.some((r) => r.variants.includes("composite"));
  const perLayer = state.thr !== "none" || composite;
  return JSON.stringify([rows.map((r) => [r.model.slug, r.variants]), state.display, state.boxes, state.thr,
    state.p, state.mass, composite ? state.off : null, perLayer ? [state.method, state.layer] : null,
    state.thr !== "none" ? state.query : null]);
}

/** Whether the state's models have per-head maps of its method (else the head choices wait, unchanged). */
export const showsHeads = (state, bySlug) => hasHeadsOf(state.models.map((x) => bySlug.get(x)), state.method);

/** The layer ``delta`` steps from ``layer`` in 0..max, wrapping around. */
export const stepLayer = (layer, delta, max) => (layer + delta + max + 1) % (max + 1);

/** The composite's hidden heads (comma list) after a click on head ``h`` of ``heads``: a single click
 *  toggles it; a double click solos it, or shows all heads if it was solo already. */
export function clickHead(hidden, h, heads, double) {
  const off = new Set(hidden);
  if (off.has(h)) off.delete(h); else off.add(h);  // the 2nd click of a double-click undoes the 1st
  if (double) {
    const solo = off.size === heads - 1 && !off.has(h);
    return solo ? "" : Array.from({ length: heads }, (_, i) => i).filter((i) => i !== h).join(",");
  }
  return [...off].sort((a, b) => a - b).join(",");
}

/** The next entry of ``list`` after ``current`` (wrapping; the first if ``current`` is not in it). */
export const cycle = (list, current) => list[(list.indexOf(current) + 1) % list.length];
