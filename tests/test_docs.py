"""The documentation site: `mkdocs build --strict` passes, the glossary tooltips are on every page,
the math is rendered by the bundled KaTeX, and the built HTML/CSS loads nothing from a third-party host."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from html import escape as html_escape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "site_src"

# Glossary terms that must have a tooltip (abbreviations.md) and an entry (glossary.md).
GLOSSARY_TERMS = [
    "held-out estimate",
    "head scale",
    "Atlas project",
    "atlas.toml",
    "cache key",
    "SOURCE_DATE_EPOCH",
    "CSP",
    "CLS token",
    "register tokens",
    "patch token",
    "prefix tokens",
    "grid",
    "attention head",
    "layer",
    "fused map",
    "per-head map",
    "CLS attention",
    "mean attention",
    "attention rollout",
    "head statistics",
    "attention distance",
    "attention entropy",
    "attention sink",
    "prefix mass",
    "high-norm tokens",
    "Grad-CAM",
    "stage",
    "MAP head",
    "ViT",
    "SSL",
    "DINO",
    "DINOv2",
    "DINOv3",
    "MAE",
    "CLIP",
    "SigLIP",
    "SigLIP2",
    "eager attention",
    "SDPA",
    "min-max normalisation",
    "colormap",
    "overlay",
    "top-p% threshold",
    "mass threshold",
    "colour-per-head composite",
    "permalink",
    "random weights",
    "checkpoint",
    "Hub",
    "IoU",
    "pointing game",
    "coverage",
    "bootstrap CI",
    "WikiChurches",
    "COCO",
    "IoU@p",
    "Chance-level IoU",
    "Centre-Gaussian baseline",
    "Box union",
    "Head ranking",
    "Head grid",
    "Head viewer",
    "Patch-resolution PNG",
    "Leaderboard",
]
SCREENSHOTS = ["gallery.png", "image-page.png", "image-page-phone.png", "inspector.png", "composite.png",
               "head-page.png", "query-patch.png"]
EXTERNAL = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)


def _mkdocs_command() -> list[str]:
    if importlib.util.find_spec("mkdocs") is not None:
        return [sys.executable, "-m", "mkdocs"]
    venv = ROOT / ".venv" / "bin" / "mkdocs"
    if venv.exists():
        return [str(venv)]
    pytest.skip("mkdocs is not installed")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docsite")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [*_mkdocs_command(), "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _pages(site: Path) -> list[Path]:
    """The built content pages (one index.html per Markdown page)."""
    pages = [p for p in site.rglob("index.html") if "search" not in p.relative_to(site).parts]
    assert pages, "no pages built"
    return pages


def _abbreviations() -> dict[str, str]:
    text = (DOCS / "includes" / "abbreviations.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\*\[([^\]]+)\]:\s*(.+?)\s*$", text, re.MULTILINE))


class _Refs(HTMLParser):
    """Collects the URLs an HTML page *loads* (not plain links)."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[tuple[str, str]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and a.get("href") and "canonical" not in (a.get("rel") or ""):
            self.loads.append((tag, a["href"]))
        if tag in {"script", "img", "source", "iframe", "video", "audio", "embed", "track", "input"}:
            for key in ("src", "poster"):
                if a.get(key):
                    self.loads.append((tag, a[key]))
        if tag in {"img", "source"} and a.get("srcset"):
            self.loads.extend((tag, part.split()[0]) for part in a["srcset"].split(",") if part.strip())
        if tag == "object" and a.get("data"):
            self.loads.append((tag, a["data"]))
        if a.get("style"):
            self.styles.append(a["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def _css_urls(css: str) -> list[str]:
    urls = [u.strip("'\" ") for u in re.findall(r"url\(([^)]*)\)", css)]
    urls += re.findall(r"@import\s+['\"]([^'\"]+)['\"]", css)
    return [u for u in urls if not u.startswith("data:")]


def test_build_strict_and_nav(built: Path):
    for page in [
        "getting-started",
        "atlas-guide",
        "methods",
        "heads",
        "metrics",
        "models",
        "cli",
        "reference/export-format",
        "performance",
        "glossary",
    ]:
        assert (built / page / "index.html").is_file(), page
    home = (built / "index.html").read_text(encoding="utf-8")
    for title in [
        "Getting started",
        "Atlas guide",
        "Methods",
        "Per-head attention",
        "Metrics",
        "Model guide",
        "CLI reference",
        "Export format",
        "Performance",
        "Glossary",
    ]:
        assert re.search(rf'class="md-ellipsis">\s*{re.escape(title)}\s*<', home), f"nav lacks {title}"
    assert "random weights" in home.lower() and "admonition danger" in home


def test_glossary_defines_every_term():
    abbrs = _abbreviations()
    glossary = (DOCS / "glossary.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^#{2,4}\s+(.+?)\s*$", glossary, re.MULTILINE))
    for term in GLOSSARY_TERMS:
        assert term in abbrs, f"no tooltip for {term!r} in includes/abbreviations.md"
        assert term in headings, f"no glossary entry for {term!r}"
        assert '"' not in abbrs[term] and "<" not in abbrs[term], f"tooltip of {term!r} breaks in a title"


def test_every_page_has_glossary_tooltips(built: Path):
    abbrs = _abbreviations()
    for page in _pages(built):
        html = page.read_text(encoding="utf-8")
        assert "<abbr title=" in html, f"{page.relative_to(built)} has no glossary tooltip"
    methods = (built / "methods" / "index.html").read_text(encoding="utf-8")
    for term in ["register tokens", "CLS token", "grid", "Grad-CAM"]:
        assert re.search(rf'<abbr title="[^"]+">{re.escape(term)}</abbr>', methods), term
    # the tooltip carries the definition from includes/abbreviations.md
    assert f'title="{abbrs["register tokens"]}"' in methods


def test_math_is_rendered_by_bundled_katex(built: Path):
    methods_dir = built / "methods"
    html = (methods_dir / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<div class="arithmatex">\s*\\\[', html), "no display math"
    assert re.search(r'<span class="arithmatex">\\\(', html), "no inline math"
    # no tooltip markup was injected into the TeX source
    for m in re.finditer(r'<(span|div) class="arithmatex">(.*?)</\1>', html, re.S):
        assert "<" not in m.group(2), m.group(2)[:120]

    refs = _Refs()
    refs.feed(html)
    loaded = {urlparse(urljoin("http://site/methods/", u)).path for _, u in refs.loads}
    for asset in [
        "assets/katex/katex.min.js",
        "assets/katex/katex.min.css",
        "assets/katex/contrib/auto-render.min.js",
        "assets/javascripts/katex-init.js",
    ]:
        assert "/" + asset in loaded, f"methods page does not load {asset}"
        assert (built / asset).is_file(), asset

    katex_css = (built / "assets/katex/katex.min.css").read_text(encoding="utf-8")
    fonts = _css_urls(katex_css)
    assert fonts, "katex.min.css references no fonts"
    for font in fonts:
        assert not EXTERNAL.match(font), font
        assert (built / "assets/katex" / font).is_file(), f"missing KaTeX font {font}"
    katex_bytes = sum(f.stat().st_size for f in (DOCS / "assets" / "katex").rglob("*") if f.is_file())
    assert katex_bytes < 1_100_000, f"bundled KaTeX is {katex_bytes} bytes"
    assert "MIT" in (DOCS / "assets" / "katex" / "LICENSE").read_text(encoding="utf-8")


def test_screenshots_embedded(built: Path):
    html = (built / "atlas-guide" / "index.html").read_text(encoding="utf-8")
    refs = _Refs()
    refs.feed(html)
    imgs = {urlparse(urljoin("http://site/atlas-guide/", u)).path for t, u in refs.loads if t == "img"}
    for name in SCREENSHOTS:
        assert f"/assets/screenshots/{name}" in imgs, name
        assert (built / "assets" / "screenshots" / name).is_file(), name


def test_no_third_party_requests(built: Path):
    offenders = []
    for page in built.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        refs = _Refs()
        refs.feed(html)
        offenders += [f"{page.relative_to(built)}: <{t}> {u}" for t, u in refs.loads if EXTERNAL.match(u)]
        for style in refs.styles:
            offenders += [
                f"{page.relative_to(built)}: style url {u}" for u in _css_urls(style) if EXTERNAL.match(u)
            ]
        for host in (
            "fonts.googleapis.com",
            "fonts.gstatic.com",
            "cdn.jsdelivr.net",
            "unpkg.com",
            "cdnjs.cloudflare.com",
        ):
            if host in html:
                offenders.append(f"{page.relative_to(built)}: mentions {host}")
    for css in built.rglob("*.css"):
        offenders += [
            f"{css.relative_to(built)}: url {u}"
            for u in _css_urls(css.read_text(encoding="utf-8"))
            if EXTERNAL.match(u)
        ]
    assert not offenders, "\n".join(offenders)


def test_atlas_build_runs_mkdocs_strictly(tmp_path: Path):
    """`atlas build` builds the site with --strict: a broken link in the docs fails it with one line."""
    from atlas.site.stage import build_site
    from ssl_attention.errors import AtlasError
    from tests.fixtures.fake_maps import write_fake_build

    build = tmp_path / "build"
    write_fake_build(build)
    project = tmp_path / "project"
    shutil.copytree(DOCS, project / "site_src")
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    assert build_site(build, tmp_path / "site", config_file=project / "mkdocs.yml").pages > 0
    with (project / "site_src" / "cli.md").open("a", encoding="utf-8") as fh:
        fh.write("\nSee [the missing page](no-such-page.md).\n")
    with pytest.raises(AtlasError) as err:
        build_site(build, tmp_path / "site", config_file=project / "mkdocs.yml")
    assert str(err.value).startswith("MkDocs build failed") and "\n" not in str(err.value)
    assert "no-such-page.md" in str(err.value)


def test_atlas_pages_have_glossary_tooltips(tmp_path: Path):
    """Generated pages skip Markdown, so their templates mark terms with the `term` filter: same definitions."""
    from atlas.site.stage import build_site
    from tests.fixtures.fake_maps import write_fake_build

    abbrs = _abbreviations()
    templates = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "templates" / "pages").glob("*.html"))
    used = re.findall(r'"([^"]+)"\s*\|\s*term\b(?!\()', templates)
    used += re.findall(r'\|\s*term\("([^"]+)"\)', templates)
    assert len(used) > 20
    for term in used:
        assert term in abbrs, f"templates use the glossary term {term!r}, which includes/abbreviations.md lacks"

    build = tmp_path / "build"
    write_fake_build(build)
    site = build_site(build, tmp_path / "site").site_dir
    pages = sorted(p for p in (site / "atlas").rglob("index.html")  # not the old head pages' redirects
                   if 'http-equiv="refresh"' not in p.read_text(encoding="utf-8"))
    assert len(pages) > 10
    banner = re.compile(r'<details class="atlas-random-banner".*?</details>', re.S)
    for page in pages:
        html = banner.sub("", page.read_text(encoding="utf-8"))  # tooltips beyond the random-weights banner
        assert "<abbr title=" in html, f"{page.relative_to(site)} has no glossary tooltip"
    image_page = next(p for p in pages if "/images/" in p.as_posix()).read_text(encoding="utf-8")
    for term in ("overlay", "colour-per-head composite", "permalink", "CLS attention", "rollout"):
        assert f'<abbr title="{html_escape(abbrs[term])}">{term}</abbr>' in image_page, term
    assert f'<abbr title="{html_escape(abbrs["mean attention"])}">mean attention received</abbr>' in image_page


# -- the docs against what a real build writes ---------------------------------------------------------------

EXPORT_FORMAT = DOCS / "reference" / "export-format.md"


@pytest.fixture(scope="module")
def tiny_build(tiny_checkpoints, tmp_path_factory) -> Path:
    """``atlas build`` of the bundled sample (with its boxes) with a tiny ViT and a tiny CNN, no site."""
    from typer.testing import CliRunner

    from atlas.cli import app

    out = tmp_path_factory.mktemp("docs-build")
    result = CliRunner().invoke(app, [
        "build", "--model", f"dinov2={tiny_checkpoints['dinov2_registers']}",
        "--model", f"resnet50={tiny_checkpoints['timm_resnet']}", "--weights", "pretrained",
        "--model", f"tuned={tiny_checkpoints['dinov2_registers']}", "--base", "tuned=dinov2",  # writes deltas.csv
        "--image-size", "16", "--query-layers", "last", "--out", str(out), "--no-site"])
    assert result.exit_code == 0, result.output
    return out


def _blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)


