/* A head page: one head of one layer on every image (cards painted as they come into view). */

import { onHashChange, readHash, writeHash } from "./hash.mjs";
import { paintHeat } from "./heat.mjs";
import { carryState } from "./links.mjs";
import { formView, readView, showView } from "./view.mjs";

export function initHeadPage(root, data) {
  const form = root.querySelector("form.atlas-controls");
  const model = data.models.find((m) => m.slug === data.model);
  // one sprite sheet per image, loaded when its card comes near the viewport
  const visible = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    for (const e of entries) if (e.isIntersecting) { visible.unobserve(e.target); paintHeat(data, e.target); }
  }, { rootMargin: "300px" }) : { observe: (c) => paintHeat(data, c) };
  function render() {
    const view = readView(readHash(), data, model.headMethods, data.method);
    const method = view.method;
    showView(form, root, view);
    for (const link of root.querySelectorAll("a[data-image]")) {
      const heat = link.querySelector("canvas.atlas-heat");
      if (heat.dataset.method !== method || !heat.atlasWant) {
        heat.dataset.method = method;
        heat.setAttribute("aria-label", model.name + " " + method + " layer " + data.layer + " head " + data.head +
          " on " + link.querySelector(".atlas-card-title").textContent);
        visible.observe(heat);
      }
      link.href = link.href.replace(/method=[a-z]+/, "method=" + method);
    }
    carryState(root, readHash());
  }
  form.addEventListener("change", () => {
    writeHash(formView(form), true);
    render();
  });
  onHashChange(render);
  render();
}
