/* The gallery: every image's row is in the image index (image_index.mjs: [id, slug, models, labels, tags,
 * boxes, width, height], the models, labels and tags as indices); the filters run over all of them and one
 * page of cards is built. Filters and page live in the URL hash (q, model, label, tag, page). */

import { el, setField } from "./dom.mjs";
import { onHashChange, readHash, writeHash } from "./hash.mjs";
import { fetchIndex } from "./image_index.mjs";
import { pageCount, pageOf, pageRange, renderPager } from "./pager.mjs";

export const GALLERY_PAGE_SIZE = 60;

/** The rows of ``data.gallery`` (the index's, with its labels and tags) that pass the filters ``f`` =
 *  {q, model, label, tag} (hash values). Pure. */
export function filterImages(data, f) {
  const text = (f.q || "").toLowerCase();
  const model = f.model ? (f.model === "*" ? "*" : data.models.findIndex((m) => m.slug === f.model)) : null;
  const label = f.label ? data.labels.indexOf(f.label) : null;
  const tag = f.tag ? data.tags.indexOf(f.tag) : null;
  return data.gallery.filter((row) =>
    row[0].toLowerCase().includes(text) &&
    (model === null || (model === "*" ? row[2].length === data.models.length : row[2].includes(model))) &&
    (label === null || row[3].includes(label)) &&
    (tag === null || row[4].includes(tag)));
}

function card(data, row) {
  const [id, slug, models, , , boxes] = row;
  const href = data.imageUrl.replace("IMAGE", slug);
  return el("li", { class: "atlas-card" }, [
    el("a", { href: href }, [
      el("img", { src: data.thumbUrl.replace("IMAGE", slug), alt: id, loading: "lazy" }),
      el("span", { class: "atlas-card-title", text: id })]),
    el("span", { class: "atlas-card-meta",
      text: models.length + "/" + data.models.length + " models · " + boxes + " box" + (boxes === 1 ? "" : "es") })]);
}

/** Load the image index, then show the gallery; the promise settles once the first page of cards is built. */
export function initGallery(root, data) {
  const count = root.querySelector(".atlas-count");
  return fetchIndex(data).then((index) => showGallery(root, { ...data, ...index }), (err) => {
    count.textContent = err.message;
    console.error("atlas: " + err.message);
  });
}

function showGallery(root, data) {
  const form = root.querySelector("form.atlas-controls");
  const list = root.querySelector("[data-role=cards]");
  const pagers = [...root.querySelectorAll("[data-role=pager]")];
  const count = root.querySelector(".atlas-count");
  const names = ["q", "model", "label", "tag"].filter((n) => form.elements[n]);
  const filters = () => Object.fromEntries(names.map((n) => [n, form.elements[n].value]));
  function render() {
    const q = readHash();
    for (const name of names) setField(form, name, q.get(name) || "");
    const shown = filterImages(data, filters());
    const page = pageOf(q.get("page"), shown.length, GALLERY_PAGE_SIZE);
    const [start, end] = pageRange(page, shown.length, GALLERY_PAGE_SIZE);
    list.replaceChildren(...shown.slice(start, end).map((row) => card(data, row)));
    const pages = pageCount(shown.length, GALLERY_PAGE_SIZE);
    for (const nav of pagers) renderPager(nav, page, pages, (to) => { writeHash({ ...filters(), page: to }, true); render(); });
    count.textContent = shown.length + " of " + data.gallery.length + " images" +
      (pages > 1 ? " (" + (start + 1) + "–" + end + " shown)" : "");
  }
  // a changed filter starts again at page 1 (a text field's change event on blur changes nothing)
  const changed = (push) => {
    const f = filters(), q = readHash();
    if (names.every((n) => (q.get(n) || "") === f[n])) return;
    writeHash({ ...f, page: 1 }, push);
    render();
  };
  form.addEventListener("input", () => changed(false));
  form.addEventListener("change", () => changed(true));
  form.addEventListener("submit", (e) => e.preventDefault());
  onHashChange(render);
  render();
}
