// The features file (templates/assets/atlas/features.mjs): decoding, the cosines of decoded tokens, PCA
// colours and the box under a point.
import { test } from "node:test";
import assert from "node:assert/strict";
import { boxAt, decodeFeatures, pcaPixels } from "../../templates/assets/atlas/features.mjs";

/** A file of B boxes, L layers, Lf feature layers of D wide tokens over N cells (atlas/site/feature_bytes.py). */
function file(B, L, Lf, D, N, codes, scales) {
  const floats = 3 * L * N + B * L * N + Lf * N;
  const buffer = new ArrayBuffer(20 + 4 * floats + Lf * N * D);
  const view = new DataView(buffer);
  [B, L, Lf, D, N].forEach((v, i) => view.setUint32(4 * i, v, true));
  for (let i = 0; i < 3 * L * N + B * L * N; i++) view.setFloat32(20 + 4 * i, i, true);
  scales.forEach((s, i) => view.setFloat32(20 + 4 * (3 * L * N + B * L * N + i), s, true));
  new Int8Array(buffer, 20 + 4 * floats).set(codes);
  return buffer;
}

test("a features file decodes to its arrays and the cosines of its decoded tokens", () => {
  const buffer = file(1, 2, 1, 2, 3, [127, 0, 0, -127, 90, 90], [1, 2, 0.5]);
  const f = decodeFeatures(buffer);
  assert.deepEqual([f.boxes, f.layers, f.featureLayers, f.width, f.cells], [1, 2, 1, 2, 3]);
  assert.deepEqual([...f.pca(1)[2]], [15, 16, 17]);
  assert.deepEqual([...f.box(0, 1)], [21, 22, 23]);
  const s = f.similarity(0, 0);
  assert.equal(s[0], 1);
  assert.ok(Math.abs(s[1]) < 1e-12);
  assert.ok(Math.abs(s[2] - Math.SQRT1_2) < 1e-12);
  assert.throws(() => decodeFeatures(buffer.slice(0, buffer.byteLength - 1)), /wrong size/);
});

test("PCA colours are each component min-max scaled; the smallest box under a point wins", () => {
  const px = pcaPixels([[0, 1, 2], [5, 5, 5], [2, 0, 1]]);
  assert.deepEqual([...px], [0, 0, 255, 255, 128, 0, 0, 255, 255, 0, 128, 255]);
  const boxes = [[0, 0, 100, 100], [10, 10, 20, 20]];
  assert.equal(boxAt({ x: 0.15, y: 0.15 }, boxes, 100, 100), 1);
  assert.equal(boxAt({ x: 0.5, y: 0.5 }, boxes, 100, 100), 0);
  assert.equal(boxAt({ x: 0.5, y: 0.5 }, boxes, 400, 400), -1);
});
