/* A model page's image choice: a combobox (WAI-ARIA "list autocomplete") over the model's images, which may
 * be 10,000: typing filters the ids (part of the id, any case), the list shows at most CHOICE_LIMIT of them,
 * ArrowDown / ArrowUp move in the list, Enter or a click picks, Escape closes the list (then restores the
 * shown image's id); a click or ArrowDown on the field lists every image (CHOICE_LIMIT of them around the
 * shown one). The
 * previous / next buttons step through the images in order, wrapping around. */

import { el } from "./dom.mjs";

export const CHOICE_LIMIT = 50;

/** Indices of the ``images`` ({id}) whose id contains ``text`` (any case), the first ``limit`` of them from
 *  index ``start`` on, and how many match in all. Pure. */
export function matchImages(images, text, limit, start = 0) {
  const want = text.trim().toLowerCase();
  const shown = [];
  let total = 0;
  images.forEach((image, k) => {
    if (!image.id.toLowerCase().includes(want)) return;
    total += 1;
    if (shown.length < limit && k >= start) shown.push(k);
  });
  return { shown, total };
}

/** The image Enter picks when no option is active: the one whose id is ``text`` (any case), else the first
 *  shown; -1 when none matches. Pure. */
export function pickFor(images, text, shown) {
  const want = text.trim().toLowerCase();
  const exact = shown.find((k) => images[k].id.toLowerCase() === want);
  return exact !== undefined ? exact : shown.length ? shown[0] : -1;
}

/** The position ``delta`` steps from ``index`` in a list of ``count`` (wrapping around; -1 counts as before
 *  the first). Pure. */
export const stepIndex = (index, delta, count) => (count ? (((index + delta) % count) + count) % count : -1);

/** What the note under the field says of the list ``found`` (matchImages) of ``count`` images. Pure. */
export function matchNote(found, count) {
  const { shown, total } = found;
  const n = (x) => x.toLocaleString("en");
  if (!total) return "no image id contains that";
  if (shown.length === total) return total === count ? "all " + n(count) + " images" : total + " of " + n(count) + " images match";
  if (total === count) {
    return "images " + n(shown[0] + 1) + "–" + n(shown[shown.length - 1] + 1) + " of " + n(count) +
      " listed: type part of an id to find others";
  }
  return shown.length + " of " + n(total) + " matching images listed: type more of the id";
}

/** Bind the chooser under ``box`` to ``images`` ({id, slug}); ``choose(slug)`` is called with the picked image.
 *  Returns ``show(slug)``, which puts the shown image's id into the field (unless the list is open). */
export function initImageChooser(box, images, choose) {
  const input = box.querySelector("input[role=combobox]");
  const list = box.querySelector("[role=listbox]");
  const note = box.querySelector("[data-role=image-note]");
  const [prev, next] = ["prev", "next"].map((k) => box.querySelector("[data-action=" + k + "-image]"));
  let current = -1, shown = [], active = -1;
  const position = () => (!images.length ? "no image has maps of this model"
    : current < 0 ? "" : "image " + (current + 1) + " of " + images.length);

  function setActive(k) {
    active = k;
    list.querySelectorAll("[role=option]").forEach((o, i) => o.setAttribute("aria-selected", String(i === k)));
    const option = k >= 0 ? list.children[k] : null;
    if (option) {
      input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else input.removeAttribute("aria-activedescendant");
  }
  function open(text, start) {
    const found = matchImages(images, text, CHOICE_LIMIT, start);
    shown = found.shown;
    list.replaceChildren(...shown.map((k, i) => el("li", {
      role: "option", id: list.id + "-" + i, "aria-selected": "false", "data-slug": images[k].slug,
      class: k === current ? "atlas-current" : null, text: images[k].id })));
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    note.textContent = matchNote(found, images.length);
    setActive(-1);
  }
  function close() {
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    shown = [];
    active = -1;
    note.textContent = position();
  }
  function pick(k) {
    close();
    if (k < 0) return;
    input.value = images[k].id;
    if (k !== current) choose(images[k].slug);
  }
  function restore() {
    close();
    input.value = current < 0 ? "" : images[current].id;
  }
  const isOpen = () => !list.hidden;
  const listAll = () => {  // every image, from a little before the shown one
    open("", Math.max(0, Math.min(current - CHOICE_LIMIT / 2, images.length - CHOICE_LIMIT)));
    setActive(shown.indexOf(current));
  };

  input.addEventListener("input", () => open(input.value));
  input.addEventListener("click", () => { if (!isOpen()) listAll(); });
  input.addEventListener("focus", () => input.select());
  input.addEventListener("blur", restore);
  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!isOpen()) listAll();
      else if (shown.length) setActive(stepIndex(active < 0 && e.key === "ArrowUp" ? 0 : active,
        e.key === "ArrowDown" ? 1 : -1, shown.length));
    } else if (e.key === "Enter") {
      e.preventDefault();  // the form is never submitted
      if (isOpen()) pick(active >= 0 ? shown[active] : pickFor(images, input.value, shown));
    } else if (e.key === "Escape") {
      if (isOpen()) close();
      else restore();
    }
  });
  list.addEventListener("pointerdown", (e) => e.preventDefault());  // the field keeps the focus
  list.addEventListener("click", (e) => {
    const option = e.target instanceof Element && e.target.closest("[role=option]");
    if (option) pick(images.findIndex((i) => i.slug === option.dataset.slug));
  });
  prev.addEventListener("click", () => pick(stepIndex(current, -1, images.length)));
  next.addEventListener("click", () => pick(stepIndex(current, 1, images.length)));
  for (const node of [input, prev, next]) node.disabled = images.length === 0;
  prev.disabled = next.disabled = images.length < 2;

  return function show(slug) {
    current = images.findIndex((i) => i.slug === slug);
    if (!isOpen()) restore();  // an open list is the reader's choice in progress: it stays
  };
}
