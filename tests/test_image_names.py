"""Image file names in any script, or not UTF-8 at all, and names the site's own pages use (issue 28, items
7, 9 and 18): every image gets a unique, stable id, a page where the gallery links to, and safe paths.

One real build (tiny model) of Москва, Париж, 東京, 京都, Αθήνα, ``caf\\xe9`` (Latin-1 bytes), ``index`` and a
plain name; the checks run on its manifest and site, and the gallery's links are followed in Chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atlas.cli import app
from atlas.core import layout
from atlas.dataset.stage import sample_paths
from ssl_attention.images import MAX_ID_LENGTH, image_id
from tests.fixtures.site_server import serve_site
from tests.test_links import crawl

UNICODE = ("Москва", "Париж", "東京", "京都", "Αθήνα")
LATIN1 = os.fsdecode(b"caf\xe9")  # not UTF-8: Python keeps the byte as a lone surrogate
NAMES = (*UNICODE, LATIN1, "index", "plain")
SAMPLES = sorted(sample_paths()[0].glob("*.jpg"))
# a path or URL of the site: ASCII letters, digits and - _ . / only (no %, no spaces, nothing to escape)
SAFE_PATH = re.compile(r"[A-Za-z0-9_./-]+")


@pytest.fixture(scope="module")
def names_build(tiny_checkpoints, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("names")
    images = root / "images"
    images.mkdir()
    for name, sample in zip(NAMES, SAMPLES, strict=False):  # distinct photos: no two share their bytes
        shutil.copy(sample, images / f"{name}.jpg")
    out = root / "out"
    result = CliRunner().invoke(app, ["build", "--images", str(images), "--model", f"d={tiny_checkpoints['dinov2']}",
                                      "--weights", "pretrained", "--image-size", "32", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_non_latin_names_get_unique_stable_ids_and_ascii_names_keep_theirs():
    ids = [image_id(Path(f"{name}.jpg")) for name in UNICODE]
    assert len(set(ids)) == len(UNICODE)  # they were all "image": four skipped as duplicates
    for name, ident in zip(UNICODE, ids, strict=True):
        assert ident.startswith(f"{name}-") and re.fullmatch(r"-[0-9a-f]{8}", ident.removeprefix(name)), ident
        assert image_id(Path(f"{name}.png")) == ident  # stable: the stem alone decides
    # NFC and NFD spellings of café, and names that differ only in what is replaced, stay apart
    assert len({image_id(Path(n)) for n in ("café.jpg", "cafe\u0301.jpg", "caf\u200b.jpg", "caf.jpg")}) == 4
    assert len(image_id(Path("東" * 200 + ".jpg")).encode()) <= MAX_ID_LENGTH  # bytes on disk, not characters
    # ASCII names keep the ids of existing builds (their bytes do not change)
    for name, ident in {"church_01.jpg": "church_01", "a b<c>.png": "a_b_c", ".hidden.png": "hidden",
                        "___.jpg": "image", "x" * 130 + ".jpg": "x" * 111 + "-d140171c"}.items():
        assert image_id(Path(name)) == ident, name


def test_every_name_builds_with_a_page_where_the_gallery_links(names_build: Path):
    manifest = json.loads((names_build / "maps" / "manifest.json").read_text(encoding="utf-8"))
    report = json.loads((names_build / "report.json").read_text(encoding="utf-8"))
    assert report["skipped"] == [] and len(manifest["images"]) == len(NAMES)
    files = {image["file"] for image in manifest["images"]}
    assert "caf\\xe9.jpg" in files and "Москва.jpg" in files  # the non-UTF-8 byte shown as an escape
    site = names_build / "site"
    gallery = json.loads((site / layout.GALLERY_INDEX).read_text(encoding="utf-8"))
    for row in gallery["gallery"]:  # [id, slug, ...]: the gallery links to imageUrl with IMAGE -> slug
        url = layout.page_url(layout.image_page(row[1]), use_directory_urls=True)
        assert url == f"atlas/images/{row[1]}/" and (site / url / "index.html").is_file(), row
    assert not (site / "atlas" / "images" / "index.html").exists()  # the image "index" is not the folder's page


def test_ids_are_safe_in_every_file_name_and_url(names_build: Path):
    site = names_build / "site"
    for path in site.rglob("*"):
        assert SAFE_PATH.fullmatch(path.relative_to(site).as_posix()), path
    crawl(site, min_pages=len(NAMES), min_checked=100)
    page = (site / "atlas" / "images" / layout.slug(image_id(Path(f"{LATIN1}.jpg"))) / "index.html")
    assert "caf\\xe9.jpg" in page.read_text(encoding="utf-8")


@pytest.mark.browser
def test_the_gallery_finds_and_opens_every_image_in_chromium(names_build: Path, browser):
    from tests.fixtures.site_fixtures import checked_page

    with serve_site(names_build / "site") as url, checked_page(browser) as page:
        page.goto(url + "atlas/")
        page.wait_for_selector(".atlas-root[data-atlas-ready]")
        links = page.eval_on_selector_all(".atlas-card a[href]", "els => els.map(e => [e.textContent, e.href])")
        assert sorted(text for text, _ in links) == sorted(image_id(Path(f"{n}.jpg")) for n in NAMES)
        page.fill("input[name=q]", "москва")  # the file-name filter matches the kept letters, in any case
        page.wait_for_timeout(300)
        shown = page.eval_on_selector_all(".atlas-card:not([hidden]) .atlas-card-title",
                                          "els => els.map(e => e.textContent)")
        assert shown == [image_id(Path("Москва.jpg"))]
        for text, href in links:
            response = page.goto(href)
            assert response is not None and response.status == 200, (text, href)
            page.wait_for_selector(".atlas-root[data-atlas-ready]")
            assert text in page.locator("article").inner_text(), href
