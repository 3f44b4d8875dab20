/* A model's head viewer: one head (#lLL-hHH) on every image, sorted by a score of that head on each image
 * (alignment, attention entropy...), best and worst first, then every image one page at a time. The
 * scores of one head come from one file (atlas/head_scores.py: float32 [score, image]); the sort by a box
 * label (sort=label:<label>, head_labels.mjs) from one file per label. Each card's heatmap is painted from its
 * image's sprite sheet once it comes near the viewport, or with feat=pca its image's PCA colours at the
 * layer (head_pca.mjs). */

import { el, setField } from "./dom.mjs";
import { fetchBytes } from "./fetch_bytes.mjs";
import { onHashChange, readHash } from "./hash.mjs";
import { bindHeatReadout, clearRange, showRange } from "./heat_readout.mjs";
import { groupRange, groupWords, headRange } from "./head_range.mjs";
import { fetchLabel, labelSort, labelValues } from "./head_labels.mjs";
import { paintPca } from "./head_pca.mjs";
import { extremes, headHash, parseHeadKey, sortedImages, stepHead } from "./head_sort.mjs";
import { paintHeat } from "./heat.mjs";
import { fetchIndex, modelImages } from "./image_index.mjs";
import { pad, variantName } from "./layout.mjs";
import { shortcutIn } from "./keys.mjs";
import { carryState } from "./links.mjs";
import { pageCount, pageOf, pageRange, renderPager } from "./pager.mjs";
import { readView, showView } from "./view.mjs";

export const HEAD_PAGE_SIZE = 48;
export const EXTREMES = 6;
const SCALES = ["map", "shared", "head"];  // each map its own range; one per image and method; one for the head
const KEYS = { ArrowLeft: ["head", -1], ArrowRight: ["head", 1], ArrowUp: ["layer", -1], ArrowDown: ["layer", 1] };

const scoreCache = new Map();
/** The scores of one head on every image: float32 [score, image] (atlas/head_scores.py). */
function headScores(data, layer, head) {
  const url = data.scoresUrl + "l" + pad(layer) + "-h" + pad(head) + ".f32";
  if (!scoreCache.has(url)) {
    scoreCache.set(url, fetchBytes(url).then((b) => new Float32Array(b)));
  }
  return scoreCache.get(url);
}

const fmt = (v) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(3));

/** Load the image index (the model's images, in the score files' order), then show the viewer; the promise
 *  settles once its cards are built. */
export function initHeadPage(root, data) {
  const model = data.models.find((m) => m.slug === data.model);
  const shown = parseHeadKey(readHash(), model.layers, model.heads);
  headScores(data, shown.layer, shown.head);  // fetched beside the index
  return fetchIndex(data).then((index) => {
    const images = modelImages(data, index, data.model).map((i) => [i.id, i.slug, i.width, i.height, i.grid]);
    return showHeadPage(root, { ...data, images: images });
  }, (err) => {
    root.querySelector("[data-role=grid]").replaceChildren(el("p", { class: "atlas-note", text: err.message }));
    console.error("atlas: " + err.message);
  });
}

/** Point the "compare this head" link at this head: against the model's declared partner at the same map (its
 *  base on the left, its variant on the right), else against its layer's fused map. */
function compareLink(link, model, s) {
  if (!link) return;
  const map = (slug, variant) => [slug, s.method, s.layer, variant].join(":");
  const here = map(model.slug, variantName(s.head));
  const other = link.dataset.partner ? map(link.dataset.partner, variantName(s.head)) : map(model.slug, "fused");
  const [left, right] = link.dataset.partnerSide === "left" ? [other, here] : [here, other];
  link.href = link.href.split("#")[0] + "#" + new URLSearchParams({ left: left, right: right,
    mode: link.dataset.partner ? "shift" : "side" }).toString();
}

