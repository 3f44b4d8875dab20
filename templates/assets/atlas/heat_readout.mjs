/* The value readout and colour bar of the pages whose tiles are plain heat canvases (the model page's layer x
 * head grid, the head viewer's cards), with the image page's semantics (image/readout.mjs): the canvas' data
 * attributes name what it draws (heat.mjs), so the readout reads that map, on the range it is drawn on: its own
 * min-max, or with data-scale="shared" the one range of its model, image and method over every layer and head, or
 * with data-scale="head" (the head viewer) the one range of its head across the images shown (head_range.mjs). */

import { groupWords } from "./head_range.mjs";
import { scaleRange } from "./heat.mjs";
import { variantColumn } from "./layout.mjs";
import { cellAt, formatValue, levelOf, rangeOf } from "./scale.mjs";
import { fetchValues } from "./values.mjs";

/** Promise of {values, lo, hi, shared} of what the heat canvas ``canvas`` draws (``shared``: drawn on one range,
 *  the shared scale's or the head scale's, heat.mjs scaleRange). */
export function drawnHeat(data, canvas) {
  const d = canvas.dataset;
  const maps = fetchValues(data, d.model, d.image, d.method, Number(d.layer));
  const shared = d.scale === "shared" || d.scale === "head";
  const range = shared ? scaleRange(data, canvas) : maps.then((m) => rangeOf([m[variantColumn(d.variant)]]));
  return Promise.all([maps, range]).then(([m, [lo, hi]]) => ({ values: m[variantColumn(d.variant)], lo: lo, hi: hi, shared: shared }));
}

/** Show the range [lo, hi] (named by ``words``) on the colour bar of the readout box ``out``. */
export function showRange(out, lo, hi, words) {
  const bar = out.querySelector(".atlas-colourbar");
  bar.querySelector("[data-role=lo]").textContent = formatValue(lo);
  bar.querySelector("[data-role=hi]").textContent = formatValue(hi);
  bar.title = words + ": " + formatValue(lo) + " to " + formatValue(hi);
  bar.dataset.lo = String(lo);
  bar.dataset.hi = String(hi);
}

/** The colour bar of ``out`` back to its placeholders: no one range is drawn until a tile is pointed at. */
export function clearRange(out) {
  const bar = out.querySelector(".atlas-colourbar");
  bar.querySelector("[data-role=lo]").textContent = "min";
  bar.querySelector("[data-role=hi]").textContent = "max";
  bar.title = "the range of the map shown";
  delete bar.dataset.lo;
  delete bar.dataset.hi;
}

/** How the readout names the range a canvas is drawn on (``d``: its data attributes scale, method, group). */
export function rangeWords(model, d) {
  if (d.scale === "head") return groupWords(d.group);
  return d.scale === "shared" ? "shared scale of " + model.name + ", " + d.method + " on this image" : "this map's own min-max";
}

/** Show the value of the cell under the pointer of the heat canvases under ``container`` in ``out`` (the
 *  _readout.html box: its colour bar and text; data-* attributes for scripts and tests). */
export function bindHeatReadout(data, container, out) {
  const text = out.querySelector("[data-role=readout-text]");
  let token = null;
  const read = (e) => {
    const stack = e.target.closest && e.target.closest(".atlas-stack");
    const canvas = stack && stack.querySelector("canvas.atlas-heat");
    if (!canvas || !container.contains(stack)) return;
    const d = canvas.dataset, model = data.models.find((m) => m.slug === d.model);
    const r = stack.getBoundingClientRect();
    const cell = cellAt(e.clientX - r.left, e.clientY - r.top, r.width, r.height, model.grid);
    const cleared = out.querySelector(".atlas-colourbar").dataset.lo === undefined;  // clearRange: read again
    const key = [d.model, d.image, d.method, d.layer, d.variant, d.scale, d.group, cell, cleared].join("/");
    if (key === token) return;
    token = key;
    drawnHeat(data, canvas).then(({ values, lo, hi, shared }) => {
      if (token !== key) return;
      const value = values[cell], level = levelOf(value, lo, hi), gw = model.grid[1];
      Object.assign(out.dataset, { model: d.model, image: d.image, variant: d.variant, layer: d.layer, cell: String(cell),
        value: String(value), level: String(level), kind: shared ? d.scale : "map" });
      const range = rangeWords(model, d);
      showRange(out, lo, hi, range);
      text.textContent = model.name + " · " + d.image + " · layer " + d.layer + " · " +
        (d.variant === "fused" ? "fused" : "head " + Number(d.variant.slice(1))) + " · cell (row " + Math.floor(cell / gw) +
        ", col " + (cell % gw) + "): value " + formatValue(value) + ", level " + (level / 255).toFixed(2) + " (" + range + ")";
    });
  };
  container.addEventListener("pointermove", read);
  container.addEventListener("pointerdown", read);  // a tap on a touch screen moves no pointer
}
