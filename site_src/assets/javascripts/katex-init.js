/* Render the math that pymdownx.arithmatex (generic mode) leaves in the page:
 *   inline  <span class="arithmatex">\( ... \)</span>
 *   display <div class="arithmatex">\[ ... \]</div>
 * with the KaTeX bundled under assets/katex (no CDN). Works on plain page loads
 * and with mkdocs-material's instant navigation (document$ emits on every page). */
(function () {
  "use strict";

  var options = {
    delimiters: [
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
      { left: "$$", right: "$$", display: true }
    ],
    throwOnError: false
  };

  function render(root) {
    if (typeof renderMathInElement !== "function") return;
    var nodes = (root || document).querySelectorAll(".arithmatex");
    for (var i = 0; i < nodes.length; i++) {
      renderMathInElement(nodes[i], options);
    }
  }

  if (typeof document$ !== "undefined" && document$.subscribe) {
    document$.subscribe(function () { render(document); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { render(document); });
  } else {
    render(document);
  }
})();
