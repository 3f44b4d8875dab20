/* The image index (atlas-data/gallery.json, atlas/layout.py GALLERY_INDEX): every image of the atlas as one
 * compact row [id, slug, models, labels, tags, boxes, width, height] (models, labels and tags as indices into
 * data.models and the index's own labels and tags), and with --resize keep a 9th entry {model index: [gh, gw]},
 * the image's own grid for each keep model (modelImages' ``grid``). The gallery filters it; a model page chooses its image
 * from it. Fetched when the page starts, so no page's HTML grows with the number of images. */

/** The index ``{labels, tags, gallery}`` of the page's ``data.indexUrl``. */
export function fetchIndex(data) {
  return fetch(data.indexUrl).then((r) => {
    if (!r.ok) throw new Error("cannot load the image index " + data.indexUrl + " (HTTP " + r.status + ")");
    return r.json();
  });
}

/** The images of ``index`` with maps of the model ``slug``, in index order, as {id, slug, width, height, grid,
 *  href, thumb} (the page and thumbnail URLs from data.imageUrl and data.thumbUrl). Pure. */
export function modelImages(data, index, slug) {
  const k = data.models.findIndex((m) => m.slug === slug);
  return index.gallery.filter((row) => row[2].includes(k)).map(([id, s, , , , , width, height, grids]) => ({
    id: id, slug: s, width: width, height: height, grid: (grids && grids[k]) || data.models[k].grid,
    href: data.imageUrl.replace("IMAGE", s), thumb: data.thumbUrl.replace("IMAGE", s) }));
}
