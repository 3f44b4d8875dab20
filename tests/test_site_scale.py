"""The atlas at scale in headless Chromium: a fake site of ``SCALED_IMAGES`` images (several pages of cards).

The paginated gallery (filters over every image, the page and the filters in the URL), the model page's image
choice (a combobox over every image, the image in the URL), the head viewer
(the head's permalink, its sort order against Python's, best and worst first, the card links), the image
pages rendered outside MkDocs (the theme's shell, the site search) and a head found by the search.
Every page runs under the checked page's rules: no console error, no failed request.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from atlas.metrics.data import load_metrics
from atlas.site.catalog import load_catalog
from atlas.site.head_scores import head_scores, order
from tests.fixtures.site_fixtures import SCALED_IMAGES, checked_page
from tests.test_site_browser import _heat_keys, _open, _wait_painted, _wait_until

pytestmark = pytest.mark.browser

GALLERY_PAGE_SIZE, HEAD_PAGE_SIZE, EXTREMES = 60, 48, 6  # gallery.mjs, head.mjs


@pytest.fixture
def spage(browser, scaled_site_url):
    with checked_page(browser) as pg:
        yield pg


def _titles(page, scope: str) -> list[str]:
    return page.eval_on_selector_all(f"{scope} .atlas-card-title", "els => els.map(e => e.textContent)")


def test_gallery_pages_and_filters_cover_every_image(spage, scaled_site_url, scaled_build):
    page, url = spage, scaled_site_url
    manifest = json.loads((scaled_build / "maps" / "manifest.json").read_text())
    images = manifest["images"]
    _open(page, url, "atlas/")
    cards = "[data-role=cards]"
    assert _titles(page, cards) == [i["id"] for i in images[:GALLERY_PAGE_SIZE]]
    assert page.locator(".atlas-count").text_content().startswith(f"{SCALED_IMAGES} of {SCALED_IMAGES} images")
    page.locator("[data-role=pager] button[data-page='2']").first.click()
    assert _titles(page, cards) == [i["id"] for i in images[GALLERY_PAGE_SIZE:2 * GALLERY_PAGE_SIZE]]
    assert "page=2" in page.url
    # a filter runs over every image, not only the page shown: Python's answer, in pages
    page.select_option("select[name=label]", "apse")
    page.select_option("select[name=tag]", "Gothic")
    page.select_option("select[name=model]", "resnet50")
    resnet = next(m for m in manifest["models"] if m["name"] == "resnet50")["maps"]
    wanted = [i["id"] for i in images if any(b["label"] == "apse" for b in i["boxes"]) and "Gothic" in i["tags"]
              and i["id"] in resnet]
    assert 0 < len(wanted) < SCALED_IMAGES
    assert _titles(page, cards) == wanted[:GALLERY_PAGE_SIZE]
    assert page.locator(".atlas-count").text_content().startswith(f"{len(wanted)} of {SCALED_IMAGES} images")
    page.select_option("select[name=label]", "")
    page.select_option("select[name=tag]", "")
    page.fill("input[name=q]", "img_001")  # img_00100 .. img_00149
    wanted = [i["id"] for i in images if "img_001" in i["id"] and i["id"] in resnet]
    assert len(wanted) == 40 and _titles(page, cards) == wanted
    page.select_option("select[name=model]", "")
    page.fill("input[name=q]", "img_0")
    page.locator("[data-role=pager] button[data-page='3']").first.click()
    permalink = page.url
    shown = _titles(page, cards)
    assert shown == [i["id"] for i in images[2 * GALLERY_PAGE_SIZE:]]
    # the permalink round trip: a fresh page at that address shows the same filters and page
    with checked_page(page.context.browser) as other:
        other.goto(permalink)
        other.wait_for_selector(".atlas-root[data-atlas-ready]")
        assert _titles(other, cards) == shown and other.locator("input[name=q]").input_value() == "img_0"
        assert other.locator("[data-role=pager] .atlas-pager-where").first.text_content() == "page 3 of 3"
    page.go_back()  # history steps back to page 1 of the filter
    _wait_until(page, "() => !location.hash.includes('page=3')")
    assert _titles(page, cards) == [i["id"] for i in images[:GALLERY_PAGE_SIZE]]


def _wait_first(page, image_id: str) -> None:
    """Until the first card of the sorted grid is ``image_id``."""
    _wait_until(page, "() => document.querySelector('[data-role=grid] .atlas-card-title').textContent === "
                      f"'{image_id}'")


def _python_view(scaled_build, layer: int, head: int, key: str, worst: bool = False):
    """Image ids in the head viewer's order for score ``key``, and the best/worst extremes, from Python."""
    catalog = load_catalog(scaled_build)
    model = next(m for m in catalog.models if m.name == "dinov2")
    scores = head_scores(catalog, model, load_metrics(scaled_build))
    k = next(i for i, s in enumerate(scores.scores) if s.key == key)
    values = scores.values[layer, k, head]
    desc = scores.scores[k].descending
    ids = [i.id for i in scores.images]
    finite = [i for i in order(values, desc) if math.isfinite(values[i])]
    worst_first = [i for i in order(values, not desc) if math.isfinite(values[i])]
    return ([ids[i] for i in order(values, desc != worst)], [ids[i] for i in finite[:EXTREMES]],
            [ids[i] for i in worst_first[:EXTREMES]], dict(zip(ids, values, strict=True)))


