/* The random-weights banner: its details fold away to one line (the banner itself always stays), and
 * the reader's choice is kept in localStorage for every page. On a narrow screen it starts folded. */

const KEY = "atlas-random-banner";
const NARROW = "(max-width: 44.9375em)";  // mkdocs-material's phone layout

/** Whether the banner starts folded: the stored choice, else folded on a narrow screen. Pure. */
export const startsFolded = (stored, narrow) => (stored === "folded" || stored === "open" ? stored === "folded" : narrow);

function storedChoice() {
  try { return localStorage.getItem(KEY); } catch { return null; }  // storage may be off: the default applies
}

function fold(banner, button, folded) {
  banner.classList.toggle("atlas-folded", folded);
  button.setAttribute("aria-expanded", String(!folded));
  button.textContent = folded ? "show details" : "hide details";
}

/** Bind the banner of ``doc`` (once per page). */
export function initBanner(doc) {
  const banner = doc.querySelector(".atlas-random-banner");
  const button = banner && banner.querySelector("[data-action=random-banner]");
  if (!button || banner.dataset.atlasBound) return;
  banner.dataset.atlasBound = "1";
  fold(banner, button, startsFolded(storedChoice(), window.matchMedia(NARROW).matches));
  button.addEventListener("click", () => {
    const folded = !banner.classList.contains("atlas-folded");
    fold(banner, button, folded);
    try { localStorage.setItem(KEY, folded ? "folded" : "open"); } catch { /* the choice lasts this page */ }
  });
}
