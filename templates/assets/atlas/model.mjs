/* A model page: every layer (stage) x head of one image at a time, the image chosen from the image index
 * (image_index.mjs; image_chooser.mjs) and named in the URL hash (image=<slug>). */

import { el, setField } from "./dom.mjs";
import { onHashChange, readHash, writeHash } from "./hash.mjs";
import { heatCanvas, sharedRange } from "./heat.mjs";
import { initImageChooser } from "./image_chooser.mjs";
import { fetchIndex, modelImages } from "./image_index.mjs";
import { carryState } from "./links.mjs";
import { headUrl, headVariants, pad } from "./layout.mjs";
import { colourClusters } from "./model_clusters.mjs";
import { depthIn, depthName } from "./methods.mjs";
import { bindHeatReadout, clearRange, rangeWords, showRange } from "./heat_readout.mjs";
import { formView, readView, showView } from "./view.mjs";

/** Load the image index, then show the grid; the promise settles once the first grid is built. */
export function initModelPage(root, data) {
  const grid = root.querySelector("[data-role=grid]");
  return fetchIndex(data).then((index) => showModelPage(root, data, modelImages(data, index, data.model)), (err) => {
    grid.replaceChildren(el("p", { class: "atlas-note", text: err.message }));
    console.error("atlas: " + err.message);
  });
}

function showModelPage(root, data, list) {
  const form = root.querySelector("form.atlas-controls");
  const grid = root.querySelector("[data-role=grid]");
  const readout = root.querySelector("[data-role=readout]");
  const model = data.models.find((m) => m.slug === data.model);
  const images = new Map(list.map((i) => [i.slug, i]));
  let image = null;  // the image shown
  const state = (slug) => ({ image: slug, ...formView(form), fit: form.elements.fit.checked ? 1 : 0,
    ...(form.elements.scale.checked ? { scale: "shared" } : {}),
    ...(form.elements.clusters && form.elements.clusters.checked ? { clusters: 1 } : {}) });
  const showImage = initImageChooser(root.querySelector("[data-role=image-chooser]"), list, (slug) => {
    writeHash(state(slug), true);
    render();
  });
  function render() {
    const q = readHash();
    image = images.get(q.get("image")) || list[0] || null;
    const view = readView(q, data, model.methods, model.methods[0]);
    const { method, display } = view;
    showImage(image ? image.slug : "");
    showView(form, root, view);
    const fit = q.get("fit") === "1";  // the table fits the page width (no horizontal scroll)
    setField(form, "fit", fit);
    root.dataset.fit = fit ? "1" : "0";
    const scale = q.get("scale") === "shared" ? "shared" : "map";  // the image page's shared scale
    setField(form, "scale", scale === "shared");
    grid.replaceChildren();
    if (!image) return;
    const perHead = model.headMethods.includes(method);
    const unit = model.kind === "cnn" ? "stage" : "layer";
    const table = el("table", { class: "atlas-layer-grid atlas-head-table" });
    const head = el("tr", {}, [el("th", { scope: "col", class: "atlas-corner", text: unit })]);
    head.appendChild(el("th", { scope: "col", text: "fused" }));
    if (perHead) for (let h = 0; h < model.heads; h++) head.appendChild(el("th", { scope: "col", text: "h" + pad(h) }));
    table.appendChild(el("thead", {}, [head]));
    const body = el("tbody");
    for (let l = 0; l < depthIn(model, method); l++) {
      const row = el("tr", {}, [el("th", { scope: "row", text: depthName(data, model, method, l) })]);
      const variants = ["fused"].concat(perHead ? headVariants(model.heads) : []);
      variants.forEach((v, i) => {
        const box = el("span", { class: "atlas-stack" });
        box.style.aspectRatio = image.width + " / " + image.height;
        if (display === "overlay") box.appendChild(el("img", { class: "atlas-photo", src: image.thumb, alt: "", loading: "lazy" }));
        box.appendChild(heatCanvas(data, image.grid || model.grid, { model: model.slug, image: image.slug, method: method, layer: l, variant: v, scale: scale },
          model.name + " " + method + " " + unit + " " + l + " " + (i ? "head " + (i - 1) : "fused") + " on " + image.id));
        const href = i ? headUrl(data, model.slug, l, i - 1) : image.href + "#models=" + model.slug + "&method=" + method + "&layer=" + l;
        row.appendChild(el("td", {}, [el("a", { href: href, "data-travel": i ? "head" : "image" }, [box])]));
      });
      body.appendChild(row);
    }
    table.appendChild(body);
    grid.appendChild(el("div", { class: "atlas-table-scroll" }, [table]));
    showScale(image, method, scale);
    colourClusters(root, data, model, q);
    carryState(root, q);
  }
  /** The colour bar: with the shared scale the grid is drawn on one range (this image, model and method), shown at
   *  once; else each tile has its own, shown when it is pointed at. */
  let shownScale = null;
  function showScale(shown, method, scale) {
    const want = (shownScale = [shown.slug, method, scale].join("/"));
    if (scale !== "shared") { clearRange(readout); return; }
    sharedRange(data, model, shown.slug, method).then(([lo, hi]) => {
      if (shownScale === want) showRange(readout, lo, hi, rangeWords(model, { scale: scale, method: method }));
    }, () => console.error("atlas: cannot load the values of the shared scale"));
  }

  form.addEventListener("change", (e) => {
    if (e.target.closest("[data-role=image-chooser]")) return;  // the chooser calls back when an image is picked
    writeHash(state(image ? image.slug : ""), true);
    render();
  });
  form.addEventListener("submit", (e) => e.preventDefault());
  bindHeatReadout(data, grid, readout);
  onHashChange(render);
  render();
}
