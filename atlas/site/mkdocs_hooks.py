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

Safety (atlas.core.page_safety): ``on_env`` hands the theme templates the pages' Content-Security-Policy
(``templates/overrides/main.html`` puts it first in every ``<head>``); ``on_page_context`` escapes each
page's canonical URL (made of ``site_url``), which the theme prints raw into ``<link rel="canonical">``;
``on_post_page`` and ``on_post_template`` escape the site name a second time in the logos' ``title``
attributes, because mkdocs-material's tooltips (``content.tooltips``) put a ``title`` into the page as HTML.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from atlas.core.page_safety import PAGE_CSP

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


def on_env(env: Any, config: Any, files: Any) -> Any:
    """The pages' Content-Security-Policy for the theme templates (``atlas_csp``)."""
    env.globals["atlas_csp"] = PAGE_CSP
    return env


def on_page_context(context: dict, page: Any, config: Any, nav: Any) -> dict:
    """Escape the page's canonical URL once (a ``Markup``: the sitemap's ``| e`` leaves it as it is)."""
    if page.canonical_url and not isinstance(page.canonical_url, Markup):
        page.canonical_url = Markup.escape(page.canonical_url)
    return context


def tooltip_safe(output: str, site_name: str) -> str:
    """``output`` with every ``title="SITE_NAME"`` attribute escaped a second time: mkdocs-material's tooltips
    set a tooltip's ``innerHTML`` to the ``title`` attribute's value, which the browser has unescaped once."""
    once = Markup.escape(site_name)  # as the theme printed it (a project's name is a Markup already)
    twice = Markup.escape(str(once))
    return output.replace(f'title="{once}"', f'title="{twice}"') if once != twice else output


def on_post_page(output: str, page: Any, config: Any) -> str:
    """Each page's logo titles, made tooltip-safe (``tooltip_safe``)."""
    return tooltip_safe(output, config.site_name)


def on_post_template(output_content: str, template_name: str, config: Any) -> str:
    """The same for the theme's static pages (``404.html``); the sitemap has no title attributes."""
    return tooltip_safe(output_content, config.site_name)
