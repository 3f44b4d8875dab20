"""Generated atlas pages: escaping, CSP-safe markup, banners, stable URLs, colormap filters."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from atlas.core import layout
from atlas.core.colormaps import COLORMAPS, lut
from atlas.site.catalog import load_catalog
from atlas.site.pages import colormap_filters, json_for_html, write_all_pages
from atlas.site.pages.writer import COLORMAP_MODULE
from tests.fixtures.fake_maps import write_fake_build

ODD_ID = next(i for i in __import__("tests.fixtures.fake_maps", fromlist=["IMAGES"]).IMAGES if "<" in i[0])[0]


def _pages(tmp_path: Path, *, random_weights: bool = True) -> dict[str, str]:
    write_fake_build(tmp_path)
    if not random_weights:
        manifest_path = tmp_path / "maps" / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        for model in manifest["models"]:
            model["weights"] = "pretrained"
        manifest_path.write_text(json.dumps(manifest))
    docs = tmp_path / "docs"
    written = write_all_pages(load_catalog(tmp_path), docs).pages.written
    return {src: (docs / src).read_text(encoding="utf-8") for src in written}


def test_json_for_html_cannot_close_the_script_element():
    text = json_for_html({"label": "</script><script>alert(1)</script> & <!--"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"label": "</script><script>alert(1)</script> & <!--"}


@given(st.text(min_size=1, max_size=60))
def test_slugs_are_safe(text):
    s = layout.slug(text)
    assert re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", s) and not s.endswith(".")


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_distinct_ids_get_distinct_slugs(a, b):
    if a != b:
        assert layout.slug(a) != layout.slug(b)


def test_relative_urls():
    assert layout.relative("atlas/images/x.md", "atlas-data/a.png", True) == "../../../atlas-data/a.png"
    assert layout.relative("atlas/index.md", layout.image_page("y"), True) == "../atlas/images/y/"
    assert layout.relative("atlas/images/x.md", "atlas/index.md", False) == "../../atlas/"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_pages_escape_user_strings_and_have_no_inline_code(tmp_path):
    pages = _pages(tmp_path)
    for src, text in pages.items():
        parser = _Tags()
        parser.feed(text.split("---\n", 2)[2])
        for tag, attrs in parser.tags:
            assert tag != "script" or attrs == {"type": "application/json", "id": "atlas-data"}, src
            assert not any(name.startswith("on") or name == "style" for name in attrs), (src, tag, attrs)
            assert not any((v or "").strip().lower().startswith("javascript:") for v in attrs.values()), src
            assert tag != "b" and (tag != "img" or attrs.get("src") != "x"), src  # from the odd id/label
    odd = pages[layout.image_page(layout.slug(ODD_ID))]
    assert "odd name &amp; &lt;b&gt;&#34;quotes&#34; &#39;x&#39;" in odd
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in odd
    front = json.loads(odd.split("---\n")[1])
    assert front["template"] == "atlas.html" and not set(front["title"]) & set("<>&\"'")


def test_every_atlas_page_has_the_random_weights_banner(tmp_path):
    pages = _pages(tmp_path)
    assert len(pages) > 10
    for src, text in pages.items():
        assert '<details class="atlas-random-banner" data-role="random-banner">' in text, src
        assert "<strong>siglip</strong>" in text, src


def test_colormap_filters_are_one_shared_asset_not_inline(tmp_path):
    pages = _pages(tmp_path)
    assert not any("<filter" in text or "tableValues" in text for text in pages.values())
    module = (tmp_path / "docs" / COLORMAP_MODULE).read_text(encoding="utf-8")
    tables = json.loads(module.split("export const FILTERS = ", 1)[1].rstrip().rstrip(";"))
    assert tables == {name: list(channels) for name, channels in colormap_filters()}


def test_no_banner_without_random_weights(tmp_path):
    assert not any("atlas-random-banner" in t for t in _pages(tmp_path, random_weights=False).values())


def test_one_head_viewer_per_model_and_the_old_head_addresses_redirect(tmp_path):
    """One head viewer per model with heads (atlas/heads/<model>/), a picker link with the id lLL-hHH per
    head, and a redirect from each old per-head address to the viewer's permalink of that head."""
    write_fake_build(tmp_path)
    catalog = load_catalog(tmp_path)
    written = write_all_pages(catalog, tmp_path / "docs")
    heads = sorted(s for s in written.pages.written if s.startswith("atlas/heads/") and not s.endswith("index.md"))
    assert heads == ["atlas/heads/dinov2.md", "atlas/heads/siglip.md"]
    viewer = (tmp_path / "docs" / "atlas/heads/dinov2.md").read_text(encoding="utf-8")
    ids = re.findall(r'<a id="(l\d\d-h\d\d)" href="#\1"', viewer)
    assert ids == [f"l{layer:02d}-h{h:02d}" for layer in range(3) for h in range(4)]
    redirects = dict(written.pages.redirects)
    assert len(redirects) == 3 * 4 + 2 * 3
    assert redirects["atlas/heads/dinov2/l02-h03.md"] == "../../../../atlas/heads/dinov2/#l02-h03"
    assert not any(src.startswith("atlas/heads/resnet50") for src in written.pages.written)
    locations = [e["location"] for e in written.pages.search_entries]
    assert "atlas/heads/dinov2/#l02-h03" in locations and len(locations) == len(redirects)


