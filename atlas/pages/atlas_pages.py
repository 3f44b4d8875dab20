"""The atlas pages: gallery, image pages, models index, model pages, heads index and head pages."""

from __future__ import annotations

from atlas import layout
from atlas.catalog import explained_class, gradcam_target
from atlas.manifest import ImageEntry, ModelEntry
from atlas.pages.metric_pages import panel_data
from atlas.pages.writer import PageWriter, json_for_html
from ssl_attention.methods import get_method

# An image page draws at most this many boxes (in file order; the page says so): 100,000 drawn boxes made
# a page of hundreds of MB that took a minute to paint. The metrics always use every box.
MAX_DRAWN_BOXES = 500


class AtlasPages(PageWriter):
    """The writer of a build with the atlas' own pages."""

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
                "target_notes": [note for m in models if (note := self.target_note(m, image)) is not None],
                "leaderboard": self.url(src, layout.LEADERBOARD_PAGE),
                "data_json": json_for_html(data),
            },
        )

    def target_note(self, model: ModelEntry, image: ImageEntry) -> dict | None:
        """What the relevance / ViT Grad-CAM maps of ``model`` explain on ``image`` (None without them)."""
        if not model.targets:
            return None
        if model.target_kind == "prompt":
            text = f"{len(model.targets)} prompts, one map each"
        else:
            found = explained_class(self.catalog.maps_file(model, image.id))
            text = model.targets[0] if found is None else f"{model.targets[0]}, class {found[0]}" + (
                f" ({found[1]})" if found[1] else "")
        return {"model": model.name, "text": text, "random": model.random}

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
