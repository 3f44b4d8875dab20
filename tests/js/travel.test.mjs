// State that travels between atlas pages (links.mjs) and the image page's model × head table (table.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { travelHref } from "../../templates/assets/atlas/links.mjs";
import { rowCells, tableColumns } from "../../templates/assets/atlas/image/table.mjs";

const q = (s) => new URLSearchParams(s);

test("a link gets the keys its target page reads; its own hash wins", () => {
  const state = q("models=a,b&method=mean&layer=5&cmap=turbo&display=heat&zoom=a:h03&fit=1&off.a=1,2&image=x");
  assert.equal(travelHref("../../images/y/", state, "image"),
    "../../images/y/#models=a%2Cb&method=mean&layer=5&cmap=turbo&display=heat&zoom=a%3Ah03&fit=1&off.a=1%2C2");
  assert.equal(travelHref("../../heads/a/l05-h03/", state, "head"), "../../heads/a/l05-h03/#method=mean&cmap=turbo&display=heat");
  assert.equal(travelHref("../../models/a/", state, "model"), "../../models/a/#method=mean&cmap=turbo&display=heat&fit=1&image=x");
  // the model page's fused tile names its own models, method and layer
  assert.equal(travelHref("../../images/y/#models=a&method=cls&layer=2", q("image=y&method=mean&cmap=turbo"), "image"),
    "../../images/y/#models=a&method=cls&layer=2&cmap=turbo");
  assert.equal(travelHref("../x/", q(""), "image"), "../x/");
  assert.equal(travelHref("../x/", state, "unknown"), "../x/");
});

const row = (slug, perHead, variants) => ({ model: { slug }, perHead, variants });

test("the table has fixed columns: fused, composite, then every head any row has", () => {
  const rows = [row("a", true, ["fused", "h00", "h01", "h02"]), row("s", true, ["fused", "h00"]), row("r", false, ["fused"])];
  assert.deepEqual(tableColumns(rows), ["fused", "h00", "h01", "h02"]);
  assert.deepEqual(tableColumns([row("a", true, ["fused", "composite"])]), ["fused", "composite"]);
  const heads12 = Array.from({ length: 12 }, (_, h) => "h" + String(h).padStart(2, "0"));
  assert.deepEqual(tableColumns([row("a", true, ["fused", ...heads12].reverse())]), ["fused", ...heads12]);
  const columns = tableColumns(rows);
  // fewer heads: empty cells; a row without heads: one note across the head columns
  assert.deepEqual(rowCells(rows[1], columns), [{ variant: "fused", index: 0 }, { variant: "h00", index: 1 }, { empty: true }, { empty: true }]);
  assert.deepEqual(rowCells(rows[2], columns), [{ variant: "fused", index: 0 }, { note: 3 }]);
});
