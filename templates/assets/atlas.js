/* Attention Atlas pages: gallery filters, the per-image head grid, model and head pages.
 *
 * No framework, no inline code, no eval: the page's data comes from
 * <script type="application/json" id="atlas-data">, every DOM node is built with createElement /
 * textContent. The whole view state lives in the URL hash (permalinks; back/forward restore it).
 * Asset URLs follow atlas/layout.py (spriteUrl, rawUrl; a tile's place in its sprite sheet follows
 * layout.sprite_tile); thresholds follow ssl_attention/thresholds.py.
 *
 * Heatmaps: each is a <canvas class="atlas-heat"> of the patch grid's size (gw x gh) whose data
 * attributes name what it shows (model, image, method, layer, variant); its pixels are copied 1:1 from
 * the greyscale sprite sheet of that (model, image, method), loaded once and cached, then CSS scales
 * the canvas up and colours it with the SVG colormap filter. data-ready is set once it is painted.
 */
(function () {
  "use strict";

  // ---------------------------------------------------------------- thresholds (bit-exact port)
  /** Top-p % rule: keep the k = max(1, floor(n*p/100 + 0.5)) largest cells; ties: lower index. */
  function topPercentMask(values, p) {
    const n = values.length;
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = Number.isNaN(values[i]) ? -Infinity : values[i];
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => (v[a] > v[b] ? -1 : v[a] < v[b] ? 1 : a - b));
    const k = Math.max(1, Math.floor(n * p / 100 + 0.5));
    const keep = new Uint8Array(n);
    for (let j = 0; j < Math.min(k, n); j++) keep[order[j]] = 1;
    return keep;
  }

  /** Mass rule (DINO): smallest set of cells holding `mass` of the non-negative weight. */
  function massMask(values, mass) {
    const n = values.length;
    const w = new Float64Array(n);
    let anyPosInf = false;
    for (let i = 0; i < n; i++) if (values[i] === Infinity) anyPosInf = true;
    for (let i = 0; i < n; i++) {
      const x = values[i];
      w[i] = anyPosInf ? (x === Infinity ? 1 : 0) : (x > 0 ? x : 0);
    }
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => (w[a] < w[b] ? -1 : w[a] > w[b] ? 1 : b - a));
    const c = new Float64Array(n);
    let run = 0;
    for (let j = 0; j < n; j++) { run += w[order[j]]; c[j] = run; }
    const keep = new Uint8Array(n);
    const total = n ? c[n - 1] : 0;
    if (total > 0) for (let j = 0; j < n; j++) if (c[j] / total > 1 - mass) keep[order[j]] = 1;
    return keep;
  }

  // ---------------------------------------------------------------- URLs of assets and pages
  const pad = (n) => String(n).padStart(2, "0");
  const variantName = (h) => (h < 0 ? "fused" : "h" + pad(h));

  function spriteUrl(data, model, image, method) {
    return data.maps + model + "/" + image + "/" + method + ".png";
  }
  function rawUrl(data, model, image, method, layer) {
    return data.maps + model + "/" + image + "/" + method + "-l" + pad(layer) + ".f32";
  }
  function headUrl(data, model, layer, head) {
    return data.headUrl.replace("MODEL", model).replace("lLAYER-hHEAD", "l" + pad(layer) + "-h" + pad(head));
  }

  const rawCache = new Map();
  /** Float32 values of one layer file as an array of Float64Arrays (one per variant; fused first). */
  function fetchRaw(url, variants, cells) {
    if (!rawCache.has(url)) {
      rawCache.set(url, fetch(url).then((r) => {
        if (!r.ok) throw new Error("atlas: " + r.status + " " + url);
        return r.arrayBuffer();
      }).then((buffer) => {
        const view = new DataView(buffer);
        const out = [];
        for (let v = 0; v < variants; v++) {
          const a = new Float64Array(cells);
          for (let i = 0; i < cells; i++) a[i] = view.getFloat32((v * cells + i) * 4, true);
          out.push(a);
        }
        return out;
      }));
    }
    return rawCache.get(url);
  }

  // ---------------------------------------------------------------- heatmap sprite sheets
  const sprites = new Map();  // url -> Promise of the decoded <img>
  const decodedSprites = new Map();  // url -> decoded <img>: tiles of a loaded sprite paint synchronously
  function loadSprite(url) {
    if (!sprites.has(url)) {
      const img = new Image();
      img.src = url;
      sprites.set(url, img.decode().then(() => { decodedSprites.set(url, img); return img; }, (err) => {
        sprites.delete(url);  // a later paint may try again
        throw err;
      }));
    }
    return sprites.get(url);
  }
  /** Column of a variant in its sprite sheet: fused first, then h00, h01... (layout.sprite_tile). */
  const variantColumn = (variant) => (variant === "fused" ? 0 : Number(variant.slice(1)) + 1);

  /** Paint a heat canvas with the tile its data attributes name, copied 1:1 from the cached sprite
   *  (source rectangle of the canvas' own size: no scaling, so no bleeding between tiles). */
  function paintHeat(data, canvas) {
    const d = canvas.dataset;
    const url = spriteUrl(data, d.model, d.image, d.method);
    const want = url + "|" + d.layer + "|" + d.variant;
    if (canvas.atlasWant === want) return;  // painted already, or being painted
    canvas.atlasWant = want;
    delete canvas.dataset.ready;
    const x = variantColumn(d.variant) * canvas.width, y = Number(d.layer) * canvas.height;
    const draw = (img) => {
      if (canvas.atlasWant !== want) return;  // the canvas was given another tile meanwhile
      const ctx = canvas.getContext("2d");
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, x, y, canvas.width, canvas.height, 0, 0, canvas.width, canvas.height);
      canvas.dataset.ready = "1";
    };
    if (decodedSprites.has(url)) draw(decodedSprites.get(url));
    else loadSprite(url).then(draw, () => { canvas.atlasWant = null; console.error("atlas: cannot load " + url); });
  }

  /** Point a heat canvas at one map (and paint it; nothing happens if it already shows that map). */
  function setHeat(data, canvas, map, label) {
    for (const k of ["model", "image", "method", "layer", "variant"]) canvas.dataset[k] = String(map[k]);
    canvas.setAttribute("aria-label", label);
    paintHeat(data, canvas);
  }

  /** A new heat canvas for ``map`` = {model, image, method, layer, variant} of a ``grid`` = [gh, gw]. */
  function heatCanvas(data, grid, map, label) {
    const canvas = el("canvas", { class: "atlas-heat", width: grid[1], height: grid[0], role: "img" });
    setHeat(data, canvas, map, label);
    return canvas;
  }

  // ---------------------------------------------------------------- small DOM helpers
  function el(tag, attrs, children) {
    const node = document.createElementNS(
      tag === "svg" || tag === "rect" ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.setAttribute("class", v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children || []) if (child) node.appendChild(child);
    return node;
  }

  function hslToRgb(h, s, l) {
    const f = (n) => {
      const k = (n + h / 30) % 12;
      const a = s * Math.min(l, 1 - l);
      return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
    };
    return [f(0), f(8), f(4)];
  }
  /** Distinct colour of head h of H: evenly spaced hues h/H*360. */
  const headColour = (h, H) => hslToRgb((h / H) * 360, 0.9, 0.55);

  function minmax(a) {
    let lo = Infinity, hi = -Infinity;
    for (const x of a) { if (x < lo) lo = x; if (x > hi) hi = x; }
    const out = new Float64Array(a.length);
    if (hi > lo) for (let i = 0; i < a.length; i++) out[i] = (a[i] - lo) / (hi - lo);
    return out;
  }

  // ---------------------------------------------------------------- URL state
  function readHash() {
    return new URLSearchParams(location.hash.replace(/^#/, ""));
  }
  function writeHash(state, push) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(state)) params.set(k, Array.isArray(v) ? v.join(",") : String(v));
    const hash = "#" + params.toString();
    if (hash === location.hash) return;
    if (push) history.pushState(null, "", hash);
    else history.replaceState(null, "", hash);
  }
  const intOr = (s, d) => (s !== null && s !== "" && Number.isFinite(Number(s)) ? Math.round(Number(s)) : d);
  const numOr = (s, d) => (s !== null && s !== "" && Number.isFinite(Number(s)) ? Number(s) : d);
  const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

  function setField(form, name, value) {
    const fields = form.querySelectorAll("[name='" + name + "']");
    for (const f of fields) {
      if (f.type === "radio") f.checked = f.value === String(value);
      else if (f.type === "checkbox") f.checked = Array.isArray(value) ? value.includes(f.value) : !!value;
      else f.value = String(value);
    }
  }
  function show(node, visible) { if (node) node.hidden = !visible; }

  // ---------------------------------------------------------------- image page: metric panel
  const fixed3 = (v) => (v === null || v === undefined ? "–" : v.toFixed(3));

  /** One table per shown model: every metric of the fused map, the layer's best head on this image and
   *  the baselines, for the selected method and layer (values from data.metrics, see atlas/metrics_data.py). */
  function renderMetricPanel(panel, data, state, bySlug) {
    if (!panel || !data.metrics) return;
    const metrics = data.metrics;
    panel.replaceChildren();
    for (const slug of state.models) {
      const model = bySlug.get(slug), scores = metrics.models[slug];
      if (!model.methods.includes(state.method) || state.layer >= model.layers) continue;  // not in the grid either
      const unit = state.method === "gradcam" ? "stage " : "layer ";
      const caption = model.name + " · " + state.method + " · " + unit + state.layer;
      const entry = scores && scores.methods[state.method] && scores.methods[state.method][state.layer];
      if (!entry) {
        panel.appendChild(el("p", { class: "atlas-note", "data-model": slug, text: caption + ": no scores" }));
        continue;
      }
      const cols = [{ key: "fused", label: el("span", { text: "fused" }), values: entry.f }];
      if (entry.b) {
        cols.push({ key: "best", values: entry.b, label: el("a", { href: headUrl(data, slug, state.layer, entry.h) +
          "#method=" + state.method, text: "best head h" + pad(entry.h) }) });
      }
      for (const [key, name] of Object.entries(metrics.baselines)) {
        if (scores.baselines[key]) cols.push({ key: key, label: el("span", { text: name }), values: scores.baselines[key] });
      }
      const head = el("tr", {}, [el("th", { scope: "col", text: "metric" })]
        .concat(cols.map((c) => el("th", { scope: "col", "data-col": c.key }, [c.label]))));
      const rows = metrics.names.map((name, i) => el("tr", { "data-metric": name }, [el("th", { scope: "row", text: name })]
        .concat(cols.map((c) => el("td", { "data-col": c.key, text: fixed3(c.values[i]) })))));
      panel.appendChild(el("table", { class: "atlas-table atlas-metric-panel", "data-model": slug },
        [el("caption", { text: caption }), el("thead", {}, [head]), el("tbody", {}, rows)]));
    }
  }

  // ---------------------------------------------------------------- image page
  const METHODS = ["cls", "mean", "rollout", "gradcam"];
  const THRESHOLDS = ["none", "top", "mass"];

  function initImagePage(root, data) {
    const form = root.querySelector("form.atlas-controls");
    const grid = root.querySelector("[data-role=grid]");
    const zoom = root.querySelector("[data-role=zoom]");
    const help = root.querySelector("[data-role=help]");
    const boxesSvg = root.querySelector(".atlas-main .atlas-boxes");
    const image = data.image;
    const models = data.models;
    const bySlug = new Map(models.map((m) => [m.slug, m]));
    let state = null;
    let timer = null;

    function parse() {
      const q = readHash();
      const s = {};
      const picked = (q.get("models") || "").split(",").filter((x) => bySlug.has(x));
      s.models = q.has("models") ? picked : models.map((m) => m.slug);
      const chosen = s.models.map((x) => bySlug.get(x));
      const available = METHODS.filter((m) => chosen.some((x) => x.methods.includes(m)));
      s.method = available.includes(q.get("method")) ? q.get("method") : (available[0] || "");
      const depth = Math.max(1, ...chosen.filter((x) => x.methods.includes(s.method)).map((x) => x.layers));
      s.layer = clamp(intOr(q.get("layer"), depth - 1), 0, depth - 1);
      const hasHeads = chosen.some((x) => x.headMethods.includes(s.method));
      s.view = hasHeads && q.get("view") !== "fused" ? "heads" : "fused";
      s.display = q.get("display") === "heat" ? "heat" : "overlay";
      s.opacity = clamp(intOr(q.get("opacity"), 60), 0, 100);
      s.cmap = data.colormaps.includes(q.get("cmap")) ? q.get("cmap") : data.colormap;
      s.boxes = q.get("boxes") === "0" ? 0 : 1;
      s.smooth = q.get("smooth") === "1" ? 1 : 0;
      s.thr = THRESHOLDS.includes(q.get("thr")) ? q.get("thr") : "none";
      s.p = clamp(numOr(q.get("p"), 20), 1, 100);
      s.mass = clamp(numOr(q.get("mass"), 0.6), 0.05, 1);
      s.composite = hasHeads && q.get("composite") === "1" ? 1 : 0;
      // heads hidden in the composite, per model: off.<model>=0,3 (an older permalink's off=0,3 hid them in every model)
      const heads = (text) => (text || "").split(",").filter((x) => /^\d+$/.test(x)).map(Number);
      s.off = {};
      for (const m of models) {
        const hidden = heads(q.has("off." + m.slug) ? q.get("off." + m.slug) : q.get("off")).filter((h) => h < m.heads);
        if (hidden.length) s.off[m.slug] = hidden;
      }
      s.zoom = q.get("zoom") || "";
      return s;
    }

    function fromForm() {
      const fd = new FormData(form);
      const q = new URLSearchParams();
      q.set("models", fd.getAll("models").join(","));
      for (const k of ["method", "layer", "view", "display", "opacity", "cmap", "thr", "p", "mass"]) {
        if (fd.get(k) !== null) q.set(k, fd.get(k));
      }
      q.set("boxes", fd.get("boxes") ? "1" : "0");
      q.set("smooth", fd.get("smooth") ? "1" : "0");
      q.set("composite", fd.get("composite") ? "1" : "0");
      for (const [slug, hidden] of Object.entries(state.off)) q.set("off." + slug, hidden.join(","));
      q.set("zoom", state.zoom);
      return q;
    }

    function commit(q, push) {
      history[push ? "pushState" : "replaceState"](null, "", "#" + q.toString());
      render();
    }

    function syncForm() {
      const chosen = state.models.map((x) => bySlug.get(x));
      setField(form, "models", state.models);
      for (const label of form.querySelectorAll("[data-method]")) {
        show(label, chosen.some((m) => m.methods.includes(label.dataset.method)));
      }
      setField(form, "method", state.method);
      const depth = Math.max(1, ...chosen.filter((x) => x.methods.includes(state.method)).map((x) => x.layers));
      const slider = form.elements.layer;
      slider.max = String(depth - 1);
      setField(form, "layer", state.layer);
      const unit = state.method === "gradcam" ? "Stage" : "Layer";
      form.querySelector("[data-role=layer-name]").textContent = unit;
      form.querySelector("[data-role=layer-value]").textContent = state.layer + " / " + (depth - 1);
      slider.setAttribute("aria-valuetext", unit + " " + state.layer + " of " + (depth - 1));
      const hasHeads = chosen.some((x) => x.headMethods.includes(state.method));
      show(form.querySelector("[data-role=view]"), hasHeads);
      show(form.querySelector("[data-role=composite]"), hasHeads);
      setField(form, "view", state.view);
      setField(form, "display", state.display);
      setField(form, "opacity", state.opacity);
      show(form.querySelector("[data-role=opacity]"), state.display === "overlay");
      setField(form, "cmap", state.cmap);
      setField(form, "boxes", state.boxes);
      setField(form, "smooth", state.smooth);
      setField(form, "thr", state.thr);
      setField(form, "p", state.p);
      setField(form, "mass", state.mass);
      show(form.querySelector("[data-role=p]"), state.thr === "top");
      show(form.querySelector("[data-role=mass]"), state.thr === "mass");
      setField(form, "composite", state.composite);
      root.dataset.cmap = state.cmap;
      root.dataset.smooth = String(state.smooth);
      root.dataset.display = state.display;
      if (boxesSvg) boxesSvg.classList.toggle("atlas-off", !state.boxes);
    }

    function addThreshold(box, model, variantIndex) {
      const [gh, gw] = model.grid;
      const canvas = el("canvas", { class: "atlas-mask", width: gw, height: gh, "aria-hidden": "true" });
      box.appendChild(canvas);
      const count = model.headMethods.includes(state.method) ? model.heads + 1 : 1;
      const want = state.thr, p = state.p, mass = state.mass;
      fetchRaw(rawUrl(data, model.slug, image.slug, state.method, state.layer), count, gh * gw)
        .then((maps) => {
          const keep = want === "top" ? topPercentMask(maps[variantIndex], p) : massMask(maps[variantIndex], mass);
          const ctx = canvas.getContext("2d");
          const img = ctx.createImageData(gw, gh);
          let kept = 0;
          for (let i = 0; i < keep.length; i++) {
            kept += keep[i];
            img.data[4 * i + 3] = keep[i] ? 0 : 210;  // veil over the cells that are not kept
          }
          ctx.putImageData(img, 0, 0);
          canvas.dataset.kept = String(kept);
          canvas.dataset.ready = "1";
        });
    }

    function addComposite(box, model) {
      const [gh, gw] = model.grid;
      const canvas = el("canvas", { class: "atlas-composite", width: gw, height: gh,
        role: "img", "aria-label": model.name + " colour-per-head composite" });
      box.appendChild(canvas);
      const off = new Set(state.off[model.slug] || []);
      fetchRaw(rawUrl(data, model.slug, image.slug, state.method, state.layer), model.heads + 1, gh * gw)
        .then((maps) => {
          const heads = maps.slice(1).map(minmax);
          const ctx = canvas.getContext("2d");
          const img = ctx.createImageData(gw, gh);
          for (let i = 0; i < gh * gw; i++) {
            let best = -1, value = 0;
            for (let h = 0; h < heads.length; h++) {
              if (!off.has(h) && heads[h][i] > value) { best = h; value = heads[h][i]; }
            }
            if (best < 0 || value < 0.2) continue;  // DINO: cut below 0.2
            const rgb = headColour(best, model.heads);
            img.data.set([rgb[0], rgb[1], rgb[2], Math.round(255 * 0.5 * Math.sqrt(value))], 4 * i);
          }
          ctx.putImageData(img, 0, 0);
          canvas.dataset.ready = "1";
        });
    }

    /** A tile's skeleton: photo, heat canvas (or composite), threshold veil, boxes, caption. */
    function tile(model, variant, index) {
      const box = el("span", { class: "atlas-stack" });
      box.style.aspectRatio = image.width + " / " + image.height;
      if (state.display === "overlay") box.appendChild(el("img", { class: "atlas-photo", src: data.photo, alt: "" }));
      if (variant === "composite") addComposite(box, model);
      else {
        box.appendChild(el("canvas", { class: "atlas-heat", width: model.grid[1], height: model.grid[0], role: "img" }));
        if (state.thr !== "none") addThreshold(box, model, index);
      }
      if (state.boxes && boxesSvg) box.appendChild(boxesSvg.cloneNode(true));
      const button = el("button", { type: "button", class: "atlas-tile-open", "data-zoom": model.slug + ":" + variant }, [box]);
      const fig = el("figure", { class: "atlas-tile", "data-model": model.slug, "data-variant": variant },
        [button, el("figcaption", {})]);
      fillTile(fig, model, variant);
      return fig;
    }

    /** What a layer, method or opacity change alters in a tile: labels, head link, heatmap pixels. */
    function fillTile(fig, model, variant) {
      const head = variant.startsWith("h") ? Number(variant.slice(1)) : -1;
      const what = variant === "composite" ? "composite" : head >= 0 ? "head " + head : "fused";
      const unit = state.method === "gradcam" ? "stage" : "layer";
      const label = model.name + ", " + state.method + ", " + unit + " " + state.layer + ", " + what;
      fig.querySelector(".atlas-tile-open").setAttribute("aria-label", "Enlarge " + label);
      const caption = fig.querySelector("figcaption");
      if (head < 0) caption.textContent = what;
      else {
        if (!caption.firstElementChild) caption.replaceChildren(el("a", { text: what }));
        caption.firstElementChild.href = headUrl(data, model.slug, state.layer, head);
      }
      const heat = fig.querySelector("canvas.atlas-heat");
      if (!heat) return;
      heat.style.opacity = state.display === "overlay" ? String(state.opacity / 100) : "1";
      setHeat(data, heat, { model: model.slug, image: image.slug, method: state.method, layer: state.layer,
        variant: variant }, label + " heatmap");
    }

    function legend(model) {
      const list = el("ul", { class: "atlas-legend", "aria-label": model.name + " heads in the composite" });
      for (let h = 0; h < model.heads; h++) {
        const rgb = headColour(h, model.heads);
        const swatch = el("span", { class: "atlas-swatch" });
        swatch.style.background = "rgb(" + rgb.join(",") + ")";
        const on = !(state.off[model.slug] || []).includes(h);
        list.appendChild(el("li", {}, [el("button", { type: "button", "data-head": h, "aria-pressed": String(on),
          title: "click: show/hide head " + h + "; double-click: solo" }, [swatch, el("span", { text: "h" + pad(h) })])]));
      }
      return list;
    }

    function focusKey() {
      const a = document.activeElement;
      if (!a || !grid.contains(a)) return null;
      const row = a.closest(".atlas-row");
      return a.dataset.zoom ? "[data-zoom='" + CSS.escape(a.dataset.zoom) + "']"
        : a.dataset.head && row ? ".atlas-row[data-model='" + CSS.escape(row.dataset.model) + "'] [data-head='" + a.dataset.head + "']" : null;
    }

    /** The rows the state shows ({model, perHead, variants}) and why other models are hidden. */
    function plan() {
      const rows = [], hidden = [];
      for (const slug of state.models) {
        const model = bySlug.get(slug);
        if (!model.methods.includes(state.method)) { hidden.push(model.name + " has no " + state.method + " map"); continue; }
        if (state.layer >= model.layers) { hidden.push(model.name + " has only " + model.layers + " layers"); continue; }
        const perHead = model.headMethods.includes(state.method);
        let variants = ["fused"];
        if (perHead && state.composite) variants = ["fused", "composite"];
        else if (perHead && state.view === "heads") variants = variants.concat(model.heads ? Array.from({ length: model.heads }, (_, h) => variantName(h)) : []);
        rows.push({ model: model, perHead: perHead, variants: variants });
      }
      return { rows: rows, hidden: hidden };
    }

    /** Everything that changes the grid's DOM; a state change that keeps it only updates the tiles.
     *  Threshold veils and composites are drawn from one layer's raw values: they depend on the layer. */
    function gridKey(rows) {
      const perLayer = state.thr !== "none" || state.composite;
      return JSON.stringify([rows.map((r) => [r.model.slug, r.variants]), state.display, state.boxes, state.thr,
        state.p, state.mass, state.composite ? state.off : null, perLayer ? [state.method, state.layer] : null]);
    }

    let shownKey = null;
    function render() {
      const focused = focusKey();
      state = parse();
      syncForm();
      const { rows, hidden } = plan();
      const key = gridKey(rows);
      if (key === shownKey) {
        for (const fig of grid.querySelectorAll(".atlas-tile")) fillTile(fig, bySlug.get(fig.dataset.model), fig.dataset.variant);
      } else {
        shownKey = key;
        grid.replaceChildren();
        for (const { model, perHead, variants } of rows) {
          const tiles = el("div", { class: "atlas-tiles" });
          variants.forEach((v, i) => tiles.appendChild(tile(model, v, v === "composite" ? 0 : i)));
          const title = el("h2", { class: "atlas-row-title" }, [
            el("a", { href: data.modelUrl.replace("MODEL", model.slug), text: model.name }),
            model.weights === "random" ? el("span", { class: "atlas-badge", text: "random weights" }) : null,
          ]);
          grid.appendChild(el("section", { class: "atlas-row", "data-model": model.slug, "aria-label": model.name },
            [title, tiles, perHead && state.composite ? legend(model) : null]));
        }
        const again = focused && grid.querySelector(focused);
        if (again) again.focus();
      }
      root.querySelector("[data-role=hidden-rows]").textContent = hidden.length ? "Hidden: " + hidden.join("; ") + "." : "";
      renderZoom();
      renderMetricPanel(root.querySelector("[data-role=metrics]"), data, state, bySlug);
    }

    function renderZoom() {
      const [slug, variant] = state.zoom.split(":");
      const source = slug && grid.querySelector(".atlas-tile[data-model='" + CSS.escape(slug) + "'][data-variant='" + CSS.escape(variant || "") + "']");
      const body = zoom.querySelector("[data-role=zoom-body]");
      if (!source) { if (zoom.open) zoom.close(); return; }
      body.replaceChildren(source.cloneNode(true));
      for (const c of source.querySelectorAll("canvas")) {
        const copy = body.querySelector("canvas." + c.className);
        if (c.classList.contains("atlas-heat")) { paintHeat(data, copy); continue; }  // from the cached sprite
        const paint = () => copy.getContext("2d").drawImage(c, 0, 0);
        if (c.dataset.ready) paint(); else new MutationObserver((_, obs) => { paint(); obs.disconnect(); }).observe(c, { attributes: true });
      }
      if (!zoom.open) zoom.showModal();
    }

    function step(delta) {
      const q = readHash();
      const max = Number(form.elements.layer.max);
      const next = (state.layer + delta + max + 1) % (max + 1);
      q.set("layer", String(next));
      commit(q, timer === null);
    }

    function togglePlay(on) {
      const button = form.querySelector("[data-action=play]");
      if (on && timer === null) timer = setInterval(() => step(1), 800);
      if (!on && timer !== null) { clearInterval(timer); timer = null; }
      button.setAttribute("aria-pressed", String(timer !== null));
      button.textContent = timer !== null ? "⏸ Pause" : "▶ Play";
    }

    function set(key, value) {
      const q = fromForm();
      q.set(key, value);
      commit(q, true);
    }

    form.addEventListener("change", () => commit(fromForm(), true));
    form.addEventListener("input", (e) => { if (e.target.type === "range") commit(fromForm(), false); });
    form.addEventListener("submit", (e) => e.preventDefault());
    form.querySelector("[data-action=play]").addEventListener("click", () => togglePlay(timer === null));
    form.querySelector("[data-action=help]").addEventListener("click", () => help.showModal());
    let lastHead = null;  // {key, time} of the last legend click, to tell a double-click
    grid.addEventListener("click", (e) => {
      const open = e.target.closest("[data-zoom]");
      if (open && !zoom.open) { set("zoom", open.dataset.zoom); return; }
      const head = e.target.closest("[data-head]");
      if (!head) return;
      const h = Number(head.dataset.head);
      const model = bySlug.get(head.closest(".atlas-row").dataset.model);
      const key = model.slug + ":" + h, now = performance.now();
      const off = new Set(state.off[model.slug] || []);
      const toggle = () => { if (off.has(h)) off.delete(h); else off.add(h); };
      toggle();  // a single click toggles; the 2nd click of a double-click undoes the 1st
      if (lastHead && lastHead.key === key && now - lastHead.time < 450) {
        lastHead = null;  // double-click: solo the head, or show all heads if it was solo already
        const solo = off.size === model.heads - 1 && !off.has(h);
        const others = Array.from({ length: model.heads }, (_, i) => i).filter((i) => i !== h);
        set("off." + model.slug, solo ? "" : others.join(","));
        return;
      }
      lastHead = { key: key, time: now };
      set("off." + model.slug, [...off].sort((a, b) => a - b).join(","));
    });
    zoom.addEventListener("close", () => { if (state.zoom) set("zoom", ""); });
    window.addEventListener("popstate", render);
    window.addEventListener("hashchange", render);
    document.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey || zoom.open) return;
      const t = e.target;
      if (t && (t.tagName === "SELECT" || t.tagName === "TEXTAREA" ||
          (t.tagName === "INPUT" && !["checkbox", "radio"].includes(t.type)))) return;
      const cycle = (list, current) => list[(list.indexOf(current) + 1) % list.length];
      const methods = [...form.querySelectorAll("[data-method]")].filter((x) => !x.hidden).map((x) => x.dataset.method);
      const actions = {
        ArrowLeft: () => step(-1), ArrowRight: () => step(1), " ": () => togglePlay(timer === null),
        m: () => set("method", cycle(methods, state.method)),
        h: () => set("view", state.view === "heads" ? "fused" : "heads"),
        o: () => set("display", state.display === "overlay" ? "heat" : "overlay"),
        b: () => set("boxes", state.boxes ? "0" : "1"),
        c: () => set("cmap", cycle(data.colormaps, state.cmap)),
        s: () => set("smooth", state.smooth ? "0" : "1"),
        t: () => set("thr", cycle(THRESHOLDS, state.thr)),
        x: () => set("composite", state.composite ? "0" : "1"),
        "?": () => help.showModal(),
      };
      if (actions[e.key]) { e.preventDefault(); actions[e.key](); }
    });
    render();
  }

  // ---------------------------------------------------------------- gallery
  function initGallery(root, data) {
    const form = root.querySelector("form.atlas-controls");
    const cards = [...root.querySelectorAll(".atlas-card")];
    const count = root.querySelector(".atlas-count");
    function render() {
      const q = readHash();
      for (const name of ["q", "model", "label", "tag"]) if (form.elements[name]) setField(form, name, q.get(name) || "");
      const text = (q.get("q") || "").toLowerCase(), model = q.get("model") || "", label = q.get("label") || "";
      const tag = form.elements.tag ? q.get("tag") || "" : "";
      const everyModel = data.models.length;
      let shown = 0;
      for (const card of cards) {
        const models = card.dataset.models.split(" ").filter(Boolean);
        const ok = card.dataset.name.includes(text) &&
          (!model || (model === "*" ? models.length === everyModel : models.includes(model))) &&
          (!label || JSON.parse(card.dataset.labels).includes(label)) &&
          (!tag || JSON.parse(card.dataset.tags).includes(tag));
        card.hidden = !ok;
        shown += ok;
      }
      count.textContent = shown + " of " + cards.length + " images";
    }
    const update = (push) => writeHash({ q: form.elements.q.value, model: form.elements.model.value,
      label: form.elements.label.value, tag: form.elements.tag ? form.elements.tag.value : "" }, push);
    form.addEventListener("input", () => { update(false); render(); });
    form.addEventListener("change", () => { update(true); render(); });
    form.addEventListener("submit", (e) => e.preventDefault());
    window.addEventListener("popstate", render);
    window.addEventListener("hashchange", render);
    render();
  }

  // ---------------------------------------------------------------- model page
  function initModelPage(root, data) {
    const form = root.querySelector("form.atlas-controls");
    const grid = root.querySelector("[data-role=grid]");
    const model = data.models.find((m) => m.slug === data.model);
    const images = new Map(data.images.map((i) => [i.slug, i]));
    function render() {
      const q = readHash();
      const image = images.get(q.get("image")) || data.images[0];
      const method = model.methods.includes(q.get("method")) ? q.get("method") : model.methods[0];
      const display = q.get("display") === "heat" ? "heat" : "overlay";
      const cmap = data.colormaps.includes(q.get("cmap")) ? q.get("cmap") : data.colormap;
      setField(form, "image", image ? image.slug : "");
      setField(form, "method", method);
      setField(form, "display", display);
      setField(form, "cmap", cmap);
      root.dataset.cmap = cmap;
      root.dataset.display = display;
      grid.replaceChildren();
      if (!image) return;
      const perHead = model.headMethods.includes(method);
      const unit = model.kind === "cnn" ? "stage" : "layer";
      const table = el("table", { class: "atlas-layer-grid" });
      const head = el("tr", {}, [el("th", { scope: "col", text: unit })]);
      head.appendChild(el("th", { scope: "col", text: "fused" }));
      if (perHead) for (let h = 0; h < model.heads; h++) head.appendChild(el("th", { scope: "col", text: "h" + pad(h) }));
      table.appendChild(el("thead", {}, [head]));
      const body = el("tbody");
      for (let l = 0; l < model.layers; l++) {
        const row = el("tr", {}, [el("th", { scope: "row", text: unit + " " + l })]);
        const variants = ["fused"].concat(perHead ? Array.from({ length: model.heads }, (_, h) => variantName(h)) : []);
        variants.forEach((v, i) => {
          const box = el("span", { class: "atlas-stack" });
          box.style.aspectRatio = image.width + " / " + image.height;
          if (display === "overlay") box.appendChild(el("img", { class: "atlas-photo", src: image.thumb, alt: "", loading: "lazy" }));
          box.appendChild(heatCanvas(data, model.grid, { model: model.slug, image: image.slug, method: method, layer: l, variant: v },
            model.name + " " + method + " " + unit + " " + l + " " + (i ? "head " + (i - 1) : "fused") + " on " + image.id));
          const href = i ? headUrl(data, model.slug, l, i - 1) : image.href + "#models=" + model.slug + "&method=" + method + "&layer=" + l;
          row.appendChild(el("td", {}, [el("a", { href: href }, [box])]));
        });
        body.appendChild(row);
      }
      table.appendChild(body);
      grid.appendChild(table);
    }
    form.addEventListener("change", () => {
      writeHash({ image: form.elements.image.value, method: new FormData(form).get("method"),
        display: new FormData(form).get("display"), cmap: form.elements.cmap.value }, true);
      render();
    });
    window.addEventListener("popstate", render);
    window.addEventListener("hashchange", render);
    render();
  }

  // ---------------------------------------------------------------- head page
  function initHeadPage(root, data) {
    const form = root.querySelector("form.atlas-controls");
    const model = data.models.find((m) => m.slug === data.model);
    // one sprite sheet per image, loaded when its card comes near the viewport
    const visible = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
      for (const e of entries) if (e.isIntersecting) { visible.unobserve(e.target); paintHeat(data, e.target); }
    }, { rootMargin: "300px" }) : { observe: (c) => paintHeat(data, c) };
    function render() {
      const q = readHash();
      const method = model.headMethods.includes(q.get("method")) ? q.get("method") : data.method;
      const display = q.get("display") === "heat" ? "heat" : "overlay";
      const cmap = data.colormaps.includes(q.get("cmap")) ? q.get("cmap") : data.colormap;
      setField(form, "method", method);
      setField(form, "display", display);
      setField(form, "cmap", cmap);
      root.dataset.cmap = cmap;
      root.dataset.display = display;
      for (const link of root.querySelectorAll("a[data-image]")) {
        const heat = link.querySelector("canvas.atlas-heat");
        if (heat.dataset.method !== method || !heat.atlasWant) {
          heat.dataset.method = method;
          heat.setAttribute("aria-label", model.name + " " + method + " layer " + data.layer + " head " + data.head +
            " on " + link.querySelector(".atlas-card-title").textContent);
          visible.observe(heat);
        }
        link.href = link.href.replace(/method=[a-z]+/, "method=" + method);
      }
    }
    form.addEventListener("change", () => {
      const fd = new FormData(form);
      writeHash({ method: fd.get("method"), display: fd.get("display"), cmap: fd.get("cmap") }, true);
      render();
    });
    window.addEventListener("popstate", render);
    window.addEventListener("hashchange", render);
    render();
  }

  // ---------------------------------------------------------------- entry point
  const PAGES = { gallery: initGallery, image: initImagePage, model: initModelPage, head: initHeadPage };
  function init() {
    const node = document.getElementById("atlas-data");
    const root = node && node.closest(".atlas-root");
    if (!root || root.dataset.atlasReady) return;
    root.dataset.atlasReady = "1";
    const data = JSON.parse(node.textContent);
    if (PAGES[data.page]) PAGES[data.page](root, data);
  }
  window.atlasThresholds = { topPercentMask: topPercentMask, massMask: massMask };
  if (window.document$ && typeof window.document$.subscribe === "function") window.document$.subscribe(init);
  else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
