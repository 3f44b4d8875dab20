/* Heatmaps: each is a <canvas class="atlas-heat"> of the patch grid's size (gw x gh) whose data
 * attributes name what it shows (model, image, method, layer, variant); its pixels are copied 1:1 from
 * the greyscale sprite sheet of that (model, image, method), loaded once and cached, then CSS scales
 * the canvas up and colours it with the SVG colormap filter. data-ready is set once it is painted.
 * The values behind the pixels (threshold veils, composite) come from values.mjs (fetchValues). */

import { el } from "./dom.mjs";
import { spriteUrl, variantColumn } from "./layout.mjs";

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
  const want = url + "|" + d.layer + "|" + d.variant;
  if (canvas.atlasWant === want) return;  // painted already, or being painted
  canvas.atlasWant = want;
  delete canvas.dataset.ready;
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
  canvas.setAttribute("aria-label", label);
  paintHeat(data, canvas);
}

/** A new heat canvas for ``map`` = {model, image, method, layer, variant} of a ``grid`` = [gh, gw]. */
export function heatCanvas(data, grid, map, label) {
  const canvas = el("canvas", { class: "atlas-heat", width: grid[1], height: grid[0], role: "img" });
  setHeat(data, canvas, map, label);
  return canvas;
}
