/* The image page's feature views (features.mjs decodes the files): for every shown ViT, at the shown
 * layer, one of
 *   pca    the first three principal components of the patch tokens as RGB (fitted per image),
 *   box    the cosine similarity of every patch to the chosen box's mean token (box_similarity),
 *   patch  the cosine similarity of every patch to the query patch, from the exported int8 features
 *          (the query-patch explorer's picking: click, arrow keys, Escape, permalink).
 * The state lives in the hash (feat=pca|box|patch, fbox=N; see state.mjs). In the box view a click on a
 * box of the photo chooses it (the smallest box under the pointer). */

import { el } from "../dom.mjs";
import { readHash } from "../hash.mjs";
import { boxAt, fetchFeatures, pcaPixels } from "../features.mjs";
import { featuresUrl } from "../layout.mjs";
import { queryCell, toIndices } from "../query.mjs";

const WHAT = {
  pca: "PCA colours: components 1-3 as red, green, blue, each min-max scaled; fitted per image, so colours do not compare across images",
  box: "box similarity: cosine of every patch to the mean token of the chosen box's cells",
  patch: "patch similarity: cosine of every patch to the query patch (decoded int8 features)",
};

/** Why ``model`` draws nothing for ``state`` (empty when it draws). */
export function featureNote(model, state, layer, boxes) {
  if (model.kind !== "vit" || !model.pca) return model.name + ": no features (a CNN, or maps of an older build)";
  if (state.feat === "box" && !boxes) return model.name + ": this image has no boxes";
  if (state.feat === "patch") {
    const layers = model.featureLayers || [];
    if (!layers.length) return model.name + ": no patch features exported; rebuild with --feature-layers";
    if (!layers.includes(layer)) return model.name + ": patch features exported for layers " + layers.join(", ") + " only";
    if (state.query === null) return model.name + ": pick a query patch (click the image, or focus it and press an arrow key)";
  }
  return "";
}

/** ``page``: {root, form, data, bySlug}; ``view``: {state(), render()}. Returns {render(state)}. */
export function createFeatures(page, view) {
  const { root, form, data, bySlug } = page;
  const section = root.querySelector("[data-role=features-view]");
  const rows = root.querySelector("[data-role=features-rows]");
  const note = root.querySelector("[data-role=features-note]");
  const picker = root.querySelector("[data-role=query-picker]");
  const rects = () => [...picker.querySelectorAll(".atlas-boxes rect")].map((r) =>
    ["x", "y", "width", "height"].map((a) => Number(r.getAttribute(a))));

  function chooseBox(index) {
    const q = readHash();
    q.set("feat", "box");
    q.set("fbox", String(index));
    history.pushState(null, "", "#" + q.toString());
    view.render();
  }
  // in the box view a click on a box of the photo chooses it (before the query picker takes the click)
  picker.addEventListener("click", (e) => {
    if (view.state().feat !== "box") return;
    const r = picker.getBoundingClientRect();
    const point = { x: (e.clientX - r.left) / r.width, y: (e.clientY - r.top) / r.height };
    const index = boxAt(point, rects(), data.image.width, data.image.height);
    if (index < 0) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    chooseBox(index);
  }, true);

  function paint(canvas, model, state, layer) {
    const want = [model.slug, state.feat, layer, state.fbox, state.query ? queryCell(state.query, model.grid) : -1].join("|");
    if (canvas.dataset.want === want) return;
    canvas.dataset.want = want;
    delete canvas.dataset.ready;
    fetchFeatures(featuresUrl(data, model.slug, data.image.slug)).then((f) => {
      if (canvas.dataset.want !== want) return;
      const [gh, gw] = model.grid;
      let pixels;
      if (state.feat === "pca") {
        const components = f.pca(layer);
        pixels = pcaPixels(components);
        canvas.atlasValues = components.map((c) => Array.from(c));
      } else {
        const values = state.feat === "box" ? f.box(Math.min(state.fbox, f.boxes - 1), layer)
          : f.similarity(model.featureLayers.indexOf(layer), queryCell(state.query, model.grid));
        const indices = toIndices(values);
        pixels = new Uint8ClampedArray(4 * indices.length);
        indices.forEach((v, i) => pixels.set([v, v, v, 255], 4 * i));
        canvas.atlasValues = Array.from(values);
      }
      const ctx = canvas.getContext("2d");
      const img = ctx.createImageData(gw, gh);
      img.data.set(pixels);
      ctx.putImageData(img, 0, 0);
      canvas.dataset.ready = "1";
    }, (err) => console.error(String(err)));
  }

  function tile(model, state, layer) {
    const [gh, gw] = model.grid;
    const stack = el("span", { class: "atlas-stack" });
    stack.style.aspectRatio = data.image.width + " / " + data.image.height;
    stack.appendChild(el("img", { class: "atlas-photo", src: data.photo, alt: "" }));
    const kind = state.feat === "pca" ? "atlas-pca" : "atlas-query atlas-feature";
    const canvas = el("canvas", { class: kind, width: gw, height: gh, role: "img", "data-model": model.slug,
      "aria-label": model.name + ", layer " + layer + ", " + WHAT[state.feat].split(":")[0] });
    stack.appendChild(canvas);
    paint(canvas, model, state, layer);
    return el("figure", { class: "atlas-feature-tile", "data-model": model.slug },
      [stack, el("figcaption", { text: model.name + " · layer " + layer })]);
  }

  /** Show the feature view of ``state`` (or hide the section when it is off). */
  function render(state) {
    for (const input of form.querySelectorAll("input[name=feat]")) input.checked = input.value === state.feat;
    const select = form.elements.fbox;
    if (select) {
      select.value = String(state.fbox);
      select.disabled = state.feat !== "box";
    }
    section.hidden = !state.feat;
    if (!state.feat) { rows.replaceChildren(); return; }
    const boxes = rects().length;
    const lines = [];
    const tiles = [];
    for (const model of state.models.map((s) => bySlug.get(s))) {
      const layer = Math.min(state.layer, model.layers - 1);
      const why = featureNote(model, state, layer, boxes);
      if (why) lines.push(why);
      else tiles.push(tile(model, state, layer));
    }
    const box = state.feat === "box" && select ? " Box: " + select.options[select.selectedIndex].text + "." : "";
    note.textContent = WHAT[state.feat] + "." + box + (lines.length ? " " + lines.join(". ") + "." : "");
    rows.replaceChildren(...tiles);
  }

  return { render: render };
}
