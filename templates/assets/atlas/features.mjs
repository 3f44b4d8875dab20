/* What the patch tokens are (atlas/site/feature_bytes.py): one file per (model, image), features.bin,
 * little-endian: uint32 header [B, L, Lf, D, N], then float32 pca [L, 3, N], float32 box_similarity
 * [B, L, N], float32 features_scale [Lf, N], int8 features [Lf, N, D]. A decoded token is codes * scale.
 * Pure, except fetchFeatures. */

import { fetchBytes } from "./fetch_bytes.mjs";

const HEADER = 5;

/** The decoded file: sizes, ``pca(l)`` -> three Float32Arrays of N, ``box(b, l)`` -> Float32Array of N,
 *  ``similarity(k, cell)`` -> Float64Array of N: the cosine of patch ``cell`` to every patch of the k-th
 *  feature layer, from the decoded int8 tokens. */
export function decodeFeatures(buffer) {
  if (buffer.byteLength < HEADER * 4) throw new Error("atlas: features file too short");
  const head = new DataView(buffer, 0, HEADER * 4);
  const [B, L, Lf, D, N] = Array.from({ length: HEADER }, (_, i) => head.getUint32(4 * i, true));
  const floats = 3 * L * N + B * L * N + Lf * N;
  if (buffer.byteLength !== HEADER * 4 + 4 * floats + Lf * N * D) throw new Error("atlas: features file of the wrong size");
  const f32 = new Float32Array(buffer.slice(HEADER * 4, HEADER * 4 + 4 * floats));  // a copy: LE on every page host
  const view = new DataView(buffer, HEADER * 4, 4 * floats);
  for (let i = 0; i < floats; i++) f32[i] = view.getFloat32(4 * i, true);
  const codes = new Int8Array(buffer, HEADER * 4 + 4 * floats);
  const scaleAt = 3 * L * N + B * L * N;
  const norms = new Map();  // feature layer -> Float64Array of the decoded tokens' norms

  const pca = (l) => [0, 1, 2].map((c) => f32.subarray((l * 3 + c) * N, (l * 3 + c + 1) * N));
  const box = (b, l) => f32.subarray(3 * L * N + (b * L + l) * N, 3 * L * N + (b * L + l + 1) * N);
  const scale = (k, i) => f32[scaleAt + k * N + i];

  function normsOf(k) {
    if (!norms.has(k)) {
      const out = new Float64Array(N);
      for (let i = 0; i < N; i++) {
        let s = 0;
        const base = (k * N + i) * D;
        for (let c = 0; c < D; c++) s += codes[base + c] * codes[base + c];
        out[i] = Math.sqrt(s) * scale(k, i);
      }
      norms.set(k, out);
    }
    return norms.get(k);
  }

  /** Cosines of patch ``cell`` to every patch of feature layer ``k`` (0 where a token is zero). */
  function similarity(k, cell) {
    const n = normsOf(k);
    const out = new Float64Array(N);
    const q = (k * N + cell) * D;
    for (let j = 0; j < N; j++) {
      const base = (k * N + j) * D;
      let dot = 0;
      for (let c = 0; c < D; c++) dot += codes[q + c] * codes[base + c];
      const denom = n[cell] * n[j];
      out[j] = denom > 0 ? dot * scale(k, cell) * scale(k, j) / denom : 0;
    }
    return out;
  }

  return { boxes: B, layers: L, featureLayers: Lf, width: D, cells: N, pca: pca, box: box, similarity: similarity };
}

/** RGBA pixels of three PCA components: each channel min-max scaled to 0..255 on its own (a constant
 *  component is 0), alpha 255. */
export function pcaPixels(components) {
  const n = components[0].length;
  const out = new Uint8ClampedArray(4 * n);
  components.forEach((values, c) => {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
    for (let i = 0; i < n; i++) out[4 * i + c] = hi > lo ? Math.floor((values[i] - lo) / (hi - lo) * 255 + 0.5) : 0;
  });
  for (let i = 0; i < n; i++) out[4 * i + 3] = 255;
  return out;
}

/** The box (index into ``boxes``, image pixels [x, y, w, h]) under ``point`` (fractions of the image):
 *  the smallest containing it, or -1. */
export function boxAt(point, boxes, width, height) {
  const x = point.x * width, y = point.y * height;
  let best = -1, area = Infinity;
  boxes.forEach((b, i) => {
    const [bx, by, bw, bh] = b;
    if (x >= bx && x < bx + bw && y >= by && y < by + bh && bw * bh < area) { best = i; area = bw * bh; }
  });
  return best;
}

const cache = new Map();
/** The decoded features of a (model, image) file, fetched once per page. */
export function fetchFeatures(url) {
  if (!cache.has(url)) {
    cache.set(url, fetchBytes(url).then(decodeFeatures));
  }
  return cache.get(url);
}
