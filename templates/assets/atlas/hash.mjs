/* The view state lives in the URL hash (permalinks; back/forward restore it). */

export function readHash() {
  return new URLSearchParams(location.hash.replace(/^#/, ""));
}

/** The hash of ``state`` (arrays joined with commas). Pure. */
export function hashOf(state) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) params.set(k, Array.isArray(v) ? v.join(",") : String(v));
  return "#" + params.toString();
}

export function writeHash(state, push) {
  const hash = hashOf(state);
  if (hash === location.hash) return;
  if (push) history.pushState(null, "", hash);
  else history.replaceState(null, "", hash);
}

/** Re-run ``render`` whenever the hash changes (links, back/forward). */
export function onHashChange(render) {
  window.addEventListener("popstate", render);
  window.addEventListener("hashchange", render);
}

export const intOr = (s, d) => (s !== null && s !== "" && Number.isFinite(Number(s)) ? Math.round(Number(s)) : d);
export const numOr = (s, d) => (s !== null && s !== "" && Number.isFinite(Number(s)) ? Number(s) : d);
export const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));
