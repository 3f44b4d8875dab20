"""What keeps a project's settings from running code in the site, and what blocks code that gets in anyway.

The site settings (``site_name``, ``description``, ``site_url``; atlas.toml or ``atlas init --site-name``)
reach every page through the theme and the generated home page (site_src/robust-builds.md, "Safety"):

* ``check_site_text`` / ``check_site_url`` refuse a setting that is not one line of text (a control
  character), and an address that is not an http(s) URL made of URL characters (no ``&``), which then
  needs no escaping in any link MkDocs makes of it;
* ``theme_html`` escapes a text once for the theme's templates, which print ``config.site_name`` raw in some
  places and escaped (``| e``) in others: a ``Markup`` is both, so it is never escaped twice;
* ``markdown_text`` writes a text into Markdown (the generated home page, ``atlas init``'s files) so that
  neither HTML nor Markdown syntax in it takes effect.

Defence in depth: ``PAGE_CSP`` is put first in the ``<head>`` of every page as
``<meta http-equiv="Content-Security-Policy">`` (GitHub Pages sets no headers), so an inline handler that
escaping ever misses is blocked. It is the documented header policy without ``frame-ancestors``, which a
``<meta>`` policy cannot carry (browsers ignore it there with a console error).
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

from markupsafe import Markup

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'"
)
# Characters RFC 3986 allows in a URL, but "&": with none of them a URL needs escaping in a double-quoted
# HTML attribute (MkDocs prints site_url's path raw into the links of 404.html).
_URL_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$'()*+,;=%")
# ASCII punctuation that means nothing to Markdown (or its extensions here) inside a line of text; a line
# that starts with digits and "." is a numbered list, so a leading digit is written as a reference.
_PLAIN_PUNCTUATION = frozenset(" ,;:'\"?/%@()=.")
_NOT_ONE_LINE = {"Cc": "a control character", "Zl": "a line separator", "Zp": "a paragraph separator",
                 "Cs": "an undecodable byte (not UTF-8)"}  # fmt: skip


def check_site_text(value: str) -> str | None:
    """Why ``value`` cannot be a site setting (one line of text), e.g. ``holds a control character ('\\x07')``;
    None when it can."""
    for char in value:
        problem = _NOT_ONE_LINE.get(unicodedata.category(char))
        if problem is not None:
            return f"holds {problem} ({char!r}); it must be one line of text"
    return None


def check_site_url(value: str) -> str | None:
    """Why ``value`` cannot be the site's address; None when it is an http(s) URL made of URL characters."""
    problem = check_site_text(value)
    if problem is not None:
        return problem
    odd = next((char for char in value if char not in _URL_CHARACTERS), None)
    if odd is not None:
        return (f"holds {odd!r}, which the site's links cannot carry as it is; write it percent-encoded "
                f"({''.join(f'%{b:02X}' for b in odd.encode('utf-8', 'surrogatepass'))})")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return 'expected an http:// or https:// address, e.g. "https://USER.github.io/REPO/"'
    return None


def theme_html(text: str) -> Markup:
    """``text`` escaped for HTML, marked as escaped, so that the theme prints it escaped exactly once."""
    return Markup.escape(text)


def markdown_text(text: str) -> str:
    """``text`` (one line) as Markdown that renders as exactly this text, also at the start of a line: ASCII
    punctuation with a meaning to Markdown or HTML (``<``, ``&``, ``*``, ``[``, ``#``, ``-`` ...) and a
    leading digit become numeric character references."""
    return "".join(
        char if (char.isalnum() or char in _PLAIN_PUNCTUATION or ord(char) > 127) and not (i == 0 and char.isdigit())
        else f"&#{ord(char)};"
        for i, char in enumerate(text.strip())
    )
