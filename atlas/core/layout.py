"""Where every atlas file lives in the site: page sources, heatmap sprite sheets (with the map values), photos.

``templates/assets/atlas/layout.mjs`` builds the same asset URLs (``spriteUrl``, ``queryUrl``) and finds a
tile in a sprite as ``sprite_tile`` does; keep both in step.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

DATA_DIR = "atlas-data"  # heavy assets, copied into the site after the MkDocs build
ASSETS_DIR = "atlas-assets"  # the atlas' own CSS/JS, part of the MkDocs docs dir
PAGES_DIR = "atlas"  # generated Markdown pages inside the docs dir

_SAFE = re.compile(r"[a-z0-9][a-z0-9_.-]*")
# MkDocs gives a page source named index.md its folder's URL (``images/index.md`` is ``images/``, not
# ``images/index/``): a page named after an image or model called ``index`` would not be where its links point.
RESERVED_PAGE_NAMES = frozenset({"index"})


def slug(text: str) -> str:
    """A lowercase ASCII name for ``text`` that is safe in paths and URLs; distinct texts give distinct slugs.

    Safe lowercase names are kept as they are; anything else, and the reserved page names (an image called
    ``index``), is cleaned and gets a hash suffix.
    """
    if _SAFE.fullmatch(text) and not text.endswith(".") and text not in RESERVED_PAGE_NAMES:
        return text
    clean = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "x"
    return f"{clean}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"


def photo(image_slug: str) -> str:
    """The display JPEG of an image, relative to the site root."""
    return f"{DATA_DIR}/images/{image_slug}.jpg"


def thumb(image_slug: str) -> str:
    """The gallery thumbnail of an image, relative to the site root."""
    return f"{DATA_DIR}/thumbs/{image_slug}.jpg"


def pair_dir(model_slug: str, image_slug: str) -> str:
    """The folder holding every map file of one (model, image), relative to the site root."""
    return f"{DATA_DIR}/maps/{model_slug}/{image_slug}"


def map_sprite(model_slug: str, image_slug: str, method: str) -> str:
    """The heatmap sprite sheet of one (model, image, method), relative to the site root.

    An 8-bit greyscale PNG of ``layers * gh`` rows and ``variants * gw`` columns: one tile of the
    patch grid per map, layer ``l`` in tile row ``l``, variant ``v`` (fused, then h00, h01...) in tile
    column ``v`` (see ``sprite_tile``). Its ``atRg`` chunk decodes the indices to values (``atlas.site.map_values``).
    """
    return f"{pair_dir(model_slug, image_slug)}/{method}.png"


def sprite_tile(grid: tuple[int, int], layer: int, variant_index: int) -> tuple[int, int, int, int]:
    """Pixel rectangle ``(x, y, width, height)`` of one map in its sprite sheet (variant 0 is fused)."""
    gh, gw = grid
    return variant_index * gw, layer * gh, gw, gh


def query_rows(model_slug: str, image_slug: str) -> str:
    """The query-patch rows of one (model, image): every exported layer in one file (see ``render.query_bytes``)."""
    return f"{pair_dir(model_slug, image_slug)}/query.bin"


def feature_file(model_slug: str, image_slug: str) -> str:
    """The PCA maps, box similarities and patch features of one (model, image) (``atlas.site.feature_bytes``)."""
    return f"{pair_dir(model_slug, image_slug)}/features.bin"


def head_page(model_slug: str, layer: int, head: int) -> str:
    """Where a head page was before the head viewer (``atlas/heads/<model>/lLL-hHH/``): a redirect to
    ``head_viewer(model)#lLL-hHH`` is written there, so old links keep working."""
    return f"{PAGES_DIR}/heads/{model_slug}/l{layer:02d}-h{head:02d}.md"


def head_anchor(layer: int, head: int) -> str:
    """A head's permalink fragment on its model's head viewer, e.g. ``l07-h03``."""
    return f"l{layer:02d}-h{head:02d}"


def head_viewer(model_slug: str) -> str:
    """Markdown source of a model's head viewer (``atlas/heads/<model>/``; one head at a time, ``#lLL-hHH``)."""
    return f"{PAGES_DIR}/heads/{model_slug}.md"


def head_scores(model_slug: str, layer: int, head: int) -> str:
    """Per-image scores of one head for the head viewer, relative to the site root: little-endian float32
    ``[scores, images]`` (the score names are in the viewer's data; the images in the image index's order)."""
    return f"{DATA_DIR}/heads/{model_slug}/l{layer:02d}-h{head:02d}.f32"


