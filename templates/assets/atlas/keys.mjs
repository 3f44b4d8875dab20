/* The image page's keyboard shortcuts: which key does what, and when a key press is not a shortcut. Pure. */

/** Keys mkdocs-material binds on every page (search: s, f, /; previous / next page: p, comma, n, period):
 *  the atlas leaves them to the theme. */
export const THEME_KEYS = ["s", "f", "/", "p", ",", "n", "."];

/** Key -> action name (events.mjs runs the action; the help dialog and the atlas guide list them). */
export const SHORTCUTS = {
  ArrowLeft: "previous-layer", ArrowRight: "next-layer", " ": "play", m: "method", h: "heads",
  o: "display", b: "boxes", c: "colormap", u: "smooth", t: "threshold", x: "composite", "?": "help",
  "[": "previous-image", "]": "next-image",
};

/** Keys of the zoom dialog (it takes them before the page: no page shortcut runs while it is open). */
export const ZOOM_KEYS = {
  ArrowLeft: "previous-head", ArrowRight: "next-head", ArrowUp: "next-layer", ArrowDown: "previous-layer",
};

/** The zoom dialog's action of the keydown event ``e``, or null (none while Ctrl, Alt or Meta is held). The
 *  dialog holds only buttons, which have no arrow keys of their own, so the focus does not matter. */
export function zoomKeyOf(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return null;
  return Object.hasOwn(ZOOM_KEYS, e.key) ? ZOOM_KEYS[e.key] : null;
}

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
