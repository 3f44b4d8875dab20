/* The head viewer's PCA colours (feat=pca): each card shows its image's first three principal components
 * of the patch tokens at the viewer's layer as RGB (features.mjs' pcaPixels: each channel min-max scaled
 * on its own, so colours are per image; the head does not matter). Only that layer's part of the image's
 * features.bin is read (atlas/site/feature_bytes.py: five uint32, then float32 pca [L, 3, N], then the box
 * similarities and int8 features): an HTTP Range request; a server that ignores Range sends the whole file,
 * which is cut here. */

import { pcaPixels } from "./features.mjs";
import { featuresUrl } from "./layout.mjs";

const HEADER = 20;  // bytes: five uint32

/** The inclusive byte range of layer ``layer``'s pca [3, N] in features.bin. Pure. */
export function pcaRange(layer, cells) {
  const start = HEADER + layer * 3 * cells * 4;
  return [start, start + 3 * cells * 4 - 1];
}

/** Three Float32Arrays of ``cells`` (components 1-3) from a response's bytes: the range itself (``partial``,
 *  a 206) or the whole file. Pure. */
export function pcaComponents(buffer, partial, layer, cells) {
  let offset = 0;
  if (!partial) {
    if (buffer.byteLength < HEADER) throw new Error("atlas: features file too short");
    const head = new DataView(buffer, 0, HEADER);
    if (layer >= head.getUint32(4, true) || head.getUint32(16, true) !== cells) throw new Error("atlas: no PCA of layer " + layer);
    offset = pcaRange(layer, cells)[0];
  }
  if (buffer.byteLength < offset + 3 * cells * 4) throw new Error("atlas: PCA bytes too short");
  const view = new DataView(buffer, offset, 3 * cells * 4);
  return [0, 1, 2].map((c) => Float32Array.from({ length: cells }, (_, i) => view.getFloat32(4 * (c * cells + i), true)));
}

const cache = new Map();  // url|layer -> Promise of the three components
const wholeFiles = new Map();  // url -> Promise of the whole file, where the server ignored the Range
/** The PCA components of (model, image) at ``layer``: fetched once per page. */
export function fetchPca(data, model, image, layer, cells) {
  const url = featuresUrl(data, model, image);
  const key = url + "|" + layer;
  if (!cache.has(key)) {
    const [a, b] = pcaRange(layer, cells);
    const whole = (buffer) => pcaComponents(buffer, false, layer, cells);
    cache.set(key, wholeFiles.has(url) ? wholeFiles.get(url).then(whole)
      : fetch(url, { headers: { Range: "bytes=" + a + "-" + b } }).then((r) => {
        if (!r.ok) throw new Error("atlas: " + r.status + " " + url);
        if (r.status === 206) return r.arrayBuffer().then((buffer) => pcaComponents(buffer, true, layer, cells));
        wholeFiles.set(url, r.arrayBuffer());  // the other layers read this copy
        return wholeFiles.get(url).then(whole);
      }));
  }
  return cache.get(key);
}

/** Paint a card's PCA canvas (data-model, data-image, data-layer; its size is the image's grid). */
export function paintPca(data, canvas) {
  const d = canvas.dataset;
  const want = [d.model, d.image, d.layer].join("|");
  if (canvas.atlasWant === want) return;
  canvas.atlasWant = want;
  delete canvas.dataset.ready;
  fetchPca(data, d.model, d.image, Number(d.layer), canvas.width * canvas.height).then((components) => {
    if (canvas.atlasWant !== want) return;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(canvas.width, canvas.height);
    img.data.set(pcaPixels(components));
    ctx.putImageData(img, 0, 0);
    canvas.dataset.ready = "1";
  }, (err) => { canvas.atlasWant = null; console.error(String(err)); });
}
