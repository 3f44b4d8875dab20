"""The Content-Security-Policy documented for deployers (site_src/robust-builds.md#content-security-policy):
the built pages carry no inline code (the theme's inline scripts are moved into files by templates/overrides),
and every kind of page works under the policy in Chromium without a single violation.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from atlas.core.page_safety import PAGE_CSP
from tests.fixtures.site_fixtures import checked_page
from tests.fixtures.site_server import SITE_CSP, inline_script_hashes, serve_site

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    "gallery": "atlas/",
    "image": "atlas/images/astronaut/",
    "model": "atlas/models/dinov2/",
    "head": "atlas/heads/dinov2/#l00-h00",
    "docs": "methods/",
}
VIOLATIONS = """() => {
  window.__violations = [];
  document.addEventListener("securitypolicyviolation",
    (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sample || "")));
}"""


class _InlineCode(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' blocks: handler and style attributes, <style>, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs:
            if name.startswith("on") or name == "style" or (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")


def test_no_built_page_has_inline_code(built_site):
    """What `script-src 'self'` and `style-src 'self'` (no hashes, no 'unsafe-inline') need of every page."""
    pages = sorted(built_site.site_dir.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert inline_script_hashes(html) == [], page
        parser = _InlineCode()
        parser.feed(html)
        assert parser.found == [], page


def test_the_documented_policy_is_the_tested_one():
    docs = " ".join((ROOT / "site_src" / "robust-builds.md").read_text(encoding="utf-8").split())
    assert f"Content-Security-Policy: {SITE_CSP}" in docs
    assert f'<meta http-equiv="Content-Security-Policy" content="{PAGE_CSP}">' in docs


class _Head(HTMLParser):
    """The first element of ``<head>``."""

    def __init__(self) -> None:
        super().__init__()
        self.first: tuple[str, dict[str, str | None]] | None = None
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            self._in_head = True
        elif self._in_head and self.first is None:
            self.first = (tag, dict(attrs))


def test_every_page_starts_its_head_with_the_policy(built_site):
    """GitHub Pages sends no CSP header: every page carries the policy itself, before anything it governs. A
    <meta> policy cannot hold frame-ancestors (browsers ignore it there, with a console error)."""
    directives = SITE_CSP.split("; ")
    assert PAGE_CSP.split("; ") == [d for d in directives if not d.startswith("frame-ancestors")]
    assert not set(PAGE_CSP) & set('"<>&')  # printed into the attribute as it is
    pages = sorted(built_site.site_dir.rglob("*.html"))
    kinds = {"404.html", "index.html", "atlas/images/astronaut/index.html", "atlas/heads/dinov2/l00-h00/index.html"}
    assert kinds <= {p.relative_to(built_site.site_dir).as_posix() for p in pages}  # theme, outside, redirect
    for page in pages:
        parser = _Head()
        parser.feed(page.read_text(encoding="utf-8"))
        assert parser.first == ("meta", {"http-equiv": "Content-Security-Policy", "content": PAGE_CSP}), page


@pytest.mark.browser
@pytest.mark.parametrize("kind", list(PAGES))
def test_every_kind_of_page_works_under_the_documented_csp(built_site, browser, kind):
    with serve_site(built_site.site_dir, csp=SITE_CSP) as url, checked_page(browser) as page:
        page.add_init_script(f"({VIOLATIONS})()")
        response = page.goto(url + PAGES[kind])
        assert response.headers["content-security-policy"] == SITE_CSP
        page.wait_for_load_state("networkidle")
        assert page.evaluate("() => typeof __md_get === 'function' && __md_scope.pathname") == "/"  # theme-base.js
        if kind == "docs":
            page.wait_for_selector(".arithmatex .katex", state="attached")  # KaTeX rendered the math
        else:
            page.wait_for_selector(".atlas-root[data-atlas-ready]", state="attached")
            if kind != "gallery":
                page.wait_for_selector("canvas.atlas-heat[data-ready]", state="attached")  # a tile painted
        assert page.evaluate("() => window.__violations") == []


@pytest.mark.browser
def test_the_violation_listener_sees_a_blocked_inline_handler(built_site, browser):
    """Positive control of the test above: an injected inline handler is blocked and reported."""
    with serve_site(built_site.site_dir, csp=SITE_CSP) as url:
        context = browser.new_context()
        page = context.new_page()
        page.add_init_script(f"({VIOLATIONS})()")
        page.goto(url + PAGES["image"])
        page.evaluate("""() => document.body.insertAdjacentHTML("beforeend",
            '<img src="data:image/png;base64,AAAA" onerror="window.__pwned = 1">')""")
        page.wait_for_function("() => window.__violations.length > 0")
        assert page.evaluate("() => window.__pwned") is None
        assert page.evaluate("() => window.__violations")[0].startswith("script-src-attr inline")
        context.close()


def test_the_moved_theme_scripts_match_the_installed_theme():
    """templates/overrides copies mkdocs-material's inline scripts into files: an upgraded theme that
    changes them fails here (update the copies), instead of silently running old code."""
    import material

    partials = Path(material.__file__).parent / "templates" / "partials" / "javascripts"
    ours = ROOT / "templates" / "overrides" / "assets" / "javascripts"

    def code(name: str) -> str:  # the file's one line of code, after its comment
        lines = (ours / name).read_text(encoding="utf-8").splitlines()
        return next(x for x in lines if x and x[0] not in "/ ")

    theme = {name: re.findall(r"<script>(.*?)</script>", (partials / name).read_text(encoding="utf-8"), re.S)
             for name in ("base.html", "palette.html", "content.html")}  # fmt: skip
    assert theme["palette.html"] == [code("theme-palette.js")]
    assert theme["content.html"] == [code("theme-tabs.js"), code("theme-target.js")]
    ours_scope = (
        "document.currentScript.dataset.scope?new URL(document.currentScript.dataset.scope,location)"
        ':new URL("../..",document.currentScript.src)'
    )
    theme_scope = 'new URL("{{ config.extra.scope | d(base_url) }}",location)'
    assert theme["base.html"] == [code("theme-base.js").replace(ours_scope, theme_scope)]
