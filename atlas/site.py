"""Build the static site: render heatmaps, compose the MkDocs docs dir, run MkDocs, add the heavy assets.

Stages: ``BUILD/maps`` (compute output) -> ``BUILD/render/atlas-data`` (PNGs, raw float32, photos;
cached between builds) -> ``BUILD/docs`` (a copy of ``site_src/`` + generated atlas pages) -> MkDocs
(reads the project's ``mkdocs.yml`` with overrides) -> ``site_dir``, into which ``atlas-data/`` is
linked or copied after MkDocs ran (MkDocs would otherwise copy thousands of files on every build).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import rich.progress
from mkdocs.commands.build import build as mkdocs_build
from mkdocs.config import load_config
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import MkDocsException
from mkdocs.utils.yaml import get_yaml_loader, yaml_load

from atlas import layout
from atlas.catalog import load_catalog
from atlas.pages import write_pages
from atlas.render import render_all
from ssl_attention.errors import AtlasError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_FILE = PROJECT_ROOT / "mkdocs.yml"
TEMPLATES_DIR = PROJECT_ROOT / "templates"
ATLAS_NAV = {"Atlas": [{"Gallery": layout.GALLERY_PAGE}, {"Models": layout.MODELS_PAGE}, {"Heads": layout.HEADS_PAGE}]}


@dataclass
class SiteReport:
    """What ``build_site`` produced."""

    site_dir: Path
    pages: int  # generated atlas pages
    pngs: int
    png_bytes: int
    raw_bytes: int  # float32 files for the thresholded and composite views
    seconds: float


def _read_raw_config(config_file: Path) -> dict:
    """The YAML of ``mkdocs.yml`` before validation (``!relative`` values stay placeholders)."""
    try:
        with config_file.open("rb") as f:
            return yaml_load(f, loader=get_yaml_loader(config=MkDocsConfig(str(config_file)))) or {}
    except OSError as exc:
        raise AtlasError(f"{config_file}: cannot read the MkDocs config ({exc.strerror})") from None
    except MkDocsException as exc:
        raise AtlasError(f"{config_file}: {' '.join(str(exc).split())}") from None


def _nav_with_atlas(nav: list | None, docs_dir: Path) -> list:
    """The configured nav plus the Atlas section, after the "Atlas guide" entry if there is one."""
    if nav is None:  # MkDocs' automatic nav would list every generated page: list the docs instead
        nav = [
            p.relative_to(docs_dir).as_posix()
            for p in sorted(docs_dir.rglob("*.md"))
            if not p.relative_to(docs_dir).as_posix().startswith((layout.PAGES_DIR + "/", "includes/"))
        ]
    nav = list(nav)
    at = next(
        (i + 1 for i, item in enumerate(nav) if isinstance(item, dict) and "atlas-guide.md" in item.values()),
        len(nav),
    )
    nav.insert(at, ATLAS_NAV)
    return nav


def _compose_docs(config_file: Path, raw: dict, docs_dir: Path) -> None:
    """Fresh ``docs_dir``: the configured docs sources plus the atlas' CSS/JS."""
    source = (config_file.parent / raw.get("docs_dir", "docs")).resolve()
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    shutil.copytree(source, docs_dir)
    shutil.copytree(TEMPLATES_DIR / "assets", docs_dir / layout.ASSETS_DIR)


def _theme_with_overrides(config_file: Path, raw: dict, theme_dir: Path) -> dict:
    """The configured theme with ``templates/overrides`` as custom_dir (merged with an existing one)."""
    theme = dict(raw.get("theme") or {"name": "material"})
    if theme_dir.exists():
        shutil.rmtree(theme_dir)
    if theme.get("custom_dir"):
        shutil.copytree((config_file.parent / theme["custom_dir"]).resolve(), theme_dir)
    shutil.copytree(TEMPLATES_DIR / "overrides", theme_dir, dirs_exist_ok=True)
    theme["custom_dir"] = str(theme_dir)
    return theme


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _add_data(render_dir: Path, site_dir: Path) -> None:
    target = site_dir / layout.DATA_DIR
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(render_dir / layout.DATA_DIR, target, copy_function=_link_or_copy)


def build_site(
    build_dir: Path,
    site_dir: Path,
    *,
    colormap: str = "viridis",
    progress: rich.progress.Progress | None = None,
    config_file: Path = CONFIG_FILE,
) -> SiteReport:
    """Render heatmaps (skipping up-to-date ones), write the atlas pages, run MkDocs, add the assets.

    ``config_file`` is the project's ``mkdocs.yml``; its docs_dir, site_dir and nav are overridden.
    Raises ``AtlasError`` (one line) on a bad manifest or a failed MkDocs build.
    """
    start = time.perf_counter()
    build_dir, site_dir = Path(build_dir).resolve(), Path(site_dir).resolve()
    catalog = load_catalog(build_dir)
    render_dir = build_dir / "render"
    task = None
    if progress is not None:
        pairs = sum(len(m.maps) for m in catalog.models)
        task = progress.add_task("Rendering heatmaps", total=pairs)
    stats = render_all(catalog, render_dir, on_pair=(lambda: progress.advance(task)) if progress else None)

    raw = _read_raw_config(config_file)
    docs_dir = build_dir / "docs"
    _compose_docs(config_file, raw, docs_dir)
    use_directory_urls = bool(raw.get("use_directory_urls", True))
    pages = write_pages(catalog, docs_dir, colormap=colormap, use_directory_urls=use_directory_urls)
    if progress is not None and task is not None:
        progress.update(task, description="Building site (MkDocs)")
    try:
        config = load_config(
            str(config_file),
            docs_dir=str(docs_dir),
            site_dir=str(site_dir),
            nav=_nav_with_atlas(raw.get("nav"), docs_dir),
            theme=_theme_with_overrides(config_file, raw, build_dir / "theme"),
            extra_css=[*raw.get("extra_css", []), f"{layout.ASSETS_DIR}/atlas.css"],
            extra_javascript=[*raw.get("extra_javascript", []), f"{layout.ASSETS_DIR}/atlas.js"],
            not_in_nav="\n".join(f"/{layout.PAGES_DIR}/{d}/" for d in ("images", "models", "heads")),
        )
        mkdocs_build(config)
    except MkDocsException as exc:
        raise AtlasError(f"MkDocs build failed: {' '.join(str(exc).split())}") from None
    _add_data(render_dir, site_dir)
    if progress is not None and task is not None:
        progress.update(task, description="Site built")
    return SiteReport(
        site_dir=site_dir,
        pages=len(pages),
        pngs=stats.pngs,
        png_bytes=stats.png_bytes,
        raw_bytes=stats.raw_bytes,
        seconds=time.perf_counter() - start,
    )
