/* The value readout and colour bar of the image page and of its zoom dialog: hovering a tile names the
 * cell under the pointer, its raw value and the level it is drawn at (0..1 on the map's own min-max, or
 * on the shared scale of its model and method); hovering a composite names the cell's dominant head.
 * The colour bar beside it shows the colormap with the min and max of the range that map is drawn on. */

import { sharedRange } from "../heat.mjs";
import { pad, variantColumn } from "../layout.mjs";
import { cellAt, formatValue, levelOf, rangeOf } from "../scale.mjs";
import { fetchValues } from "../values.mjs";

/** Promise of [min, max] of the range the map ``variant`` of ``model`` is drawn on in ``state``. */
function drawnRange(page, model, state, variant) {
  const image = page.data.image.slug;
  if (state.scale === "shared") return sharedRange(page.data, model, image, state.method);
  return fetchValues(page.data, model.slug, image, state.method, state.layer).then((maps) => rangeOf([maps[variantColumn(variant)]]));
}

/** Show the colour bar's min / max labels of one map in readout box ``out`` (a composite has none). */
export function showMapRange(page, out, model, state, variant) {
  const bar = out.querySelector(".atlas-colourbar");
  if (variant === "composite") { bar.hidden = true; return; }
  bar.hidden = false;
  const token = {};
  out.atlasRange = token;
  drawnRange(page, model, state, variant).then(([lo, hi]) => {
    if (out.atlasRange !== token) return;
    bar.querySelector("[data-role=lo]").textContent = formatValue(lo);
    bar.querySelector("[data-role=hi]").textContent = formatValue(hi);
    bar.title = (state.scale === "shared" ? "shared scale of " + model.name + ", " + state.method : "this map's own min-max") +
      ": " + formatValue(lo) + " to " + formatValue(hi);
    bar.dataset.lo = String(lo);
    bar.dataset.hi = String(hi);
  });
}

/** The dominant head of ``cell`` in the grid's composite of ``slug`` (-1: none, null: not drawn yet). */
function dominantOf(page, slug, cell) {
  const canvas = page.grid.querySelector(".atlas-tile[data-model='" + CSS.escape(slug) + "'][data-variant=composite] canvas.atlas-composite");
  return canvas && canvas.atlasDominant ? canvas.atlasDominant[cell] : null;
}

/** Write the readout of one cell into ``out`` (its text and data-* attributes for scripts and tests). */
function showCell(page, out, model, state, variant, cell) {
  const text = out.querySelector("[data-role=readout-text]");
  const [, gw] = model.grid;
  const where = model.name + " · " + (variant.startsWith("h") ? "head " + Number(variant.slice(1)) : variant) +
    " · cell (row " + Math.floor(cell / gw) + ", col " + (cell % gw) + ")";
  const token = {};
  out.atlasCell = token;
  for (const k of ["value", "level", "head"]) delete out.dataset[k];
  out.dataset.model = model.slug;
  out.dataset.variant = variant;
  out.dataset.cell = String(cell);
  if (variant === "composite") {
    const head = dominantOf(page, model.slug, cell);
    if (head === null) return;
    out.dataset.head = String(head);
    text.textContent = where + ": " + (head < 0 ? "in no head's mask" : "dominant head h" + pad(head));
    return;
  }
  Promise.all([fetchValues(page.data, model.slug, page.data.image.slug, state.method, state.layer),
    drawnRange(page, model, state, variant)]).then(([maps, [lo, hi]]) => {
    if (out.atlasCell !== token) return;
    const value = maps[variantColumn(variant)][cell], level = levelOf(value, lo, hi);
    out.dataset.value = String(value);
    out.dataset.level = String(level);
    text.textContent = where + ": value " + formatValue(value) + ", level " + (level / 255).toFixed(2) +
      (state.scale === "shared" ? " (shared scale)" : " (this map's min-max)");
  });
}

/** Readout of the tiles under ``container`` into the readout box ``out``; ``state()``: the page's state. */
export function bindReadout(page, state, container, out) {
  let last = null;
  const read = (e) => {
    const stack = e.target.closest && e.target.closest(".atlas-stack");
    const fig = stack && stack.closest(".atlas-tile");
    if (!fig || !container.contains(fig)) return;
    const model = page.bySlug.get(fig.dataset.model), variant = fig.dataset.variant, s = state();
    const r = stack.getBoundingClientRect();
    const cell = cellAt(e.clientX - r.left, e.clientY - r.top, r.width, r.height, model.grid);
    const key = [model.slug, variant, s.method, s.layer, s.scale, cell].join("/");
    if (key === last && out.dataset.cell) return;
    last = key;
    showMapRange(page, out, model, s, variant);
    showCell(page, out, model, s, variant, cell);
  };
  container.addEventListener("pointermove", read);
  container.addEventListener("pointerdown", read);  // a tap on a touch screen moves no pointer
}
