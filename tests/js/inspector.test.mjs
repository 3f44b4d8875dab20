// The inspector's pure parts: levels and the shared range (scale.mjs), the composite's masks, dominant
// heads and pixels (composite.mjs), the zoom dialog's keys (keys.mjs) and its caption and metrics (zoom.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { cellPx, compositePixels, dominantHeads, headMasks } from "../../templates/assets/atlas/composite.mjs";
import { ZOOM_KEYS, zoomKeyOf } from "../../templates/assets/atlas/keys.mjs";
import { cellAt, formatValue, levelOf, levelsOf, rangeOf } from "../../templates/assets/atlas/scale.mjs";
import { massMask } from "../../templates/assets/atlas/thresholds.mjs";
import { zoomCaption, zoomMetrics } from "../../templates/assets/atlas/image/zoom.mjs";

test("levels: floor(255 (x - lo) / (hi - lo) + 0.5), 0 for NaN and for an empty range", () => {
  assert.deepEqual(Array.from(levelsOf([0, 0.5, 1, NaN, 2], 0, 2)), [0, 64, 128, 0, 255]);
  assert.equal(levelOf(1 / 510, 0, 1), 1);  // exactly half a step rounds up
  assert.equal(levelOf(3, 3, 3), 0);
  assert.equal(levelOf(9, 0, 1), 255);  // outside the range: clamped
});

test("rangeOf: min and max over every array, non-finite values skipped", () => {
  assert.deepEqual(rangeOf([[1, NaN, 3], [-2, Infinity], []]), [-2, 3]);
  assert.deepEqual(rangeOf([[NaN]]), [0, 0]);
});

test("cellAt: the row-major cell under a point, on a non-square grid, clamped at the edges", () => {
  assert.equal(cellAt(0, 0, 60, 40, [4, 6]), 0);
  assert.equal(cellAt(59.9, 39.9, 60, 40, [4, 6]), 23);
  assert.equal(cellAt(35, 25, 60, 40, [4, 6]), 2 * 6 + 3);
  assert.equal(cellAt(60, 40, 60, 40, [4, 6]), 23);
});

test("formatValue: four significant digits, exponents for tiny and huge values", () => {
  assert.equal(formatValue(0.123456), "0.1235");
  assert.equal(formatValue(0.0001234), "1.234e-4");
  assert.equal(formatValue(0), "0");
  assert.equal(formatValue(NaN), "NaN");
});

const heads = [[0.9, 0.1, 0.0, 0.0], [0.0, 0.2, 0.8, 0.1], [0.5, 0.5, 0.5, 0.5]];

test("headMasks: the mass rule by default, top-p % when chosen, none for a hidden head", () => {
  const masks = headMasks(heads, new Set([2]), { thr: "none", p: 20, mass: 0.6 });
  assert.deepEqual(Array.from(masks[0]), Array.from(massMask(heads[0], 0.6)));
  assert.equal(masks[2], null);
  assert.deepEqual(Array.from(headMasks(heads, new Set(), { thr: "top", p: 25, mass: 0.6 })[1]), [0, 0, 1, 0]);
});

test("dominantHeads: the masked head with the highest min-max-scaled value; -1 where no mask keeps the cell", () => {
  const masks = [Uint8Array.from([1, 1, 0, 0]), Uint8Array.from([0, 1, 1, 0]), null];
  // cell 1: head 0 scaled 0.111, head 1 scaled 0.25 -> head 1; cell 3: no mask
  assert.deepEqual(Array.from(dominantHeads(heads, masks)), [0, 1, 1, -1]);
  assert.deepEqual(Array.from(dominantHeads(heads, [Uint8Array.from([1, 1, 1, 1]), null, null])), [0, 0, 0, 0]);
});

test("compositePixels: outlines in the head's colour, a sparse hatch of the dominant head, clear elsewhere", () => {
  const grid = [2, 2], s = cellPx(grid), width = 2 * s;
  const masks = [Uint8Array.from([1, 0, 0, 0]), null];
  const px = compositePixels(masks, Int16Array.from([0, -1, -1, -1]), [[255, 0, 0], [0, 0, 255]], grid);
  const at = (x, y) => Array.from(px.slice(4 * (y * width + x), 4 * (y * width + x) + 4));
  assert.deepEqual(at(0, 0), [255, 0, 0, 255]);  // the outline of head 0's one cell
  assert.deepEqual(at(s - 1, s - 1), [255, 0, 0, 255]);
  assert.deepEqual(at(s + 1, s + 1), [0, 0, 0, 0]);  // another cell: in no mask
  let hatch = 0, inside = 0;
  for (let y = 2 * Math.round(s / 10) + 1; y < s - 2 * Math.round(s / 10) - 1; y++) {
    for (let x = 2 * Math.round(s / 10) + 1; x < s - 2 * Math.round(s / 10) - 1; x++) { inside++; hatch += at(x, y)[3] > 0; }
  }
  assert.ok(hatch > 0.15 * inside && hatch < 0.5 * inside, `${hatch} of ${inside}`);  // sparse, not a full fill
});

test("zoom keys: arrows step heads and layers; none with a modifier; the page's shortcuts are not zoom keys", () => {
  assert.equal(zoomKeyOf({ key: "ArrowLeft" }), "previous-head");
  assert.equal(zoomKeyOf({ key: "ArrowUp", target: { tagName: "BUTTON" } }), "next-layer");  // on the Close button too
  assert.equal(zoomKeyOf({ key: "ArrowDown", ctrlKey: true }), null);
  assert.equal(zoomKeyOf({ key: "h" }), null);
  assert.deepEqual(Object.keys(ZOOM_KEYS).sort(), ["ArrowDown", "ArrowLeft", "ArrowRight", "ArrowUp"]);
});

const data = {
  methods: [{ key: "cls", label: "CLS attention", unit: "layer" }, { key: "gradcam", label: "Grad-CAM", unit: "stage" }],
  metrics: { names: ["iou@25", "pointing"], primary: "iou@25",
    models: { vit: { methods: { cls: [{ f: [0.5, 1] }, { f: [0.25, 0], h: 2, b: [0.75, 1], p: [0.1, null, 0.75] }] } } } },
};

test("zoomCaption: model · method · layer (or stage) · head", () => {
  assert.equal(zoomCaption(data, { name: "ViT" }, { method: "cls", layer: 1 }, "h03"), "ViT · CLS attention · layer 1 · head 3");
  assert.equal(zoomCaption(data, { name: "R50" }, { method: "gradcam", layer: 2 }, "fused"), "R50 · Grad-CAM · stage 2 · fused");
});

test("zoomMetrics: the fused map's and the best head's scores from the data block, a note otherwise", () => {
  const state = { method: "cls", layer: 1 };
  assert.deepEqual(zoomMetrics(data, "vit", state, "fused").values, [0.25, 0]);
  assert.deepEqual(zoomMetrics(data, "vit", state, "h02").values, [0.75, 1]);
  assert.match(zoomMetrics(data, "vit", state, "h01").note, /best head .*\(h02\)/);
  assert.deepEqual(zoomMetrics(data, "vit", state, "h01").values, [null]);  // NaN on this image
  assert.deepEqual(zoomMetrics(data, "vit", state, "h00"), { names: ["iou@25"], values: [0.1],
    note: "this head's iou@25; this page keeps every score of the fused map and of the layer's best head on this image (h02) only" });
  assert.match(zoomMetrics(data, "vit", state, "h03").note, /^This page keeps/);  // no such head
  assert.match(zoomMetrics(data, "cnn", state, "fused").note, /No scores/);
});
