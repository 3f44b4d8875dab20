/* mkdocs-material 9.x: the second inline script of partials/javascripts/content.html, as a file (unchanged). */
var target=document.getElementById(location.hash.slice(1));target&&target.name&&(target.checked=target.name.startsWith("__tabbed_"))
