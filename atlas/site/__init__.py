"""The site stage: sprites, pages, the docs engine (MkDocs) and the published site."""

from atlas.site.stage import build_site

__all__ = ["build_site"]
