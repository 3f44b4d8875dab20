// The random-weights banner's starting state (templates/assets/atlas/banner.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startsFolded } from "../../templates/assets/atlas/banner.mjs";

test("the banner starts as one line, unless the reader opened its details before", () => {
  assert.equal(startsFolded("folded"), true);
  assert.equal(startsFolded("open"), false);
  assert.equal(startsFolded(null), true);
  assert.equal(startsFolded("junk"), true);
});
