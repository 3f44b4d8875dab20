/* URLs of the atlas' assets and pages, and a tile's place in its sprite sheet: the mirror of
 * atlas/layout.py (spriteUrl, queryUrl; variantColumn follows layout.sprite_tile). Pure. */

export const pad = (n) => String(n).padStart(2, "0");
/** Variant name of head h (h < 0: the fused map). */
export const variantName = (h) => (h < 0 ? "fused" : "h" + pad(h));
/** Column of a variant in its sprite sheet: fused first, then h00, h01... (layout.sprite_tile). */
export const variantColumn = (variant) => (variant === "fused" ? 0 : Number(variant.slice(1)) + 1);
/** The head variants h00.. of a model with ``heads`` heads. */
export const headVariants = (heads) => Array.from({ length: heads }, (_, h) => variantName(h));

export function spriteUrl(data, model, image, method) {
  return data.maps + model + "/" + image + "/" + method + ".png";
}
/** The query-patch rows of one (model, image): every exported layer (layout.query_rows). */
export function queryUrl(data, model, image) {
  return data.maps + model + "/" + image + "/query.bin";
}
/** The PCA maps, box similarities and patch features of one (model, image) (layout.feature_file). */
export function featuresUrl(data, model, image) {
  return data.maps + model + "/" + image + "/features.bin";
}
export function headUrl(data, model, layer, head) {
  return data.headUrl.replace("MODEL", model).replace("lLAYER-hHEAD", "l" + pad(layer) + "-h" + pad(head));
}