function showHeadPage(root, data) {
  const form = root.querySelector("form.atlas-controls");
  const model = data.models.find((m) => m.slug === data.model);
  const n = data.images.length, heads = model.heads, layers = model.layers;
  const lists = { best: root.querySelector("[data-role=best]"), worst: root.querySelector("[data-role=worst]"),
    grid: root.querySelector("[data-role=grid]") };
  const pager = root.querySelector("[data-role=pager]");
  const readout = root.querySelector("[data-role=readout]");
  const visible = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    for (const e of entries) if (e.isIntersecting) { visible.unobserve(e.target); paint(e.target); }
  }, { rootMargin: "300px" }) : { observe: (c) => paint(c) };
  const paint = (canvas) => (canvas.classList.contains("atlas-pca") ? paintPca(data, canvas) : paintHeat(data, canvas));
  const pcaNote = root.querySelector("[data-role=pca-note]");
  let state = null, drawn = 0;

  function readState() {
    const q = readHash();
    const key = parseHeadKey(q, layers, heads);
    const view = readView(q, data, model.headMethods, data.method);
    const sorts = [...form.elements.sort.options].filter((o) => !("label" in o.dataset)).map((o) => o.value);
    const wanted = q.get("sort");  // a label sort is offered while it is the one shown (showLabelSort)
    const sort = sorts.includes(wanted) || labelSort(data.labelSorts, wanted, view.method) ? wanted : sorts[0];
    const order = q.get("order") === "worst" ? "worst" : "best";
    return { ...key, method: view.method, sort: sort, order: order, page: q.get("page") || "1",
      feat: q.get("feat") === "pca" && model.pca ? "pca" : "",
      display: view.display, cmap: view.cmap, view: view, scale: SCALES.includes(q.get("scale")) ? q.get("scale") : "map" };
  }
  const hashOfState = (s) => headHash({ layer: s.layer, head: s.head, method: s.method, sort: s.sort,
    order: s.order, page: s.page, display: s.display, cmap: s.cmap, ...(s.scale !== "map" ? { scale: s.scale } : {}),
    ...(s.feat ? { feat: s.feat } : {}) });
  function go(s, push) {
    const hash = hashOfState(s);
    if (hash !== location.hash) history[push ? "pushState" : "replaceState"](null, "", hash);
    render();
  }
  /** Index of the score ``sort`` names in data.scores for ``method`` (-1: file order or no such score). */
  const scoreIndex = (sort, method) => data.scores.findIndex((s) => (s.method ? s.key === sort + ":" + method
    : s.key === sort));

  /** The sort ``s`` shows: {values (per image), label, desc, none (the text of an image without a value)}, or
   *  null for file order. */
  async function sortScores(s) {
    const byLabel = labelSort(data.labelSorts, s.sort, s.method);
    if (byLabel) {
      const buffer = await fetchLabel(data.labelSorts, byLabel.index);
      return { values: labelValues(buffer, byLabel, s.method, s.layer, s.head, [layers, heads], n),
        label: data.labelSorts.metric + " on “" + byLabel.label + "”", desc: data.labelSorts.desc,
        none: "no “" + byLabel.label + "” box" };
    }
    const k = scoreIndex(s.sort, s.method);
    if (k < 0) return null;
    const scores = await headScores(data, s.layer, s.head);
    return { values: scores.subarray(k * n, (k + 1) * n), label: data.scores[k].label, desc: data.scores[k].desc, none: "" };
  }

  /** The sort chooser offers the label sort while it is shown (a matrix cell's link); no other label. */
  function showLabelSort(s) {
    const select = form.elements.sort;
    for (const o of [...select.options]) if ("label" in o.dataset) o.remove();
    const byLabel = labelSort(data.labelSorts, s.sort, s.method);
    if (byLabel) select.appendChild(el("option", { value: s.sort, "data-label": byLabel.label,
      text: data.labelSorts.metric + " on “" + byLabel.label + "” boxes" }));
    select.value = s.sort;
  }

  function renderFigures(s) {
    const rows = data.scores.filter((sc) => !sc.method || sc.method === s.method).map((sc) => {
      const k = data.scores.indexOf(sc);
      const layer = data.means[k][s.layer].filter(Number.isFinite);
      const all = data.means[k].flat().filter(Number.isFinite);
      const here = data.means[k][s.layer][s.head];
      const rank = Number.isFinite(here) ? layer.filter((v) => (sc.desc ? v > here : v < here)).length + 1 : null;
      return el("tr", { "data-score": sc.key }, [
        el("th", { scope: "row", text: sc.label + (sc.unit ? " (" + sc.unit + ")" : "") }),
        el("td", { "data-col": "head", text: fmt(here) }),
        el("td", { "data-col": "layer", text: layer.length ? fmt(layer.reduce((a, b) => a + b, 0) / layer.length) : "–" }),
        el("td", { "data-col": "rank", text: rank ? rank + " of " + heads : "–" }),
        el("td", { "data-col": "range", text: all.length ? fmt(Math.min(...all)) + " – " + fmt(Math.max(...all)) : "–" })]);
    });
    const box = root.querySelector("[data-role=figures]");
    if (!rows.length) { box.replaceChildren(el("p", { class: "atlas-note", text: "No scores for this model." })); return; }
    box.replaceChildren(el("div", { class: "atlas-scroll" }, [el("table", { class: "atlas-table" }, [
      el("thead", {}, [el("tr", {}, ["mean over images", "this head", "layer mean", "rank in layer", "all heads"]
        .map((t) => el("th", { scope: "col", text: t })))]),
      el("tbody", {}, rows)])]));  // a phone scrolls the table inside its box, not the page
  }

  function renderPicker(s) {
    const k = scoreIndex(s.sort, s.method);
    const all = k >= 0 ? data.means[k].flat().filter(Number.isFinite) : [];
    const lo = Math.min(...all), hi = Math.max(...all);
    for (const a of root.querySelectorAll("[data-role=picker] a[data-layer]")) {
      const l = Number(a.dataset.layer), h = Number(a.dataset.head);
      const v = k >= 0 ? data.means[k][l][h] : null;
      a.style.setProperty("--atlas-shade", Number.isFinite(v) && hi > lo ? String((v - lo) / (hi - lo)) : "0");
      a.title = k >= 0 ? data.scores[k].label + " " + fmt(v) : "";
      a.href = hashOfState({ ...s, layer: l, head: h, page: "1" });
      if (l === s.layer && h === s.head) a.setAttribute("aria-current", "true"); else a.removeAttribute("aria-current");
    }
    carryState(root, readHash());
  }

  function card(s, index, sorted, group) {
    const [id, slug, width, height, grid] = data.images[index];  // grid: the image's own (--resize keep)
    const variant = variantName(s.head);
    const params = new URLSearchParams({ models: model.slug, method: s.method, layer: String(s.layer), view: "heads",
      display: s.display, cmap: s.cmap, zoom: model.slug + ":" + variant });
    const stack = el("span", { class: "atlas-stack" });
    stack.style.aspectRatio = width + " / " + height;
    stack.appendChild(el("img", { class: "atlas-photo", src: data.thumbUrl.replace("IMAGE", slug), alt: "", loading: "lazy" }));
    const pca = s.feat === "pca";
    const heat = el("canvas", { class: pca ? "atlas-pca" : "atlas-heat", width: (grid || model.grid)[1],
      height: (grid || model.grid)[0], role: "img", "aria-label": model.name + " " + (pca ? "PCA colours layer " + s.layer
      : s.method + " layer " + s.layer + " head " + s.head) + " on " + id });
    Object.assign(heat.dataset, pca ? { model: model.slug, image: slug, layer: String(s.layer) } : { model: model.slug,
      image: slug, method: s.method, layer: String(s.layer), variant: variant, scale: s.scale, ...(group ? { group: group } : {}) });
    stack.appendChild(heat);
    visible.observe(heat);
    const value = sorted ? sorted.values[index] : null;
    const meta = !sorted ? "" : !Number.isFinite(value) && sorted.none ? sorted.none : sorted.label + " " + fmt(value);
    return el("li", { class: "atlas-card", "data-index": String(index) }, [
      el("a", { href: data.imageUrl.replace("IMAGE", slug) + "#" + params.toString(), "data-image": slug }, [
        stack, el("span", { class: "atlas-card-title", text: id })]),
      meta ? el("span", { class: "atlas-card-meta", "data-role": "score", text: meta }) : null]);
  }

  async function render() {
    const s = readState();
    state = s;
    showView(form, root, s.view);
    showLabelSort(s);
    if (pcaNote) pcaNote.hidden = s.feat !== "pca";
    setField(form, "feat", s.feat || "map");
    form.elements.order.value = s.order;
    form.elements.scale.value = s.scale;
    root.querySelector("[data-role=head-title]").textContent = "layer " + s.layer + " · head " + s.head;
    document.title = model.name + " l" + pad(s.layer) + " h" + pad(s.head) + " · " + document.title.replace(/^.* · /, "");
    renderPicker(s);
    renderFigures(s);
    compareLink(root.querySelector("a[data-role=compare]"), model, s);
    const sorted = await sortScores(s);
    if (state !== s) return;  // a newer state is being shown
    const values = sorted ? sorted.values : null;
    const descending = !!sorted && sorted.desc;
    const best = sorted ? sortedImages(values, descending) : null;  // one sort for the default view
    const order = !sorted ? Array.from({ length: n }, (_, i) => i)
      : s.order === "best" ? best : sortedImages(values, !descending);
    const ends = sorted ? extremes(values, descending, EXTREMES, best) : { best: [], worst: [] };
    const page = pageOf(s.page, n, HEAD_PAGE_SIZE);
    const [start, end] = pageRange(page, n, HEAD_PAGE_SIZE);
    const group = s.scale === "head" && !s.feat ? showHeadScale(s, [...ends.best, ...ends.worst, ...order.slice(start, end)]) : null;
    if (!group) clearRange(readout);  // own min-max or one range per image: no one range until a card is pointed at
    for (const part of ["best", "worst"]) {
      lists[part].replaceChildren(...ends[part].map((i) => card(s, i, sorted, group)));
      lists[part].hidden = !ends[part].length;
      root.querySelector("#atlas-head-" + part).hidden = !ends[part].length;
    }
    lists.grid.replaceChildren(...order.slice(start, end).map((i) => card(s, i, sorted, group)));
    renderPager(pager, page, pageCount(n, HEAD_PAGE_SIZE), (to) => go({ ...state, page: String(to) }, true));
    root.dataset.drawn = String(++drawn);  // tests and the benchmark wait for this
  }

  /** The head scale's range over the cards at ``indices`` (the best, the worst and this page's): its id, and the
   *  readout's colour bar shows it at once (every card is drawn on it). */
  function showHeadScale(s, indices) {
    const group = headRange(data, model, s.method, s.layer, variantName(s.head), indices.map((i) => data.images[i][1]));
    groupRange(group).then(([lo, hi]) => {
      if (state === s) showRange(readout, lo, hi, groupWords(group));
    }, () => console.error("atlas: cannot load the values of the head scale"));
    return group;
  }

  form.addEventListener("change", (e) => {
    const fd = new FormData(form);
    const keep = e.target.name === "display" || e.target.name === "cmap";
    go({ ...state, method: fd.get("method"), sort: fd.get("sort"), order: fd.get("order"), display: fd.get("display"),
      cmap: fd.get("cmap"), scale: fd.get("scale") || "map", feat: fd.get("feat") === "pca" ? "pca" : "",
      page: keep || e.target.name === "scale" || e.target.name === "feat" ? state.page : "1" }, true);
  });
  document.addEventListener("keydown", (e) => {
    const action = shortcutIn(KEYS, e);
    if (!action || !state) return;
    e.preventDefault();
    go({ ...state, ...stepHead(state, action[0], action[1], layers, heads), page: "1" }, true);
  });
  bindHeatReadout(data, root, readout);
  onHashChange(render);
  render();
}
