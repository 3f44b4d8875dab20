// The image page's pure state (templates/assets/atlas/image/state.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { clickHead, cycle, formQuery, gridKey, parseState, plan, showsHeads, stepLayer } from "../../templates/assets/atlas/image/state.mjs";

const vit = { slug: "vit", name: "ViT", layers: 4, heads: 3, methods: ["cls", "rollout"], headMethods: ["cls"] };
const cnn = { slug: "cnn", name: "CNN", layers: 2, heads: 0, methods: ["gradcam"], headMethods: [] };
const data = {
  colormap: "inferno", colormaps: ["inferno", "viridis"], models: [vit, cnn],
  methods: [{ key: "cls", unit: "layer" }, { key: "rollout", unit: "layer" }, { key: "gradcam", unit: "stage" }],
};
const bySlug = new Map(data.models.map((m) => [m.slug, m]));
const parse = (hash) => parseState(new URLSearchParams(hash), data, bySlug);

test("an empty hash shows every model, the first method of the data block, the last layer", () => {
  assert.deepEqual(parse(""), {
    models: ["vit", "cnn"], method: "cls", wantLayer: 3, layer: 3, view: "heads", display: "overlay", opacity: 60,
    cmap: "inferno", boxes: 1, smooth: 0, thr: "none", p: 20, mass: 0.6, composite: 0, hn: 0, scale: "map", off: {}, zoom: "", fit: 0,
    query: null, feat: "", fbox: 0,
  });
});

test("the feature view and its box are read from the hash and kept by the form", () => {
  assert.deepEqual([parse("feat=box&fbox=2").feat, parse("feat=box&fbox=2").fbox], ["box", 2]);
  assert.deepEqual([parse("feat=nope&fbox=-3").feat, parse("feat=nope&fbox=-3").fbox], ["", 0]);
});

test("values are checked and clamped", () => {
  const s = parse("models=cnn,nope&method=cls&layer=9&opacity=300&cmap=jet&thr=top&p=0&mass=7&composite=1");
  assert.deepEqual(s.models, ["cnn"]);
  assert.equal(s.method, "gradcam");  // cls is not a method of the chosen models
  assert.equal(s.layer, 1);
  assert.equal(s.wantLayer, 3);  // the deepest model's last layer
  assert.equal(s.view, "heads");  // kept, though the cnn has no per-head maps: plan() shows its fused map
  assert.deepEqual(plan(s, bySlug).rows[0].variants, ["fused"]);
  assert.equal(s.opacity, 100);
  assert.equal(s.cmap, "inferno");
  assert.equal(s.p, 1);
  assert.equal(s.mass, 1);
  assert.equal(s.composite, 1);  // kept for the next method with per-head maps
  assert.equal(showsHeads(s, bySlug), false);
  assert.equal(parse("models=").models.length, 0);
  assert.equal(parse("models=").method, "");
});

test("hidden heads per model; an old permalink's off= applies to every model", () => {
  assert.deepEqual(parse("off.vit=0,2,7,x").off, { vit: [0, 2] });
  assert.deepEqual(parse("off=1").off, { vit: [1] });  // cnn has no heads
  assert.deepEqual(parse("off=1&off.vit=2").off, { vit: [2] });
});

test("formQuery writes the form's fields plus the hidden heads and the zoom", () => {
  const fd = new FormData();
  fd.append("models", "vit");
  fd.append("models", "cnn");
  fd.append("method", "cls");
  fd.append("layer", "2");
  fd.append("smooth", "on");
  const q = formQuery(fd, { off: { vit: [1, 2] }, zoom: "vit:h01" });
  assert.equal(q.toString(), "models=vit%2Ccnn&method=cls&layer=2&boxes=0&smooth=1&composite=0&fit=0&hn=0&scale=map&off.vit=1%2C2&zoom=vit%3Ah01");
});

test("plan: rows per model and why the others are hidden", () => {
  assert.deepEqual(plan(parse("method=cls&layer=1"), bySlug), {
    rows: [{ model: vit, perHead: true, variants: ["fused", "h00", "h01", "h02"] }],
    hidden: ["CNN has no cls map"],
  });
  // the composite beside the per-head tiles; fused only + composite when the heads are off
  assert.deepEqual(plan(parse("models=vit,cnn&method=cls&composite=1"), bySlug).rows[0].variants,
    ["fused", "composite", "h00", "h01", "h02"]);
  assert.deepEqual(plan(parse("models=vit&method=cls&composite=1&view=fused"), bySlug).rows[0].variants, ["fused", "composite"]);
  assert.deepEqual(plan(parse("method=cls&view=fused"), bySlug).rows[0].variants, ["fused"]);
  const deep = { ...cnn, slug: "deep", name: "Deep", layers: 5 };
  const two = new Map([["cnn", cnn], ["deep", deep]]);
  const s = parseState(new URLSearchParams("method=gradcam&layer=4"), { ...data, models: [cnn, deep] }, two);
  assert.deepEqual(plan(s, two).hidden, ["CNN has only 2 layers"]);
});

