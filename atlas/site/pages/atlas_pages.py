"""The atlas pages: gallery, image pages, models index, model pages, heads index and head pages.

Each ``*_page``/``*_pages`` function is the builder of one page kind (``atlas.site.pages.kinds``): it reads the
build through ``AtlasPages`` and gives ``Page`` values, which the writer renders.
"""

from __future__ import annotations

import html
from collections.abc import Iterator

from atlas.core import layout
from atlas.core.manifest import ModelEntry
from atlas.site.catalog import gradcam_target
from atlas.site.head_scores import HeadScores
from atlas.site.pages.anatomy_pages import cluster_list
from atlas.site.pages.metric_pages import panel_data
from atlas.site.pages.variant_pages import declared_pairs
from atlas.site.pages.writer import AtlasPages, Page
from atlas.site.svg_charts import PALETTE
from ssl_attention.methods import get_method
from ssl_attention.metrics import higher_is_better

# An image page draws at most this many boxes (in file order; the page says so): 100,000 drawn boxes made
# a page of hundreds of MB that took a minute to paint. The metrics always use every box.
MAX_DRAWN_BOXES = 500


def gallery_page(site: AtlasPages) -> Iterator[Page]:
    """The gallery: one page of cards at a time (the page and the filters in the URL); gallery.mjs filters
    every image, from the image index (``layout.GALLERY_INDEX``, the model pages' image choice reads it too)."""
    src = layout.GALLERY_PAGE
    labels, tags = site.gallery_index["labels"], site.gallery_index["tags"]
    yield Page(
        src,
        "Gallery",
        {
            "image_count": len(site.catalog.images),
            "models": site.catalog.models,
            "labels": labels,
            "tags": tags,
        },
        site.index_urls(src),
    )


def image_pages(site: AtlasPages) -> Iterator[Page]:
    """One page per image: its photo with every model's maps, its boxes and metric panels."""
    for index in range(len(site.catalog.images)):
        yield image_page(site, index)


def image_page(site: AtlasPages, index: int) -> Page:
    catalog = site.catalog
    image = catalog.images[index]
    src = layout.image_page(image.slug)
    models = [m for m in catalog.models if image.id in m.maps]
    images = catalog.images
    near = {k: {"id": images[k].id, "href": site.url(src, layout.image_page(images[k].slug))}
            for k in (index - 1, index + 1) if 0 <= k < len(images)}
    data = {
        "image": {"id": image.id, "slug": image.slug, "width": image.width, "height": image.height},
        "photo": site.url(src, layout.photo(image.slug)),
        "models": [{**site.model_data(m), "grid": list(m.grid_of(image.id))} for m in models],  # keep: its own
        "metrics": panel_data(site.metrics, image, models),
        # per model with token norms, per layer: the high-norm cells (row-major) of this image
        "highNorm": {
            m.slug: site.anatomy[m.name].cells[image.id]
            for m in models
            if m.name in site.anatomy and image.id in site.anatomy[m.name].cells
        },
    }
    context = {
        "image": image,
        "drawn_boxes": image.boxes[:MAX_DRAWN_BOXES],
        "photo": site.url(src, layout.photo(image.slug)),
        "models": models,
        "missing": [m.name for m in catalog.models if image.id not in m.maps],
        "methods": site.methods(models),
        "gallery": site.url(src, layout.GALLERY_PAGE),
        "prev": near.get(index - 1),
        "next": near.get(index + 1),
        "has_metrics": data["metrics"] is not None,
        "gradcam_targets": [
            {"model": m.name, "index": t[0], "label": t[1], "random": m.weights == "random"}
            for m in models
            if m.kind == "cnn" and (t := gradcam_target(catalog.maps_file(m, image.id))) is not None
        ],
        "target_notes": [note for m in models if (note := site.target_note(m, image)) is not None],
        "leaderboard": site.url(src, layout.LEADERBOARD_PAGE),
        "compare": site.url(src, layout.COMPARE_PAGE) + "#image=" + image.slug,  # the compare view on this image
    }
    search_text = " ".join([image.id, image.file, *sorted({b.label for b in image.boxes}), *image.tags])
    return Page(src, f"Image {image.id}", context, data, search_text=search_text)


def models_page(site: AtlasPages) -> Iterator[Page]:
    """The models index: one row per model."""
    src = layout.MODELS_PAGE
    rows = [
        {
            "name": m.name,
            "href": site.url(src, layout.model_page(m.slug)),
            "checkpoint": m.checkpoint,
            "weights": m.weights,
            "kind": m.kind,
            "layers": m.layers,
            "heads": m.heads,
            "grid": m.grid,
            "methods": m.methods,
            "image_count": len(m.maps),
        }
        for m in site.catalog.models
    ]
    yield Page(src, "Models", {"models": rows})


