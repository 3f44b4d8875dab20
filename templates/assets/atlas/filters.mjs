/* The colormap filters every heat canvas is coloured with (CSS: [data-cmap=X] .atlas-heat { filter:
 * url(#atlas-cmap-X) }): built once per page from the one shared asset colormaps.mjs, which the build
 * generates from atlas/colormaps.py (atlas.pages.writer.write_colormap_module); no page carries them inline. */

import { FILTERS } from "./colormaps.mjs";

const SVG = "http://www.w3.org/2000/svg";

/** Add the SVG filters #atlas-cmap-<name> to ``doc`` unless they are there already. */
export function installColormapFilters(doc) {
  if (doc.querySelector("svg.atlas-defs")) return;
  const svg = doc.createElementNS(SVG, "svg");
  for (const [k, v] of Object.entries({ class: "atlas-defs", "aria-hidden": "true", focusable: "false", width: "0", height: "0" })) {
    svg.setAttribute(k, v);
  }
  for (const [name, tables] of Object.entries(FILTERS)) {
    const filter = doc.createElementNS(SVG, "filter");
    filter.setAttribute("id", "atlas-cmap-" + name);
    filter.setAttribute("color-interpolation-filters", "sRGB");
    const transfer = doc.createElementNS(SVG, "feComponentTransfer");
    ["feFuncR", "feFuncG", "feFuncB"].forEach((fn, channel) => {
      const f = doc.createElementNS(SVG, fn);
      f.setAttribute("type", "table");
      f.setAttribute("tableValues", tables[channel]);
      transfer.appendChild(f);
    });
    filter.appendChild(transfer);
    svg.appendChild(filter);
  }
  doc.body.appendChild(svg);
}
