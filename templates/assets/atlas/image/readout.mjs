/* The value readout and colour bar of the image page and of its zoom dialog: hovering a tile names the
 * cell under the pointer, its raw value and the level it is drawn at (0..1 on the range the tile is drawn
 * on); hovering a composite names the cell's dominant head. The colour bar beside it shows the colormap
 * with the min and max of that range. Both read what the tile draws from drawn.mjs (the state's map, a
 * query-patch row, a companion map; own or shared scale), and follow every state change (refresh). */

import { pad } from "../layout.mjs";
import { cellAt, formatValue, levelOf } from "../scale.mjs";
import { drawnValues, rangeWords } from "./drawn.mjs";

/** Show the colour bar's min / max labels of one map in readout box ``out`` (a composite has none). */
export function showMapRange(page, out, model, state, variant) {
  const bar = out.querySelector(".atlas-colourbar");
  if (variant === "composite") { bar.hidden = true; return; }
  bar.hidden = false;
  const token = {};
  out.atlasRange = token;
  drawnValues(page, model, state, variant).then(({ src, lo, hi }) => {
    if (out.atlasRange !== token) return;
    bar.querySelector("[data-role=lo]").textContent = formatValue(lo);
    bar.querySelector("[data-role=hi]").textContent = formatValue(hi);
    bar.title = rangeWords(model, src) + ": " + formatValue(lo) + " to " + formatValue(hi);
    bar.dataset.lo = String(lo);
    bar.dataset.hi = String(hi);
    bar.dataset.kind = src.scale;
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
  for (const k of ["value", "level", "head", "kind"]) delete out.dataset[k];
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
  drawnValues(page, model, state, variant).then(({ src, values, lo, hi }) => {
    if (out.atlasCell !== token) return;
    const value = values[cell], level = levelOf(value, lo, hi);
    out.dataset.value = String(value);
    out.dataset.level = String(level);
    out.dataset.kind = src.scale;
    const what = src.kind === "query" ? ", query row of patch (row " + Math.floor(src.cell / gw) + ", col " + (src.cell % gw) + ")"
      : src.method !== state.method ? ", " + src.method : "";
    text.textContent = where + what + ": value " + formatValue(value) + ", level " + (level / 255).toFixed(2) +
      " (" + rangeWords(model, src) + ")";
  });
}

/** Readout of the tiles under ``container`` into the readout box ``out``; ``state()``: the page's state.
 *  Returns {refresh()}: read the last cell again for the current state (after a method, layer, scale or
 *  query change the readout names what the tile now draws, without waiting for the pointer to move). */
export function bindReadout(page, state, container, out) {
  let last = null, at = null;  // the key shown; {slug, variant, cell} of the last cell read
  const show = (slug, variant, cell, force) => {
    const model = page.bySlug.get(slug), s = state();
    const key = JSON.stringify([slug, variant, s.method, s.layer, s.scale, s.query, cell]);
    if (!force && key === last && out.dataset.cell) return;
    last = key;
    showMapRange(page, out, model, s, variant);
    showCell(page, out, model, s, variant, cell);
  };
  const read = (e) => {
    const stack = e.target.closest && e.target.closest(".atlas-stack");
    const fig = stack && stack.closest(".atlas-tile");
    if (!fig || !container.contains(fig)) return;
    const model = page.bySlug.get(fig.dataset.model);
    const r = stack.getBoundingClientRect();
    at = { slug: model.slug, variant: fig.dataset.variant,
      cell: cellAt(e.clientX - r.left, e.clientY - r.top, r.width, r.height, model.grid) };
    show(at.slug, at.variant, at.cell, false);
  };
  container.addEventListener("pointermove", read);
  container.addEventListener("pointerdown", read);  // a tap on a touch screen moves no pointer
  function refresh() {
    if (at === null || !state()) return;
    const still = container.querySelector(".atlas-tile[data-model='" + CSS.escape(at.slug) + "'][data-variant='" + CSS.escape(at.variant) + "']");
    if (still) { show(at.slug, at.variant, at.cell, false); return; }
    at = null;  // that tile is gone (another method, model or view): the readout says so
    last = null;
    out.atlasCell = {};
    out.atlasRange = {};
    for (const k of ["value", "level", "head", "kind", "cell", "model", "variant"]) delete out.dataset[k];
    out.querySelector("[data-role=readout-text]").textContent = "Point at a tile for its cell's value.";
  }
  return { refresh: refresh };
}
