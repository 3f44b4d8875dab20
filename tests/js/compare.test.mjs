// The compare view's state (templates/assets/atlas/compare.mjs): defaults, a declared pair, and bad permalinks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readState, resolveSide } from "../../templates/assets/atlas/compare.mjs";

const vit = (slug, grid) => ({ slug: slug, name: slug, weights: "pretrained", grid: grid, layers: 3, heads: 4,
  methods: ["cls", "rollout"], headMethods: ["cls"], depths: { cls: 3, rollout: 3 } });
const data = { models: [vit("base", [4, 6]), vit("tuned", [4, 6]), vit("other", [5, 5])],
  pairs: [{ base: "base", variant: "tuned" }], methods: [{ key: "cls" }, { key: "rollout" }],
  colormaps: ["viridis", "turbo"], colormap: "viridis" };
const images = [{ id: "a", slug: "a", models: ["other"] }, { id: "b", slug: "b", models: ["base", "tuned", "other"] }];
const q = (s) => new URLSearchParams(s);

test("no permalink: the first declared pair, base left and variant right, as a shift map", () => {
  const s = readState(q(""), data, images);
  assert.equal(s.image.slug, "b");  // the first image both models have
  assert.deepEqual(s.left, { model: "base", method: "cls", layer: 2, variant: "fused" });
  assert.deepEqual(s.right, { model: "tuned", method: "cls", layer: 2, variant: "fused" });
  assert.equal(s.mode, "shift");
  assert.equal(s.split, 50);
});

test("one side of a pair named: the other side is its partner at the same map", () => {
  const s = readState(q("left=tuned:cls:1:h03&mode=slider&split=30"), data, images);
  assert.deepEqual(s.right, { model: "base", method: "cls", layer: 1, variant: "h03" });
  assert.equal(s.mode, "slider");
  assert.equal(s.split, 30);
});

test("bad parts of a permalink fall back to valid choices", () => {
  const s = readState(q("image=nope&left=base:rollout:9:h02&right=ghost:x:0:fused&mode=zoom&split=400"), data, images);
  assert.equal(s.image.slug, "b");
  assert.deepEqual(s.left, { model: "base", method: "rollout", layer: 2, variant: "fused" });  // rollout has no heads
  assert.equal(s.right.model, "tuned");
  assert.equal(s.mode, "shift");
  assert.equal(s.split, 100);
  // an image without the named model: another model of that image
  assert.equal(resolveSide(data, images[0], { model: "base", method: "cls", layer: 0, variant: "h01" }, null).model, "other");
});