def test_head_viewer_permalink_sort_order_and_cards(spage, scaled_site_url, scaled_build):
    page, url = spage, scaled_site_url
    _open(page, url, "atlas/heads/dinov2/", "l01-h02&sort=iou")
    drawn = page.evaluate("() => document.querySelector('.atlas-root').dataset.drawn")
    assert page.locator("[data-role=head-title]").text_content() == "layer 1 · head 2"
    assert page.locator("[data-role=picker] a[aria-current]").get_attribute("id") == "l01-h02"
    ordered, best, worst, values = _python_view(scaled_build, 1, 2, "iou:cls")
    assert _titles(page, "[data-role=grid]") == ordered[:HEAD_PAGE_SIZE]
    assert _titles(page, "[data-role=best]") == best and _titles(page, "[data-role=worst]") == worst
    assert best[0] != worst[0] and values[best[0]] >= values[worst[0]]
    # images without boxes have no IoU: last, and never among the best or worst
    assert not any(math.isnan(values[i]) for i in best + worst) and math.isnan(values[ordered[-1]])
    score = page.locator("[data-role=best] [data-role=score]").first.text_content()
    assert re.fullmatch(r"iou@25 of CLS attention \S+", score) and float(score.split()[-1]) == pytest.approx(
        float(values[best[0]]), rel=2e-3)
    page.locator("[data-role=pager] button[data-page='2']").click()
    _wait_until(page, f"() => document.querySelector('.atlas-root').dataset.drawn !== '{drawn}'")
    assert _titles(page, "[data-role=grid]") == ordered[HEAD_PAGE_SIZE:2 * HEAD_PAGE_SIZE]
    # sorted by entropy, lowest (most concentrated) first, then worst first
    page.select_option("select[name=sort]", "entropy")
    ordered, best, worst, _ = _python_view(scaled_build, 1, 2, "entropy")
    _wait_first(page, ordered[0])
    assert _titles(page, "[data-role=grid]") == ordered[:HEAD_PAGE_SIZE]  # page 1 again
    assert _titles(page, "[data-role=best]") == best
    page.select_option("select[name=order]", "worst")
    ordered, *_ = _python_view(scaled_build, 1, 2, "entropy", worst=True)
    _wait_first(page, ordered[0])
    assert _titles(page, "[data-role=grid]") == ordered[:HEAD_PAGE_SIZE]
    # the keyboard steps heads and layers (not while a form control has the focus); the hash follows
    page.locator("h1").click()
    page.keyboard.press("ArrowRight")
    _wait_until(page, "() => location.hash.startsWith('#l01-h03&')")
    page.keyboard.press("ArrowUp")
    _wait_until(page, "() => location.hash.startsWith('#l00-h03&')")
    assert "sort=entropy" in page.url and "order=worst" in page.url
    ordered, *_ = _python_view(scaled_build, 0, 3, "entropy", worst=True)
    _wait_first(page, ordered[0])
    # a reload restores the head and the sort; the head's figures are the means over images
    page.reload()
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    _wait_until(page, "() => document.querySelector('.atlas-root').dataset.drawn")
    assert page.locator("[data-role=head-title]").text_content() == "layer 0 · head 3"
    assert _titles(page, "[data-role=grid]") == ordered[:HEAD_PAGE_SIZE]
    entropy = [np.load(scaled_build / "maps" / "dinov2" / f"{i}.npz")["entropy"][0, 3] for i in ordered]
    shown = page.locator("[data-role=figures] tr[data-score=entropy] td[data-col=head]").text_content()
    assert shown == f"{np.mean(np.array(entropy, dtype=np.float64)):#.3g}"  # toPrecision(3)
    # a card opens its image zoomed on this head, with the viewer's method, layer and colormap
    page.select_option("select[name=cmap]", "turbo")
    _wait_until(page, "() => location.hash.includes('cmap=turbo')")
    link = page.locator("[data-role=grid] .atlas-card a").first
    href = link.get_attribute("href")
    assert href.endswith(f"atlas/images/{ordered[0]}/#models=dinov2&method=cls&layer=0&view=heads&display=overlay"
                         "&cmap=turbo&zoom=dinov2%3Ah03")
    link.click()
    page.wait_for_selector(".atlas-root[data-atlas-page=image][data-atlas-ready]")
    _wait_until(page, "() => document.querySelector('dialog.atlas-zoom').open")
    assert page.locator("select[name=cmap]").input_value() == "turbo"
    zoomed = page.locator("dialog.atlas-zoom canvas.atlas-heat").first
    assert (zoomed.get_attribute("data-variant"), zoomed.get_attribute("data-layer")) == ("h03", "0")


