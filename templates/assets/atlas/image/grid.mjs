/* The image page's grid: one row per shown model, one tile per variant (fused, heads or composite),
 * each tile a photo, heat canvas (or composite), threshold veil, boxes and caption; and the zoom dialog. */

import { headColour, minmax } from "../colour.mjs";
import { el } from "../dom.mjs";
import { fetchRaw, paintHeat, setHeat } from "../heat.mjs";
import { headUrl, pad, rawUrl } from "../layout.mjs";
import { depthIn, methodUnit } from "../methods.mjs";
import { massMask, topPercentMask } from "../thresholds.mjs";
import { gridKey, plan } from "./state.mjs";

/** The grid of one image page (``page``: {root, grid, zoom, boxesSvg, data, bySlug}). */
export function createGrid(page) {
  const { grid, zoom, boxesSvg, data, bySlug } = page;
  const image = data.image;
  let shownKey = null;

  /** The map a tile shows: the state's method and layer, or for a companion tile ("with:rollout", beside
   *  a per-target map) the fused map of that method at the model's last layer. */
  function source(model, variant, state) {
    if (!variant.startsWith("with:")) return { method: state.method, layer: state.layer, variant: variant };
    const method = variant.slice(5);
    return { method: method, layer: depthIn(model, method) - 1, variant: "fused" };
  }

  function addThreshold(box, model, variantIndex, state, src) {
    const [gh, gw] = model.grid;
    const canvas = el("canvas", { class: "atlas-mask", width: gw, height: gh, "aria-hidden": "true" });
    box.appendChild(canvas);
    const count = model.headMethods.includes(src.method) ? model.heads + 1 : 1;
    const want = state.thr, p = state.p, mass = state.mass;
    fetchRaw(rawUrl(data, model.slug, image.slug, src.method, src.layer), count, gh * gw)
      .then((maps) => {
        const keep = want === "top" ? topPercentMask(maps[variantIndex], p) : massMask(maps[variantIndex], mass);
        const ctx = canvas.getContext("2d");
        const img = ctx.createImageData(gw, gh);
        let kept = 0;
        for (let i = 0; i < keep.length; i++) {
          kept += keep[i];
          img.data[4 * i + 3] = keep[i] ? 0 : 210;  // veil over the cells that are not kept
        }
        ctx.putImageData(img, 0, 0);
        canvas.dataset.kept = String(kept);
        canvas.dataset.ready = "1";
      });
  }

  function addComposite(box, model, state) {
    const [gh, gw] = model.grid;
    const canvas = el("canvas", { class: "atlas-composite", width: gw, height: gh,
      role: "img", "aria-label": model.name + " colour-per-head composite" });
    box.appendChild(canvas);
    const off = new Set(state.off[model.slug] || []);
    fetchRaw(rawUrl(data, model.slug, image.slug, state.method, state.layer), model.heads + 1, gh * gw)
      .then((maps) => {
        const heads = maps.slice(1).map(minmax);
        const ctx = canvas.getContext("2d");
        const img = ctx.createImageData(gw, gh);
        for (let i = 0; i < gh * gw; i++) {
          let best = -1, value = 0;
          for (let h = 0; h < heads.length; h++) {
            if (!off.has(h) && heads[h][i] > value) { best = h; value = heads[h][i]; }
          }
          if (best < 0 || value < 0.2) continue;  // DINO: cut below 0.2
          const rgb = headColour(best, model.heads);
          img.data.set([rgb[0], rgb[1], rgb[2], Math.round(255 * 0.5 * Math.sqrt(value))], 4 * i);
        }
        ctx.putImageData(img, 0, 0);
        canvas.dataset.ready = "1";
      });
  }

  /** A tile's skeleton: photo, heat canvas (or composite), threshold veil, boxes, caption. */
  function tile(model, variant, index, state) {
    const box = el("span", { class: "atlas-stack" });
    box.style.aspectRatio = image.width + " / " + image.height;
    if (state.display === "overlay") box.appendChild(el("img", { class: "atlas-photo", src: data.photo, alt: "" }));
    if (variant === "composite") addComposite(box, model, state);
    else {
      box.appendChild(el("canvas", { class: "atlas-heat", width: model.grid[1], height: model.grid[0], role: "img" }));
      const src = source(model, variant, state);
      if (state.thr !== "none") addThreshold(box, model, src.variant === variant ? index : 0, state, src);
    }
    if (state.boxes && boxesSvg) box.appendChild(boxesSvg.cloneNode(true));
    const button = el("button", { type: "button", class: "atlas-tile-open", "data-zoom": model.slug + ":" + variant }, [box]);
    const fig = el("figure", { class: "atlas-tile", "data-model": model.slug, "data-variant": variant },
      [button, el("figcaption", {})]);
    fillTile(fig, model, variant, state);
    return fig;
  }

  /** What a layer, method or opacity change alters in a tile: labels, head link, heatmap pixels. */
  function fillTile(fig, model, variant, state) {
    const src = source(model, variant, state);
    const head = variant.startsWith("h") ? Number(variant.slice(1)) : -1;
    const what = variant === "composite" ? "composite" : head >= 0 ? "head " + head
      : src.variant !== variant ? src.method + ", " + methodUnit(data, src.method) + " " + src.layer : "fused";
    const label = model.name + ", " + src.method + ", " + methodUnit(data, src.method) + " " + src.layer + ", " + what;
    fig.querySelector(".atlas-tile-open").setAttribute("aria-label", "Enlarge " + label);
    const caption = fig.querySelector("figcaption");
    if (head < 0) caption.textContent = what;
    else {
      if (!caption.firstElementChild) caption.replaceChildren(el("a", { text: what }));
      caption.firstElementChild.href = headUrl(data, model.slug, state.layer, head);
    }
    const heat = fig.querySelector("canvas.atlas-heat");
    if (!heat) return;
    heat.style.opacity = state.display === "overlay" ? String(state.opacity / 100) : "1";
    setHeat(data, heat, { model: model.slug, image: image.slug, method: src.method, layer: src.layer,
      variant: src.variant }, label + " heatmap");
  }

  function legend(model, state) {
    const list = el("ul", { class: "atlas-legend", "aria-label": model.name + " heads in the composite" });
    for (let h = 0; h < model.heads; h++) {
      const rgb = headColour(h, model.heads);
      const swatch = el("span", { class: "atlas-swatch" });
      swatch.style.background = "rgb(" + rgb.join(",") + ")";
      const on = !(state.off[model.slug] || []).includes(h);
      list.appendChild(el("li", {}, [el("button", { type: "button", "data-head": h, "aria-pressed": String(on),
        title: "click: show/hide head " + h + "; double-click: solo" }, [swatch, el("span", { text: "h" + pad(h) })])]));
    }
    return list;
  }

  /** A selector of the focused grid control (tile or legend button), to focus it again after a rebuild. */
  function focusKey() {
    const a = document.activeElement;
    if (!a || !grid.contains(a)) return null;
    const row = a.closest(".atlas-row");
    return a.dataset.zoom ? "[data-zoom='" + CSS.escape(a.dataset.zoom) + "']"
      : a.dataset.head && row ? ".atlas-row[data-model='" + CSS.escape(row.dataset.model) + "'] [data-head='" + a.dataset.head + "']" : null;
  }

  /** Show ``state``: rebuild the rows if their structure changed, else only update the tiles.
   *  ``focused``: focusKey() from before the state changed. Returns the lines on hidden models. */
  function render(state, focused) {
    const { rows, hidden } = plan(state, bySlug);
    const key = gridKey(state, rows);
    if (key === shownKey) {
      for (const fig of grid.querySelectorAll(".atlas-tile")) fillTile(fig, bySlug.get(fig.dataset.model), fig.dataset.variant, state);
    } else {
      shownKey = key;
      grid.replaceChildren();
      for (const { model, perHead, variants } of rows) {
        const tiles = el("div", { class: "atlas-tiles" });
        variants.forEach((v, i) => tiles.appendChild(tile(model, v, v === "composite" ? 0 : i, state)));
        const title = el("h2", { class: "atlas-row-title" }, [
          el("a", { href: data.modelUrl.replace("MODEL", model.slug), text: model.name }),
          model.weights === "random" ? el("span", { class: "atlas-badge", text: "random weights" }) : null,
        ]);
        grid.appendChild(el("section", { class: "atlas-row", "data-model": model.slug, "aria-label": model.name },
          [title, tiles, perHead && state.composite ? legend(model, state) : null]));
      }
      if (!state.models.length) {
        grid.appendChild(el("p", { class: "atlas-note", "data-role": "no-models",
          text: "No model selected: tick at least one under Models above." }));
      }
      const again = focused && grid.querySelector(focused);
      if (again) again.focus();
    }
    return hidden;
  }

  /** Open the zoom dialog on the tile ``state.zoom`` names (a copy, its canvases repainted), or close it. */
  function renderZoom(state) {
    const [slug, variant] = state.zoom.split(":");
    const source = slug && grid.querySelector(".atlas-tile[data-model='" + CSS.escape(slug) + "'][data-variant='" + CSS.escape(variant || "") + "']");
    const body = zoom.querySelector("[data-role=zoom-body]");
    if (!source) { if (zoom.open) zoom.close(); return; }
    body.replaceChildren(source.cloneNode(true));
    for (const c of source.querySelectorAll("canvas")) {
      const copy = body.querySelector("canvas." + c.className);
      if (c.classList.contains("atlas-heat")) { paintHeat(data, copy); continue; }  // from the cached sprite
      const paint = () => copy.getContext("2d").drawImage(c, 0, 0);
      if (c.dataset.ready) paint(); else new MutationObserver((_, obs) => { paint(); obs.disconnect(); }).observe(c, { attributes: true });
    }
    if (!zoom.open) zoom.showModal();
  }

  return { render: render, renderZoom: renderZoom, focusKey: focusKey };
}
