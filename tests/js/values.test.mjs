// PNG decoding of values.mjs (the sprite sheets' values): the row filters and the chunk walk.
import { test } from "node:test";
import assert from "node:assert/strict";
import { pngChunks, unfilter } from "../../templates/assets/atlas/values.mjs";

/** PNG's row filter ``f`` of an 8-bit greyscale image (the encoder side, written out from the spec). */
function filterRows(px, width, filters) {
  const at = (x, y) => (x < 0 || y < 0 ? 0 : px[y * width + x]);
  const out = [];
  filters.forEach((f, y) => {
    out.push(f);
    for (let x = 0; x < width; x++) {
      const a = at(x - 1, y), b = at(x, y - 1), c = at(x - 1, y - 1);
      const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][f];
      out.push((at(x, y) - pred) & 255);
    }
  });
  return new Uint8Array(out);
}

test("unfilter undoes each of the five PNG row filters", () => {
  const width = 7, filters = [0, 1, 2, 3, 4, 4, 3, 1, 2, 0];
  const px = Array.from({ length: width * filters.length }, (_, i) => (i * 97 + (i >> 3) * 31 + (i % 5) * 200) & 255);
  assert.deepEqual(Array.from(unfilter(filterRows(px, width, filters), width, filters.length)), px);
});

test("pngChunks refuses what is not a PNG", () => {
  assert.throws(() => pngChunks(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])), /not a PNG/);
});