def test_the_readme_names_the_metric_files_the_build_writes(tiny_build: Path):
    """Every ``<model>.*`` file the README names is one the metrics stage writes (or the rows' gzip-CSV
    form without pyarrow), and every file it writes is named."""
    written = {re.sub(r"^(dinov2|resnet50|tuned)\.", "<model>.", p.name) for p in (tiny_build / "metrics").iterdir()}
    assert {"<model>.parquet", "<model>.heads.npz", "summary.json", "panels.json"} <= written
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(<model>\.[a-z.]+)`", readme))
    assert named - {"<model>.csv.gz"} <= written, f"the README names files no build writes: {named - written}"
    for name in written:
        assert f"`{name}`" in readme, f"the README does not name build/metrics/{name}"
    for page in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        for name in re.findall(r"(?:build|OUT)/metrics/([\w<>.-]+\.[a-z]+)", page.read_text(encoding="utf-8")):
            generic = re.sub(r"^(dinov2|resnet50)\.", "<model>.", name)
            assert generic in written or generic == "<model>.csv.gz", f"{page.name}: metrics/{name} is never written"


def test_the_metrics_page_pandas_example_selects_the_fused_rows(tiny_build: Path):
    pytest.importorskip("pandas")
    (code,) = [block for block in _blocks(DOCS / "metrics.md", "python") if "pd.read_parquet" in block]
    namespace: dict = {}
    exec(code.replace('"build/', f'"{tiny_build}/'), namespace)
    fused = namespace["fused"]
    assert len(fused) > 0, "the example selects nothing"
    assert (fused["head"] == "fused").all() and fused["box"].isna().all()


def test_the_export_format_example_has_every_manifest_key(tiny_build: Path):
    """The manifest example shows every key a build writes, at each level, and no other."""
    manifest = json.loads((tiny_build / "maps" / "manifest.json").read_text())
    (example,) = [json.loads(b) for b in _blocks(EXPORT_FORMAT, "json") if '"format_version"' in b]
    assert set(example) == set(manifest)
    assert set(example["images"][0]) == set(manifest["images"][0])
    for model in manifest["models"]:
        assert set(example["models"][0]) == set(model), model["name"]
    text = EXPORT_FORMAT.read_text(encoding="utf-8")
    bullets = re.findall(r"^\* .*(?:\n  .*)*", text, re.M)  # with their indented continuation lines
    for key in ("note", "per_head", "targets", "target_kind"):
        assert any(f"`{key}`" in bullet for bullet in bullets), f"no bullet explains {key}"


def test_the_export_format_names_every_npz_meta_key(tiny_build: Path):
    import numpy as np

    text = EXPORT_FORMAT.read_text(encoding="utf-8")
    paragraph = text[text.index("Each npz also holds `meta`"):text.index("## `report.json`")]
    keys = set()
    for npz in (tiny_build / "maps").glob("*/*.npz"):
        with np.load(npz) as data:
            keys |= set(json.loads(str(data["meta"])))
    assert {"image", "model", "cache_key", "query_layers", "gradcam_class"} <= keys
    for key in keys:
        assert f"`{key}`" in paragraph, f"the export format does not name the npz meta key {key}"


def test_the_export_format_describes_report_json_as_written(tiny_build: Path, tmp_path: Path):
    """The report.json table has exactly the keys a build can write (a site's budget, a --ray build's
    workers included), and each model entry's keys."""
    from atlas.core.report import BuildReport

    full = BuildReport(images=1, site_budget={"bytes": 1}, workers=[{"model": "m"}])
    full.write(tmp_path)
    possible = set(json.loads((tmp_path / "report.json").read_text()))
    text = EXPORT_FORMAT.read_text(encoding="utf-8")
    section = text[text.index("## `report.json`"):text.index("## Head statistics")]
    documented = set(re.findall(r"^\| `(\w+)` \|", section, re.M))
    assert documented == possible
    report = json.loads((tiny_build / "report.json").read_text())
    assert set(report) <= possible
    for key in report["models"][0]:
        assert f"`{key}`" in section, key
    assert "computed/reused counts" not in text.replace("no computed/reused counts", "")
