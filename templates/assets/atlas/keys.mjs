/* The image page's keyboard shortcuts: which key does what, and when a key press is not a shortcut. Pure. */

/** Keys mkdocs-material binds on every page (search: s, f, /; previous / next page: p, comma, n, period):
 *  the atlas leaves them to the theme. */
export const THEME_KEYS = ["s", "f", "/", "p", ",", "n", "."];

/** Key -> action name (events.mjs runs the action; the help dialog and the atlas guide list them). */
export const SHORTCUTS = {
  ArrowLeft: "previous-layer", ArrowRight: "next-layer", " ": "play", m: "method", h: "heads",
  o: "display", b: "boxes", c: "colormap", u: "smooth", t: "threshold", x: "composite", "?": "help",
};

/** Elements whose own keys (Space, arrows, typing) must not also run a shortcut. */
const CONTROLS = ["INPUT", "SELECT", "TEXTAREA", "BUTTON"];

/** The action of the keydown event ``e``, or null: none while Ctrl, Alt or Meta is held, or while a form
 *  control, a button or editable text has the focus (Shift is part of a key such as "?"). */
export function shortcutOf(e) {
  return shortcutIn(SHORTCUTS, e);
}

/** ``shortcutOf`` for another page's key map (the head viewer's arrows). */
export function shortcutIn(keys, e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return null;
  const t = e.target;
  if (t && (CONTROLS.includes(t.tagName) || t.isContentEditable)) return null;
  return Object.hasOwn(keys, e.key) ? keys[e.key] : null;
}
