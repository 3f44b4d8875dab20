"""The atlas pages: gallery, image pages, models index, model pages, heads index and head pages."""

from __future__ import annotations

import html
import json
from functools import cached_property
from pathlib import Path

from atlas.core import layout
from atlas.core.manifest import ImageEntry, ModelEntry
from atlas.site.anatomy_data import ModelAnatomy, load_anatomy
from atlas.site.catalog import explained_class, gradcam_target
from atlas.site.head_scores import HeadScores
from atlas.site.pages.anatomy_pages import cluster_list
from atlas.site.pages.metric_pages import panel_data
from atlas.site.pages.writer import PageWriter, json_for_html
from atlas.site.svg_charts import PALETTE
from ssl_attention.methods import get_method

# An image page draws at most this many boxes (in file order; the page says so): 100,000 drawn boxes made
# a page of hundreds of MB that took a minute to paint. The metrics always use every box.
MAX_DRAWN_BOXES = 500


class AtlasPages(PageWriter):
    """The writer of a build with the atlas' own pages."""

    @cached_property
    def anatomy(self) -> dict[str, ModelAnatomy]:
        """The head anatomy of the build's ViTs (read once from the npz files), by model name."""
        return load_anatomy(self.catalog)

    @cached_property
    def gallery_index(self) -> dict[str, list]:
        """The image index (``layout.GALLERY_INDEX``): every image as one compact row, box labels and tags."""
        labels = sorted({b.label for i in self.catalog.images for b in i.boxes})
        tags = sorted({t for i in self.catalog.images for t in i.tags})
        label_index, tag_index = {v: k for k, v in enumerate(labels)}, {v: k for k, v in enumerate(tags)}
        model_index = {m.slug: k for k, m in enumerate(self.catalog.models)}
        has = {m.slug: m.maps for m in self.catalog.models}
        return {
            "labels": labels,
            "tags": tags,
            # [id, slug, models (indices), labels (indices), tags (indices), boxes, width, height]
            "gallery": [
                [i.id, i.slug, [model_index[s] for s in model_index if i.id in has[s]],
                 sorted({label_index[b.label] for b in i.boxes}), [tag_index[t] for t in i.tags], len(i.boxes),
                 i.width, i.height]
                for i in self.catalog.images
            ],
        }

    def gallery(self) -> None:
        """The gallery: one page of cards at a time (the page and the filters in the URL); gallery.mjs filters
        every image, from the image index (``layout.GALLERY_INDEX``, the model pages' image choice reads it too)."""
        src = layout.GALLERY_PAGE
        labels, tags = self.gallery_index["labels"], self.gallery_index["tags"]
        data = self.base_data(src, "gallery")
        data.update(self.index_urls(src))
        self.write(
            src,
            "pages/gallery.html",
            "Gallery",
            {
                "image_count": len(self.catalog.images),
                "models": self.catalog.models,
                "labels": labels,
                "tags": tags,
                "data_json": json_for_html(data),
            },
        )

    def index_urls(self, src: str) -> dict[str, str]:
        """The data keys of a page that reads the image index: its URL and the thumbnails' (``IMAGE``: a slug)."""
        return {"indexUrl": self.url(src, layout.GALLERY_INDEX), "thumbUrl": self.url(src, layout.thumb("IMAGE"))}

    def write_gallery_index(self, site_dir: Path) -> None:
        """Write the image index into ``site_dir`` (after MkDocs, with the other data files)."""
        path = site_dir / layout.GALLERY_INDEX
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.gallery_index, separators=(",", ":")), encoding="utf-8")

    def image(self, index: int) -> None:
        image = self.catalog.images[index]
        src = layout.image_page(image.slug)
        models = [m for m in self.catalog.models if image.id in m.maps]
        images = self.catalog.images
        near = {k: {"id": images[k].id, "href": self.url(src, layout.image_page(images[k].slug))}
                for k in (index - 1, index + 1) if 0 <= k < len(images)}
        data = self.base_data(src, "image")
        data["image"] = {"id": image.id, "slug": image.slug, "width": image.width, "height": image.height}
        data["photo"] = self.url(src, layout.photo(image.slug))
        data["models"] = [self.model_data(m) for m in models]
        data["metrics"] = panel_data(self.metrics, image, models)
        # per model with token norms, per layer: the high-norm cells (row-major) of this image
        data["highNorm"] = {
            m.slug: self.anatomy[m.name].cells[image.id]
            for m in models
            if m.name in self.anatomy and image.id in self.anatomy[m.name].cells
        }
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
                "prev": near.get(index - 1),
                "next": near.get(index + 1),
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
            search_text=" ".join([image.id, image.file, *sorted({b.label for b in image.boxes}), *image.tags]),
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
        """A model's layer x head grid of one image at a time; model.mjs chooses the image from the image index
        (``layout.GALLERY_INDEX``), so the page's size does not depend on the number of images."""
        src = layout.model_page(model.slug)
        anatomy = self.anatomy.get(model.name)
        clusters = cluster_list(anatomy) if anatomy and anatomy.clusters else []
        data = self.base_data(src, "model")
        if clusters:  # the grid's "colour heads by cluster" (model_clusters.mjs)
            data.update(clusters=anatomy.clusters, clusterColours=list(PALETTE))
        data.update(model=model.slug, **self.index_urls(src))
        self.write(
            src,
            "pages/model.html",
            f"Model {model.name}",
            {
                "model": model,
                "image_count": len(model.maps),
                "methods": self.methods([model]),
                "metrics_href": self.url(src, layout.metrics_page(model.slug)),
                "anatomy_href": self.url(src, layout.anatomy_page(model.slug)) if anatomy else None,
                "clusters": clusters,
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
                "href": self.url(src, layout.head_viewer(m.slug)),
                "rows": [
                    (layer, [(h, self.url(src, layout.head_viewer(m.slug)) + "#" + layout.head_anchor(layer, h))
                             for h in range(m.heads)])
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

    def head_viewer(self, scores: HeadScores) -> None:
        """One model's head viewer: one head at a time (``#lLL-hHH``) on every image, sorted by a score."""
        model = scores.model
        src = layout.head_viewer(model.slug)
        for layer in range(model.layers):
            for h in range(model.heads):
                anchor = layout.head_anchor(layer, h)
                old = layout.head_page(model.slug, layer, h)
                self.redirects.append((old, self.url(old, src) + "#" + anchor))
                self.search_entries.append({
                    "location": layout.page_url(src, self.dir_urls) + "#" + anchor,
                    "title": html.escape(f"{model.name} l{layer:02d} h{h:02d}"),
                    "text": html.escape(f"{model.name} layer {layer} head {h} ({anchor}): this head on every "
                                        "image, sorted by alignment or attention entropy"),
                })
        data = self.base_data(src, "head")
        data.update(
            model=model.slug,
            method=model.head_methods[0],
            scores=[s.page_data() for s in scores.scores],
            means=scores.means(),
            scoresUrl=self.url(src, layout.head_scores(model.slug, 0, 0)).removesuffix("l00-h00.f32"),
            **self.index_urls(src),  # the images (in the score files' order) come from the image index
        )
        self.write(
            src,
            "pages/head.html",
            f"Heads of {model.name}",
            {
                "model": model,
                "rows": [(layer, [(h, layout.head_anchor(layer, h)) for h in range(model.heads)])
                         for layer in range(model.layers)],
                "sort_options": [
                    *((("iou", f"alignment ({self.metrics.primary})"),) if self.metrics is not None else ()),
                    *((s.key, s.label) for s in scores.scores if not s.method),
                    ("file", "file order"),
                ],
                "methods": [(k, get_method(k).label) for k in model.head_methods],
                "model_href": self.url(src, layout.model_page(model.slug)),
                "heads_href": self.url(src, layout.HEADS_PAGE),
                "image_count": len(scores.images),
                "data_json": json_for_html(data),
            },
        )
