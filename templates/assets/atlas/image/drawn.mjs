/* What a tile of the image page draws: the one source of truth that the tile painters (the query
 * canvas), the value readout, the colour bar, the zoom dialog's inspector and the threshold veils read.
 *
 * A tile shows one of: the composite (no values of its own); a query-patch row (the state has a query
 * point and the model has query rows of the layer: the fused or head tile draws where that patch attends,
 * on the row's own min-max); or a map of the sprite sheets (the state's method and layer, or for a
 * companion tile "with:<method>" beside a per-target map, that method's fused map of the model's last
 * layer), on its own min-max or on the shared range of its model and method. */

import { sharedRange } from "../heat.mjs";
import { variantColumn } from "../layout.mjs";
import { depthIn } from "../methods.mjs";
import { fetchQuery, queryCell, queryNote } from "../query.mjs";
import { queryUrl } from "../layout.mjs";
import { rangeOf } from "../scale.mjs";
import { fetchValues } from "../values.mjs";

/** Whether ``variant`` of ``model`` draws a query-patch row in ``state`` (fused and head tiles only). */
export function drawsQuery(model, state, variant) {
  return state.query !== null && state.query !== undefined && (variant === "fused" || /^h\d+$/.test(variant)) &&
    !queryNote(model, state.layer);
}

/** What tile ``variant`` of ``model`` draws in ``state`` (pure): {kind: "composite" | "query" | "map",
 *  method, layer, variant (the sprite column's variant), scale: "map" | "shared" | "query", cell (the
 *  query patch), k (the index of the layer among the model's query layers)}. */
export function drawnSource(model, state, variant) {
  if (variant === "composite") return { kind: "composite", method: state.method, layer: state.layer, variant: variant, scale: "map" };
  if (drawsQuery(model, state, variant)) {
    return { kind: "query", method: state.method, layer: state.layer, variant: variant, scale: "query",
      cell: queryCell(state.query, model.grid), k: model.queryLayers.indexOf(state.layer) };
  }
  if (variant.startsWith("with:")) {
    const method = variant.slice(5);
    return { kind: "map", method: method, layer: depthIn(model, method) - 1, variant: "fused", scale: state.scale };
  }
  return { kind: "map", method: state.method, layer: state.layer, variant: variant, scale: state.scale };
}

/** Words for the range a source is drawn on (the colour bar's title and the readout's suffix). */
export function rangeWords(model, src) {
  if (src.scale === "shared") return "shared scale of " + model.name + ", " + src.method;
  if (src.scale === "query") return "this query row's own min-max";
  return "this map's own min-max";
}

/** Promise of {src, values, lo, hi} of what the tile draws (null for the composite): ``values`` the raw
 *  values of its cells, [lo, hi] the range its colours are drawn on. */
export function drawnValues(page, model, state, variant) {
  const src = drawnSource(model, state, variant);
  const image = page.data.image.slug;
  if (src.kind === "composite") return Promise.resolve(null);
  if (src.kind === "query") {
    return fetchQuery(queryUrl(page.data, model.slug, image), model).then((rows) => {
      const values = src.variant === "fused" ? rows.fused(src.k, src.cell) : rows.row(src.k, Number(src.variant.slice(1)), src.cell);
      const [lo, hi] = rangeOf([values]);
      return { src: src, values: values, lo: lo, hi: hi };
    });
  }
  const maps = fetchValues(page.data, model.slug, image, src.method, src.layer);
  const range = src.scale === "shared" ? sharedRange(page.data, model, image, src.method)
    : maps.then((m) => rangeOf([m[variantColumn(src.variant)]]));
  return Promise.all([maps, range]).then(([m, [lo, hi]]) => ({ src: src, values: m[variantColumn(src.variant)], lo: lo, hi: hi }));
}
