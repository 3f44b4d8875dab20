/* The model page's "colour heads by cluster": every head tile of the layer x head grid is outlined in the
 * colour of the head's cluster on its statistics (data.clusters, layer-major: layer * heads + head, from
 * atlas/anatomy_data.py; colours data.clusterColours, as on the anatomy page). State: clusters=1. */

import { setField, show } from "./dom.mjs";

/** The cluster of head ``head`` of layer ``layer`` (null without clusters). */
export function clusterOf(data, model, layer, head) {
  return data.clusters ? data.clusters[layer * model.heads + head] : null;
}

/** Outline the head tiles of the rendered grid when the hash ``q`` asks for clusters=1. */
export function colourClusters(root, data, model, q) {
  const on = q.get("clusters") === "1" && !!data.clusters;
  const form = root.querySelector("form.atlas-controls");
  if (form.elements.clusters) setField(form, "clusters", on);
  show(root.querySelector("[data-role=cluster-legend]"), on);
  const table = root.querySelector("table.atlas-layer-grid");
  if (!on || !table) return;
  table.querySelectorAll("tbody tr").forEach((tr, layer) => {
    tr.querySelectorAll("td").forEach((td, column) => {
      if (column === 0) return;  // the fused map
      const cluster = clusterOf(data, model, layer, column - 1);
      td.dataset.cluster = String(cluster);
      td.style.outline = "3px solid " + data.clusterColours[cluster % data.clusterColours.length];
      td.style.outlineOffset = "-3px";
    });
  });
}
