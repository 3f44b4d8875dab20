"""What every atlas page shares: the Jinja environment, URLs, the data block and the page file format.

Each page is ``atlas/...md`` in the composed docs dir, rendered by mkdocs-material with the
``atlas.html`` override template. Its body is finished HTML, which the build's MkDocs hook
(``atlas.mkdocs_hooks``, front matter ``atlas_html: true``) passes to the theme without Markdown.
The page's data for the page scripts (``templates/assets/atlas/*.mjs``) is JSON in a
``<script type="application/json" id="atlas-data">`` element: no inline code, CSP-safe.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from atlas import layout
from atlas.catalog import Catalog
from atlas.colormaps import COLORMAPS, lut
from atlas.glossary import Glossary, read_definitions
from atlas.manifest import ImageEntry, ModelEntry
from atlas.metrics_data import MetricsData
from atlas.mkdocs_hooks import RAW_HTML_KEY
from atlas.resources import templates_dir
from ssl_attention.methods import all_methods, get_method


def json_for_html(data: Any) -> Markup:
    """JSON that is safe inside a ``<script type="application/json">`` element (no ``<``, ``>``, ``&``)."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def safe_title(text: str) -> str:
    """A page title without characters the theme might not escape (``<>&"'`` and backquote)."""
    return re.sub(r"[<>&\"'`\\]+", " ", text).strip() or "untitled"


def colormap_filters() -> list[tuple[str, tuple[str, str, str]]]:
    """``feFuncX tableValues`` per colormap; ``(c + 0.5) / 255`` survives Chromium's truncation to bytes."""
    return [
        (name, tuple(" ".join(f"{(int(c) + 0.5) / 255:.4f}" for c in lut(name)[:, ch]) for ch in range(3)))
        for name in COLORMAPS
    ]


def method_data() -> list[dict[str, str]]:
    """The methods in display order for the page scripts (key, label, depth unit): the JS names none itself."""
    return [m.page_data() for m in all_methods()]


class PageWriter:
    """Writes pages of one catalog into ``docs_dir`` (one instance per build): the shared pieces.

    ``atlas.pages.atlas_pages.AtlasPages`` adds the atlas' own pages; the metric and report pages render
    through the same writer, so every page shares its banner, data block and URLs.
    """

    def __init__(
        self,
        catalog: Catalog,
        docs_dir: Path,
        *,
        colormap: str,
        use_directory_urls: bool,
        metrics: MetricsData | None = None,
        docs_prefix: str | None = "",
    ) -> None:
        if colormap not in COLORMAPS:
            raise ValueError(f"unknown colormap {colormap!r}; choose one of {', '.join(COLORMAPS)}")
        self.catalog, self.docs_dir = catalog, docs_dir
        self.colormap, self.dir_urls = colormap, use_directory_urls
        self.metrics = metrics
        self.docs_prefix = docs_prefix  # where the tool's docs are in docs_dir; None: not in this site
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates_dir()),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        self.env.filters["term"] = Glossary(read_definitions(docs_dir)).term
        self.common = {
            "random_models": catalog.random_models,
            "colormap_filters": colormap_filters(),
            "colormaps": COLORMAPS,
            "colormap": colormap,
        }
        self.written: list[str] = []

    # -- helpers -------------------------------------------------------------------------------
    def url(self, src: str, to: str) -> str:
        return layout.relative(src, to, self.dir_urls)

    def docs_url(self, src: str, page: str) -> str | None:
        """The URL of the tool's docs page ``page`` (e.g. ``metrics.md``); None if the site has no tool docs."""
        return None if self.docs_prefix is None else self.url(src, self.docs_prefix + page)

    def model_data(self, model: ModelEntry) -> dict:
        return {
            "name": model.name,
            "slug": model.slug,
            "kind": model.kind,
            "weights": model.weights,
            "layers": model.layers,
            "heads": model.heads,
            "grid": list(model.grid),
            "methods": list(model.methods),
            "headMethods": list(model.head_methods),
            "depths": {m: model.depth(m) for m in model.methods},  # maps per method: layers, stages or targets
            "targets": list(model.targets),
            "companions": companions(model),
            "images": [i.slug for i in self.catalog.images if i.id in model.maps],
        }

    def base_data(self, src: str, page: str) -> dict:
        head_tpl = self.url(src, layout.head_page("MODEL", 0, 0)).replace("l00-h00", "lLAYER-hHEAD")
        return {
            "page": page,
            "colormap": self.colormap,
            "colormaps": list(COLORMAPS),
            "methods": method_data(),
            "maps": self.url(src, f"{layout.DATA_DIR}/maps/"),
            "headUrl": head_tpl,
            "imageUrl": self.url(src, layout.image_page("IMAGE")),
            "modelUrl": self.url(src, layout.model_page("MODEL")),
            "models": [self.model_data(m) for m in self.catalog.models],
        }

    def data_json(self, src: str, page: str) -> Markup:
        """The page's JSON data block with only the common data."""
        return json_for_html(self.base_data(src, page))

    def write(self, src: str, template: str, title: str, context: dict, *, search: bool = True) -> None:
        html = self.env.get_template(template).render(**self.common, **context)
        front = {"title": safe_title(title), "template": "atlas.html", "hide": ["toc"], RAW_HTML_KEY: True}
        if not search:
            front["search"] = {"exclude": True}
        # one raw HTML block, also valid Markdown should the page ever be built without the hook
        lines = "\n".join(line for line in html.splitlines() if line.strip())
        body = f'<div class="atlas-fragment">\n{lines}\n</div>'
        path = self.docs_dir / src
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"---\n{json.dumps(front)}\n---\n\n{body}\n", encoding="utf-8")
        self.written.append(src)

    def methods(self, models: list[ModelEntry]) -> list[tuple[str, Markup]]:
        """``(method, label)`` of the methods present, labels with their glossary tooltip."""
        present = {m for model in models for m in model.methods}
        term = self.env.filters["term"]
        return [(m.name, term(m.label, m.term)) for m in all_methods() if m.name in present]

    def image_cards(self, src: str, images: tuple[ImageEntry, ...]) -> list[dict]:
        return [
            {
                "id": i.id,
                "slug": i.slug,
                "name": i.id.lower(),
                "width": i.width,
                "height": i.height,
                "href": self.url(src, layout.image_page(i.slug)),
                "thumb": self.url(src, layout.thumb(i.slug)),
                "models": [m.slug for m in self.catalog.models if i.id in m.maps],
                "labels_json": json.dumps(sorted({b.label for b in i.boxes})),
                "tags_json": json.dumps(list(i.tags)),
                "boxes": len(i.boxes),
            }
            for i in images
        ]


def companions(model: ModelEntry) -> dict[str, list[str]]:
    """Per per-target method (relevance, gradcam_vit): the maps the image page shows beside it, the model's
    raw attention (its first per-head method) and its fused per-layer maps (rollout) at the last layer."""
    fused_layers = [m for m in model.methods if not get_method(m).per_head and get_method(m).unit == "layer"]
    others = [*model.head_methods[:1], *fused_layers]
    return {m: others for m in model.methods if get_method(m).unit == "target" and others}
