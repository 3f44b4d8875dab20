/* The compare view: two maps of one image, each a (model, method, layer, head or fused) choice, shown side by
 * side, as a slider (the left map over the right one, cut at a draggable, keyboard-operable divider) or, for
 * two maps on the same grid, as a shift map: right - left on a diverging scale centred on 0 over the photo in
 * dimmed greyscale (shift.mjs). The whole state is in the permalink (#image=&left=&right=&mode=&split=...);
 * a declared variant (--base) opens on variant vs base at the same layer and head. The images come from the
 * image index, so the page does not grow with their number. */

import { el, setField } from "./dom.mjs";
import { clamp, hashOf, intOr, onHashChange, readHash } from "./hash.mjs";
import { heatCanvas } from "./heat.mjs";
import { drawnHeat } from "./heat_readout.mjs";
import { fetchIndex } from "./image_index.mjs";
import { variantColumn } from "./layout.mjs";
import { cellAt, formatValue } from "./scale.mjs";
import { MODES, parseSide, sameGrid, shiftOf, shiftPixels, sideText } from "./shift.mjs";
import { fetchValues } from "./values.mjs";
import { readView, showView } from "./view.mjs";

/** Load the image index, then build the view; the promise settles once the first view is drawn. */
export function initComparePage(root, data) {
  return fetchIndex(data).then((index) => showCompare(root, data, index), (err) => {
    root.querySelector("[data-role=view]").replaceChildren(el("p", { class: "atlas-note", text: err.message }));
    console.error("atlas: " + err.message);
  });
}

const modelOf = (data, slug) => data.models.find((m) => m.slug === slug);
const partnerOf = (data, slug) => {
  const pair = data.pairs.find((p) => p.base === slug || p.variant === slug);
  return pair ? (pair.base === slug ? pair.variant : pair.base) : null;
};
const mapLabel = (model, s) => model.name + " · " + s.method + " · layer " + s.layer + " · " +
  (s.variant === "fused" ? "fused" : "head " + Number(s.variant.slice(1)));

/** ``side`` made valid for ``image`` (a model that has it, one of its methods, layers and heads), else the
 *  ``fallback``'s choices where they fit. Pure. */
export function resolveSide(data, image, side, fallback) {
  const models = data.models.filter((m) => image.models.includes(m.slug) && m.methods.length);
  const want = side || fallback || {};
  const model = modelOf({ models }, want.model) || modelOf({ models }, (fallback || {}).model) || models[0];
  if (!model) return null;
  const method = model.methods.includes(want.method) ? want.method
    : model.methods.includes((fallback || {}).method) ? fallback.method : (model.headMethods[0] || model.methods[0]);
  const depth = model.depths[method] || 1;
  const layer = clamp(Number.isInteger(want.layer) ? want.layer : depth - 1, 0, depth - 1);
  const head = want.variant && want.variant !== "fused" ? Number(want.variant.slice(1)) : -1;
  const variant = model.headMethods.includes(method) && head >= 0 && head < model.heads ? want.variant : "fused";
  return { model: model.slug, method: method, layer: layer, variant: variant };
}

/** The state the hash ``q`` names, every part made valid (defaults: the first declared pair, base left and
 *  variant right, at the same map; without pairs the first two models). Pure but for ``images``' order. */
export function readState(q, data, images) {
  const pair = data.pairs[0];
  let left = parseSide(q.get("left")), right = parseSide(q.get("right"));
  const named = images.find((i) => i.slug === q.get("image"));
  const image = named || (left && images.find((i) => i.models.includes(left.model)))
    || (pair && images.find((i) => i.models.includes(pair.base) && i.models.includes(pair.variant))) || images[0];
  if (left && !right && partnerOf(data, left.model)) right = { ...left, model: partnerOf(data, left.model) };
  const firstModels = data.models.filter((m) => image.models.includes(m.slug));
  const base = pair ? { model: pair.base } : { model: (firstModels[0] || {}).slug };
  const other = pair ? { model: pair.variant } : { model: (firstModels[1] || firstModels[0] || {}).slug };
  const l = resolveSide(data, image, left, base);
  const r = resolveSide(data, image, right, { ...other, method: l && l.method, layer: l && l.layer,
    variant: l && l.variant });
  const mode = MODES.includes(q.get("mode")) ? q.get("mode") : pair ? "shift" : "side";
  const view = readView(q, data, data.methods.map((m) => m.key), data.methods[0].key);
  return { image: image, left: l, right: r, mode: mode, split: clamp(intOr(q.get("split"), 50), 0, 100),
    display: view.display, cmap: view.cmap, scale: q.get("scale") === "shared" ? "shared" : "map" };
}

