/* The metric pages' choosers (issue 27): a <select data-role="chooser"> inside a [data-chooser] block shows
 * the one [data-choice] of that block whose value it names and hides the others (the server renders every
 * choice with the first one shown, so the page reads the same before the script runs). */

function choose(block, value) {
  for (const part of block.querySelectorAll("[data-choice]")) {
    if (part.closest("[data-chooser]") === block) part.hidden = part.dataset.choice !== value;
  }
}

export function initChoosers(root) {
  for (const block of root.querySelectorAll("[data-chooser]")) {
    const select = block.querySelector('select[data-role="chooser"]');
    if (!select) continue;
    choose(block, select.value);
    select.addEventListener("change", () => choose(block, select.value));
  }
}