test("gridKey: a layer change keeps the grid unless veils or composites depend on it", () => {
  const key = (hash) => { const s = parse(hash); return gridKey(s, plan(s, bySlug).rows); };
  assert.equal(key("layer=1"), key("layer=2"));
  assert.equal(key("layer=1&opacity=10"), key("layer=1&opacity=90"));
  assert.notEqual(key("layer=1&thr=top"), key("layer=2&thr=top"));
  assert.notEqual(key("layer=1"), key("layer=1&display=heat"));
  assert.notEqual(key("composite=1&off.vit=1"), key("composite=1&off.vit=2"));
});

test("layer steps wrap around; cycle wraps and starts at the first entry", () => {
  assert.equal(stepLayer(3, 1, 3), 0);
  assert.equal(stepLayer(0, -1, 3), 3);
  assert.equal(stepLayer(1, 1, 3), 2);
  assert.equal(cycle(["a", "b", "c"], "c"), "a");
  assert.equal(cycle(["a", "b", "c"], "zz"), "a");
});

test("legend clicks: a click toggles a head; a double click solos it, or shows all if it was solo", () => {
  assert.equal(clickHead([], 1, 4, false), "1");
  assert.equal(clickHead([3, 1], 1, 4, false), "3");
  assert.equal(clickHead([0, 2], 3, 4, false), "0,2,3");
  // the double click's first click toggled head 1 off already: [1] -> the second click solos head 1
  assert.equal(clickHead([1], 1, 4, true), "0,2,3");
  // head 1 solo ([0,2,3]); first click hid it ([0,1,2,3]); the second click shows all heads again
  assert.equal(clickHead([0, 1, 2, 3], 1, 4, true), "");
});

/** The form as syncControls fills it from ``state`` (hidden fields included), as FormData. */
function formOf(state) {
  const fd = new FormData();
  for (const m of state.models) fd.append("models", m);
  for (const k of ["method", "layer", "view", "display", "opacity", "cmap", "thr", "p", "mass"]) fd.set(k, String(state[k]));
  for (const k of ["boxes", "smooth", "composite", "fit", "hn"]) if (state[k]) fd.set(k, "on");
  if (state.scale === "shared") fd.set("scale", "shared");
  return fd;
}

/** The state after the user changes one field of the form showing ``state`` (a change event). */
const change = (state, key, value) => {
  const fd = formOf(state);
  fd.set(key, value);
  return parse(formQuery(fd, state).toString());
};

test("the head choices survive a method without per-head maps", () => {
  let s = parse("method=cls&view=heads&composite=1");
  s = change(s, "method", "rollout");  // no per-head maps: fused only, the choices kept
  assert.deepEqual(plan(s, bySlug).rows[0].variants, ["fused"]);
  assert.equal(showsHeads(s, bySlug), false);
  s = change(s, "method", "cls");
  assert.equal(s.view, "heads");
  assert.equal(s.composite, 1);
  assert.deepEqual(plan(s, bySlug).rows[0].variants, ["fused", "composite", "h00", "h01", "h02"]);
});

test("the layer asked for survives a method with fewer layers (Grad-CAM stages)", () => {
  let s = parse("method=cls&layer=3");
  s = change(s, "models", "cnn");  // only the cnn (fd.set replaces every models entry): Grad-CAM, 2 stages
  assert.equal(s.method, "gradcam");
  assert.equal(s.layer, 1);  // shown: clamped
  assert.equal(s.wantLayer, 3);
  s = change(s, "opacity", "40");  // another change keeps it
  const back = formOf(s);
  back.append("models", "vit");
  back.set("method", "cls");
  s = parse(formQuery(back, s).toString());
  assert.equal(s.layer, 3);
  assert.equal(change(parse("models=cnn&layer=3"), "layer", "0").wantLayer, 0);  // moving the slider sets it
});

test("state round trips are clean: the form of a parsed state writes the same hash back", () => {
  for (const hash of ["", "method=rollout&composite=1&view=fused", "models=cnn&layer=3&composite=1",
    "method=cls&layer=2&view=heads&composite=1&off.vit=1&thr=top&p=30&smooth=1&zoom=vit%3Ah01", "fit=1",
    "hn=1&layer=1", "method=cls&layer=1&scale=shared"]) {
    const s = parse(hash);
    const again = parse(formQuery(formOf(s), s).toString());
    assert.deepEqual(again, s, hash);
    assert.equal(formQuery(formOf(again), again).toString(), formQuery(formOf(s), s).toString(), hash);
  }
});