const hashOfState = (s) => hashOf({ image: s.image.slug, left: sideText(s.left), right: sideText(s.right), mode: s.mode,
  ...(s.mode === "slider" ? { split: s.split } : {}), display: s.display, cmap: s.cmap,
  ...(s.scale === "shared" ? { scale: "shared" } : {}) });

function options(select, items, value) {
  const keys = items.map(([k]) => String(k));
  if (select.dataset.keys !== keys.join("|")) {
    select.replaceChildren(...items.map(([k, text]) => el("option", { value: String(k), text: text })));
    select.dataset.keys = keys.join("|");
  }
  select.value = String(value);
}

/** Fill one side's selects (model, method, layer, head) with the choices of ``image``. */
function showSide(form, data, image, name, s) {
  const models = data.models.filter((m) => image.models.includes(m.slug) && m.methods.length);
  options(form.elements[name + "-model"], models.map((m) => [m.slug, m.name + (m.weights === "random" ? " (random weights)" : "")]), s.model);
  const model = modelOf(data, s.model);
  const label = (k) => (data.methods.find((m) => m.key === k) || { label: k }).label;
  options(form.elements[name + "-method"], model.methods.map((k) => [k, label(k)]), s.method);
  const depth = model.depths[s.method] || 1;
  options(form.elements[name + "-layer"], Array.from({ length: depth }, (_, l) => [l, String(l)]), s.layer);
  const heads = model.headMethods.includes(s.method) ? model.heads : 0;
  options(form.elements[name + "-variant"], [["fused", "fused"], ...Array.from({ length: heads }, (_, h) =>
    ["h" + String(h).padStart(2, "0"), "head " + h])], s.variant);
}

function stack(data, s, image) {
  const box = el("div", { class: "atlas-stack" });
  box.style.aspectRatio = image.width + " / " + image.height;
  box.appendChild(el("img", { class: "atlas-photo", src: data.photoUrl.replace("IMAGE", image.slug),
    alt: image.id + " (" + image.width + "×" + image.height + " px)" }));
  return box;
}

function heat(data, s, side, image, state) {
  const model = modelOf(data, side.model);
  const canvas = heatCanvas(data, model.grid, { ...side, image: image.slug, scale: state.scale }, mapLabel(model, side) + " on " + image.id);
  canvas.dataset.side = s;
  return canvas;
}

function sideBySide(data, state) {
  return el("div", { class: "atlas-compare-sides" }, ["left", "right"].map((s) => {
    const box = stack(data, s, state.image);
    box.dataset.side = s;
    box.appendChild(heat(data, s, state[s], state.image, state));
    return el("figure", { class: "atlas-compare-panel" }, [box,
      el("figcaption", { text: (s === "left" ? "Left: " : "Right: ") + mapLabel(modelOf(data, state[s].model), state[s]) })]);
  }));
}

function clipLeft(box, split) {
  const left = box.querySelector("canvas[data-side=left]");
  if (left) left.style.clipPath = "inset(0 " + (100 - split) + "% 0 0)";
  box.style.setProperty("--atlas-split", split + "%");
}

function slider(data, state, onSplit) {
  const box = stack(data, "slider", state.image);
  box.dataset.side = "slider";
  box.classList.add("atlas-compare-slider");
  box.appendChild(heat(data, "right", state.right, state.image, state));
  box.appendChild(heat(data, "left", state.left, state.image, state));
  box.appendChild(el("span", { class: "atlas-divider-line", "aria-hidden": "true" }));
  const input = el("input", { type: "range", name: "split", min: "0", max: "100", step: "1", value: String(state.split),
    class: "atlas-divider", "aria-label": "Divider: the left map is shown left of it, the right map right of it",
    "aria-valuetext": state.split + "% left map" });
  input.addEventListener("input", () => {
    const split = Number(input.value);
    input.setAttribute("aria-valuetext", split + "% left map");
    clipLeft(box, split);
    onSplit(split);
  });
  box.appendChild(input);
  clipLeft(box, state.split);
  const names = ["left", "right"].map((s) => mapLabel(modelOf(data, state[s].model), state[s]));
  return el("figure", { class: "atlas-compare-panel" }, [box,
    el("figcaption", { text: "Left of the divider: " + names[0] + ". Right of it: " + names[1] + "." })]);
}

