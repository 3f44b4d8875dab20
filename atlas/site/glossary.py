"""Glossary tooltips on the generated atlas pages.

The documentation pages get their tooltips from Python-Markdown's ``abbr`` extension: the definitions in
``site_src/includes/abbreviations.md`` (``*[term]: definition`` lines) are appended to every page by
``pymdownx.snippets``. The atlas pages bypass Markdown (``atlas.site.mkdocs_hooks``), so their templates mark
their terms explicitly with the Jinja filter ``term``, which renders the same definitions as
``<abbr title="...">``; mkdocs-material shows those as tooltips (``content.tooltips``).
"""

from __future__ import annotations

import re
from pathlib import Path

from markupsafe import Markup, escape

ABBREVIATIONS = "includes/abbreviations.md"  # relative to the docs dir, as in mkdocs.yml's snippets
_DEFINITION = re.compile(r"^\*\[(?P<term>[^\]]+)\]:\s*(?P<text>.+?)\s*$")


def read_definitions(docs_dir: Path) -> dict[str, str]:
    """``term -> definition`` from the docs' abbreviations file (empty if the docs have none)."""
    path = docs_dir / ABBREVIATIONS
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    return {m["term"]: m["text"] for m in map(_DEFINITION.match, lines) if m}


class Glossary:
    """The ``term`` filter: ``{{ "overlay" | term }}`` or ``{{ label | term("CLS attention") }}``."""

    def __init__(self, definitions: dict[str, str]) -> None:
        self.definitions = definitions

    def term(self, text: str, key: str | None = None) -> Markup:
        """``text`` as ``<abbr>`` with the definition of ``key`` (default: ``text``); plain if undefined."""
        definition = self.definitions.get(key or text)
        if definition is None:
            return escape(text)
        return Markup('<abbr title="{}">{}</abbr>').format(definition, text)
