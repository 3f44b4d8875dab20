/* A model's head viewer: one head (#lLL-hHH) on every image, sorted by a score of that head on each image
 * (alignment, attention entropy...), best and worst first, then every image one page at a time. The
 * scores of one head come from one file (atlas/head_scores.py: float32 [score, image]); each card's
 * heatmap is painted from its image's sprite sheet once it comes near the viewport. */

import { el } from "./dom.mjs";
import { onHashChange, readHash } from "./hash.mjs";
import { bindHeatReadout, clearRange, showRange } from "./heat_readout.mjs";
import { groupRange, groupWords, headRange } from "./head_range.mjs";
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
    scoreCache.set(url, fetch(url).then((r) => {
      if (!r.ok) throw new Error("atlas: " + r.status + " " + url);
      return r.arrayBuffer();
    }).then((b) => new Float32Array(b)));
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
    for (const e of entries) if (e.isIntersecting) { visible.unobserve(e.target); paintHeat(data, e.target); }
  }, { rootMargin: "300px" }) : { observe: (c) => paintHeat(data, c) };
  let state = null, drawn = 0;

  function readState() {
    const q = readHash();
    const key = parseHeadKey(q, layers, heads);
    const view = readView(q, data, model.headMethods, data.method);
    const sorts = [...form.elements.sort.options].map((o) => o.value);
    const sort = sorts.includes(q.get("sort")) ? q.get("sort") : sorts[0];
    const order = q.get("order") === "worst" ? "worst" : "best";
    return { ...key, method: view.method, sort: sort, order: order, page: q.get("page") || "1",
      display: view.display, cmap: view.cmap, view: view, scale: SCALES.includes(q.get("scale")) ? q.get("scale") : "map" };
  }
  const hashOfState = (s) => headHash({ layer: s.layer, head: s.head, method: s.method, sort: s.sort,
    order: s.order, page: s.page, display: s.display, cmap: s.cmap, ...(s.scale !== "map" ? { scale: s.scale } : {}) });
  function go(s, push) {
    const hash = hashOfState(s);
    if (hash !== location.hash) history[push ? "pushState" : "replaceState"](null, "", hash);
    render();
  }
  /** Index of the score ``sort`` names in data.scores for ``method`` (-1: file order or no such score). */
  const scoreIndex = (sort, method) => data.scores.findIndex((s) => (s.method ? s.key === sort + ":" + method
    : s.key === sort));

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

  function card(s, index, values, scoreLabel, group) {
    const [id, slug, width, height, grid] = data.images[index];  // grid: the image's own (--resize keep)
    const variant = variantName(s.head);
    const params = new URLSearchParams({ models: model.slug, method: s.method, layer: String(s.layer), view: "heads",
      display: s.display, cmap: s.cmap, zoom: model.slug + ":" + variant });
    const stack = el("span", { class: "atlas-stack" });
    stack.style.aspectRatio = width + " / " + height;
    stack.appendChild(el("img", { class: "atlas-photo", src: data.thumbUrl.replace("IMAGE", slug), alt: "", loading: "lazy" }));
    const heat = el("canvas", { class: "atlas-heat", width: (grid || model.grid)[1], height: (grid || model.grid)[0], role: "img",
      "aria-label": model.name + " " + s.method + " layer " + s.layer + " head " + s.head + " on " + id });
    Object.assign(heat.dataset, { model: model.slug, image: slug, method: s.method, layer: String(s.layer), variant: variant,
      scale: s.scale, ...(group ? { group: group } : {}) });
    stack.appendChild(heat);
    visible.observe(heat);
    const meta = scoreLabel ? scoreLabel + " " + fmt(values ? values[index] : null) : "";
    return el("li", { class: "atlas-card", "data-index": String(index) }, [
      el("a", { href: data.imageUrl.replace("IMAGE", slug) + "#" + params.toString(), "data-image": slug }, [
        stack, el("span", { class: "atlas-card-title", text: id })]),
      meta ? el("span", { class: "atlas-card-meta", "data-role": "score", text: meta }) : null]);
  }

  async function render() {
    const s = readState();
    state = s;
    showView(form, root, s.view);
    form.elements.sort.value = s.sort;
    form.elements.order.value = s.order;
    form.elements.scale.value = s.scale;
    root.querySelector("[data-role=head-title]").textContent = "layer " + s.layer + " · head " + s.head;
    document.title = model.name + " l" + pad(s.layer) + " h" + pad(s.head) + " · " + document.title.replace(/^.* · /, "");
    renderPicker(s);
    renderFigures(s);
    compareLink(root.querySelector("a[data-role=compare]"), model, s);
    const k = scoreIndex(s.sort, s.method);
    let values = null;
    if (k >= 0) {
      const scores = await headScores(data, s.layer, s.head);
      if (state !== s) return;  // a newer state is being shown
      values = scores.subarray(k * n, (k + 1) * n);
    }
    const label = k >= 0 ? data.scores[k].label : "";
    const descending = k >= 0 && data.scores[k].desc;
    const best = k >= 0 ? sortedImages(values, descending) : null;  // one sort for the default view
    const order = k < 0 ? Array.from({ length: n }, (_, i) => i)
      : s.order === "best" ? best : sortedImages(values, !descending);
    const ends = k >= 0 ? extremes(values, descending, EXTREMES, best) : { best: [], worst: [] };
    const page = pageOf(s.page, n, HEAD_PAGE_SIZE);
    const [start, end] = pageRange(page, n, HEAD_PAGE_SIZE);
    const group = s.scale === "head" ? showHeadScale(s, [...ends.best, ...ends.worst, ...order.slice(start, end)]) : null;
    if (!group) clearRange(readout);  // own min-max or one range per image: no one range until a card is pointed at
    for (const part of ["best", "worst"]) {
      lists[part].replaceChildren(...ends[part].map((i) => card(s, i, values, label, group)));
      lists[part].hidden = !ends[part].length;
      root.querySelector("#atlas-head-" + part).hidden = !ends[part].length;
    }
    lists.grid.replaceChildren(...order.slice(start, end).map((i) => card(s, i, values, label, group)));
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
      cmap: fd.get("cmap"), scale: fd.get("scale") || "map", page: keep || e.target.name === "scale" ? state.page : "1" }, true);
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
