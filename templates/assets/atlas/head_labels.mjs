/* The head viewer's sort by one box label (sort=label:<label>; the links of the model metrics page's head x
 * label matrix): the head's box metric on each image, averaged over that label's boxes in the image (as
 * summary.json's head_labels averages before it averages over images); images without the label have none
 * and come last. One file per label (atlas/site/head_scores.py, LabelSort): little-endian uint32 [k] image
 * indices (into the image index's order of the model), then float32 [method, layer, head, k]. Pure, except
 * fetchLabel. */

import { fetchBytes } from "./fetch_bytes.mjs";

export const LABEL_PREFIX = "label:";

/** The label sort that ``sort`` names for ``method`` ({index, label, methods, images}), or null. */
export function labelSort(sorts, sort, method) {
  if (!sorts || typeof sort !== "string" || !sort.startsWith(LABEL_PREFIX)) return null;
  const label = sort.slice(LABEL_PREFIX.length);
  const index = sorts.labels.findIndex((l) => l.label === label);
  if (index < 0 || !sorts.labels[index].methods.includes(method)) return null;
  return { index: index, ...sorts.labels[index] };
}

/** Float32Array of ``n`` images: the label's value of (method, layer, head), NaN where an image has none.
 *  ``buffer``: the label's file; ``sort``: its labelSort. */
export function labelValues(buffer, sort, method, layer, head, shape, n) {
  const [layers, heads] = shape;
  const k = sort.images;
  if (buffer.byteLength !== 4 * k * (1 + sort.methods.length * layers * heads)) throw new Error("atlas: label scores of the wrong size");
  const view = new DataView(buffer);
  const start = 4 * (k + ((sort.methods.indexOf(method) * layers + layer) * heads + head) * k);
  const out = new Float32Array(n).fill(NaN);
  for (let j = 0; j < k; j++) {
    const image = view.getUint32(4 * j, true);
    if (image < n) out[image] = view.getFloat32(start + 4 * j, true);
  }
  return out;
}

const files = new Map();
/** The file of label ``index`` of ``sorts`` (the page's labelSorts), fetched once per page. */
export function fetchLabel(sorts, index) {
  const url = sorts.url + index + ".bin";
  if (!files.has(url)) {
    files.set(url, fetchBytes(url));
  }
  return files.get(url);
}
