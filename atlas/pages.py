"""Generate the atlas' Markdown pages (front matter + an HTML block) from the catalog with Jinja.

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
from atlas.catalog import Catalog, gradcam_target
from atlas.colormaps import COLORMAPS, lut
from atlas.glossary import Glossary, read_definitions
from atlas.manifest import ImageEntry, ModelEntry
from atlas.metrics_data import MetricsData
from atlas.metrics_pages import panel_data, write_metric_pages
from atlas.mkdocs_hooks import RAW_HTML_KEY
from atlas.resources import templates_dir
from ssl_attention.methods import all_methods, get_method

# An image page draws at most this many boxes (in file order; the page says so): 100,000 drawn boxes made
# a page of hundreds of MB that took a minute to paint. The metrics always use every box.
MAX_DRAWN_BOXES = 500


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
    """Renders the atlas pages of one catalog into ``docs_dir`` (one instance per build)."""

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

    # -- pages ---------------------------------------------------------------------------------
    def gallery(self) -> None:
        src = layout.GALLERY_PAGE
        labels = sorted({b.label for i in self.catalog.images for b in i.boxes})
        tags = sorted({t for i in self.catalog.images for t in i.tags})
        self.write(
            src,
            "pages/gallery.html",
            "Gallery",
            {
                "cards": self.image_cards(src, self.catalog.images),
                "models": self.catalog.models,
                "labels": labels,
                "tags": tags,
                "data_json": json_for_html(self.base_data(src, "gallery")),
            },
        )

    def image(self, index: int) -> None:
        image = self.catalog.images[index]
        src = layout.image_page(image.slug)
        models = [m for m in self.catalog.models if image.id in m.maps]
        near = self.image_cards(src, self.catalog.images)
        data = self.base_data(src, "image")
        data["image"] = {"id": image.id, "slug": image.slug, "width": image.width, "height": image.height}
        data["photo"] = self.url(src, layout.photo(image.slug))
        data["models"] = [self.model_data(m) for m in models]
        data["metrics"] = panel_data(self.metrics, image, models)
        self.write(
            src,
            "pages/image.html",
            f"Image {image.id}",
            {
                "image": image,
                "drawn_boxes": image.boxes[:MAX_DRAWN_BOXES],
                "photo": self.url(src, layout.photo(image.slug)),
                "models": models,
                "missing": [m.name for m in self.catalog.models if image.id not in m.maps],
                "methods": self.methods(models),
                "gallery": self.url(src, layout.GALLERY_PAGE),
                "prev": near[index - 1] if index > 0 else None,
                "next": near[index + 1] if index + 1 < len(near) else None,
                "has_metrics": data["metrics"] is not None,
                "gradcam_targets": [
                    {"model": m.name, "index": t[0], "label": t[1], "random": m.weights == "random"}
                    for m in models
                    if m.kind == "cnn" and (t := gradcam_target(self.catalog.maps_file(m, image.id))) is not None
                ],
                "leaderboard": self.url(src, layout.LEADERBOARD_PAGE),
                "data_json": json_for_html(data),
            },
        )

    def models_index(self) -> None:
        src = layout.MODELS_PAGE
        rows = [
            {
                "name": m.name,
                "href": self.url(src, layout.model_page(m.slug)),
                "checkpoint": m.checkpoint,
                "weights": m.weights,
                "kind": m.kind,
                "layers": m.layers,
                "heads": m.heads,
                "grid": m.grid,
                "methods": m.methods,
                "image_count": len(m.maps),
            }
            for m in self.catalog.models
        ]
        self.write(
            src,
            "pages/models.html",
            "Models",
            {"models": rows, "data_json": json_for_html(self.base_data(src, "models"))},
        )

    def model(self, model: ModelEntry) -> None:
        src = layout.model_page(model.slug)
        images = tuple(i for i in self.catalog.images if i.id in model.maps)
        data = self.base_data(src, "model")
        data.update(
            model=model.slug,
            images=[
                {
                    "slug": c["slug"],
                    "id": c["id"],
                    "width": c["width"],
                    "height": c["height"],
                    "thumb": c["thumb"],
                    "href": c["href"],
                }
                for c in self.image_cards(src, images)
            ],
        )
        self.write(
            src,
            "pages/model.html",
            f"Model {model.name}",
            {
                "model": model,
                "images": images,
                "methods": self.methods([model]),
                "metrics_href": self.url(src, layout.metrics_page(model.slug)),
                "data_json": json_for_html(data),
            },
        )

    def heads_index(self) -> None:
        src = layout.HEADS_PAGE
        models = [
            {
                "name": m.name,
                "slug": m.slug,
                "heads": m.heads,
                "rows": [
                    (layer, [(h, self.url(src, layout.head_page(m.slug, layer, h))) for h in range(m.heads)])
                    for layer in range(m.layers)
                ],
            }
            for m in self.catalog.models
            if m.head_methods
        ]
        self.write(
            src,
            "pages/heads.html",
            "Heads",
            {"models": models, "data_json": json_for_html(self.base_data(src, "heads"))},
        )

    def head(self, model: ModelEntry, layer: int, head: int) -> None:
        src = layout.head_page(model.slug, layer, head)
        images = tuple(i for i in self.catalog.images if i.id in model.maps)
        method = model.head_methods[0]
        cards = self.image_cards(src, images)
        for card in cards:  # head.mjs paints each card's canvas from the image's sprite sheet once it is visible
            card["href"] += f"#models={model.slug}&method={method}&layer={layer}&view=heads"
        neighbours = [
            (label, self.url(src, layout.head_page(model.slug, lv, hv)))
            for label, lv, hv in (
                ("previous layer", layer - 1, head),
                ("next layer", layer + 1, head),
                ("previous head", layer, head - 1),
                ("next head", layer, head + 1),
            )
            if 0 <= lv < model.layers and 0 <= hv < model.heads
        ]
        data = self.base_data(src, "head")
        data.update(model=model.slug, layer=layer, head=head, method=method)
        self.write(
            src,
            "pages/head.html",
            f"{model.name} layer {layer} head {head}",
            {
                "model": model,
                "layer": layer,
                "head": head,
                "cards": cards,
                "neighbours": neighbours,
                "methods": [(k, get_method(k).label) for k in model.head_methods],
                "model_href": self.url(src, layout.model_page(model.slug)),
                "heads_href": self.url(src, layout.HEADS_PAGE),
                "data_json": json_for_html(data),
            },
            search=False,
        )


def write_pages(
    catalog: Catalog,
    docs_dir: Path,
    *,
    colormap: str = "viridis",
    use_directory_urls: bool = True,
    metrics: MetricsData | None = None,
    docs_prefix: str | None = "",
) -> list[str]:
    """Write every atlas page into ``docs_dir``; returns their paths relative to ``docs_dir``.

    ``metrics`` (the metrics stage's output) fills the leaderboard, the model metric pages and the
    image pages' metric panels; without it those pages say that no metrics were computed.
    ``docs_prefix`` is the folder of the tool's docs in ``docs_dir`` (None: the site has none).
    """
    writer = PageWriter(
        catalog, docs_dir, colormap=colormap, use_directory_urls=use_directory_urls, metrics=metrics,
        docs_prefix=docs_prefix,
    )
    writer.gallery()
    for index in range(len(catalog.images)):
        writer.image(index)
    writer.models_index()
    writer.heads_index()
    for model in catalog.models:
        writer.model(model)
        for layer in range(model.layers if model.head_methods else 0):
            for head in range(model.heads):
                writer.head(model, layer, head)
    write_metric_pages(writer, metrics)
    return writer.written
