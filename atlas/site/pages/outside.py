"""Atlas pages rendered outside MkDocs, so that MkDocs' time does not grow with the number of images.

The image pages (one per image: thousands) are all alike for the theme: same template, same folder depth,
not in the nav. MkDocs therefore renders one **page shell** per folder, a page of the same depth
(``atlas/_shell_images/page.md`` for ``atlas/images/*.md``) whose title and body are placeholders; after
MkDocs, ``place_outside_pages`` writes every page of the folder from that shell (its URL, title and body
put in), removes the shell, adds the pages to the site search (one entry each) and to the sitemap when it
lists pages (both through ``atlas.site.engine_mkdocs``). The result is the page MkDocs would have written:
the theme's header, nav, search box, scripts and relative URLs are the shell's, which sits at the same depth.
"""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path, PurePosixPath

from atlas.core import layout
from atlas.core.page_safety import PAGE_CSP
from atlas.site.engine_mkdocs import add_search_entries, add_sitemap_urls, page_body
from ssl_attention.errors import AtlasError

SHELL_TITLE = "ATLAS-SHELL-TITLE-5b1f"
SHELL_BODY = "ATLAS-SHELL-BODY-5b1f"


@dataclass(frozen=True)
class OutsidePage:
    """A page written outside MkDocs: its Markdown source path, title and site-search text."""

    src: str
    title: str
    search_text: str

    @property
    def folder(self) -> str:
        return shell_folder(self.src)


def shell_folder(src: str) -> str:
    return str(PurePosixPath(src).parent)


def shell_src(src: str) -> str:
    """The page shell of the folder of ``src``: the same depth, a name no page of the atlas can have."""
    folder = PurePosixPath(src).parent
    return f"{folder.parent}/_shell_{folder.name}/page.md"


def shell_pattern() -> str:
    """The shells' folders, as a gitignore-style pattern (for MkDocs' ``not_in_nav``)."""
    return f"/{layout.PAGES_DIR}/_shell_*/"


def _output(site_dir: Path, url: str) -> Path:
    return site_dir / (url + "index.html" if url.endswith("/") or not url else url)


def place_outside_pages(site_dir: Path, outside_dir: Path, pages: list[OutsidePage], use_directory_urls: bool) -> None:
    """Write ``pages`` (sources in ``outside_dir``) into ``site_dir`` from their shells; search and sitemap.

    The sitemap's gzip copy keeps MkDocs' date (``SOURCE_DATE_EPOCH``'s day). Raises ``AtlasError``
    if a shell is missing or its placeholders are not there exactly once (a theme that changed them).
    """
    shells: dict[str, str] = {}
    for folder, group in groupby(pages, key=lambda p: p.folder):
        shell_url = layout.page_url(shell_src(f"{folder}/x.md"), use_directory_urls)
        shell_file = _output(site_dir, shell_url)
        try:
            shell = shell_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise AtlasError(f"{shell_file}: the page shell of {folder}/ is missing ({exc.strerror})") from None
        if shell.count(SHELL_BODY) != 1:
            raise AtlasError(f"{shell_file}: the page shell's body placeholder is not there exactly once")
        before, after = shell.split(SHELL_BODY)
        for page in group:
            url = layout.page_url(page.src, use_directory_urls)
            out = _output(site_dir, url)
            out.parent.mkdir(parents=True, exist_ok=True)
            head, tail = (part.replace(shell_url, url).replace(SHELL_TITLE, page.title) for part in (before, after))
            body = page_body((outside_dir / page.src).read_text(encoding="utf-8"))
            out.write_text(head + body + tail, encoding="utf-8")
        shells[shell_url] = folder
        shutil.rmtree(site_dir / PurePosixPath(shell_src(f"{folder}/x.md")).parent, ignore_errors=True)
    add_search_entries(site_dir, [
        {"location": layout.page_url(p.src, use_directory_urls), "title": p.title, "text": html.escape(p.search_text)}
        for p in pages
    ])
    add_sitemap_urls(site_dir, {
        shell_url: [layout.page_url(p.src, use_directory_urls) for p in pages if p.folder == folder]
        for shell_url, folder in shells.items()
    })


_REDIRECT = (
    '<!doctype html>\n<html lang="en"><head><meta http-equiv="Content-Security-Policy" content="{csp}">'
    '<meta charset="utf-8"><title>Moved</title>'
    '<meta http-equiv="refresh" content="0; url={url}"><link rel="canonical" href="{url}">'
    '<link rel="icon" href="{icon}"></head>'
    '<body><p>This page moved: <a href="{url}">{url}</a>.</p></body></html>\n'
)


def write_redirects(site_dir: Path, redirects: list[tuple[str, str]], use_directory_urls: bool,
                    favicon: str = "assets/images/favicon.png") -> None:
    """A small HTML page at each old page's address that sends the browser to its new URL (relative);
    ``favicon`` is the theme's (site-root path), so the browser asks for no missing favicon.ico."""
    for src, url in redirects:
        out = _output(site_dir, layout.page_url(src, use_directory_urls))
        out.parent.mkdir(parents=True, exist_ok=True)
        icon = layout.relative(src, favicon, use_directory_urls)
        text = _REDIRECT.format(csp=PAGE_CSP, url=html.escape(url), icon=html.escape(icon))
        out.write_text(text, encoding="utf-8")
