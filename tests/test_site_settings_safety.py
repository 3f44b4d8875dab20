"""A project's site settings (``site_name``, ``description``, ``site_url``) reach every page as text, never as markup.

They are the one input a page prints through the theme's own templates (header, navigation, ``<title>``,
``<meta name=description>``, ``<link rel=canonical>``) and the generated home page's Markdown. Checked here:
the Markdown escaping through the site's real Markdown configuration; ``atlas init --site-name``; a site built
with hostile settings, in Chromium without any CSP header, on every kind of page: no dialog, no CSP violation
(so the escaping alone stopped it), each setting shown or carried exactly; and, with the escaping switched
off, the ``<meta http-equiv="Content-Security-Policy">`` alone blocks the injected handlers.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import markdown
import pytest
from mkdocs.config import load_config
from typer.testing import CliRunner

from atlas.cli import app
from atlas.core.page_safety import markdown_text
from atlas.core.resources import mkdocs_config
from atlas.project import SiteSettings
from atlas.site.stage import build_site
from tests.fixtures.site_fixtures import checked_page
from tests.fixtures.site_server import serve_site

NAME = '<img src=x onerror=alert("name")> R&D "q" \'s *x* [a](javascript:alert(4)) {: #y }'
DESCRIPTION = '"><img src=x onerror=alert("description")> & --8<-- "x.md" $x$'
# "&" would be refused by the check (test_project.py), so this tests the escaping alone; no path, so that
# 404.html (whose links MkDocs makes absolute from site_url's path) works from the test server's root
SITE_URL = "https://o'brien&lt;x.example.org/"
# every kind of page: MkDocs' own, the atlas' (through MkDocs, and outside it from a shell), a redirect, 404
PAGES = {
    "home": "", "gallery": "atlas/", "image": "atlas/images/astronaut/", "models": "atlas/models/",
    "model": "atlas/models/dinov2/", "heads": "atlas/heads/", "head": "atlas/heads/dinov2/#l00-h00",
    "redirect": "atlas/heads/dinov2/l01-h02/", "anatomy index": "atlas/anatomy/", "anatomy": "atlas/anatomy/dinov2/",
    "leaderboard": "atlas/leaderboard/", "model metrics": "atlas/leaderboard/dinov2/", "report": "atlas/report/",
    "docs": "attention-atlas/methods/", "not found": "404.html",
}  # fmt: skip
LISTEN = """() => {
  window.__violations = [];
  document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective));
}"""
SHOWN = """() => ({
  header: document.querySelector(".md-header__topic .md-ellipsis").textContent.trim(),
  nav: document.querySelector("label.md-nav__title").textContent.trim(),
  // mkdocs-material shows a title as a tooltip through innerHTML: parsed as HTML (inertly), it must be text
  logos: [...document.querySelectorAll("a.md-logo")].map((a) => {
    const parsed = new DOMParser().parseFromString(a.title, "text/html").body;
    return parsed.children.length ? "markup: " + a.title : parsed.textContent;
  }),
  title: document.title,
  description: document.querySelector('meta[name="description"]')?.getAttribute("content"),
  canonical: document.querySelector('link[rel="canonical"]')?.getAttribute("href"),
  injected: document.querySelectorAll('img[src="x"], [onerror], [onload], a[href^="javascript:"]').length,
  violations: window.__violations,
})"""


class _Elements(HTMLParser):
    """The tags and the text of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_setting_texts_are_markdown_that_renders_as_the_text():
    """Through the site's own Markdown extensions (snippets, attr_list, math, tables ...): the generated home
    page's heading and paragraph hold exactly the text, as text."""
    config = load_config(str(mkdocs_config()))
    md = markdown.Markdown(extensions=config.markdown_extensions, extension_configs=config.mdx_configs)
    for text in (NAME, DESCRIPTION, SITE_URL, "1. Intro", "- item", "# not a heading", "> quote", "a | b",
                 "++ctrl++ `code` ~~x~~ ==y== <!-- c -->", "Köln ² 東京 & co."):  # fmt: skip
        for source, tag in ((f"# {markdown_text(text)}", "h1"), (markdown_text(text), "p")):
            parser = _Elements()
            parser.feed(md.reset().convert(source))
            assert parser.tags in ([tag], [tag, "a"]), (text, parser.tags)  # "a": the heading's permalink
            assert "".join(parser.text).removesuffix("¶") == text, (text, source)