def model_pages(site: AtlasPages) -> Iterator[Page]:
    """A model's layer x head grid of one image at a time; model.mjs chooses the image from the image index
    (``layout.GALLERY_INDEX``), so the page's size does not depend on the number of images."""
    for model in site.catalog.models:
        src = layout.model_page(model.slug)
        anatomy = site.anatomy.get(model.name)
        clusters = cluster_list(anatomy) if anatomy and anatomy.clusters else []
        data: dict = {}
        if clusters:  # the grid's "colour heads by cluster" (model_clusters.mjs)
            data.update(clusters=anatomy.clusters, clusterColours=list(PALETTE))
        data.update(model=model.slug, **site.index_urls(src))
        context = {
            "model": model,
            "image_count": len(model.maps),
            "methods": site.methods([model]),
            "metrics_href": site.url(src, layout.metrics_page(model.slug)),
            "anatomy_href": site.url(src, layout.anatomy_page(model.slug)) if anatomy else None,
            "clusters": clusters,
        }
        yield Page(src, f"Model {model.name}", context, data)


def heads_page(site: AtlasPages) -> Iterator[Page]:
    """The heads index: every head of every model with per-head maps, linked to its model's head viewer."""
    src = layout.HEADS_PAGE
    models = [
        {
            "name": m.name,
            "slug": m.slug,
            "heads": m.heads,
            "href": site.url(src, layout.head_viewer(m.slug)),
            "rows": [
                (layer, [(h, site.url(src, layout.head_viewer(m.slug)) + "#" + layout.head_anchor(layer, h))
                         for h in range(m.heads)])
                for layer in range(m.layers)
            ],
        }
        for m in site.catalog.models
        if m.head_methods
    ]
    yield Page(src, "Heads", {"models": models})


def head_pages(site: AtlasPages) -> Iterator[Page]:
    """One head viewer per model with per-head maps (``head_viewer``)."""
    for scores in site.head_scores:
        yield head_viewer(site, scores)


def head_viewer(site: AtlasPages, scores: HeadScores) -> Page:
    """One model's head viewer: one head at a time (``#lLL-hHH``) on every image, sorted by a score; the old
    per-head pages' addresses redirect to it, and each head is an entry of the site search."""
    model = scores.model
    src = layout.head_viewer(model.slug)
    for layer in range(model.layers):
        for h in range(model.heads):
            anchor = layout.head_anchor(layer, h)
            old = layout.head_page(model.slug, layer, h)
            site.redirects.append((old, site.url(old, src) + "#" + anchor))
            site.search_entries.append({
                "location": layout.page_url(src, site.dir_urls) + "#" + anchor,
                "title": html.escape(f"{model.name} l{layer:02d} h{h:02d}"),
                "text": html.escape(f"{model.name} layer {layer} head {h} ({anchor}): this head on every "
                                    "image, sorted by alignment or attention entropy"),
            })
    data = dict(
        model=model.slug,
        method=model.head_methods[0],
        scores=[s.page_data() for s in scores.scores],
        means=scores.means(),
        scoresUrl=site.url(src, layout.head_scores(model.slug, 0, 0)).removesuffix("l00-h00.f32"),
        labelSorts=None if not scores.labels else {
            "metric": scores.box_metric, "desc": higher_is_better(scores.box_metric),
            "url": site.url(src, layout.head_label_scores(model.slug, 0)).removesuffix("0.bin"),
            "labels": [sort.page_data() for sort in scores.labels]},
        **site.index_urls(src),  # the images (in the score files' order) come from the image index
    )
    context = {
        "model": model,
        "rows": [(layer, [(h, layout.head_anchor(layer, h)) for h in range(model.heads)])
                 for layer in range(model.layers)],
        "sort_options": [
            *((("iou", f"alignment ({site.metrics.primary})"),) if site.metrics is not None else ()),
            *((s.key, s.label) for s in scores.scores if not s.method),
            *dict.fromkeys((s.key.split(":")[0], f"{s.key.split(':')[0]} (lower is better)")
                           for s in scores.scores if s.method and not s.key.startswith("iou:")),
            ("file", "file order"),
        ],
        "methods": [(k, get_method(k).label) for k in model.head_methods],
        "model_href": site.url(src, layout.model_page(model.slug)),
        "heads_href": site.url(src, layout.HEADS_PAGE),
        "image_count": len(scores.images),
        **compare_link(site, src, model),
    }
    return Page(src, f"Heads of {model.name}", context, data)


def compare_link(site: AtlasPages, src: str, model: ModelEntry) -> dict[str, str | None]:
    """The head viewer's link to the compare view (its head filled in by head.mjs): with the model's declared
    partner (its base or variant) where it has one, else this head against its layer's fused map."""
    pair = next((p for p in declared_pairs(site) if model.name in (p.variant, p.base)), None)
    partner = None if pair is None else (pair.base if pair.variant == model.name else pair.variant)
    slug = {m.name: m.slug for m in site.catalog.models}
    return {"compare_href": site.url(src, layout.COMPARE_PAGE), "partner": partner,
            "partner_slug": slug[partner] if partner else None,
            "partner_side": "left" if pair is not None and partner == pair.base else "right"}
