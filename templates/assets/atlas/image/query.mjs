/* The image page's query-patch explorer: pick a patch (click the image, arrow keys on the focused image,
 * Shift+click a tile; Escape or Clear removes it) and every fused and head tile of a model with query
 * rows for the layer shows where that patch attends (per head; fused = the mean over heads), the
 * patch marked. The point lives in the hash (``query=x,y``, see state.mjs). */

import { el } from "../dom.mjs";
import { readHash } from "../hash.mjs";
import { cellCentre, queryCell, queryNote, queryText, stepQuery } from "../query.mjs";
import { levelsOf } from "../scale.mjs";
import { drawnValues, drawsQuery } from "./drawn.mjs";

/** The grid the picker moves on: the first shown model with query rows, else the first shown ViT. */
function pickerGrid(state, bySlug) {
  const shown = state.models.map((s) => bySlug.get(s)).filter((m) => m.kind === "vit" && m.heads);
  const withRows = shown.find((m) => (m.queryLayers || []).length);
  return (withRows || shown[0] || { grid: [1, 1] }).grid;
}

/** A marker of ``cell`` of ``grid`` inside ``stack`` (a span positioned in percent). */
function mark(stack, grid, cell) {
  let marker = stack.querySelector(":scope > .atlas-query-mark");
  if (cell === null) { if (marker) marker.remove(); return; }
  if (!marker) marker = stack.appendChild(el("span", { class: "atlas-query-mark", "aria-hidden": "true" }));
  const [gh, gw] = grid;
  marker.style.left = (100 * (cell % gw) / gw) + "%";
  marker.style.top = (100 * Math.floor(cell / gw) / gh) + "%";
  marker.style.width = (100 / gw) + "%";
  marker.style.height = (100 / gh) + "%";
}

/** ``page``: {root, grid, data, bySlug}; ``view``: {state(), render()}. Returns {render(state)}. */
export function createQuery(page, view) {
  const { root, grid, bySlug } = page;
  const picker = root.querySelector("[data-role=query-picker]");
  const status = root.querySelector("[data-role=query-status]");
  const notes = root.querySelector("[data-role=query-notes]");
  const clear = root.querySelector("[data-action=query-clear]");

  function commit(point) {
    const q = readHash();
    if (point === null) q.delete("query"); else q.set("query", queryText(point));
    history.pushState(null, "", "#" + q.toString());
    view.render();
  }
  const pointAt = (e, box) => {
    const r = box.getBoundingClientRect();
    return { x: Math.min(0.9999, Math.max(0, (e.clientX - r.left) / r.width)),
      y: Math.min(0.9999, Math.max(0, (e.clientY - r.top) / r.height)) };
  };
  // snap a picked point to the centre of its patch in the picker's grid, so the hash names the patch
  const snap = (point) => {
    const g = pickerGrid(view.state(), bySlug);
    return cellCentre(queryCell(point, g), g);
  };

  picker.addEventListener("click", (e) => commit(snap(pointAt(e, picker))));
  picker.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const state = view.state();
    let next;
    if (e.key === "Escape") next = null;
    else if (e.key === "Enter" && state.query === null) next = stepQuery(null, "ArrowUp", pickerGrid(state, bySlug));
    else next = stepQuery(state.query, e.key, pickerGrid(state, bySlug));
    if (next === undefined || (next === null && e.key !== "Escape")) return;
    e.preventDefault();
    e.stopPropagation();  // the arrows move the query patch here, not the layer
    commit(next);
  });
  if (clear) clear.addEventListener("click", () => commit(null));
  // Shift+click on a tile picks the patch under the pointer (a plain click enlarges the tile)
  grid.addEventListener("click", (e) => {
    const box = e.shiftKey && e.target.closest(".atlas-tile .atlas-stack");
    if (!box) return;
    e.preventDefault();
    e.stopPropagation();
    commit(snap(pointAt(e, box)));
  }, true);

  /** Draw one tile's query map (or remove it): greyscale indices as the heat canvas, coloured by CSS. */
  function paintTile(fig, model, state) {
    const stack = fig.querySelector(".atlas-stack");
    const variant = fig.dataset.variant;
    const on = drawsQuery(model, state, variant);
    let canvas = stack.querySelector(":scope > canvas.atlas-query");
    if (!on) {
      if (canvas) canvas.remove();
      delete stack.dataset.query;
      mark(stack, model.grid, null);
      return;
    }
    const [gh, gw] = model.grid;
    const cell = queryCell(state.query, model.grid);
    if (!canvas) {
      canvas = el("canvas", { class: "atlas-query", width: gw, height: gh, role: "img" });
      stack.querySelector(":scope > canvas.atlas-heat").after(canvas);
    }
    const heat = stack.querySelector(":scope > canvas.atlas-heat");
    canvas.style.opacity = heat ? heat.style.opacity : "";
    const what = variant === "fused" ? "fused (mean over heads)" : "head " + Number(variant.slice(1));
    canvas.setAttribute("aria-label", model.name + ", layer " + state.layer + ", " + what + ": attention of query patch "
      + "row " + Math.floor(cell / gw) + ", column " + (cell % gw));
    stack.dataset.query = "1";
    mark(stack, model.grid, cell);
    const want = [state.layer, variant, cell].join("|");
    if (canvas.dataset.want === want) return;
    canvas.dataset.want = want;
    delete canvas.dataset.ready;
    drawnValues(page, model, state, variant).then(({ values, lo, hi }) => {
      if (canvas.dataset.want !== want) return;
      const indices = levelsOf(values, lo, hi);
      const ctx = canvas.getContext("2d");
      const img = ctx.createImageData(gw, gh);
      for (let i = 0; i < indices.length; i++) img.data.set([indices[i], indices[i], indices[i], 255], 4 * i);
      ctx.putImageData(img, 0, 0);
      canvas.dataset.cell = String(cell);
      canvas.dataset.ready = "1";
    }, (err) => console.error(String(err)));
  }

  /** Show the query of ``state`` in the picker, the status line, the notes and every tile. */
  function render(state) {
    const pGrid = pickerGrid(state, bySlug);
    const cell = state.query === null ? null : queryCell(state.query, pGrid);
    mark(picker, pGrid, cell);
    picker.dataset.query = state.query === null ? "" : queryText(state.query);
    status.textContent = cell === null
      ? "none (click the image, or focus it and press an arrow key; Shift+click picks on a tile)."
      : "row " + Math.floor(cell / pGrid[1]) + ", column " + (cell % pGrid[1]) + " of the " + pGrid[0] + " × "
        + pGrid[1] + " grid: the fused and head tiles show where it attends.";
    if (clear) clear.hidden = cell === null;
    const lines = state.query === null ? [] : state.models.map((s) => bySlug.get(s))
      .filter((m) => m.methods.includes(state.method) && state.layer < m.layers)
      .map((m) => queryNote(m, state.layer)).filter(Boolean);
    notes.textContent = lines.length ? lines.join(". ") + "." : "";
    for (const fig of grid.querySelectorAll(".atlas-tile")) paintTile(fig, bySlug.get(fig.dataset.model), state);
  }

  return { render: render };
}
