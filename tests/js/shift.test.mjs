// The compare view's pure parts (templates/assets/atlas/shift.mjs): permalink sides and the shift map.
import { test } from "node:test";
import assert from "node:assert/strict";
import { divergingColour, parseSide, sameGrid, shiftOf, shiftPixels, sideText } from "../../templates/assets/atlas/shift.mjs";

test("a side is model:method:layer:variant, and back", () => {
  const side = parseSide("dinov2-ft:cls:11:h07");
  assert.deepEqual(side, { model: "dinov2-ft", method: "cls", layer: 11, variant: "h07" });
  assert.equal(sideText(side), "dinov2-ft:cls:11:h07");
  assert.equal(parseSide("dinov2:rollout:3:fused").variant, "fused");
  for (const bad of [null, "", "dinov2:cls:x:h01", "dinov2:cls:1:head1", "a:b:1", "a:b:1:h01:x"]) assert.equal(parseSide(bad), null);
});

test("the shift is right - left cell by cell with a symmetric range", () => {
  const s = shiftOf([0.5, 0.25, 1, NaN], [0.75, 0, 1, 2]);
  assert.deepEqual([...s.values.slice(0, 3)], [0.25, -0.25, 0]);
  assert.ok(Number.isNaN(s.values[3]));
  assert.equal(s.range, 0.25);
  assert.equal(shiftOf([1, 2], [1, 2]).range, 0);
  assert.equal(shiftOf([1], [1, 2]), null);
});

test("the diverging colours: white at 0, blue below, red above, transparent where undefined", () => {
  assert.deepEqual(divergingColour(0, 1).slice(0, 3), [247, 247, 247]);
  assert.deepEqual(divergingColour(-1, 1), [33, 102, 172, 255]);
  assert.deepEqual(divergingColour(1, 1), [178, 24, 43, 255]);
  assert.deepEqual(divergingColour(2, 1), [178, 24, 43, 255]);  // clipped to the range
  assert.deepEqual(divergingColour(NaN, 1), [0, 0, 0, 0]);
  assert.deepEqual(divergingColour(0, 0), [0, 0, 0, 0]);  // identical maps: nothing drawn over the photo
  const px = shiftPixels(shiftOf([0, 0], [1, -1]));
  assert.deepEqual([...px], [178, 24, 43, 255, 33, 102, 172, 255]);
});

test("a shift map needs both maps on the same grid", () => {
  assert.ok(sameGrid({ grid: [4, 6] }, { grid: [4, 6] }));
  assert.ok(!sameGrid({ grid: [16, 16] }, { grid: [14, 14] }));
});