def test_outside_pages_keep_the_theme_and_search_finds_images_and_heads(spage, scaled_site_url, scaled_build):
    """Image pages written from the page shell have the theme's title, nav and search; the search finds a
    head's permalink and an image page (without the theme's source maps and other search languages, which
    the site leaves out); an old head address redirects to the viewer's permalink."""
    page, url = spage, scaled_site_url
    site = scaled_build / "site"
    assert not list(site.glob("atlas/_shell_*")) and (site / "atlas/images/img_00149/index.html").is_file()
    assert not list(site.rglob("*.map")) and not (site / "assets/javascripts/lunr").exists()  # trimmed; search works
    _open(page, url, "atlas/images/img_00042/")
    assert page.title().startswith("Image img_00042 - ")
    assert page.locator(".md-header__topic", has_text="Image img_00042").count() == 1
    assert page.locator("nav.md-nav a", has_text="Gallery").count() >= 1
    page.locator("input.md-search__input").click()
    page.keyboard.type("dinov2 l01 h02")
    hit = "() => [...document.querySelectorAll('.md-search-result__item a')].some(a => {{ const u = new URL(a.href);" \
          " return u.pathname.endsWith('{path}') && u.hash === '{hash}'; }})"
    _wait_until(page, hit.format(path="/atlas/heads/dinov2/", hash="#l01-h02"))  # the head's permalink
    page.keyboard.press("Control+A")
    page.keyboard.type("img_00077")  # typed: the theme's search listens to the keys
    _wait_until(page, hit.format(path="/atlas/images/img_00077/", hash=""))
    page.keyboard.press("Escape")
    _open(page, url, "atlas/heads/dinov2/l02-h01/")
    _wait_until(page, "() => location.pathname.endsWith('/atlas/heads/dinov2/') && location.hash === '#l02-h01'")
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    assert page.locator("[data-role=picker] a[aria-current]").get_attribute("id") == "l02-h01"


def _grid_images(page) -> set[str]:
    """The images the model page's grid shows (every heat canvas painted)."""
    _wait_painted(page, ".atlas-layer-grid")
    return {k.split("/")[1] for k in _heat_keys(page, ".atlas-layer-grid")}


