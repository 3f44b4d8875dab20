// The head viewer's label sort file and PCA bytes (head_labels.mjs, head_pca.mjs): the layouts of
// atlas/site/head_scores.py's LabelSort and atlas/site/feature_bytes.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { labelSort, labelValues } from "../../templates/assets/atlas/head_labels.mjs";
import { pcaComponents, pcaRange } from "../../templates/assets/atlas/head_pca.mjs";

test("label sort: only a listed label of the shown method", () => {
  const sorts = { labels: [{ label: "a:b", methods: ["cls"], images: 2 }, { label: "tower", methods: ["cls", "mean"], images: 1 }] };
  assert.deepEqual(labelSort(sorts, "label:a:b", "cls"), { index: 0, label: "a:b", methods: ["cls"], images: 2 });
  assert.equal(labelSort(sorts, "label:a:b", "mean"), null);
  assert.equal(labelSort(sorts, "label:nope", "cls"), null);
  assert.equal(labelSort(sorts, "iou", "cls"), null);
  assert.equal(labelSort(null, "label:tower", "cls"), null);
});

test("label values: the images with the label get theirs, the others NaN", () => {
  // k = 2 images (indices 1 and 3 of 4), methods [cls, mean], 2 layers x 2 heads
  const k = 2, buffer = new ArrayBuffer(4 * k * (1 + 2 * 2 * 2)), view = new DataView(buffer);
  view.setUint32(0, 1, true);
  view.setUint32(4, 3, true);
  for (let i = 0; i < 2 * 2 * 2 * k; i++) view.setFloat32(4 * (k + i), i / 8, true);
  const sort = { methods: ["cls", "mean"], images: k };
  const values = labelValues(buffer, sort, "mean", 1, 0, [2, 2], 4);  // [method 1, layer 1, head 0] = 6th pair
  assert.ok(Number.isNaN(values[0]) && Number.isNaN(values[2]));
  assert.deepEqual([values[1], values[3]], [12 / 8, 13 / 8]);
  assert.throws(() => labelValues(buffer.slice(4), sort, "cls", 0, 0, [2, 2], 4));
});

test("PCA: the range of one layer, and the same floats from the range or the whole file", () => {
  const L = 2, N = 3, file = new ArrayBuffer(20 + 4 * 3 * L * N + 5), view = new DataView(file);
  [0, L, 0, 0, N].forEach((v, i) => view.setUint32(4 * i, v, true));
  for (let i = 0; i < 3 * L * N; i++) view.setFloat32(20 + 4 * i, i, true);
  assert.deepEqual(pcaRange(1, N), [20 + 36, 20 + 72 - 1]);
  const [a, b] = pcaRange(1, N);
  const fromRange = pcaComponents(file.slice(a, b + 1), true, 1, N);
  const fromFile = pcaComponents(file, false, 1, N);
  assert.deepEqual(fromRange.map((c) => Array.from(c)), [[9, 10, 11], [12, 13, 14], [15, 16, 17]]);
  assert.deepEqual(fromFile, fromRange);
  assert.throws(() => pcaComponents(file, false, 2, N));
  assert.throws(() => pcaComponents(file, false, 0, 4));
});
