/* State that travels: links between atlas pages carry the view state the target page understands.
 *
 * A link opts in with data-travel="image" | "model" | "head" (the kind of page it opens). Its own hash
 * (a model page's fused tile names its models, method and layer) wins; the current page's state fills
 * in the keys the target reads (TRAVELS). Each page calls carryState(root, params) after it renders;
 * links made later (or whose href the page changes) are brought up to date before they are followed. */

/** The hash keys each kind of page reads ("off." covers the per-model off.<model> keys). */
export const TRAVELS = {
  image: ["models", "method", "layer", "view", "display", "opacity", "cmap", "boxes", "smooth", "thr", "p", "mass",
    "composite", "hn", "scale", "off.", "zoom", "fit"],
  model: ["image", "method", "display", "cmap", "fit"],
  head: ["method", "display", "cmap"],
};

const travels = (key, target) => (TRAVELS[target] || []).some((k) => (k.endsWith(".") ? key.startsWith(k) : key === k));

/** ``href`` (its own hash kept, first) with the keys of ``params`` (URLSearchParams) that a ``target``
 *  page reads and the link does not set itself. Pure. */
export function travelHref(href, params, target) {
  const cut = href.indexOf("#");
  const path = cut < 0 ? href : href.slice(0, cut);
  const out = new URLSearchParams(cut < 0 ? "" : href.slice(cut + 1));
  const own = new Set(out.keys());
  for (const [k, v] of params) if (!own.has(k) && travels(k, target)) out.set(k, v);
  // a key written bare in the link (a head viewer's "l07-h03") stays bare
  const bare = new Set((cut < 0 ? "" : href.slice(cut + 1)).split("&").filter((p) => p && !p.includes("=")));
  const hash = [...out].map(([k, v]) => (bare.has(k) && v === "" ? encodeURIComponent(k)
    : new URLSearchParams([[k, v]]).toString())).join("&");
  return hash ? path + "#" + hash : path;
}

let current = null;

/** Rewrite ``link`` from the current state. An href the page set (not the one written here) is its base. */
function rewrite(link) {
  if (!current) return;
  const now = link.getAttribute("href") || "";
  if (link.dataset.travelled !== now) link.dataset.base = now;
  const next = travelHref(link.dataset.base, current, link.dataset.travel);
  link.setAttribute("href", next);
  link.dataset.travelled = next;
}

/** Make ``params`` (URLSearchParams of the shown state) the state that travels, and rewrite the links
 *  under ``root`` now. */
export function carryState(root, params) {
  current = new URLSearchParams(params);
  for (const link of root.querySelectorAll("a[data-travel]")) rewrite(link);
}

function refresh(e) {
  const link = e.target instanceof Element && e.target.closest("a[data-travel]");
  if (link) rewrite(link);
}

if (typeof document !== "undefined") {
  for (const type of ["pointerdown", "focusin", "click"]) document.addEventListener(type, refresh, true);
}
