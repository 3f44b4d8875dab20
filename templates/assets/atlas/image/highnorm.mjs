/* The image page's high-norm overlay: with "high-norm tokens" ticked, every tile of a model with token
 * norms marks that model's high-norm patch tokens of the shown layer. The cells come from the page's data
 * block (data.highNorm[model][layer], row-major, computed in Python by ssl_attention.aggregate.anatomy). */

import { el, setField, show } from "../dom.mjs";

const SCALE = 8;  // canvas pixels per patch cell: room for an outline

/** Row-major cells of model ``slug``'s high-norm tokens in ``layer``; null if it has no token norms. */
export function highNormCells(data, slug, layer) {
  const layers = (data.highNorm || {})[slug];
  return layers ? layers[layer] || [] : null;
}

function marks(model, cells) {
  const [gh, gw] = model.grid;
  const canvas = el("canvas", { class: "atlas-highnorm", width: gw * SCALE, height: gh * SCALE,
    "aria-hidden": "true", "data-cells": cells.join(",") });
  const ctx = canvas.getContext("2d");
  ctx.lineWidth = 2;
  for (const c of cells) {
    const x = (c % gw) * SCALE, y = Math.floor(c / gw) * SCALE;
    ctx.strokeStyle = "#000";
    ctx.strokeRect(x + 1, y + 1, SCALE - 2, SCALE - 2);
    ctx.strokeStyle = "#ff00ff";
    ctx.strokeRect(x + 2, y + 2, SCALE - 4, SCALE - 4);
  }
  canvas.dataset.ready = "1";
  return canvas;
}

/** The checkbox and the marks after a render of the grid (``page`` as in page.mjs). */
export function renderHighNorm(page, state) {
  const { form, grid, root, data, bySlug } = page;
  const models = state.models.filter((slug) => highNormCells(data, slug, 0) !== null);
  setField(form, "hn", state.hn);
  show(form.querySelector("[data-role=high-norm]"), models.length > 0);
  for (const old of grid.querySelectorAll("canvas.atlas-highnorm")) old.remove();
  const note = root.querySelector("[data-role=high-norm-note]");
  const counts = [];
  if (state.hn) {
    for (const fig of grid.querySelectorAll(".atlas-tile")) {
      const model = bySlug.get(fig.dataset.model);
      const cells = highNormCells(data, model.slug, state.layer);
      if (cells !== null) fig.querySelector(".atlas-stack").appendChild(marks(model, cells));
    }
    for (const slug of models) {
      const n = highNormCells(data, slug, state.layer).length;
      counts.push(bySlug.get(slug).name + ": " + n);
    }
  }
  if (note) note.textContent = counts.length ? "High-norm tokens marked in layer " + state.layer + ": " + counts.join(", ") + "." : "";
}
