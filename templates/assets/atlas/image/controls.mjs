/* The image page's form shows the state (which controls apply, their values, the layer slider's range). */

import { setField, show } from "../dom.mjs";
import { depthName, methodUnit } from "../methods.mjs";
import { showView } from "../view.mjs";
import { depthOf, showsHeads } from "./state.mjs";

/** ``page``: {form, root, boxesSvg, data, bySlug} of the image page (see page.mjs). */
export function syncControls(page, state) {
  const { form, root, boxesSvg, data, bySlug } = page;
  const chosen = state.models.map((x) => bySlug.get(x));
  setField(form, "models", state.models);
  for (const label of form.querySelectorAll("[data-method]")) {
    show(label, chosen.some((m) => m.methods.includes(label.dataset.method)));
  }
  const depth = depthOf(chosen, state.method);
  const slider = form.elements.layer;
  slider.max = String(depth - 1);
  setField(form, "layer", state.layer);
  const unit = methodUnit(data, state.method);
  const Unit = unit.charAt(0).toUpperCase() + unit.slice(1);
  form.querySelector("[data-role=layer-name]").textContent = Unit;
  // a target (class or prompt) is named: the slider is the target selector of relevance and gradcam_vit
  const named = unit === "target" ? chosen.find((m) => m.targets && m.targets[state.layer] !== undefined) : null;
  form.querySelector("[data-role=layer-value]").textContent =
    state.layer + " / " + (depth - 1) + (named ? ": " + depthName(data, named, state.method, state.layer) : "");
  slider.setAttribute("aria-valuetext", Unit + " " + state.layer + " of " + (depth - 1));
  const hasHeads = showsHeads(state, bySlug);  // else the head choices stay as they are, hidden
  show(form.querySelector("[data-role=view]"), hasHeads);
  show(form.querySelector("[data-role=composite]"), hasHeads);
  setField(form, "view", state.view);
  showView(form, root, state);
  setField(form, "opacity", state.opacity);
  show(form.querySelector("[data-role=opacity]"), state.display === "overlay");
  setField(form, "boxes", state.boxes);
  setField(form, "smooth", state.smooth);
  setField(form, "thr", state.thr);
  setField(form, "p", state.p);
  setField(form, "mass", state.mass);
  show(form.querySelector("[data-role=p]"), state.thr === "top");
  show(form.querySelector("[data-role=mass]"), state.thr === "mass");
  setField(form, "composite", state.composite);
  setField(form, "scale", state.scale === "shared");
  root.dataset.smooth = String(state.smooth);
  setField(form, "fit", state.fit);
  root.dataset.fit = String(state.fit);
  if (boxesSvg) boxesSvg.classList.toggle("atlas-off", !state.boxes);
}