def test_model_page_chooses_its_image_among_every_image(spage, scaled_site_url):
    """The model page's HTML names no image; its combobox searches every image of the index (typed part of an
    id, arrows, Enter), the buttons step, the hash is a permalink and back/forward restore the image."""
    page, url = spage, scaled_site_url
    html = page.request.get(url + "atlas/models/dinov2/").text()
    assert "img_00000" not in html and "img_00149" not in html
    _open(page, url, "atlas/models/dinov2/")
    chooser = page.locator("[data-role=image-chooser]")
    field, options = chooser.locator("input[role=combobox]"), chooser.locator("[role=option]")
    note = chooser.locator("[data-role=image-note]")
    assert field.input_value() == "img_00000" and _grid_images(page) == {"img_00000"}
    assert note.text_content() == f"image 1 of {SCALED_IMAGES}"
    field.focus()
    page.keyboard.press("ArrowDown")  # lists 50 images around the shown one (the first), the shown one active
    assert field.get_attribute("aria-expanded") == "true" and options.count() == 50
    assert note.text_content() == f"images 1–50 of {SCALED_IMAGES} listed: type part of an id to find others"
    assert field.get_attribute("aria-activedescendant") == options.first.get_attribute("id")
    page.keyboard.type("_0014")  # replaces the selected id: img_00140 .. img_00149
    assert options.all_text_contents() == [f"img_{n:05d}" for n in range(140, 150)]
    assert note.text_content() == f"10 of {SCALED_IMAGES} images match"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.locator("[role=option][aria-selected=true]").text_content() == "img_00141"
    page.keyboard.press("Enter")
    assert _grid_images(page) == {"img_00141"} and "image=img_00141" in page.url
    assert field.input_value() == "img_00141" and chooser.locator("[role=listbox]").is_hidden()
    chooser.locator("[data-action=next-image]").click()
    assert _grid_images(page) == {"img_00142"} and field.input_value() == "img_00142"
    for _ in range(2):
        chooser.locator("[data-action=prev-image]").click()
    assert _grid_images(page) == {"img_00140"} and note.text_content() == f"image 141 of {SCALED_IMAGES}"
    field.click()  # the list around the shown image, which is active
    assert options.first.text_content() == "img_00100" and options.count() == 50
    assert page.locator("[role=option][aria-selected=true]").text_content() == "img_00140"
    # no match: Enter picks nothing; Escape closes the list, then puts the shown id back
    field.fill("nothing")
    assert options.count() == 0 and note.text_content() == "no image id contains that"
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    assert field.input_value() == "img_00140" and _grid_images(page) == {"img_00140"}
    # the permalink opens the same image; back steps to the image before
    permalink = page.url
    with checked_page(page.context.browser) as other:
        _open(other, permalink, "")
        assert other.locator("[data-role=image-chooser] input").input_value() == "img_00140"
        assert _grid_images(other) == {"img_00140"}
    page.go_back()
    _wait_until(page, "() => location.hash.includes('image=img_00141')")
    assert _grid_images(page) == {"img_00141"} and field.input_value() == "img_00141"


def _label_view(scaled_build, label: str, method: str, layer: int, head: int, worst: bool = False):
    """Image ids in the head viewer's order for the sort by box label ``label``, computed from the per-image rows:
    each image's box metric of this head averaged over its boxes of ``label`` (as float32, the page's values),
    highest first (or lowest with ``worst``); images without such a box (no value) last, in file order."""
    from atlas.metrics.rows import SUFFIX, read_rows

    metric = json.loads((scaled_build / "metrics" / "summary.json").read_text(encoding="utf-8"))["box_metric"]
    found: dict[str, list[float]] = {}
    for r in read_rows(scaled_build / "metrics" / f"dinov2{SUFFIX}"):
        if (r.metric, r.label, r.method, r.layer, r.head) == (metric, label, method, layer, str(head)) \
                and r.box is not None and math.isfinite(r.value):
            found.setdefault(r.image, []).append(r.value)
    catalog = load_catalog(scaled_build)
    model = next(m for m in catalog.models if m.name == "dinov2")
    ids = [i.id for i in catalog.images if i.id in model.maps]  # the score files' (and the index's) order
    values = {i: np.float32(np.mean(np.array(v, dtype=np.float64))) for i, v in found.items()}
    sign = 1.0 if worst else -1.0
    ranked = sorted((i for i in ids if i in values), key=lambda i: (sign * float(values[i]), ids.index(i)))
    return ranked + [i for i in ids if i not in values], values, metric


