/* The metric pages' choosers (issue 27): a <select data-role="chooser"> inside a [data-chooser] block shows
 * the one [data-choice] of that block whose value it names and hides the others (the server renders every
 * choice with the first one shown, so the page reads the same before the script runs). The head x label
 * matrix's links get their sort by the label (sortHeadLinks). */

function choose(block, value) {
  for (const part of block.querySelectorAll("[data-choice]")) {
    if (part.closest("[data-chooser]") === block) part.hidden = part.dataset.choice !== value;
  }
}

/** The head x label matrix links each head to the head viewer sorted by the table's label (data-head-sort: the
 *  viewer's sort, added to every link of the table here rather than repeated in each cell's href). */
function sortHeadLinks(root) {
  for (const table of root.querySelectorAll("table[data-head-sort]")) {
    const sort = "&" + new URLSearchParams({ sort: table.dataset.headSort }).toString();
    for (const a of table.querySelectorAll("a[href]")) a.setAttribute("href", a.getAttribute("href") + sort);
  }
}

export function initChoosers(root) {
  sortHeadLinks(root);
  for (const block of root.querySelectorAll("[data-chooser]")) {
    const select = block.querySelector('select[data-role="chooser"]');
    if (!select) continue;
    choose(block, select.value);
    select.addEventListener("change", () => choose(block, select.value));
  }
}
