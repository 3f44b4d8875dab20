/* The image page: every shown model's maps of one image (state.mjs: the view state; controls.mjs: the
 * form; grid.mjs: the tiles and the zoom dialog; zoom.mjs: the dialog as an inspector; readout.mjs: the
 * cell readout and colour bar; panel.mjs: the metric panel; query.mjs: the query-patch explorer;
 * events.mjs: the input). */

import { onHashChange, readHash } from "../hash.mjs";
import { carryState } from "../links.mjs";
import { syncControls } from "./controls.mjs";
import { bindEvents } from "./events.mjs";
import { createFeatures } from "./features.mjs";
import { createGrid } from "./grid.mjs";
import { renderHighNorm } from "./highnorm.mjs";
import { renderMetricPanel } from "./panel.mjs";
import { bindReadout } from "./readout.mjs";
import { createQuery } from "./query.mjs";
import { parseState } from "./state.mjs";
import { fitZoom } from "./zoom.mjs";

export function initImagePage(root, data) {
  const page = {
    root: root,
    data: data,
    form: root.querySelector("form.atlas-controls"),
    grid: root.querySelector("[data-role=grid]"),
    zoom: root.querySelector("[data-role=zoom]"),
    help: root.querySelector("[data-role=help]"),
    boxesSvg: root.querySelector(".atlas-main .atlas-boxes"),
    bySlug: new Map(data.models.map((m) => [m.slug, m])),
  };
  const grid = createGrid(page);
  let state = null;

  function render() {
    const focused = grid.focusKey();
    state = parseState(readHash(), data, page.bySlug);
    syncControls(page, state);
    const hidden = grid.render(state, focused);
    renderHighNorm(page, state);
    root.querySelector("[data-role=hidden-rows]").textContent = hidden.length ? "Hidden: " + hidden.join("; ") + "." : "";
    query.render(state);
    features.render(state);
    grid.renderZoom(state);
    for (const r of readouts) r.refresh();  // the cell under the pointer, as its tile now draws it
    renderMetricPanel(root.querySelector("[data-role=metrics]"), data, state, page.bySlug);
    const travel = readHash();
    travel.set("image", data.image.slug);  // a model page opens on this image
    carryState(root, travel);
  }

  const view = { state: () => state, render: render };
  const query = createQuery(page, view);
  const features = createFeatures(page, view);  // before bindEvents: its box click comes before the picker's
  bindEvents(page, view);
  const readouts = [bindReadout(page, () => state, page.grid, root.querySelector("[data-role=readout]")),
    bindReadout(page, () => state, page.zoom.querySelector("[data-role=zoom-body]"), root.querySelector("[data-role=zoom-readout]"))];
  window.addEventListener("resize", () => { if (page.zoom.open) fitZoom(page.zoom, data.image.width / data.image.height); });
  onHashChange(render);
  render();
}
