/* The image page: every shown model's maps of one image (state.mjs: the view state; controls.mjs: the
 * form; grid.mjs: the tiles and the zoom dialog; panel.mjs: the metric panel; query.mjs: the query-patch
 * explorer; events.mjs: the input). */

import { onHashChange, readHash } from "../hash.mjs";
import { syncControls } from "./controls.mjs";
import { bindEvents } from "./events.mjs";
import { createGrid } from "./grid.mjs";
import { renderMetricPanel } from "./panel.mjs";
import { createQuery } from "./query.mjs";
import { parseState } from "./state.mjs";

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
    root.querySelector("[data-role=hidden-rows]").textContent = hidden.length ? "Hidden: " + hidden.join("; ") + "." : "";
    query.render(state);
    grid.renderZoom(state);
    renderMetricPanel(root.querySelector("[data-role=metrics]"), data, state, page.bySlug);
  }

  const view = { state: () => state, render: render };
  const query = createQuery(page, view);
  bindEvents(page, view);
  onHashChange(render);
  render();
}
