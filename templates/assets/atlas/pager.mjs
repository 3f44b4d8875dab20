/* Pages of a long list (gallery cards, head-viewer cards): which items a page shows, and the pager's
 * buttons. The page number lives in the URL hash (``page``, from 1). Pure except ``renderPager``. */

import { el } from "./dom.mjs";

/** Number of pages of ``count`` items, ``size`` per page (at least 1). */
export const pageCount = (count, size) => Math.max(1, Math.ceil(count / size));

/** The page asked for (a hash value) clamped to 1..pages. */
export function pageOf(text, count, size) {
  const n = Number(text);
  const pages = pageCount(count, size);
  return Number.isInteger(n) ? Math.min(pages, Math.max(1, n)) : 1;
}

/** Index range [start, end) of page ``page`` (from 1). */
export const pageRange = (page, count, size) => [(page - 1) * size, Math.min(count, page * size)];

/** Fill ``nav`` with previous / "page x of n" / next buttons; ``go(page)`` is called on a click. */
export function renderPager(nav, page, pages, go) {
  const button = (label, to, name) => {
    const b = el("button", { type: "button", "data-page": String(to), "aria-label": name, text: label });
    b.disabled = to < 1 || to > pages || to === page;
    b.addEventListener("click", () => go(to));
    return b;
  };
  nav.replaceChildren(button("« first", 1, "first page"), button("‹ previous", page - 1, "previous page"),
    el("span", { class: "atlas-pager-where", text: "page " + page + " of " + pages }),
    button("next ›", page + 1, "next page"), button("last »", pages, "last page"));
  nav.hidden = pages <= 1;
}
