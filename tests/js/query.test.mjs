// The query-patch explorer's pure part (templates/assets/atlas/query.mjs) and its hash round trip.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cellCentre, decodeQuery, parseQuery, queryCell, queryNote, queryText, stepQuery, toIndices } from "../../templates/assets/atlas/query.mjs";
import { formQuery, parseState } from "../../templates/assets/atlas/image/state.mjs";

test("a file decodes to code * scale per row, fused = mean over heads", () => {
  const layers = 1, heads = 2, cells = 3;
  const buffer = new ArrayBuffer(layers * heads * cells * 4 + layers * heads * cells * cells);
  const scales = new DataView(buffer);
  const codes = new Uint8Array(buffer, layers * heads * cells * 4);
  for (let r = 0; r < heads * cells; r++) scales.setFloat32(r * 4, 0.5 * (r + 1), true);
  codes.set([255, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
  const rows = decodeQuery(buffer, layers, heads, cells);
  assert.deepEqual([...rows.row(0, 0, 0)], [127.5, 0, 5]);
  assert.deepEqual([...rows.row(0, 1, 2)], [13 * 3, 14 * 3, 15 * 3]);
  assert.deepEqual([...rows.fused(0, 0)], [(127.5 + 7 * 2) / 2, (0 + 8 * 2) / 2, (5 + 9 * 2) / 2]);  // head 1: codes 7, 8, 9 x 2
  assert.throws(() => decodeQuery(buffer, 2, heads, cells), /wrong size/);
});

test("indices are min-max normalised as atlas/render.py to_indices", () => {
  assert.deepEqual([...toIndices([0, 0.5, 1, 0.25])], [0, 128, 255, 64]);
  assert.deepEqual([...toIndices([2, 2, 2])], [0, 0, 0]);
});

test("a point picks the patch under it in each grid; arrows move one patch and stop at the edges", () => {
  const p = { x: 0.5, y: 0.1 };
  assert.equal(queryCell(p, [4, 6]), 3);  // row 0, column 3
  assert.equal(queryCell(p, [5, 5]), 2);
  assert.equal(queryCell({ x: 1, y: 1 }, [4, 6]), 23);
  assert.deepEqual(cellCentre(3, [4, 6]), { x: 3.5 / 6, y: 0.125 });
  assert.equal(queryCell(stepQuery(null, "ArrowUp", [4, 6]), [4, 6]), 2 * 6 + 3);  // the centre cell
  assert.equal(queryCell(stepQuery(p, "ArrowLeft", [4, 6]), [4, 6]), 2);
  assert.equal(queryCell(stepQuery(p, "ArrowUp", [4, 6]), [4, 6]), 3);  // the top edge
  assert.equal(queryCell(stepQuery(p, "ArrowDown", [4, 6]), [4, 6]), 9);
  assert.equal(stepQuery(p, "Enter", [4, 6]), null);
});

test("the query point survives the hash; bad values are no query", () => {
  const vit = { slug: "vit", name: "ViT", kind: "vit", layers: 4, heads: 3, methods: ["cls"], headMethods: ["cls"],
    queryLayers: [3] };
  const data = { colormap: "viridis", colormaps: ["viridis"], models: [vit], methods: [{ key: "cls", unit: "layer" }] };
  const bySlug = new Map([["vit", vit]]);
  const state = parseState(new URLSearchParams("query=0.4167,0.1250&layer=3"), data, bySlug);
  assert.deepEqual(state.query, { x: 0.4167, y: 0.125 });
  const fd = new FormData();
  fd.append("models", "vit");
  assert.equal(formQuery(fd, state).get("query"), "0.4167,0.1250");
  assert.equal(queryText(parseQuery("2,-1")), "1.0000,0.0000");  // clamped into the image
  for (const bad of ["", "x,1", "0.5", "1,2,3", "0.5,"]) assert.equal(parseQuery(bad), null);
  assert.equal(queryNote(vit, 3), "");
  assert.equal(queryNote(vit, 1), "ViT: query rows exported for layers 3 only; rebuild with --query-layers");
  assert.equal(queryNote({ ...vit, queryLayers: [] }, 1), "ViT: no query rows exported; rebuild with --query-layers");
  assert.equal(queryNote({ ...vit, kind: "cnn" }, 1), "");
});