def test_init_writes_the_site_name_as_text_and_refuses_a_control_character(tmp_path):
    runner = CliRunner()
    images = tmp_path / "imgs"
    images.mkdir()
    for name in ("a\x07b", "a\nb", "a\x7fb", "a\u2028b"):
        result = runner.invoke(app, ["init", str(tmp_path / "bad"), "--images", str(images), "--site-name", name])
        assert result.exit_code == 2 and "it must be one line of text" in result.stderr, (name, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()
    folder = tmp_path / "tab\tname"  # no --site-name: the folder's name is the default
    result = runner.invoke(app, ["init", str(folder), "--images", str(images)])
    assert result.exit_code == 2
    assert "tab\\x09name (the default --site-name): holds a control character" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not folder.exists()
    result = runner.invoke(app, ["init", str(tmp_path / "p"), "--images", str(images), "--site-name", NAME])
    assert result.exit_code == 0, result.output
    for page in ("README.md", "pages/index.md"):
        text = (tmp_path / "p" / page).read_text(encoding="utf-8")
        assert f"# {markdown_text(NAME)}\n" in text and "<img" not in text and "](javascript" not in text, page


@pytest.fixture(scope="module")
def settings_build(fake_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the fake build (its inputs and caches, not its site) to build sites with other settings."""
    build = tmp_path_factory.mktemp("settings")
    shutil.copytree(fake_build, build, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("site", ".site.*", "docs", "theme", "outside-pages"))
    return build


@pytest.fixture(scope="module")
def hostile_site_url(settings_build: Path) -> Iterator[str]:
    """The site of hostile settings (generated home page), served without a CSP header: only the pages' meta."""
    settings = SiteSettings(site_name=NAME, description=DESCRIPTION, site_url=SITE_URL)
    site = build_site(settings_build, settings_build / "hostile-site", settings=settings).site_dir
    with serve_site(site, csp=None) as url:
        yield url


def _dialogs(page) -> list[str]:
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


@pytest.mark.browser
@pytest.mark.parametrize("kind", list(PAGES))
def test_hostile_settings_are_text_on_every_kind_of_page(hostile_site_url: str, browser, kind: str):
    with checked_page(browser) as page:  # no console error, no failed or foreign request
        dialogs = _dialogs(page)
        page.add_init_script(f"({LISTEN})()")
        page.goto(hostile_site_url + PAGES[kind])
        page.wait_for_load_state("networkidle")
        if kind == "redirect":
            assert page.url.endswith("atlas/heads/dinov2/#l01-h02"), page.url
        path = page.url.removeprefix(hostile_site_url).split("#")[0]
        shown = page.evaluate(SHOWN)
        assert shown["injected"] == 0 and shown["violations"] == [] and dialogs == [], (kind, shown, dialogs)
        assert shown["header"] == shown["nav"] == NAME and shown["logos"] == [NAME, NAME], (kind, shown)
        assert shown["title"] == NAME or shown["title"].endswith(f" - {NAME}"), (kind, shown["title"])
        assert shown["description"] == DESCRIPTION, kind
        if kind != "not found":  # MkDocs gives 404.html no canonical link
            assert shown["canonical"] == SITE_URL + path, (kind, shown["canonical"])
        if kind == "home":  # the generated home page: the name and the description as text
            assert page.locator("article h1").inner_text().removesuffix("¶") == NAME  # ¶: its permalink
            assert DESCRIPTION in page.locator("article").inner_text()
            page.hover("a.md-header__button.md-logo")  # the theme's tooltip of the logo
            assert page.locator(".md-tooltip__inner").inner_text() == NAME
            page.locator("input.md-search__input").click()  # the search renders hits as HTML
            page.keyboard.type("onerror")
            page.wait_for_selector(".md-search-result__item", timeout=10000)
            assert NAME in page.locator(".md-search-result").inner_text()
            after = page.evaluate(SHOWN)
            assert after["injected"] == 0 and after["violations"] == [] and dialogs == [], after


@pytest.mark.browser
def test_the_csp_meta_alone_blocks_an_injected_onerror(settings_build: Path, browser, monkeypatch):
    """With the escaping switched off, the payloads become markup in every page's header and head, and the
    ``<meta http-equiv="Content-Security-Policy">`` (no header: the test server sends none) blocks them."""
    import atlas.site.stage

    monkeypatch.setattr(atlas.site.stage, "theme_html", str)
    monkeypatch.setattr(atlas.site.stage, "markdown_text", str)
    payload = '<img src=x onerror="window.__pwned=1;alert(1)">'
    settings = SiteSettings(site_name=payload, description='"><img src=x onerror="window.__pwned=2;alert(2)">')
    site = build_site(settings_build, settings_build / "unescaped-site", settings=settings).site_dir
    with serve_site(site, csp=None) as url:
        for kind in ("home", "gallery", "image", "head", "docs", "not found"):
            context = browser.new_context()
            page = context.new_page()
            dialogs = _dialogs(page)
            page.add_init_script(f"({LISTEN})()")
            page.goto(url + PAGES[kind])
            page.wait_for_load_state("networkidle")
            assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"][onerror]').length") >= 2, kind
            assert page.evaluate("() => window.__pwned") is None and dialogs == [], kind
            assert "script-src-attr" in page.evaluate("() => window.__violations"), kind
            context.close()