def test_head_label_matrix_cell_opens_the_head_sorted_by_the_label(spage, scaled_site_url, scaled_build):
    """Issue 27 item 5: a cell of the model metrics page's head x label matrix opens the head viewer at that head,
    its images ordered by that label's box metric of the head on each image (images without the label last, said
    to have none); the sort is in the permalink and offered by the sort chooser while it is shown."""
    page, url = spage, scaled_site_url
    _open(page, url, "atlas/leaderboard/dinov2/")
    block = page.locator('[data-chooser="label"]')
    label = "window"
    block.locator("select").select_option(label)
    shown = block.locator("[data-choice]:visible")
    best_link = shown.locator('.atlas-label-best li[data-method="cls"] a').get_attribute("href")
    assert "&sort=label%3Awindow" in best_link  # the best head's link sorts by the label too
    shown.locator('table.atlas-label-heat[data-method="cls"] td[data-layer="1"][data-head="2"] a').click()
    page.wait_for_selector(".atlas-root[data-atlas-page=head][data-atlas-ready]")
    _wait_until(page, "() => document.querySelector('.atlas-root').dataset.drawn")
    assert page.evaluate("location.hash") == "#l01-h02&method=cls&sort=label%3Awindow"
    assert page.locator("[data-role=head-title]").text_content() == "layer 1 · head 2"
    ordered, values, metric = _label_view(scaled_build, label, "cls", 1, 2)
    sort = page.locator("select[name=sort]")
    assert sort.input_value() == "label:window"
    assert sort.locator("option:checked").text_content() == f"{metric} on “window” boxes"
    assert 6 < len(values) < HEAD_PAGE_SIZE < len(ordered)  # the first page holds images with and without the label
    assert _titles(page, "[data-role=grid]") == ordered[:HEAD_PAGE_SIZE]
    assert _titles(page, "[data-role=best]") == ordered[:EXTREMES]
    scores = page.locator("[data-role=grid] [data-role=score]").all_text_contents()
    first = scores[0]
    assert first.startswith(f"{metric} on “window” ") and float(first.split()[-1]) == pytest.approx(
        float(values[ordered[0]]), rel=2e-3)
    assert scores[len(values):] == ["no “window” box"] * (HEAD_PAGE_SIZE - len(values))
    # worst first: lowest first, still without the label last
    drawn = page.evaluate("() => document.querySelector('.atlas-root').dataset.drawn")
    page.select_option("select[name=order]", "worst")
    _wait_until(page, f"() => document.querySelector('.atlas-root').dataset.drawn !== '{drawn}'")
    worst, *_ = _label_view(scaled_build, label, "cls", 1, 2, worst=True)
    assert _titles(page, "[data-role=grid]") == worst[:HEAD_PAGE_SIZE] and worst[0] != ordered[0]
    # the permalink restores the label sort; another head keeps it; another sort drops the label from the chooser
    page.reload()
    page.wait_for_selector(".atlas-root[data-atlas-ready]")
    _wait_until(page, "() => document.querySelector('.atlas-root').dataset.drawn")
    assert sort.input_value() == "label:window" and _titles(page, "[data-role=grid]") == worst[:HEAD_PAGE_SIZE]
    page.locator("h1").click()
    page.keyboard.press("ArrowRight")
    _wait_until(page, "() => location.hash.startsWith('#l01-h03&')")
    worst, *_ = _label_view(scaled_build, label, "cls", 1, 3, worst=True)
    _wait_first(page, worst[0])
    assert _titles(page, "[data-role=grid]") == worst[:HEAD_PAGE_SIZE]
    page.select_option("select[name=sort]", "entropy")
    _wait_until(page, "() => location.hash.includes('sort=entropy')")
    assert sort.locator("option[data-label]").count() == 0
