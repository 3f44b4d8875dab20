/* Heatmaps: each is a <canvas class="atlas-heat"> of the patch grid's size (gw x gh) whose data
 * attributes name what it shows (model, image, method, layer, variant); its pixels are copied 1:1 from
 * the greyscale sprite sheet of that (model, image, method), loaded once and cached, then CSS scales
 * the canvas up and colours it with the SVG colormap filter. data-ready is set once it is painted.
 * The values behind the pixels (values.mjs, fetchValues) feed the threshold veils, the composite, the
 * readout and the shared scale (data-scale="shared": the canvas is drawn from the values on one range per
 * model and method; data-scale="head": on the range of its data-group, head_range.mjs). */

import { el } from "./dom.mjs";
import { groupRange } from "./head_range.mjs";
import { spriteUrl, variantColumn } from "./layout.mjs";
import { levelsOf, rangeOf } from "./scale.mjs";
import { fetchValues } from "./values.mjs";

const sharedRanges = new Map();
/** The shared scale's [min, max] of (model, image, method): over every layer and variant. */
export function sharedRange(data, model, image, method) {
  const key = [model.slug, image, method].join("/");
  if (!sharedRanges.has(key)) {
    const layers = Array.from({ length: model.layers }, (_, l) => fetchValues(data, model.slug, image, method, l));
    sharedRanges.set(key, Promise.all(layers).then((all) => rangeOf(all.flat())));
  }
  return sharedRanges.get(key);
}

/** The one range a canvas with data-scale="shared" or "head" is drawn on: the shared range of its model, image and
 *  method, or (the head viewer's head scale) the range of its data-group (head_range.mjs). */
export function scaleRange(data, canvas) {
  const d = canvas.dataset;
  if (d.scale === "head") return groupRange(d.group);
  return sharedRange(data, data.models.find((m) => m.slug === d.model), d.image, d.method);
}

/** Paint a heat canvas from its raw values on its one range (scaleRange). */
function paintShared(data, canvas, want) {
  const d = canvas.dataset;
  const model = data.models.find((m) => m.slug === d.model);
  const variant = variantColumn(d.variant);  // fused first, then the heads, as in the sprite sheet
  Promise.all([fetchValues(data, model.slug, d.image, d.method, Number(d.layer)), scaleRange(data, canvas)])
    .then(([maps, [lo, hi]]) => {
      if (canvas.atlasWant !== want) return;
      const levels = levelsOf(maps[variant], lo, hi);
      const ctx = canvas.getContext("2d");
      const img = ctx.createImageData(canvas.width, canvas.height);
      levels.forEach((v, i) => img.data.set([v, v, v, 255], 4 * i));
      ctx.putImageData(img, 0, 0);
      canvas.dataset.ready = "1";
    }, () => { canvas.atlasWant = null; console.error("atlas: cannot load the values of " + want); });
}

const sprites = new Map();  // url -> Promise of the decoded <img>
const decodedSprites = new Map();  // url -> decoded <img>: tiles of a loaded sprite paint synchronously
function loadSprite(url) {
  if (!sprites.has(url)) {
    const img = new Image();
    img.src = url;
    sprites.set(url, img.decode().then(() => { decodedSprites.set(url, img); return img; }, (err) => {
      sprites.delete(url);  // a later paint may try again
      throw err;
    }));
  }
  return sprites.get(url);
}

/** Paint a heat canvas with the tile its data attributes name, copied 1:1 from the cached sprite
 *  (source rectangle of the canvas' own size: no scaling, so no bleeding between tiles). */
export function paintHeat(data, canvas) {
  const d = canvas.dataset;
  const url = spriteUrl(data, d.model, d.image, d.method);
  const want = url + "|" + d.layer + "|" + d.variant + "|" + (d.scale || "map") + (d.scale === "head" ? "|" + d.group : "");
  if (canvas.atlasWant === want) return;  // painted already, or being painted
  canvas.atlasWant = want;
  delete canvas.dataset.ready;
  if (d.scale === "shared" || d.scale === "head") { paintShared(data, canvas, want); return; }
  const x = variantColumn(d.variant) * canvas.width, y = Number(d.layer) * canvas.height;
  const draw = (img) => {
    if (canvas.atlasWant !== want) return;  // the canvas was given another tile meanwhile
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(img, x, y, canvas.width, canvas.height, 0, 0, canvas.width, canvas.height);
    canvas.dataset.ready = "1";
  };
  if (decodedSprites.has(url)) draw(decodedSprites.get(url));
  else loadSprite(url).then(draw, () => { canvas.atlasWant = null; console.error("atlas: cannot load " + url); });
}

/** Point a heat canvas at one map (and paint it; nothing happens if it already shows that map). */
export function setHeat(data, canvas, map, label) {
  for (const k of ["model", "image", "method", "layer", "variant"]) canvas.dataset[k] = String(map[k]);
  if (map.scale) canvas.dataset.scale = map.scale;  // "shared": one range per model, image and method
  canvas.setAttribute("aria-label", label);
  paintHeat(data, canvas);
}

/** A new heat canvas for ``map`` = {model, image, method, layer, variant} of a ``grid`` = [gh, gw]. */
export function heatCanvas(data, grid, map, label) {
  const canvas = el("canvas", { class: "atlas-heat", width: grid[1], height: grid[0], role: "img" });
  setHeat(data, canvas, map, label);
  return canvas;
}
