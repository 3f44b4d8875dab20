/* The image page's input: form changes, play/pause, legend clicks, the zoom dialog and the keyboard.
 * Every input becomes a new URL hash (commit), from which the page renders. */

import { readHash } from "../hash.mjs";
import { shortcutOf, zoomKeyOf } from "../keys.mjs";
import { THRESHOLDS } from "../thresholds.mjs";
import { clickHead, cycle, formQuery, showsHeads, stepLayer } from "./state.mjs";
import { zoomStep } from "./zoom.mjs";

/** ``page``: {root, form, grid, zoom, help, data, bySlug}; ``view``: {state() -> current state, render()}. */
export function bindEvents(page, view) {
  const { form, grid, zoom, help, data, bySlug } = page;
  let timer = null;

  const fromForm = () => formQuery(new FormData(form), view.state());
  function commit(q, push) {
    history[push ? "pushState" : "replaceState"](null, "", "#" + q.toString());
    view.render();
  }
  function set(key, value) {
    const q = fromForm();
    q.set(key, value);
    commit(q, true);
  }
  function step(delta) {
    const q = readHash();
    q.set("layer", String(stepLayer(view.state().layer, delta, Number(form.elements.layer.max))));
    commit(q, timer === null);
  }
  function togglePlay(on) {
    const button = form.querySelector("[data-action=play]");
    if (on && timer === null) timer = setInterval(() => step(1), 800);
    if (!on && timer !== null) { clearInterval(timer); timer = null; }
    button.setAttribute("aria-pressed", String(timer !== null));
    button.textContent = timer !== null ? "⏸ Pause" : "▶ Play";
  }

  form.addEventListener("change", () => commit(fromForm(), true));
  form.addEventListener("input", (e) => { if (e.target.type === "range") commit(fromForm(), false); });
  form.addEventListener("submit", (e) => e.preventDefault());
  form.querySelector("[data-action=play]").addEventListener("click", () => togglePlay(timer === null));
  form.querySelector("[data-action=help]").addEventListener("click", () => help.showModal());
  let lastHead = null;  // {key, time} of the last legend click, to tell a double-click
  function legendClick(model, h) {
    const key = model.slug + ":" + h, now = performance.now();
    const double = lastHead !== null && lastHead.key === key && now - lastHead.time < 450;
    lastHead = double ? null : { key: key, time: now };
    set("off." + model.slug, clickHead(view.state().off[model.slug] || [], h, model.heads, double));
  }
  grid.addEventListener("click", (e) => {
    const open = e.target.closest("[data-zoom]");
    if (open && !zoom.open) { set("zoom", open.dataset.zoom); return; }
    const head = e.target.closest("[data-head]");
    if (head) legendClick(bySlug.get(head.closest(".atlas-row").dataset.model), Number(head.dataset.head));
  });
  zoom.addEventListener("click", (e) => {  // the enlarged composite's legend
    const head = e.target.closest("[data-head]");
    if (head && zoom.dataset.model) legendClick(bySlug.get(zoom.dataset.model), Number(head.dataset.head));
  });
  zoom.addEventListener("close", () => { if (view.state().zoom) set("zoom", ""); });
  document.addEventListener("keydown", (e) => {
    if (zoom.open) {  // the dialog's keys (arrows: heads and layers), and no page shortcut
      const step = zoomKeyOf(e);
      const q = step && zoomStep(page, view.state(), step, readHash());
      if (step) e.preventDefault();
      if (q) commit(q, true);
      return;
    }
    const action = shortcutOf(e);
    if (action === null) return;
    const state = view.state();
    const methods = [...form.querySelectorAll("[data-method]")].filter((x) => !x.hidden).map((x) => x.dataset.method);
    const actions = {
      "previous-layer": () => step(-1), "next-layer": () => step(1), play: () => togglePlay(timer === null),
      method: () => set("method", cycle(methods, state.method)),
      heads: () => showsHeads(state, bySlug) && set("view", state.view === "heads" ? "fused" : "heads"),
      display: () => set("display", state.display === "overlay" ? "heat" : "overlay"),
      boxes: () => set("boxes", state.boxes ? "0" : "1"),
      colormap: () => set("cmap", cycle(data.colormaps, state.cmap)),
      smooth: () => set("smooth", state.smooth ? "0" : "1"),
      threshold: () => set("thr", cycle(THRESHOLDS, state.thr)),
      composite: () => showsHeads(state, bySlug) && set("composite", state.composite ? "0" : "1"),
      help: () => help.showModal(),
      // the previous / next image in the gallery's order, in this view (the crumbs' links carry the state)
      "previous-image": () => { const a = page.root.querySelector(".atlas-crumbs a[rel=prev]"); if (a) a.click(); },
      "next-image": () => { const a = page.root.querySelector(".atlas-crumbs a[rel=next]"); if (a) a.click(); },
    };
    e.preventDefault();
    actions[action]();
  });
}
