/* A page opened from disk (file://): browsers block what the site needs there (ES modules, fetches of the
 * map data, the search worker), so say once, at the top of the page, how to serve it, and let the rest
 * degrade quietly: search is switched off, folder links open their index.html instead of a directory
 * listing (the atlas' page scripts are not started there: see atlas-assets/atlas/boot.js). A classic
 * script (modules do not load from file://),
 * included by partials/javascripts/content.html after the page's content and before the theme's bundle.
 * Does nothing on http(s). */
(function () {
  "use strict";
  if (location.protocol !== "file:") return;
  document.documentElement.dataset.fileProtocol = "1";
  var scope = typeof __md_scope !== "undefined" ? __md_scope : new URL(".", location.href);
  var site = decodeURIComponent(scope.pathname).replace(/\/$/, "") || "/";

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }
  function command(text) {
    var pre = el("pre");
    pre.appendChild(el("code", text));
    return pre;
  }

  /* The message, at the top of the page's content. */
  var box = el("div", null, "admonition warning atlas-file-protocol");
  box.setAttribute("role", "note");
  box.dataset.role = "file-protocol";
  box.appendChild(el("p", "Opened from disk: serve the site to use it", "admonition-title"));
  box.appendChild(el("p", "This page was opened as a file (file://). Browsers block what the site needs there: " +
    "the atlas' page scripts and map data, and search. Serve the site folder and open the address it prints:"));
  box.appendChild(command("atlas serve --site-dir " + site));
  box.appendChild(el("p", "or, with Python alone (then open http://127.0.0.1:8000/):"));
  box.appendChild(command("python -m http.server -d " + site));
  var article = document.querySelector(".md-content__inner") || document.body;
  article.insertBefore(box, article.firstChild);

  /* Search: the theme starts it only for a form named "search" and a search component. */
  var search = document.querySelector("[data-md-component=search]");
  if (search) search.removeAttribute("data-md-component");
  var form = document.forms.namedItem("search");
  if (form) form.removeAttribute("name");
  var input = document.querySelector(".md-search__input");
  if (input) {
    input.disabled = true;
    input.placeholder = "No search (file://)";
    input.title = "Search needs the site served over http (see the note at the top of the page)";
  }

  /* Folder links ("../getting-started/", "..") open the folder's index.html, not a directory listing. */
  function indexLinks() {
    document.querySelectorAll("a[href]").forEach(function (a) {
      var href = a.getAttribute("href");
      if (/^([a-z][a-z0-9+.-]*:|#|\/\/)/i.test(href)) return;  // another scheme, a fragment, a host
      var cut = href.search(/[?#]/);
      var path = cut < 0 ? href : href.slice(0, cut), rest = cut < 0 ? "" : href.slice(cut);
      if (path === "." || path === ".." || /\/(\.\.?)?$/.test(path)) {
        a.setAttribute("href", path.replace(/\/$/, "") + "/index.html" + rest);
      }
    });
  }
  indexLinks();
  document.addEventListener("DOMContentLoaded", indexLinks);
})();
