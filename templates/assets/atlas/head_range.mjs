/* The head viewer's head scale (scale=head): one colour range for one head (model, method, layer, variant)
 * across the images the viewer shows, so that the head compares across images as the image page's shared
 * scale compares tiles of one image. The range is [min, max] over the decoded sprite values (values.mjs) of
 * that head on every image shown; each cell is then drawn at levelOf(x, min, max) (scale.mjs), the same rule
 * as the shared scale. A canvas names its range by data-group (heat.mjs, heat_readout.mjs read it here). */

import { variantColumn } from "./layout.mjs";
import { rangeOf } from "./scale.mjs";
import { fetchValues } from "./values.mjs";

const ids = new Map();  // the group's key -> its id
const groups = new Map();  // id -> {range: Promise of [lo, hi], images: count, words}
let made = 0;

/** The id (for data-group) of the range of one head over the images ``slugs``; the range is computed once. */
export function headRange(data, model, method, layer, variant, slugs) {
  const images = [...new Set(slugs)].sort();
  const key = JSON.stringify([model.slug, method, Number(layer), variant, images]);
  if (!ids.has(key)) {
    const id = "g" + made++;
    const column = variantColumn(variant);
    const range = Promise.all(images.map((image) => fetchValues(data, model.slug, image, method, Number(layer))))
      .then((all) => rangeOf(all.map((maps) => maps[column])));
    range.catch(() => ids.delete(key));  // a later render may try again
    const head = variant === "fused" ? "the fused map" : "head " + Number(variant.slice(1));
    const words = "head scale: " + head + " of layer " + layer + ", " + method + ", across the " + images.length +
      (images.length === 1 ? " image shown" : " images shown");
    ids.set(key, id);
    groups.set(id, { range: range, images: images.length, words: words });
  }
  return ids.get(key);
}

/** Promise of the [lo, hi] of the range ``id`` (headRange); rejects for an unknown id. */
export function groupRange(id) {
  const group = groups.get(id);
  return group ? group.range : Promise.reject(new Error("atlas: no head range " + id));
}

/** How the readout names the range ``id``. */
export const groupWords = (id) => (groups.has(id) ? groups.get(id).words : "head scale");
