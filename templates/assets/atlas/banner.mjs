/* The random-weights banner: one line whose details (a <details> element) open on demand; the reader's
 * choice is kept in localStorage for every page. Without a stored choice it starts folded. */

const KEY = "atlas-random-banner";

/** Whether the banner starts folded: unless the reader opened it before. Pure. */
export const startsFolded = (stored) => stored !== "open";

function storedChoice() {
  try { return localStorage.getItem(KEY); } catch { return null; }  // storage may be off: the default applies
}

/** Bind the banner of ``doc`` (once per page). */
export function initBanner(doc) {
  const banner = doc.querySelector(".atlas-random-banner");
  if (!banner || banner.dataset.atlasBound) return;
  banner.dataset.atlasBound = "1";
  banner.open = !startsFolded(storedChoice());
  banner.addEventListener("toggle", () => {
    try { localStorage.setItem(KEY, banner.open ? "open" : "folded"); } catch { /* the choice lasts this page */ }
  });
}
