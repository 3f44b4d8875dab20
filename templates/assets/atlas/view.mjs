/* The view controls the image, model and head pages share: method, display (overlay / heat) and colormap. */

import { setField } from "./dom.mjs";

/** {method, display, cmap} of the hash ``q``: ``method`` one of ``methods`` (else ``fallback``), the
 *  colormap one of data.colormaps (else the build's default). Pure. */
export function readView(q, data, methods, fallback) {
  return {
    method: methods.includes(q.get("method")) ? q.get("method") : fallback,
    display: q.get("display") === "heat" ? "heat" : "overlay",
    cmap: data.colormaps.includes(q.get("cmap")) ? q.get("cmap") : data.colormap,
  };
}

/** Show ``view`` in the form's method/display/cmap fields and on the page root (CSS reads data-cmap). */
export function showView(form, root, view) {
  setField(form, "method", view.method);
  setField(form, "display", view.display);
  setField(form, "cmap", view.cmap);
  root.dataset.cmap = view.cmap;
  root.dataset.display = view.display;
}

/** The view the form shows, as hash state (the model page adds its image). */
export function formView(form) {
  const fd = new FormData(form);
  return { method: fd.get("method"), display: fd.get("display"), cmap: fd.get("cmap") };
}
