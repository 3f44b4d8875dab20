// The image page's keyboard shortcuts (templates/assets/atlas/keys.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { SHORTCUTS, THEME_KEYS, shortcutOf } from "../../templates/assets/atlas/keys.mjs";

const key = (k, target = { tagName: "BODY" }, mods = {}) => shortcutOf({ key: k, target: target, ...mods });

test("no shortcut takes a key of the theme (search, previous / next page)", () => {
  assert.deepEqual(Object.keys(SHORTCUTS).filter((k) => THEME_KEYS.includes(k)), []);
  assert.equal(key("s"), null);
  assert.equal(key("u"), "smooth");
});

test("keys on the page are shortcuts; Shift is part of the key", () => {
  assert.equal(key("ArrowRight"), "next-layer");
  assert.equal(key(" "), "play");
  assert.equal(key("?", { tagName: "BODY" }, { shiftKey: true }), "help");
  assert.equal(key("q"), null);
  assert.equal(key("toString"), null);  // not an inherited property either
});

test("no shortcut while a form control, a button or editable text has the focus", () => {
  for (const tagName of ["INPUT", "SELECT", "TEXTAREA", "BUTTON"]) {
    assert.equal(key(" ", { tagName: tagName }), null, tagName);
    assert.equal(key("ArrowRight", { tagName: tagName }), null, tagName);
  }
  assert.equal(key("h", { tagName: "DIV", isContentEditable: true }), null);
  assert.equal(key("h", { tagName: "DIV", isContentEditable: false }), "heads");
});

test("no shortcut while Ctrl, Alt or Meta is held", () => {
  for (const mod of ["ctrlKey", "altKey", "metaKey"]) assert.equal(key("ArrowRight", undefined, { [mod]: true }), null, mod);
});