def head_label_scores(model_slug: str, index: int) -> str:
    """The head viewer's sort by the box label ``index`` (of the viewer's ``labelSorts``), relative to the site
    root: little-endian uint32 ``[k]`` image indices, then float32 ``[methods, layers, heads, k]``
    (``atlas.site.head_scores.LabelSort``)."""
    return f"{DATA_DIR}/heads/{model_slug}/labels/{index}.bin"


def head_url(model_slug: str, layer: int, head: int) -> str:
    """The permalink of one head: its model's head viewer with the head's fragment (``relative`` resolves it)."""
    return f"{head_viewer(model_slug)}#{head_anchor(layer, head)}"


def anatomy_page(model_slug: str) -> str:
    """Markdown source of a model's head-anatomy page (distance, entropy, sink, high-norm tokens)."""
    return f"{PAGES_DIR}/anatomy/{model_slug}.md"


def image_page(image_slug: str) -> str:
    return f"{PAGES_DIR}/images/{image_slug}.md"


def model_page(model_slug: str) -> str:
    return f"{PAGES_DIR}/models/{model_slug}.md"


def metrics_page(model_slug: str) -> str:
    """Markdown source of a model's metrics page (layer x head tables, ranking, similarity)."""
    return f"{PAGES_DIR}/leaderboard/{model_slug}.md"


GALLERY_PAGE = f"{PAGES_DIR}/index.md"
# Every image of the atlas as one compact row (JSON ``{labels, tags, gallery}``, rows ``[id, slug, models,
# labels, tags, boxes, width, height]``, models/labels/tags as indices): the gallery's filters and the model
# pages' image choice read it, so no page's HTML grows with the number of images.
GALLERY_INDEX = f"{DATA_DIR}/gallery.json"
MODELS_PAGE = f"{PAGES_DIR}/models/index.md"
HEADS_PAGE = f"{PAGES_DIR}/heads/index.md"
LEADERBOARD_PAGE = f"{PAGES_DIR}/leaderboard/index.md"
ANATOMY_PAGE = f"{PAGES_DIR}/anatomy/index.md"  # every model's attention distance on one chart

VARIANTS_PAGE = f"{PAGES_DIR}/variants/index.md"  # the declared variants (--base), each with its own page
COMPARE_PAGE = f"{PAGES_DIR}/compare/index.md"  # any two maps of one image: side by side, slider, shift map


def variant_page(variant_slug: str) -> str:
    """Markdown source of a declared variant's page (``atlas/variants/<variant>/``): its paired statistics."""
    return f"{PAGES_DIR}/variants/{variant_slug}.md"


def compare_hash(image_slug: str, left: tuple, right: tuple, mode: str = "shift") -> str:
    """The compare view's fragment (its permalink state): the image and each side's ``(model slug, method,
    layer, variant)`` (variant ``fused`` or ``hNN``); ``compare.mjs`` reads the same keys."""
    side = lambda s: ":".join(str(v) for v in s)  # noqa: E731
    return f"image={image_slug}&left={side(left)}&right={side(right)}&mode={mode}"


# A model's pages are models/<slug>.md, leaderboard/<slug>.md and heads/<slug>/...: a model with the name of
# one of these folders' own pages would overwrite it (e.g. ``index``: the Models index and the Leaderboard).
RESERVED_MODEL_NAMES = frozenset(
    PurePosixPath(page).stem for page in (MODELS_PAGE, HEADS_PAGE, LEADERBOARD_PAGE, ANATOMY_PAGE)
)


def page_url(src: str, use_directory_urls: bool) -> str:
    """The URL (relative to the site root) MkDocs gives the Markdown page ``src``."""
    folder, _, name = src.rpartition("/")  # string operations: called for every link of every page
    stem = name.rpartition(".")[0] if "." in name.lstrip(".") else name
    path = f"{folder}/{stem}" if folder else stem
    if stem == "index":
        return f"{folder}/" if folder else ""
    return f"{path}/" if use_directory_urls else f"{path}.html"


def relative(from_src: str, to: str, use_directory_urls: bool) -> str:
    """A relative URL from the page ``from_src`` to ``to``: a site-root path, or another page's ``.md``
    (either with an optional ``#fragment``)."""
    to, hash_, fragment = to.partition("#")
    target = page_url(to, use_directory_urls) if to.endswith(".md") else to
    depth = page_url(from_src, use_directory_urls).count("/")
    return ("../" * depth + target if target else "../" * depth or "./") + hash_ + fragment
