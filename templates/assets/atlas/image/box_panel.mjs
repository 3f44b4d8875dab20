/* The image page's per-box metrics (issue 27): a box chooser before the metric panel, and for the chosen box
 * a table per shown model of that box's metrics (``box_*``) of the fused map of the selected method and layer,
 * next to the same metric against the union of the boxes (data: panels.json's ``boxes``, see
 * atlas/metrics/breakdowns.py box_panel). */

import { el } from "../dom.mjs";

const fixed3 = (v) => (v === null || v === undefined ? "–" : v.toFixed(3));
let chosen = -1;  // the chosen box (index into the scored boxes), -1: none
let redraw = () => {};  // the panel's latest render (with the page's current state)

function boxLabels(metrics) {
  const withBoxes = Object.values(metrics.models).find((m) => m && m.boxes);
  return withBoxes ? withBoxes.boxes.labels : [];
}

/** The box chooser, put once before ``panel``; ``rerender`` redraws the panel when the choice changes. */
export function ensureBoxChooser(panel, metrics, rerender) {
  redraw = rerender;
  const labels = boxLabels(metrics);
  if (!labels.length || panel.parentNode.querySelector("[data-role=box-choice]")) return;
  const options = [el("option", { value: "-1", text: "none" })]
    .concat(labels.map((label, i) => el("option", { value: String(i), text: "box " + (i + 1) + ": " + label })));
  const select = el("select", { "data-role": "box-choice" }, options);
  select.addEventListener("change", () => { chosen = Number(select.value); redraw(); });
  panel.before(el("p", { class: "atlas-box-choice" }, [el("label", {}, [
    document.createTextNode("Metrics of one box: "), select])]));
}

/** The chosen box's table for one model (null when no box is chosen or the model has no values for it). */
export function boxTable(scores, metrics, state, caption, slug) {
  const boxes = scores && scores.boxes;
  if (chosen < 0 || !boxes) return null;
  const layers = boxes.methods[state.method];
  const values = layers && layers[state.layer] && layers[state.layer][chosen];
  const entry = scores.methods[state.method] && scores.methods[state.method][state.layer];
  if (!values || !entry) return null;
  const rows = boxes.names.map((name, i) => {
    const union = name.replace(/^box_/, ""), at = metrics.names.indexOf(union);
    return el("tr", { "data-metric": name }, [el("th", { scope: "row", text: name }),
      el("td", { "data-col": "box", text: fixed3(values[i]) }),
      el("td", { "data-col": "union", "data-metric": union, text: at < 0 ? "–" : fixed3(entry.f[at]) })]);
  });
  const head = el("tr", {}, [el("th", { scope: "col", text: "metric" }), el("th", { scope: "col", text: "this box" }),
    el("th", { scope: "col", text: "union of the boxes" })]);
  const label = boxes.labels[chosen];
  return el("div", { class: "atlas-scroll" }, [el("table", { class: "atlas-table atlas-box-panel", "data-model": slug,
    "data-box": String(chosen) }, [el("caption", { text: caption + " · fused map · box " + (chosen + 1) + ": " + label }),
    el("thead", {}, [head]), el("tbody", {}, rows)])]);
}
