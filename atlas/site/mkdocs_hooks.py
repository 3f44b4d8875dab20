"""MkDocs hooks of the atlas build (loaded through the ``hooks:`` config entry that ``atlas.site.engine_mkdocs`` adds).

The generated atlas pages (``atlas.site.pages``) are Markdown files whose body is one block of finished,
escaped HTML rendered by Jinja. Python-Markdown would only pass that block through unchanged, but it
first runs a dozen block processors' regexes over it: with hundreds of head pages that was a third of
the whole build. Pages whose front matter sets ``atlas_html: true`` therefore skip the conversion:
``on_page_markdown`` takes their body aside and hands Markdown an empty document, and
``on_page_content`` puts the body back as the page's HTML. Everything after that is MkDocs as usual:
the theme's template (navigation, header, search box) wraps the content, the search plugin indexes
it (it reads ``page.content`` in ``on_page_context``, after this hook), ``search: exclude`` still
applies, and the output is byte-for-byte what Markdown produced from the raw HTML block.
"""

from __future__ import annotations

from typing import Any

RAW_HTML_KEY = "atlas_html"  # front-matter key of the pages whose body is final HTML

# src_uri -> HTML body, between on_page_markdown and on_page_content. MkDocs loads this module once per
# process (it caches hooks), so on_pre_build empties it in case an earlier build stopped half-way.
_bodies: dict[str, str] = {}


def on_pre_build(config: Any) -> None:
    """Forget bodies left by an interrupted earlier build in the same process."""
    _bodies.clear()


def is_raw_html(page: Any) -> bool:
    """Whether ``page`` is a generated atlas page whose body is final HTML."""
    return page.meta.get(RAW_HTML_KEY) is True


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Set the HTML body of an atlas page aside and give Markdown nothing to convert."""
    if not is_raw_html(page):
        return markdown
    _bodies[page.file.src_uri] = markdown.strip("\n")
    return ""


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """The HTML body set aside by ``on_page_markdown`` (other pages unchanged)."""
    if not is_raw_html(page):
        return html
    return _bodies.pop(page.file.src_uri, html)