/** The shift map: right - left over the dimmed photo; resolves to the shift once painted. */
function shiftMap(data, state, holder) {
  const box = stack(data, "shift", state.image);
  box.dataset.side = "shift";
  box.classList.add("atlas-compare-shift");
  const model = modelOf(data, state.left.model);
  const canvas = el("canvas", { class: "atlas-shift", width: model.grid[1], height: model.grid[0], role: "img",
    "aria-label": "Shift map: " + mapLabel(modelOf(data, state.right.model), state.right) + " minus " +
      mapLabel(model, state.left) + " on " + state.image.id });
  box.appendChild(canvas);
  holder.replaceChildren(el("figure", { class: "atlas-compare-panel" }, [box, el("figcaption", {
    text: "Shift map: right − left, " + mapLabel(modelOf(data, state.right.model), state.right) + " minus " +
      mapLabel(model, state.left) + "; red where the right map is higher, blue where the left one is." })]));
  const values = (s) => fetchValues(data, s.model, state.image.slug, s.method, s.layer).then((v) => v[variantColumn(s.variant)]);
  return Promise.all([values(state.left), values(state.right)]).then(([a, b]) => {
    const shift = shiftOf(a, b);
    const img = new ImageData(shiftPixels(shift), canvas.width, canvas.height);
    canvas.getContext("2d").putImageData(img, 0, 0);
    canvas.dataset.ready = "1";
    return { ...shift, left: a, right: b };
  });
}

