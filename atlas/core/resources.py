"""Where the tool's own files are: templates, the docs sources, ``mkdocs.yml`` and the sample data.

In a source checkout (and an editable install) they are the repository's top-level ``templates/``,
``site_src/`` and ``mkdocs.yml``. A wheel carries copies of them inside the package, under
``atlas/_bundled/`` (``setup.py`` copies them there at build time), found with ``importlib.resources``.
The sample data is package data of ``ssl_attention``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _root() -> Path:
    """The folder holding ``templates/``, ``site_src/`` and ``mkdocs.yml``: the wheel's, else the checkout's."""
    bundled = Path(str(files("atlas"))) / "_bundled"
    return bundled if bundled.is_dir() else Path(__file__).resolve().parents[2]


def templates_dir() -> Path:
    """The Jinja templates and the atlas' own JS/CSS (``templates/``)."""
    return _root() / "templates"


def docs_dir() -> Path:
    """The tool's documentation sources (``site_src/``)."""
    return _root() / "site_src"


def mkdocs_config() -> Path:
    """The tool's ``mkdocs.yml`` (theme, extensions, the docs' nav)."""
    return _root() / "mkdocs.yml"


def sample_dir() -> Path:
    """The bundled sample dataset (``images/`` and ``annotations.json``)."""
    return Path(str(files("ssl_attention"))) / "sample_data"
