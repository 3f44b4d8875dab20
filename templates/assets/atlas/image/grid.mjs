/* The image page's grid: one row per shown model, one tile per variant (fused, composite, heads),
 * each tile a photo, heat canvas (or composite), threshold veil, boxes and caption, laid out as a model ×
 * head table (table.mjs); and the zoom dialog (a copy of the tile, filled in as an inspector by zoom.mjs). */

import { cellPx, compositePixels, dominantHeads, headMasks } from "../composite.mjs";
import { el } from "../dom.mjs";
import { paintHeat, setHeat } from "../heat.mjs";
import { headUrl, pad } from "../layout.mjs";
import { methodUnit } from "../methods.mjs";
import { headColour } from "../palette.mjs";
import { massMask, topPercentMask } from "../thresholds.mjs";
import { fetchValues } from "../values.mjs";
import { drawnSource, drawnValues } from "./drawn.mjs";
import { gridKey, plan } from "./state.mjs";
import { headTable } from "./table.mjs";
import { fillInspector } from "./zoom.mjs";

/** The grid of one image page (``page``: {root, grid, zoom, boxesSvg, data, bySlug}). */
export function createGrid(page) {
  const { grid, zoom, boxesSvg, data, bySlug } = page;
  const image = data.image;
  let shownKey = null;

  /** The map of the sprite sheets a tile's heat canvas shows (drawn.mjs: the state's method and layer, or
   *  for a companion tile "with:rollout" beside a per-target map, that method's fused map of the last layer). */
  const source = (model, variant, state) => drawnSource(model, { ...state, query: null }, variant);

  /** The threshold veil of a tile: the rule applied to the values the tile draws (drawn.mjs). */
  function addThreshold(box, model, variant, state) {
    const [gh, gw] = model.grid;
    const canvas = el("canvas", { class: "atlas-mask", width: gw, height: gh, "aria-hidden": "true" });
    box.appendChild(canvas);
    const want = state.thr, p = state.p, mass = state.mass;
    drawnValues(page, model, state, variant)
      .then(({ values }) => {
        const keep = want === "top" ? topPercentMask(values, p) : massMask(values, mass);
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

  /** Draw the composite of ``model`` into ``canvas`` (composite.mjs): in a small tile (``detail`` false) the
   *  dominant head's fill only; enlarged, the per-head masks as outlines and the dominant head as a sparse hatch.
   *  The canvas keeps the dominant head of each cell (atlasDominant) for the readout. */
  function drawComposite(canvas, model, state, detail) {
    const hidden = new Set(state.off[model.slug] || []);
    canvas.dataset.mode = detail ? "detail" : "fill";
    return fetchValues(data, model.slug, image.slug, state.method, state.layer).then((maps) => {
      const heads = maps.slice(1);
      const masks = headMasks(heads, hidden, state);
      const dominant = dominantHeads(heads, masks);
      const colours = heads.map((_, h) => headColour(h, model.heads));
      const ctx = canvas.getContext("2d");
      const img = ctx.createImageData(canvas.width, canvas.height);
      img.data.set(compositePixels(masks, dominant, colours, model.grid, detail));
      ctx.putImageData(img, 0, 0);
      canvas.atlasDominant = dominant;
      canvas.dataset.ready = "1";
    });
  }

  function addComposite(box, model, state) {
    const [gh, gw] = model.grid;
    const s = cellPx(model.grid);
    const canvas = el("canvas", { class: "atlas-composite", width: gw * s, height: gh * s,
      role: "img", "aria-label": model.name + " colour-per-head composite" });
    box.appendChild(canvas);
    drawComposite(canvas, model, state, false);
  }

  /** A tile's skeleton: photo, heat canvas (or composite), threshold veil, boxes, caption. */
  function tile(model, variant, state) {
    const box = el("span", { class: "atlas-stack" });
    box.style.aspectRatio = image.width + " / " + image.height;
    if (state.display === "overlay") box.appendChild(el("img", { class: "atlas-photo", src: data.photo, alt: "" }));
    if (variant === "composite") addComposite(box, model, state);
    else {
      box.appendChild(el("canvas", { class: "atlas-heat", width: model.grid[1], height: model.grid[0], role: "img" }));
      if (state.thr !== "none") addThreshold(box, model, variant, state);
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
    const depth = methodUnit(data, src.method) + " " + src.layer;
    const fused = model.headMethods.includes(src.method) ? "fused" : depth;  // Grad-CAM, rollout: the one map
    const what = variant === "composite" ? "composite" : head >= 0 ? "head " + head
      : src.variant !== variant ? src.method + ", " + depth : fused;
    const label = model.name + ", " + src.method + ", " + depth + ", " + what;
    fig.querySelector(".atlas-tile-open").setAttribute("aria-label", "Enlarge " + label);
    const caption = fig.querySelector("figcaption");
    if (head < 0) caption.textContent = what;
    else {
      if (!caption.firstElementChild) caption.replaceChildren(el("a", { "data-travel": "head", text: what }));
      caption.firstElementChild.href = headUrl(data, model.slug, state.layer, head);
    }
    const heat = fig.querySelector("canvas.atlas-heat");
    if (!heat) return;
    heat.style.opacity = state.display === "overlay" ? String(state.opacity / 100) : "1";
    heat.dataset.scale = state.scale;
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
      if (rows.length) {
        grid.appendChild(headTable(rows, {
          tile: (row, v) => tile(row.model, v, state),
          title: (row) => [
            el("a", { href: data.modelUrl.replace("MODEL", row.model.slug), "data-travel": "model", text: row.model.name }),
            row.model.weights === "random" ? el("span", { class: "atlas-badge", text: "random weights" }) : null,
          ],
          note: (row) => (row.model.kind === "cnn" ? "one map per stage, no heads" : "no per-head maps of " + state.method),
          extra: (row) => (row.perHead && state.composite ? legend(row.model, state) : null),
        }));
      }
      if (!state.models.length) {
        grid.appendChild(el("p", { class: "atlas-note", "data-role": "no-models",
          text: "No model selected: tick at least one under Models above." }));
      }
      const again = focused && grid.querySelector(focused);
      if (again) again.focus();
    }
    const corner = grid.querySelector(".atlas-corner");  // the sticky corner names the layer (stage) shown
    if (corner) corner.textContent = methodUnit(data, state.method) + " " + state.layer;
    return hidden;
  }

  /** Open the zoom dialog on the tile ``state.zoom`` names (a copy, its canvases repainted), or close it. */
  function renderZoom(state) {
    const [slug, variant] = state.zoom.split(":");
    const source = slug && grid.querySelector(".atlas-tile[data-model='" + CSS.escape(slug) + "'][data-variant='" + CSS.escape(variant || "") + "']");
    const body = zoom.querySelector("[data-role=zoom-body]");
    if (!source) { if (zoom.open) zoom.close(); return; }
    body.replaceChildren(source.cloneNode(true));
    const model = bySlug.get(slug);
    if (variant === "composite") body.appendChild(legend(model, state));  // its head colours, with toggles
    for (const c of source.querySelectorAll("canvas")) {
      const copy = body.querySelector("canvas." + c.className);
      if (c.classList.contains("atlas-heat")) { paintHeat(data, copy); continue; }  // from the cached sprite
      if (c.classList.contains("atlas-composite")) { drawComposite(copy, model, state, true); continue; }  // in detail
      const paint = () => copy.getContext("2d").drawImage(c, 0, 0);
      if (c.dataset.ready) paint(); else new MutationObserver((_, obs) => { paint(); obs.disconnect(); }).observe(c, { attributes: true });
    }
    if (!zoom.open) zoom.showModal();
    fillInspector(page, state, source);
  }

  return { render: render, renderZoom: renderZoom, focusKey: focusKey };
}
