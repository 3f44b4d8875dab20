"""A real build (tiny models) with hostile file names and labels: safety, validity, accessibility, links, resume.

One build per module (``hostile``); every check runs on its site:
* no payload survives as markup (files on disk, search index, headless Chromium under the strict CSP);
* the link crawl of tests/test_links.py;
* HTML validity (Nu Html Checker) of every atlas page and a sample of docs pages;
* axe-core on the gallery, an image page, a head page, the build report and a model page (its image list
  open): no serious/critical violation;
* a build killed (SIGKILL) mid-stage (metrics, heatmap rendering, MkDocs) leaves no site that looks complete,
  and running it again gives the same bytes as the uninterrupted build.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from atlas.cli import app
from tests.fixtures.hostile import IMG_NAME, LABELS, PLAIN, SCRIPT_NAME, write_hostile_inputs
from tests.fixtures.interrupt import (
    AFTER,
    BEFORE,
    MID,
    NEAR,
    clean_env,
    finished_files,
    interrupt_mid_stage,
    stage_state,
)
from tests.fixtures.node_tools import axe_source, vnu_command
from tests.fixtures.site_server import SITE_CSP, inline_script_hashes, serve_site
from tests.fixtures.trees import build_args, tree
from tests.test_links import crawl


class _Markup(HTMLParser):
    """What a payload would leave if it became markup: handler attributes, ``img src=x``, ``<b>``, live scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.found += [f"<{tag} {name}>" for name in a if name.startswith("on")]
        if tag == "b" or (tag == "img" and a.get("src") == "x"):
            self.found.append(f"<{tag} {a}>")
        self._script = "" if tag == "script" and a.get("type") != "application/json" else None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None and re.search(r"alert\(|__pwned", self._script):
            self.found.append(f"<script>{self._script[:80]}")
        self._script = None


def _markup(html: str) -> list[str]:
    parser = _Markup()
    parser.feed(html)
    parser.close()
    return parser.found


@dataclass
class Hostile:
    images: Path
    annotations: Path
    out: Path
    args: list[str]

    @property
    def site(self) -> Path:
        return self.out / "site"


def _args(tiny_checkpoints, images: Path, annotations: Path, out: Path) -> list[str]:
    models = {"dinov2": tiny_checkpoints["dinov2_registers"], "resnet": tiny_checkpoints["timm_resnet"]}
    return build_args(out, models, images=images, annotations=annotations, site=True)


@pytest.fixture(scope="module")
def hostile(tiny_checkpoints, tmp_path_factory) -> Hostile:
    root = tmp_path_factory.mktemp("hostile")
    images, annotations = write_hostile_inputs(root / "in")
    out = root / "out"
    args = _args(tiny_checkpoints, images, annotations, out)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return Hostile(images, annotations, out, args)


@pytest.fixture(scope="module")
def hostile_url(hostile: Hostile) -> Iterator[str]:
    with serve_site(hostile.site) as url:
        yield url