def test_model_pages_do_not_grow_with_the_number_of_images(tmp_path):
    """A model page names no image (its image choice and the gallery read the image index, one compact row per
    image): fake builds of 4 and 40 images give model pages of the same size, and the index holds every image."""
    pages = {}
    for count in (4, 40):
        build = tmp_path / str(count)
        manifest = write_fake_build(build, images=count, models=("dinov2",))
        written = write_all_pages(load_catalog(build), build / "docs")
        page = (build / "docs" / layout.model_page("dinov2")).read_text(encoding="utf-8")
        assert not [i["id"] for i in manifest["images"] if i["id"] in page]
        pages[count] = page
        written.pages.write_gallery_index(build / "site")
        index = json.loads((build / "site" / layout.GALLERY_INDEX).read_text(encoding="utf-8"))
        assert [row[:2] + row[6:] for row in index["gallery"]] == [
            [i["id"], layout.slug(i["id"]), i["width"], i["height"]] for i in manifest["images"]]
        assert all(row[2] == [0] for row in index["gallery"])  # every image has maps of the one model
    assert len(pages[40]) - len(pages[4]) == 1  # the image count in the chooser's note: "40 images"


def test_colormap_filters_reproduce_the_lookup_tables_after_truncation():
    filters = dict(colormap_filters())
    assert set(filters) == set(COLORMAPS)
    for name, tables in filters.items():
        for channel, values in enumerate(tables):
            decoded = [int(float(v) * 255) for v in values.split()]  # Chromium truncates to a byte
            assert decoded == lut(name)[:, channel].tolist()


def test_image_page_names_the_grad_cam_target_class(tmp_path):
    """Each CNN's target (the top-1 class) is on the image page: index, label (escaped), random weights said."""
    import numpy as np

    write_fake_build(tmp_path)
    manifest_path = tmp_path / "maps" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    resnet = next(m for m in manifest["models"] if m["kind"] == "cnn")
    npz = tmp_path / "maps" / resnet["maps"]["astronaut"]
    with np.load(npz, allow_pickle=False) as data:
        arrays = dict(data)
    meta = {"gradcam_class": 409, "gradcam_label": "analog <clock>", "model": resnet["name"], "image": "astronaut"}
    np.savez(npz, meta=np.array(json.dumps(meta)), **arrays)

    def page(weights: str) -> str:
        resnet["weights"] = weights
        manifest_path.write_text(json.dumps(manifest))
        docs = tmp_path / f"docs-{weights}"
        write_all_pages(load_catalog(tmp_path), docs)
        return (docs / layout.image_page("astronaut")).read_text(encoding="utf-8")

    line = next(s for s in page("pretrained").splitlines() if 'data-role="gradcam-targets"' in s)
    assert f"top-1 class logit: {resnet['name']}: class 409 (analog &lt;clock&gt;).</p>" in line
    assert "RANDOM" not in line
    assert "class 409 (analog &lt;clock&gt;), the top-1 of RANDOM weights" in page("random")
    other = (tmp_path / "docs-random" / layout.image_page("church_01")).read_text(encoding="utf-8")
    assert "gradcam-targets" not in other  # no map of the CNN for this image (and no target recorded)
