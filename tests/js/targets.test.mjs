// Per-target methods (relevance, gradcam_vit): the depth index selects a target, not a layer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { depthIn, depthName } from "../../templates/assets/atlas/methods.mjs";
import { parseState, plan } from "../../templates/assets/atlas/image/state.mjs";

const clip = { slug: "clip", name: "CLIP", layers: 3, heads: 4, methods: ["cls", "relevance"], headMethods: ["cls"],
  depths: { cls: 3, relevance: 5 }, targets: ["a photo of a a.", "b", "c", "d", "a photo of a tower."],
  companions: { relevance: ["cls"] } };
const cls = { slug: "vitc", name: "ViT-C", layers: 3, heads: 4, methods: ["cls", "relevance"], headMethods: ["cls"],
  depths: { cls: 3, relevance: 1 }, targets: ["top-1 class"] };
const data = { colormap: "viridis", colormaps: ["viridis"], models: [clip, cls],
  methods: [{ key: "cls", unit: "layer" }, { key: "relevance", unit: "target" }] };
const bySlug = new Map(data.models.map((m) => [m.slug, m]));

test("the slider reaches every prompt of relevance beyond the model's layers", () => {
  const s = parseState(new URLSearchParams("method=relevance&layer=4"), data, bySlug);
  assert.equal(s.layer, 4);
  const { rows, hidden } = plan(s, bySlug);
  assert.deepEqual(rows.map((r) => r.model.slug), ["clip"]);
  assert.deepEqual(rows[0].variants, ["fused", "with:cls"]);  // raw attention of the last layer beside it
  assert.deepEqual(hidden, ["ViT-C has only 1 targets"]);
  assert.equal(parseState(new URLSearchParams("method=cls&layer=4"), data, bySlug).layer, 2);  // cls: 3 layers
});

test("targets are named by their class or prompt, layers by their number", () => {
  assert.equal(depthIn(clip, "relevance"), 5);
  assert.equal(depthIn({ layers: 7 }, "cls"), 7);  // an older data block without depths
  assert.equal(depthName(data, clip, "relevance", 4), "a photo of a tower.");
  assert.equal(depthName(data, cls, "relevance", 0), "top-1 class");
  assert.equal(depthName(data, clip, "cls", 2), "layer 2");
});
