// Asset URLs and sprite columns (templates/assets/atlas/layout.mjs), the mirror of atlas/layout.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { headUrl, headVariants, pad, spriteUrl, variantColumn, variantName } from "../../templates/assets/atlas/layout.mjs";

const data = { maps: "../../atlas-data/maps/", headUrl: "../../atlas/heads/MODEL/#lLAYER-hHEAD" };

test("sprite URLs", () => {
  assert.equal(spriteUrl(data, "dinov2", "img-1", "cls"), "../../atlas-data/maps/dinov2/img-1/cls.png");
});

test("head page URLs fill the template's model, layer and head", () => {
  assert.equal(headUrl(data, "clip", 2, 11), "../../atlas/heads/clip/#l02-h11");
});

test("variants and their sprite columns: fused first, then h00, h01...", () => {
  assert.equal(pad(7), "07");
  assert.equal(variantName(-1), "fused");
  assert.equal(variantName(4), "h04");
  assert.deepEqual(headVariants(3), ["h00", "h01", "h02"]);
  assert.equal(variantColumn("fused"), 0);
  assert.equal(variantColumn("h00"), 1);
  assert.equal(variantColumn("h11"), 12);
});
