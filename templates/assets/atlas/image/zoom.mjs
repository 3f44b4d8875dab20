/* The zoom dialog as an inspector: the full caption (model · method · layer · head), the tile scaled to
 * fit the window, the map's colour bar and cell readout (readout.mjs), that map's metrics on this image
 * where the page's data block has them, and ←/→ (heads) ↑/↓ (layers) stepping (keys.mjs ZOOM_KEYS). */

import { el } from "../dom.mjs";
import { pad } from "../layout.mjs";
import { methodUnit } from "../methods.mjs";
import { drawnSource } from "./drawn.mjs";
import { showMapRange } from "./readout.mjs";
import { stepLayer } from "./state.mjs";

const fixed3 = (v) => (v === null || v === undefined ? "–" : v.toFixed(3));

/** "head 3" / "fused" / "composite" of a variant name. */
const variantLabel = (variant) => (variant.startsWith("h") ? "head " + Number(variant.slice(1)) : variant);

/** The dialog's caption: model · method · layer (or stage) N · head / fused / composite. */
export function zoomCaption(data, model, state, variant) {
  const method = data.methods.find((m) => m.key === state.method);
  return [model.name, method ? method.label : state.method, methodUnit(data, state.method) + " " + state.layer,
    variantLabel(variant)].join(" · ");
}

/** The metric values of ``variant`` on this image from the page's data block (values follow ``names``, by
 *  default data.metrics.names: every metric of the fused map and the best head, the primary metric of the
 *  other heads), or a note saying why there are none. */
export function zoomMetrics(data, slug, state, variant) {
  const scores = data.metrics && data.metrics.models[slug];
  const entry = scores && scores.methods[state.method] && scores.methods[state.method][state.layer];
  if (!entry) return { note: "No scores of this map on this image." };
  if (variant === "fused") return { values: entry.f };
  const head = variant.startsWith("h") ? Number(variant.slice(1)) : -1;
  if (head >= 0 && entry.h === head) return { values: entry.b, note: "the best head of this layer on this image" };
  if (head < 0) return { note: "The composite has no scores of its own." };
  const primary = data.metrics.primary;
  const others = "this page keeps every score of the fused map and of the layer's best head on this image" +
    (entry.h !== undefined ? " (h" + pad(entry.h) + ")" : "") + " only";
  if (entry.p && head < entry.p.length && primary) {
    return { names: [primary], values: [entry.p[head]], note: "this head's " + primary + "; " + others };
  }
  return { note: others.charAt(0).toUpperCase() + others.slice(1) + "." };
}

/** Size the dialog's tile so that the whole dialog fits the window (the tile keeps its aspect ratio). */
export function fitZoom(zoom, aspect) {
  const stack = zoom.querySelector("[data-role=zoom-body] .atlas-stack");
  if (!stack) return;
  stack.style.width = "0px";  // the rest of the dialog at its own height
  const rest = zoom.getBoundingClientRect().height;
  const body = zoom.querySelector("[data-role=zoom-body]").getBoundingClientRect().width;
  const room = window.innerHeight - 16 - rest;  // 8 px of margin above and below
  stack.style.width = Math.max(48, Math.floor(Math.min(body, room * aspect))) + "px";
  stack.style.marginInline = "auto";
}

/** Fill the open dialog for the tile ``source`` (a .atlas-tile of the grid) and the current ``state``. */
export function fillInspector(page, state, source) {
  const { zoom, data, bySlug } = page;
  const model = bySlug.get(source.dataset.model), variant = source.dataset.variant;
  const src = drawnSource(model, state, variant);
  const patch = src.kind === "query" ? " · query patch (row " + Math.floor(src.cell / model.grid[1]) + ", col " + (src.cell % model.grid[1]) + ")" : "";
  zoom.querySelector("[data-role=zoom-caption]").textContent = zoomCaption(data, model, state, variant) + patch;
  zoom.dataset.model = model.slug;
  zoom.dataset.variant = variant;
  const box = zoom.querySelector("[data-role=zoom-metrics]");
  const found = zoomMetrics(data, model.slug, state, variant);
  const parts = [];
  if (found.values) {
    parts.push(el("dl", { class: "atlas-zoom-metrics" }, (found.names || data.metrics.names).flatMap((name, i) => [
      el("dt", { text: name }), el("dd", { "data-metric": name, text: fixed3(found.values[i]) })])));
  }
  if (found.note) parts.push(el("p", { class: "atlas-note", text: found.values ? "Scores of " + found.note + "." : found.note }));
  box.replaceChildren(...parts);
  showMapRange(page, zoom.querySelector("[data-role=zoom-readout]"), model, state, variant);
  fitZoom(zoom, data.image.width / data.image.height);
  if (!zoom.contains(document.activeElement)) zoom.querySelector("form[method=dialog] button").focus();  // the old tile went
}

/** The hash after the zoom key ``action`` in the dialog on ``state.zoom`` (null: nothing to step). Heads:
 *  the next or previous tile of the model's row (wrapping); layers: the model's own layers (wrapping). */
export function zoomStep(page, state, action, q) {
  const [slug, variant] = state.zoom.split(":");
  const model = page.bySlug.get(slug);
  if (!model) return null;
  if (action === "previous-layer" || action === "next-layer") {
    q.set("layer", String(stepLayer(state.layer, action === "next-layer" ? 1 : -1, model.layers - 1)));
    return q;
  }
  const tiles = [...page.grid.querySelectorAll(".atlas-tile[data-model='" + CSS.escape(slug) + "']")].map((t) => t.dataset.variant);
  const at = tiles.indexOf(variant);
  if (tiles.length < 2 || at < 0) return null;
  q.set("zoom", slug + ":" + tiles[(at + (action === "next-head" ? 1 : -1) + tiles.length) % tiles.length]);
  return q;
}
