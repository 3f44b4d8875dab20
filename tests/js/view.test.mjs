// Shared view controls, method table, colours and raw decoding (pure parts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { hslToRgb, minmax } from "../../templates/assets/atlas/colour.mjs";
import { hashOf, clamp, intOr, numOr } from "../../templates/assets/atlas/hash.mjs";
import { methodKeys, methodUnit } from "../../templates/assets/atlas/methods.mjs";
import { readView } from "../../templates/assets/atlas/view.mjs";

const data = {
  colormap: "inferno", colormaps: ["inferno", "viridis"],
  methods: [{ key: "a", label: "A", unit: "layer" }, { key: "b", label: "B", unit: "stage" }],
};

test("readView checks the method, display and colormap of the hash", () => {
  const q = (s) => new URLSearchParams(s);
  assert.deepEqual(readView(q("method=b&display=heat&cmap=viridis"), data, ["a", "b"], "a"),
    { method: "b", display: "heat", cmap: "viridis" });
  assert.deepEqual(readView(q("method=zz&display=x&cmap=jet"), data, ["a", "b"], "a"),
    { method: "a", display: "overlay", cmap: "inferno" });
  assert.deepEqual(readView(q(""), data, ["b"], "b"), { method: "b", display: "overlay", cmap: "inferno" });
});

test("the method list and units come from the data block", () => {
  assert.deepEqual(methodKeys(data), ["a", "b"]);
  assert.equal(methodUnit(data, "b"), "stage");
  assert.equal(methodUnit(data, "a"), "layer");
  assert.equal(methodUnit(data, "missing"), "layer");
});

test("hash helpers", () => {
  assert.equal(hashOf({ q: "a b", models: ["x", "y"], n: 3 }), "#q=a+b&models=x%2Cy&n=3");
  assert.equal(intOr("2.6", 0), 3);
  assert.equal(intOr("", 5), 5);
  assert.equal(intOr(null, 5), 5);
  assert.equal(intOr("Infinity", 5), 5);
  assert.equal(numOr("0.25", 1), 0.25);
  assert.equal(numOr("x", 1), 1);
  assert.equal(clamp(7, 0, 5), 5);
  assert.equal(clamp(-1, 0, 5), 0);
});

test("hslToRgb gives the primaries at their hues", () => {
  assert.deepEqual(hslToRgb(0, 1, 0.5), [255, 0, 0]);
  assert.deepEqual(hslToRgb(120, 1, 0.5), [0, 255, 0]);
  assert.deepEqual(hslToRgb(240, 1, 0.5), [0, 0, 255]);
});

test("minmax scales to [0, 1]; a constant map is all zeros", () => {
  assert.deepEqual(Array.from(minmax([2, 4, 3])), [0, 1, 0.5]);
  assert.deepEqual(Array.from(minmax([7, 7])), [0, 0]);
});
