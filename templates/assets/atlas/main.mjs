/* Attention Atlas pages: gallery filters, the per-image head grid, model and head pages.
 *
 * ES modules, no framework, no inline code, no eval: the page's data comes from
 * <script type="application/json" id="atlas-data">, every DOM node is built with createElement /
 * textContent. The whole view state lives in the URL hash (permalinks; back/forward restore it).
 * Asset URLs follow atlas/layout.py (layout.mjs); thresholds follow ssl_attention/thresholds.py
 * (thresholds.mjs); the method list comes from the data block (methods.mjs).
 */

import { initBanner } from "./banner.mjs";
import { installColormapFilters } from "./filters.mjs";

// each page kind loads only its own modules (a head viewer does not wait for the image page's)
const PAGES = {
  gallery: () => import("./gallery.mjs").then((m) => m.initGallery),
  image: () => import("./image/page.mjs").then((m) => m.initImagePage),
  model: () => import("./model.mjs").then((m) => m.initModelPage),
  head: () => import("./head.mjs").then((m) => m.initHeadPage),
  "model-metrics": () => import("./choosers.mjs").then((m) => m.initChoosers),
  compare: () => import("./compare.mjs").then((m) => m.initComparePage),
};

// start loading this page's modules now, not once the theme calls init (module scripts run after parsing)
const first = document.getElementById("atlas-data");
if (first && first.closest(".atlas-root")) {
  const load = PAGES[JSON.parse(first.textContent).page];
  if (load) load().catch(() => {});  // a failure is reported when init imports it again
}

function init() {
  initBanner(document);
  const node = document.getElementById("atlas-data");
  const root = node && node.closest(".atlas-root");
  if (!root || root.dataset.atlasBound) return;
  installColormapFilters(document);
  root.dataset.atlasBound = "1";
  const data = JSON.parse(node.textContent);
  // data-atlas-ready once the page is built: pages that fetch their data first (the image index) return a promise
  const load = PAGES[data.page];
  (load ? load() : Promise.resolve(null)).then((page) => page && page(root, data))
    .finally(() => { root.dataset.atlasReady = "1"; });
}

if (window.document$ && typeof window.document$.subscribe === "function") window.document$.subscribe(init);
else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();
