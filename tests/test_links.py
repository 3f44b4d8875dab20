"""Crawl the built site: every internal link, image, script and stylesheet resolves; nothing is third-party."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from PIL import Image

from atlas.core import layout
from atlas.site.stage import SiteReport

RESOURCE_ATTRS = {("img", "src"), ("script", "src"), ("link", "href"), ("source", "src"), ("iframe", "src")}


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []  # (tag, url)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        for name in ("href", "src"):
            if a.get(name) is not None and (tag == "a" or (tag, name) in RESOURCE_ATTRS):
                self.refs.append((tag, a[name]))


def _parse(path: Path) -> _Refs:
    parser = _Refs()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _target(site: Path, page: Path, url: str) -> tuple[Path, str]:
    parts = urlsplit(url)
    base = page.parent
    path = (base / unquote(parts.path)).resolve() if parts.path else page
    if path.is_dir():
        path = path / "index.html"
    assert site.resolve() in path.parents or path == site.resolve(), f"{page}: {url} leaves the site"
    return path, parts.fragment


def test_every_internal_reference_resolves(built_site: SiteReport):
    crawl(built_site.site_dir, min_pages=20, min_checked=500)


def crawl(site: Path, *, min_pages: int, min_checked: int) -> None:
    """Every internal link, image, script and stylesheet of every page of ``site`` resolves (also used on a
    real tiny-model build by tests/test_site_hostile.py)."""
    pages = sorted(p for p in site.rglob("*.html") if p.name != "404.html")
    assert len(pages) > min_pages
    parsed = {p: _parse(p) for p in pages}
    broken, foreign, checked = [], [], 0
    for page, refs in parsed.items():
        for tag, url in refs.refs:
            scheme = urlsplit(url).scheme
            if scheme or url.startswith("//"):
                if tag != "a":  # a resource from elsewhere would be a third-party request
                    foreign.append(f"{page.relative_to(site)}: {url}")
                continue
            if url.startswith("#") and len(url) == 1:
                continue
            target, fragment = _target(site, page, url)
            checked += 1
            if not target.is_file():
                broken.append(f"{page.relative_to(site)}: {url}")
            elif fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                # a head viewer's permalink "lLL-hHH&key=value...": its head's picker link has the id lLL-hHH
                anchor = fragment.split("&")[0] if re.match(r"l\d\d-h\d\d(&|$)", fragment) else fragment
                if anchor not in ids and not fragment.startswith(("models=", "image=", "method=", "tag=")):
                    broken.append(f"{page.relative_to(site)}: {url} (no #{fragment})")
    assert not foreign, foreign
    assert not broken, broken
    assert checked > min_checked


def test_css_references_resolve(built_site: SiteReport):
    site = built_site.site_dir
    for css in site.rglob("*.css"):
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", css.read_text(encoding="utf-8", errors="replace")):
            if url.startswith(("data:", "#")):
                continue
            assert not urlsplit(url).scheme, f"{css}: third-party {url}"
            assert (css.parent / urlsplit(url).path).resolve().is_file(), f"{css}: {url}"


def test_every_map_a_page_can_show_exists(built_site: SiteReport):
    """The head grid builds sprite URLs in JS (the values come from the same sheets); every (model, image,
    method, layer, variant) must be there."""
    site = built_site.site_dir
    for page in (site / "atlas" / "images").glob("*/index.html"):
        raw = re.search(r'id="atlas-data">(.*?)</script>', page.read_text(encoding="utf-8"), re.S).group(1)
        data = json.loads(raw)
        for model in data["models"]:
            for method in model["methods"]:
                heads = model["heads"] if method in model["headMethods"] else 0
                image = data["image"]["slug"]
                with Image.open(site / layout.map_sprite(model["slug"], image, method)) as sprite:
                    gh, gw = model["grid"]  # one gh x gw tile per layer (rows) and variant (columns)
                    assert sprite.mode == "L" and sprite.size == ((1 + heads) * gw, model["layers"] * gh)