function showCompare(root, data, index) {
  const form = root.querySelector("form.atlas-controls");
  const holder = root.querySelector("[data-role=view]");
  const note = root.querySelector("[data-role=shift-note]");
  const pairNote = root.querySelector("[data-role=pair-note]");
  const out = root.querySelector("[data-role=readout]");
  const images = index.gallery.map(([id, slug, models, , , , width, height]) => ({ id: id, slug: slug,
    width: width, height: height, models: models.map((k) => data.models[k].slug) }));
  options(form.elements.image, images.map((i) => [i.slug, i.id]), images[0] ? images[0].slug : "");
  let state = null, shift = null, drawn = 0;

  function go(s, push) {
    const hash = hashOfState(s);
    if (hash !== location.hash) history[push ? "pushState" : "replaceState"](null, "", hash);
    render();
  }

  function render() {
    if (!images.length) { holder.replaceChildren(el("p", { class: "atlas-note", text: "No images in this atlas." })); return; }
    const s = readState(readHash(), data, images);
    state = s;
    shift = null;
    form.elements.image.value = s.image.slug;
    showSide(form, data, s.image, "left", s.left);
    showSide(form, data, s.image, "right", s.right);
    showView(form, root, { method: null, display: s.display, cmap: s.cmap });
    form.elements.scale.checked = s.scale === "shared";
    const [a, b] = [modelOf(data, s.left.model), modelOf(data, s.right.model)];
    const comparable = sameGrid(a, b);
    const mode = s.mode === "shift" && !comparable ? "side" : s.mode;
    setField(form, "mode", mode);
    form.querySelector("input[name=mode][value=shift]").disabled = !comparable;
    note.textContent = comparable ? "" : "No shift map: " + a.name + " has a " + a.grid[0] + "×" + a.grid[1] + " grid and " +
      b.name + " a " + b.grid[0] + "×" + b.grid[1] + " one; a shift map subtracts the maps cell by cell, so both must be on the same grid.";
    const partner = data.pairs.find((p) => (p.base === a.slug && p.variant === b.slug) || (p.base === b.slug && p.variant === a.slug));
    pairNote.textContent = partner ? modelOf(data, partner.variant).name + " is a declared variant of " +
      modelOf(data, partner.base).name + "." : "";
    root.dataset.mode = mode;
    out.dataset.kind = mode === "shift" ? "shift" : "map";
    const done = () => { root.dataset.drawn = String(++drawn); };
    if (mode === "shift") {
      shiftMap(data, s, holder).then((sh) => { if (state === s) { shift = sh; showRange(sh.range); done(); } },
        (err) => console.error("atlas: " + err.message));
      return;
    }
    resetBar();
    holder.replaceChildren(mode === "slider" ? slider(data, s, (split) => {
      state = { ...state, split: split };
      history.replaceState(null, "", hashOfState(state));
    }) : sideBySide(data, s));
    done();
  }

  function resetBar() {  // until the pointer reads a map: no range from an earlier view
    const bar = out.querySelector(".atlas-colourbar");
    bar.querySelector("[data-role=lo]").textContent = "min";
    bar.querySelector("[data-role=hi]").textContent = "max";
    bar.title = "the range of the map shown";
    delete bar.dataset.lo;
    delete bar.dataset.hi;
  }

  function showRange(m) {
    const bar = out.querySelector(".atlas-colourbar");
    bar.querySelector("[data-role=lo]").textContent = "−" + formatValue(m);
    bar.querySelector("[data-role=hi]").textContent = "+" + formatValue(m);
    bar.title = "shift map: blue where the left map is higher, red where the right one is, white where equal; symmetric range ±" + formatValue(m);
    bar.dataset.lo = String(-m);
    bar.dataset.hi = String(m);
  }

  let token = null;
  function read(e) {
    const box = e.target.closest && e.target.closest(".atlas-stack");
    if (!box || !holder.contains(box) || !state) return;
    const r = box.getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
    let side = box.dataset.side;
    if (side === "slider") side = (100 * x) / r.width < state.split ? "left" : "right";
    const s = state[side === "shift" ? "left" : side], model = modelOf(data, s.model);
    const cell = cellAt(x, y, r.width, r.height, model.grid), gw = model.grid[1];
    const where = "cell (row " + Math.floor(cell / gw) + ", col " + (cell % gw) + ")";
    const text = out.querySelector("[data-role=readout-text]");
    token = side + "/" + cell;
    if (side === "shift") {
      if (!shift) return;
      const d = shift.values[cell];
      Object.assign(out.dataset, { side: "shift", cell: String(cell), value: String(d), left: String(shift.left[cell]),
        right: String(shift.right[cell]) });
      text.textContent = "Shift at " + where + ": right − left = " + formatValue(d) + " (left " + formatValue(shift.left[cell]) +
        ", right " + formatValue(shift.right[cell]) + ")";
      return;
    }
    const canvas = box.querySelector("canvas[data-side=" + side + "]"), mine = token;
    drawnHeat(data, canvas).then(({ values, lo, hi }) => {
      if (token !== mine) return;
      Object.assign(out.dataset, { side: side, cell: String(cell), value: String(values[cell]) });
      delete out.dataset.left;
      delete out.dataset.right;
      const bar = out.querySelector(".atlas-colourbar");
      bar.querySelector("[data-role=lo]").textContent = formatValue(lo);
      bar.querySelector("[data-role=hi]").textContent = formatValue(hi);
      text.textContent = (side === "left" ? "Left: " : "Right: ") + mapLabel(model, s) + " · " + where + ": value " + formatValue(values[cell]);
    });
  }
  holder.addEventListener("pointermove", read);
  holder.addEventListener("pointerdown", read);

  form.addEventListener("change", (e) => {
    if (e.target.name === "split") return;  // the divider updates the state itself
    const f = form.elements, fd = new FormData(form);
    const side = (n) => ({ model: f[n + "-model"].value, method: f[n + "-method"].value,
      layer: Number(f[n + "-layer"].value), variant: f[n + "-variant"].value });
    const image = images.find((i) => i.slug === f.image.value) || state.image;
    go({ ...state, image: image, left: side("left"), right: side("right"), mode: fd.get("mode") || state.mode,
      display: fd.get("display"), cmap: fd.get("cmap"), scale: fd.get("scale") ? "shared" : "map" }, true);
  });
  form.querySelector("[data-action=swap]").addEventListener("click", () => {
    go({ ...state, left: state.right, right: state.left }, true);
  });
  onHashChange(render);
  render();
}
