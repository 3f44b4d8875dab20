// What a tile draws (image/drawn.mjs): the one source the readout, colour bar, inspector, threshold veils
// and the query painter read, in every mode: attention map, shared scale, query row, composite, companion.
import { test } from "node:test";
import assert from "node:assert/strict";
import { drawnSource, drawsQuery, rangeWords } from "../../templates/assets/atlas/image/drawn.mjs";

const vit = { name: "dinov2", kind: "vit", heads: 4, layers: 3, grid: [4, 6], queryLayers: [2],
  methods: ["cls", "rollout", "relevance"], depths: { relevance: 2 } };
const base = { method: "cls", layer: 2, scale: "map", query: null };

test("attention map: the state's method, layer and variant, on its own or the shared scale", () => {
  assert.deepEqual(drawnSource(vit, base, "h01"), { kind: "map", method: "cls", layer: 2, variant: "h01", scale: "map" });
  assert.equal(drawnSource(vit, { ...base, scale: "shared" }, "fused").scale, "shared");
  assert.equal(rangeWords(vit, drawnSource(vit, { ...base, scale: "shared" }, "fused")), "shared scale of dinov2, cls");
});

test("query patch: the fused and head tiles of a layer with query rows draw the row, on its own min-max", () => {
  const q = { ...base, query: { x: 0.55, y: 0.4 }, scale: "shared" };
  const src = drawnSource(vit, q, "h03");
  assert.deepEqual(src, { kind: "query", method: "cls", layer: 2, variant: "h03", scale: "query", cell: 1 * 6 + 3, k: 0 });
  assert.equal(rangeWords(vit, src), "this query row's own min-max");
  assert.equal(drawnSource(vit, { ...q, layer: 1 }, "h03").kind, "map");  // no query rows of layer 1
  assert.equal(drawsQuery(vit, q, "composite"), false);
  assert.equal(drawnSource(vit, q, "composite").kind, "composite");
});

test("companion tile beside a per-target map: that method's fused map of the last layer", () => {
  const src = drawnSource(vit, { ...base, method: "relevance", layer: 1, scale: "shared" }, "with:rollout");
  assert.deepEqual(src, { kind: "map", method: "rollout", layer: 2, variant: "fused", scale: "shared" });
  assert.equal(drawsQuery(vit, { ...base, query: { x: 0.1, y: 0.1 } }, "with:rollout"), false);
});
