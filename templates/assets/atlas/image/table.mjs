/* The image page's model × head table: one row (a tbody.atlas-row) per shown model, one fixed column per
 * variant (fused, composite, then h00, h01...), the model names and column labels sticky while the table
 * scrolls inside its box. A model without a variant leaves its cell empty (fewer heads), and a row
 * without per-head maps (rollout, Grad-CAM) says so across the head columns. */

import { el } from "../dom.mjs";

const isHead = (v) => /^h\d+$/.test(v);

/** The table's columns for ``rows`` (plan().rows): fused, the other non-head variants in the order
 *  met, then every head variant any row has, in order. Pure. */
export function tableColumns(rows) {
  const seen = [];
  for (const r of rows) for (const v of r.variants) if (!seen.includes(v)) seen.push(v);
  const heads = seen.filter(isHead).sort();
  const others = seen.filter((v) => !isHead(v) && v !== "fused");
  return (seen.includes("fused") ? ["fused"] : []).concat(others, heads);
}

/** The cells of one row over ``columns``: {variant, index} for a tile (index: its place in the row's
 *  variants), {empty: true} for a missing one, {note: span} once for the head columns of a row
 *  without per-head maps. Pure. */
export function rowCells(row, columns) {
  const cells = [];
  const heads = columns.filter(isHead).length;
  for (const v of columns) {
    const index = row.variants.indexOf(v);
    if (index >= 0) cells.push({ variant: v, index: index });
    else if (isHead(v) && !row.perHead) { if (v === columns.find(isHead)) cells.push({ note: heads }); }
    else cells.push({ empty: true });
  }
  return cells;
}

/** The table of ``rows``: ``tile(row, variant, index)`` makes a tile, ``title(row)`` the row label's
 *  children, ``note(row)`` the text across the head columns of a row without heads, ``extra(row)`` an
 *  optional node under the row (the composite's legend). */
export function headTable(rows, { tile, title, note, extra }) {
  const columns = tableColumns(rows);
  const fused = rows.some((r) => r.perHead) ? "fused" : "map";  // Grad-CAM and rollout rows: one map, no heads
  const head = el("tr", {}, [el("th", { scope: "col", class: "atlas-corner", text: "model" })]
    .concat(columns.map((v) => el("th", { scope: "col", "data-col": v, text: v === "fused" ? fused : v }))));
  const table = el("table", { class: "atlas-head-table", "data-columns": columns.length }, [el("thead", {}, [head])]);
  table.style.setProperty("--atlas-cols", String(columns.length));  // the tiles share the box's width (atlas.css)
  for (const row of rows) {
    const tr = el("tr", {}, [el("th", { scope: "row", class: "atlas-row-title" }, title(row))]);
    for (const cell of rowCells(row, columns)) {
      if (cell.note) tr.appendChild(el("td", { class: "atlas-no-heads", colspan: cell.note }, [el("span", { text: note(row) })]));
      else tr.appendChild(el("td", cell.empty ? { class: "atlas-empty" } : { "data-col": cell.variant },
        cell.empty ? [] : [tile(row, cell.variant, cell.index)]));
    }
    const more = extra(row);
    const body = el("tbody", { class: "atlas-row", "data-model": row.model.slug, "aria-label": row.model.name }, [tr]);
    if (more) body.appendChild(el("tr", { class: "atlas-row-extra" }, [el("td", { colspan: columns.length + 1 }, [more])]));
    table.appendChild(body);
  }
  return el("div", { class: "atlas-table-scroll", "data-role": "head-table" }, [table]);
}
