// The model page's image choice (image_chooser.mjs) and the image index rows it reads (image_index.mjs): pure
// functions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { matchImages, matchNote, pickFor, stepIndex } from "../../templates/assets/atlas/image_chooser.mjs";
import { modelImages } from "../../templates/assets/atlas/image_index.mjs";

const images = ["img_001", "IMG_0010", "church_02", "img_100", "x<b>1"].map((id) => ({ id }));

test("matching: part of the id, any case, in order, the first `limit` listed and all counted", () => {
  assert.deepEqual(matchImages(images, "img_0", 10), { shown: [0, 1], total: 2 });
  assert.deepEqual(matchImages(images, " IMG", 2), { shown: [0, 1], total: 3 });
  assert.deepEqual(matchImages(images, "", 50), { shown: [0, 1, 2, 3, 4], total: 5 });
  assert.deepEqual(matchImages(images, "<b>", 50), { shown: [4], total: 1 });
  assert.deepEqual(matchImages(images, "nope", 50), { shown: [], total: 0 });
});

test("Enter without an active option picks the exact id, else the first listed, else nothing", () => {
  assert.equal(pickFor(images, "img_0010", [0, 1]), 1);
  assert.equal(pickFor(images, "img_0", [0, 1]), 0);
  assert.equal(pickFor(images, "nope", []), -1);
});

test("previous / next wrap around; an empty list has no position", () => {
  assert.equal(stepIndex(0, -1, 12), 11);
  assert.equal(stepIndex(11, 1, 12), 0);
  assert.equal(stepIndex(4, 1, 12), 5);
  assert.equal(stepIndex(-1, 1, 3), 0);
  assert.equal(stepIndex(0, 1, 0), -1);
});

test("every image listed from a start; the note says how many match and which are listed", () => {
  assert.deepEqual(matchImages(images, "", 2, 3), { shown: [3, 4], total: 5 });
  assert.deepEqual(matchImages(images, "img", 5, 1), { shown: [1, 3], total: 3 });
  const range = (a, b) => Array.from({ length: b - a }, (_, k) => a + k);
  assert.equal(matchNote({ shown: range(0, 12), total: 12 }, 12), "all 12 images");
  assert.equal(matchNote({ shown: [1, 4, 7], total: 3 }, 12), "3 of 12 images match");
  assert.equal(matchNote({ shown: range(4000, 4050), total: 10000 }, 10000),
    "images 4,001–4,050 of 10,000 listed: type part of an id to find others");
  assert.equal(matchNote({ shown: range(0, 50), total: 1111 }, 10000),
    "50 of 1,111 matching images listed: type more of the id");
  assert.equal(matchNote({ shown: [], total: 0 }, 12), "no image id contains that");
});

test("a model's images: the index rows with its maps, in order, with their page and thumbnail", () => {
  const data = { models: [{ slug: "dinov2", grid: [16, 16] }, { slug: "resnet50", grid: [7, 7] }],
    imageUrl: "../../images/IMAGE/", thumbUrl: "../../../atlas-data/thumbs/IMAGE.jpg" };
  const index = { labels: [], tags: [], gallery: [["a", "a", [0, 1], [], [], 0, 640, 480],
    ["B b", "b-b-12345678", [1], [], [], 2, 300, 400], ["c", "c", [0], [], [], 0, 10, 20]] };
  assert.deepEqual(modelImages(data, index, "resnet50"), [
    { id: "a", slug: "a", width: 640, height: 480, grid: [7, 7], href: "../../images/a/",
      thumb: "../../../atlas-data/thumbs/a.jpg" },
    { id: "B b", slug: "b-b-12345678", width: 300, height: 400, grid: [7, 7], href: "../../images/b-b-12345678/",
      thumb: "../../../atlas-data/thumbs/b-b-12345678.jpg" }]);
  assert.deepEqual(modelImages(data, index, "dinov2").map((i) => i.slug), ["a", "c"]);
});

test("--resize keep: an index row's 9th entry gives the image's own grid per keep model", () => {
  const data = { models: [{ slug: "dinov2", grid: [16, 16] }, { slug: "resnet50", grid: [56, 56] }],
    imageUrl: "IMAGE/", thumbUrl: "IMAGE.jpg" };
  const index = { labels: [], tags: [], gallery: [["p", "p", [0, 1], [], [], 0, 300, 520, { 0: [28, 16] }],
    ["l", "l", [0], [], [], 0, 520, 300, { 0: [16, 28] }]] };
  assert.deepEqual(modelImages(data, index, "dinov2").map((i) => i.grid), [[28, 16], [16, 28]]);
  assert.deepEqual(modelImages(data, index, "resnet50").map((i) => i.grid), [[56, 56]]);  // squashed
});
