/* The gallery: filter the image cards by text, model, label and tag. */

import { setField } from "./dom.mjs";
import { onHashChange, readHash, writeHash } from "./hash.mjs";

export function initGallery(root, data) {
  const form = root.querySelector("form.atlas-controls");
  const cards = [...root.querySelectorAll(".atlas-card")];
  const count = root.querySelector(".atlas-count");
  function render() {
    const q = readHash();
    for (const name of ["q", "model", "label", "tag"]) if (form.elements[name]) setField(form, name, q.get(name) || "");
    const text = (q.get("q") || "").toLowerCase(), model = q.get("model") || "", label = q.get("label") || "";
    const tag = form.elements.tag ? q.get("tag") || "" : "";
    const everyModel = data.models.length;
    let shown = 0;
    for (const card of cards) {
      const models = card.dataset.models.split(" ").filter(Boolean);
      const ok = card.dataset.name.includes(text) &&
        (!model || (model === "*" ? models.length === everyModel : models.includes(model))) &&
        (!label || JSON.parse(card.dataset.labels).includes(label)) &&
        (!tag || JSON.parse(card.dataset.tags).includes(tag));
      card.hidden = !ok;
      shown += ok;
    }
    count.textContent = shown + " of " + cards.length + " images";
  }
  const update = (push) => writeHash({ q: form.elements.q.value, model: form.elements.model.value,
    label: form.elements.label.value, tag: form.elements.tag ? form.elements.tag.value : "" }, push);
  form.addEventListener("input", () => { update(false); render(); });
  form.addEventListener("change", () => { update(true); render(); });
  form.addEventListener("submit", (e) => e.preventDefault());
  onHashChange(render);
  render();
}
