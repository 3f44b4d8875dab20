/* The image page's metric panel: one table per shown model. */

import { el } from "../dom.mjs";
import { headUrl, pad } from "../layout.mjs";
import { depthIn, methodUnit } from "../methods.mjs";
import { boxTable, ensureBoxChooser } from "./box_panel.mjs";

const fixed3 = (v) => (v === null || v === undefined ? "–" : v.toFixed(3));

/** Every metric of the fused map, the layer's best head on this image and the baselines, for the
 *  selected method and layer (values from data.metrics, see atlas/metrics_data.py). */
export function renderMetricPanel(panel, data, state, bySlug) {
  if (!panel || !data.metrics) return;
  const metrics = data.metrics;
  panel.replaceChildren();
  ensureBoxChooser(panel, metrics, () => renderMetricPanel(panel, data, state, bySlug));
  for (const slug of state.models) {
    const model = bySlug.get(slug), scores = metrics.models[slug];
    if (!model.methods.includes(state.method) || state.layer >= depthIn(model, state.method)) continue;  // not in the grid either
    const caption = model.name + " · " + state.method + " · " + methodUnit(data, state.method) + " " + state.layer;
    const entry = scores && scores.methods[state.method] && scores.methods[state.method][state.layer];
    if (!entry) {
      panel.appendChild(el("p", { class: "atlas-note", "data-model": slug, text: caption + ": no scores" }));
      continue;
    }
    const cols = [{ key: "fused", label: el("span", { text: "fused" }), values: entry.f }];
    if (entry.b) {
      cols.push({ key: "best", values: entry.b, label: el("a", { href: headUrl(data, slug, state.layer, entry.h) +
        "&method=" + state.method, "data-travel": "head", text: "best head h" + pad(entry.h) }) });
    }
    for (const [key, name] of Object.entries(metrics.baselines)) {
      if (scores.baselines[key]) cols.push({ key: key, label: el("span", { text: name }), values: scores.baselines[key] });
    }
    const head = el("tr", {}, [el("th", { scope: "col", text: "metric" })]
      .concat(cols.map((c) => el("th", { scope: "col", "data-col": c.key }, [c.label]))));
    const rows = metrics.names.map((name, i) => el("tr", { "data-metric": name }, [el("th", { scope: "row", text: name })]
      .concat(cols.map((c) => el("td", { "data-col": c.key, text: fixed3(c.values[i]) })))));
    panel.appendChild(el("div", { class: "atlas-scroll" }, [el("table", { class: "atlas-table atlas-metric-panel",
      "data-model": slug }, [el("caption", { text: caption }), el("thead", {}, [head]), el("tbody", {}, rows)])]));
    const perBox = boxTable(scores, metrics, state, caption, slug);
    if (perBox) panel.appendChild(perBox);
  }
}
