// The threshold rules (templates/assets/atlas/thresholds.mjs); tests/test_js.py also checks them
// against ssl_attention/thresholds.py on random maps.
import { test } from "node:test";
import assert from "node:assert/strict";
import { massMask, topPercentMask } from "../../templates/assets/atlas/thresholds.mjs";

const list = (mask) => Array.from(mask);

test("top-p keeps the k = max(1, round-half-up(n*p/100)) largest cells", () => {
  assert.deepEqual(list(topPercentMask([0.1, 0.9, 0.5, 0.3], 50)), [0, 1, 1, 0]);
  assert.deepEqual(list(topPercentMask([0.1, 0.9, 0.5, 0.3], 1)), [0, 1, 0, 0]);  // at least one cell
  assert.deepEqual(list(topPercentMask([0.1, 0.9, 0.5, 0.3], 100)), [1, 1, 1, 1]);
  assert.deepEqual(list(topPercentMask([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 25)), [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);  // 2.5 -> 3
});

test("top-p breaks ties by the lower index and ranks NaN last", () => {
  assert.deepEqual(list(topPercentMask([0.5, 0.5, 0.5, 0.5], 50)), [1, 1, 0, 0]);
  assert.deepEqual(list(topPercentMask([NaN, 0, -1, NaN], 50)), [0, 1, 1, 0]);
});

test("mass keeps the smallest set of cells holding the mass of the non-negative weight", () => {
  assert.deepEqual(list(massMask([0.1, 0.6, 0.3, 0], 0.6)), [0, 1, 0, 0]);
  assert.deepEqual(list(massMask([0.1, 0.6, 0.3, 0], 0.61)), [0, 1, 1, 0]);
  assert.deepEqual(list(massMask([-5, 2, 2], 0.5)), [0, 1, 0]);  // negative cells weigh nothing; ties: the lower index is kept
});

test("mass: +inf cells share all the weight; no weight keeps nothing", () => {
  assert.deepEqual(list(massMask([Infinity, 5, Infinity], 1)), [1, 0, 1]);
  assert.deepEqual(list(massMask([0, -1, 0], 0.6)), [0, 0, 0]);
  assert.deepEqual(list(massMask([], 0.6)), []);
});
