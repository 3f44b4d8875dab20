// The gallery's filters and pages and the head viewer's hash and sort order (pager.mjs, gallery.mjs,
// head_sort.mjs): pure functions, the same rules as atlas/head_scores.py's ``order``.
import { test } from "node:test";
import assert from "node:assert/strict";
import { filterImages } from "../../templates/assets/atlas/gallery.mjs";
import { extremes, headHash, parseHeadKey, sortedImages, stepHead } from "../../templates/assets/atlas/head_sort.mjs";
import { pageCount, pageOf, pageRange } from "../../templates/assets/atlas/pager.mjs";

test("pages: count, the page asked for clamped, the index range", () => {
  assert.equal(pageCount(0, 60), 1);
  assert.equal(pageCount(121, 60), 3);
  assert.equal(pageOf("2", 121, 60), 2);
  assert.equal(pageOf("9", 121, 60), 3);
  assert.equal(pageOf("x", 121, 60), 1);
  assert.equal(pageOf("0", 121, 60), 1);
  assert.deepEqual(pageRange(3, 121, 60), [120, 121]);
});

test("gallery filters run over every row", () => {
  const data = { models: [{ slug: "a" }, { slug: "b" }], labels: ["door", "tower"], tags: ["Gothic"],
    gallery: [["Img_1", "img_1", [0, 1], [1], [0], 1], ["x2", "x2", [0], [], [], 0], ["img_3", "img_3", [1], [0, 1], [], 2]] };
  const ids = (f) => filterImages(data, f).map((r) => r[0]);
  assert.deepEqual(ids({}), ["Img_1", "x2", "img_3"]);
  assert.deepEqual(ids({ q: "IMG" }), ["Img_1", "img_3"]);
  assert.deepEqual(ids({ model: "*" }), ["Img_1"]);
  assert.deepEqual(ids({ model: "b" }), ["Img_1", "img_3"]);
  assert.deepEqual(ids({ label: "tower", tag: "Gothic" }), ["Img_1"]);
  assert.deepEqual(ids({ label: "nope" }), []);
});

test("head viewer hash: the lLL-hHH key first, clamped, other keys after", () => {
  const q = (s) => new URLSearchParams(s);
  assert.deepEqual(parseHeadKey(q("l07-h03&sort=iou"), 12, 12), { layer: 7, head: 3 });
  assert.deepEqual(parseHeadKey(q("sort=iou&l40-h99"), 12, 12), { layer: 11, head: 11 });
  assert.deepEqual(parseHeadKey(q("method=cls"), 12, 12), { layer: 11, head: 0 });
  assert.equal(headHash({ layer: 7, head: 3, method: "cls", sort: "entropy", page: "" }), "#l07-h03&method=cls&sort=entropy");
  assert.deepEqual(stepHead({ layer: 0, head: 11 }, "head", 1, 12, 12), { layer: 0, head: 0 });
  assert.deepEqual(stepHead({ layer: 0, head: 5 }, "layer", -1, 12, 12), { layer: 11, head: 5 });
});

test("sort: highest or lowest first, NaN last, ties by index; extremes skip NaN", () => {
  const v = Float32Array.from([0.5, NaN, 0.9, 0.5, 0.1]);
  assert.deepEqual(sortedImages(v, true), [2, 0, 3, 4, 1]);
  assert.deepEqual(sortedImages(v, false), [4, 0, 3, 2, 1]);
  assert.deepEqual(extremes(v, true, 2), { best: [2, 0], worst: [4, 0] });
});

test("extremes from one sort equal the first finite images of both sorts, ties and NaN included", () => {
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let trial = 0; trial < 300; trial++) {
    const n = 1 + Math.floor(random() * 40);
    const v = Float32Array.from({ length: n }, () => [NaN, 0, -0, 0.5, 1, random()][Math.floor(random() * 6)]);
    for (const descending of [true, false]) {
      const k = 1 + Math.floor(random() * 8);
      const first = (order) => order.filter((i) => Number.isFinite(v[i])).slice(0, k);
      assert.deepEqual(extremes(v, descending, k),
        { best: first(sortedImages(v, descending)), worst: first(sortedImages(v, !descending)) });
    }
  }
});
