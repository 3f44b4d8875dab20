// The random-weights banner's starting state (templates/assets/atlas/banner.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startsFolded } from "../../templates/assets/atlas/banner.mjs";

test("the stored choice wins; without one the banner starts folded on a narrow screen only", () => {
  assert.equal(startsFolded("folded", false), true);
  assert.equal(startsFolded("open", true), false);
  assert.equal(startsFolded(null, true), true);
  assert.equal(startsFolded(null, false), false);
  assert.equal(startsFolded("junk", false), false);
});