# ---------------------------------------------------------------------------------------- on disk
def test_no_payload_survives_as_markup_in_any_file(hostile: Hostile):
    site = hostile.site
    pages = sorted(site.rglob("*.html"))
    assert (site / "atlas" / "report" / "index.html").is_file()
    for page in pages:
        assert _markup(page.read_text(encoding="utf-8")) == [], page
    report = (site / "atlas" / "report" / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(2)&lt;\\script&gt;.jpg" in report  # the skipped file, escaped
    plain = (site / "atlas" / "images" / PLAIN / "index.html").read_text(encoding="utf-8")
    assert "&lt;/script&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in plain
    # the search index: the theme renders its text and titles as HTML
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    for doc in index["docs"]:
        for key in ("title", "text"):
            assert _markup(doc.get(key, "")) == [], (doc["location"], key)
    assert any("&lt;b&gt;bold&lt;/b&gt; &amp;amp; co" in d["text"] or "&lt;b&gt;bold&lt;/b&gt; &amp; co" in d["text"]
               for d in index["docs"])  # fmt: skip


def test_csp_of_the_test_server_is_strict(hostile: Hostile):
    """The policy every browser test runs under: scripts only from the site, no inline code at all."""
    html = (hostile.site / "atlas" / "images" / PLAIN / "index.html").read_text(encoding="utf-8")
    assert inline_script_hashes(html) == []
    policy = {d.split()[0]: d.split()[1:] for d in SITE_CSP.split("; ")}
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    for directive in ("default-src", "script-src", "object-src", "connect-src", "worker-src"):
        assert not set(policy[directive]) & {"*", "data:", "blob:", "http:", "https:", "'unsafe-inline'",
                                             "'unsafe-eval'", "'unsafe-hashes'"}, directive  # fmt: skip


def test_link_crawl_of_a_real_build(hostile: Hostile):
    crawl(hostile.site, min_pages=15, min_checked=200)


# ---------------------------------------------------------------------------------------- validity
# mkdocs-material's own header/nav markup (not generated by the atlas) has two known validator errors.
THEME_ERRORS = (
    ("Bad value “” for attribute “tabindex” on element “label”", "md-nav__link"),
    ("Attribute “autocomplete” is only allowed when the input type is", "md-toggle"),
)


def test_html_is_valid(hostile: Hostile):
    site = hostile.site
    pages = sorted((site / "atlas").rglob("*.html"))
    pages += [site / p / "index.html" for p in ("", "getting-started", "cli", "glossary", "robust-builds")]
    pages = [p for p in pages if p.is_file()]
    result = subprocess.run([*vnu_command(), "--errors-only", "--format", "json", *map(str, pages)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    messages = json.loads(result.stderr or result.stdout)["messages"]
    errors = [
        f"{m.get('url', '').rsplit('/site/', 1)[-1]}:{m.get('lastLine')}: {m['message']} [{m.get('extract', '')}]"
        for m in messages
        if not any(msg in m["message"] and cls in m.get("extract", "") for msg, cls in THEME_ERRORS)
    ]
    assert errors == [], "\n".join(errors)


# ---------------------------------------------------------------------------------------- in Chromium
def _open_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    log: dict[str, list[str]] = {"dialogs": [], "errors": [], "failed": [], "foreign": []}

    def on_dialog(dialog) -> None:
        log["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: m.type == "error" and log["errors"].append(m.text))
    page.on("pageerror", lambda e: log["errors"].append(str(e)))
    page.on("response", lambda r: r.status >= 400 and log["failed"].append(f"{r.url} {r.status}"))
    page.on("request", lambda r: urlsplit(r.url).scheme in ("http", "https")
            and urlsplit(r.url).hostname != "127.0.0.1" and log["foreign"].append(r.url))  # fmt: skip
    page.goto(url)
    page.wait_for_load_state("networkidle")
    return context, page, log


INJECTED = r"""() => {
  const handlers = [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
    .filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name));
  const imgs = [...document.querySelectorAll('img')].filter(i => i.getAttribute('src') === 'x').length;
  const scripts = [...document.querySelectorAll('script:not([type="application/json"])')]
    .filter(s => /alert\(|__pwned/.test(s.textContent)).length;
  const bold = [...document.querySelectorAll('b')].filter(b => b.textContent === 'bold').length;
  return {handlers, imgs, scripts, bold, pwned: window.__pwned !== undefined};
}"""
CLEAN = {"handlers": [], "imgs": 0, "scripts": 0, "bold": 0, "pwned": False}


@pytest.mark.browser
def test_hostile_names_are_inert_and_shown_literally(hostile: Hostile, hostile_url: str, browser):
    checks = {
        "atlas/": [],
        f"atlas/images/{PLAIN}/": LABELS,
        # its COCO file_name maps to the same safe id as the file, so its box (label 0) is attached
        "atlas/images/img_src_x_onerror_alert_1/": [f"{IMG_NAME}.png", LABELS[0]],
        "atlas/heads/dinov2/l02-h03/": [],
        "atlas/report/": [f"{SCRIPT_NAME}.jpg"],
        "atlas/models/dinov2/": [],
    }
    for path, texts in checks.items():
        context, page, log = _open_page(browser, hostile_url + path)
        page.wait_for_selector(".atlas-root[data-atlas-ready]")
        shown = page.locator("article").inner_text()
        for text in texts:
            assert text in shown, (path, text)
        assert page.evaluate(INJECTED) == CLEAN, path
        if path == f"atlas/images/{PLAIN}/":  # the boxes' SVG labels and the box-label filter of the gallery
            labels = page.eval_on_selector("svg.atlas-boxes",
                                           "s => [...s.querySelectorAll('text')].map(e => e.textContent)")
            assert labels == LABELS
        if path == "atlas/":
            page.select_option("select[name=label]", LABELS[1])
            assert page.eval_on_selector_all(".atlas-card:not([hidden]) .atlas-card-title",
                                             "els => els.map(e => e.textContent)") == [PLAIN]  # fmt: skip
            assert page.evaluate(INJECTED) == CLEAN
        # the theme's search renders hits from search_index.json
        page.locator("input.md-search__input").click()
        page.keyboard.type("onerror")
        page.wait_for_selector(".md-search-result__item", timeout=10000)
        page.wait_for_timeout(200)
        assert page.evaluate(INJECTED) == CLEAN, (path, "search")
        assert LABELS[1] in page.locator(".md-search-result").inner_text()  # shown as text
        assert log == {"dialogs": [], "errors": [], "failed": [], "foreign": []}, (path, log)
        context.close()


@pytest.mark.browser
def test_the_csp_is_enforced(hostile_url: str, browser):
    """Positive control: markup injected at run time cannot run an inline handler (the CSP blocks it)."""
    context, page, log = _open_page(browser, hostile_url + f"atlas/images/{PLAIN}/")
    page.evaluate("""() => document.body.insertAdjacentHTML('beforeend',
        '<img src="data:image/png;base64,AAAA" onerror="window.__pwned=1">')""")
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__pwned") is None
    assert any("Content Security Policy" in e for e in log["errors"]), log
    context.close()


SETTLED = """async () => {
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  await Promise.all(document.getAnimations().map((a) => a.finished.catch(() => null)));
}"""
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' -> '
      + v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(' | '));
}"""


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["default", "slate"])
def test_accessibility_axe(hostile: Hostile, hostile_url: str, browser, scheme):
    source = axe_source()
    for path in ("atlas/", f"atlas/images/{PLAIN}/", "atlas/heads/dinov2/l01-h02/", "atlas/report/",
                 "atlas/models/dinov2/"):
        context, page, _ = _open_page(browser, hostile_url + path)
        page.wait_for_selector(".atlas-root[data-atlas-ready]")
        if path.startswith("atlas/models/"):  # the image choice with its list of images open
            page.locator("[data-role=image-chooser] input[role=combobox]").click()
            page.keyboard.press("ArrowDown")
        if scheme == "slate":  # the dark palette
            page.evaluate("() => document.body.setAttribute('data-md-color-scheme', 'slate')")
        page.evaluate(SETTLED)  # axe must not measure colours halfway through the theme's transitions
        page.evaluate(source)  # CDP evaluation: not subject to the page's CSP
        violations = page.evaluate(AXE_RUN)
        assert violations == [], (path, violations)
        context.close()


# ---------------------------------------------------------------------------------------- kill and resume
def _stage_states(out: Path, clean: Path, stage: str) -> list:
    """Attempts at killing a build in ``out`` mid-``stage``: half-way first, then as early as possible
    (see tests/fixtures/interrupt.py)."""
    started = (out / "report.json").exists  # written right after the maps, before the metrics stage
    if stage == "mkdocs":  # MkDocs writes into OUT/.site.atlas/partial, renamed to OUT/site when complete
        clean_site = finished_files(clean / "site").keys()

        def mkdocs() -> str:
            if finished_files(out / "site").keys() == clean_site:
                return AFTER
            if (out / ".site.atlas" / "partial" / "atlas").is_dir() or (out / "site" / "atlas").is_dir():
                return MID
            return NEAR if started() else BEFORE

        return [mkdocs] * 3
    outputs = {"metrics": "metrics", "render": "render"}[stage]
    complete = finished_files(clean / outputs)
    return [stage_state(started, out / outputs, complete, at=at) for at in (0.5, 0.0, 0.0)]


@pytest.mark.parametrize("stage", ["metrics", "render", "mkdocs"])
def test_build_killed_mid_stage_then_resumed_is_byte_identical(hostile: Hostile, tmp_path, stage):
    """SIGKILL while the metrics are written, while heatmaps are rendered, or while MkDocs writes the site;
    the kill provably lands mid-stage (some of the stage's outputs there, not all). No half-written site is
    left at OUT/site, and a rerun gives the uninterrupted build's bytes (same inputs, so the same default
    SOURCE_DATE_EPOCH): site, metrics, maps and report."""
    out = tmp_path / "out"
    args = [a if a != str(hostile.out) else str(out) for a in hostile.args]
    command, env = [sys.executable, "-m", "atlas", *args], clean_env()
    interrupt_mid_stage(command, env, out, _stage_states(out, hostile.out, stage))
    assert not (out / "site").exists(), "a half-written site was left in place"
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert not (out / ".site.atlas" / "partial").exists() and not (out / ".site.atlas" / "old").exists()
    for part in ("site", "metrics", "maps"):
        clean, resumed = tree(hostile.out / part), tree(out / part)
        assert sorted(clean) == sorted(resumed), part
        assert [k for k in clean if clean[k] != resumed[k]] == [], part
    assert (out / "report.json").read_bytes() == (hostile.out / "report.json").read_bytes()
