"""The variants pages (declared with ``--base VARIANT=BASE``) and the compare view.

``variants_index_page``: every declared pair; ``variant_pages``: one page per pair, from the summary's
paired statistics (``atlas.metrics.deltas``): a layer x head table of the primary metric's delta on a
diverging scale centred on 0 (cells whose CI excludes 0 marked), the heads that gained and lost most, the
ranking delta and the images that moved most, each linking to the compare view. ``compare_page``: one
page (``compare.mjs`` builds it from the image index and its permalink), so it does not grow with the
number of images.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from atlas.core import layout
from atlas.core.manifest import ModelEntry
from atlas.core.variants import VariantPair
from atlas.metrics.deltas import Delta
from atlas.metrics.summary import Summary
from atlas.site.pages.metric_pages import fmt
from atlas.site.pages.writer import AtlasPages, Page
from ssl_attention.aggregate import FUSED
from ssl_attention.metrics import higher_is_better

DIVERGING_BINS = 5  # classes on each side of 0 (atlas-dn5 .. atlas-d0 .. atlas-dp5)
MOVERS = 5  # heads listed as gaining and losing most
RANKING_ROWS = 10  # heads listed as moving most in the ranking


def signed(v: float) -> str:
    """A delta as the pages show it: a sign and 3 decimals (``+0.012``), an en dash when undefined."""
    return "–" if not math.isfinite(v) else ("±0.000" if v == 0 else f"{v:+.3f}")


def diverging_class(v: float, scale: float) -> str:
    """The CSS class of ``v`` on a diverging scale ``[-scale, scale]`` centred on 0 (``atlas-dna``: undefined)."""
    if not math.isfinite(v):
        return "atlas-dna"
    k = 0 if scale <= 0 else max(-DIVERGING_BINS, min(DIVERGING_BINS, round(DIVERGING_BINS * v / scale)))
    return "atlas-d0" if k == 0 else f"atlas-d{'p' if k > 0 else 'n'}{abs(k)}"


def variant_name(head: str) -> str:
    """A map's sprite variant: ``fused`` or ``hNN``."""
    return FUSED if head == FUSED else f"h{int(head):02d}"


def head_label(layer: int, head: str) -> str:
    return f"l{layer:02d} fused" if head == FUSED else f"l{layer:02d} h{int(head):02d}"


class VariantView:
    """What one pair's page is made of, read from the summary."""

    def __init__(self, site: AtlasPages, pair: VariantPair, summary: Summary) -> None:
        self.site, self.pair, self.summary = site, pair, summary
        self.models: dict[str, ModelEntry] = {m.name: m for m in site.catalog.models}
        self.slugs = {image.id: image.slug for image in site.catalog.images}
        self.primary = summary.primary
        self.src = layout.variant_page(self.models[pair.variant].slug)
        self.rows = [d for d in summary.deltas if (d.variant, d.base) == (pair.variant, pair.base)]
        self.shifts = {s["method"]: s["images"] for s in summary.image_shifts
                       if (s["variant"], s["base"]) == (pair.variant, pair.base)}
        base, variant = self.models[pair.base], self.models[pair.variant]
        self.first = next((i.id for i in site.catalog.images if i.id in base.maps and i.id in variant.maps), None)

    def compare_href(self, method: str, layer: int, head: str, image: str | None = None) -> str | None:
        """The compare view of base vs variant at one map, on ``image`` (default: the method's image that
        moved most, else the first published image both models have)."""
        base, variant = self.models[self.pair.base], self.models[self.pair.variant]
        candidates = [image] if image else [s["image"] for s in self.shifts.get(method, [])]
        candidates.append(self.first)
        slug = next((self.slugs[i] for i in candidates if i in self.slugs), None)
        if slug is None:
            return None
        side = (method, layer, variant_name(head))
        hash_ = layout.compare_hash(slug, (base.slug, *side), (variant.slug, *side))
        return self.site.url(self.src, layout.COMPARE_PAGE) + "#" + hash_

    def table(self, method: str) -> dict[str, Any]:
        """The layer x head table of the primary metric's delta for one method."""
        rows = [d for d in self.rows if d.method == method and d.metric == self.primary]
        scale = max((abs(d.delta) for d in rows if math.isfinite(d.delta)), default=0.0)
        heads = sorted({d.head for d in rows if d.head != FUSED}, key=int) + ([FUSED] if any(
            d.head == FUSED for d in rows) else [])
        by_key = {(d.layer, d.head): d for d in rows}
        out_rows = []
        for layer in sorted({d.layer for d in rows}):
            cells = []
            for head in heads:
                d = by_key.get((layer, head))
                cells.append(None if d is None else self.cell(d, scale))
            out_rows.append({"layer": layer, "cells": cells})
        significant = sum(d.excludes_zero for d in rows if d.head != FUSED)
        return {"method": method, "heads": heads, "rows": out_rows, "scale": fmt(scale),
                "significant": significant, "total": sum(d.head != FUSED for d in rows)}

    def cell(self, d: Delta, scale: float) -> dict[str, Any]:
        label = f"{self.pair.variant} minus {self.pair.base}, {d.method} {head_label(d.layer, d.head)}"
        ci = f"[{signed(d.lo)}, {signed(d.hi)}]"
        return {"value": signed(d.delta), "css": diverging_class(d.delta, scale), "sig": d.excludes_zero,
                "head": d.head, "href": self.compare_href(d.method, d.layer, d.head),
                "label": f"{label}: {signed(d.delta)}, 95% CI {ci}" + (", CI excludes 0" if d.excludes_zero else "")}

    def movers(self, method: str) -> dict[str, list[dict[str, Any]]]:
        """The heads (not fused) that gained and lost most on the primary metric, with their CIs."""
        rows = [d for d in self.rows if d.method == method and d.metric == self.primary and d.head != FUSED
                and math.isfinite(d.delta)]
        ordered = sorted(rows, key=lambda d: (-d.delta, d.layer, int(d.head)))
        gained = [d for d in ordered if d.delta > 0][:MOVERS]
        lost = [d for d in reversed(ordered) if d.delta < 0][:MOVERS]
        return {"gained": [self.mover(d) for d in gained], "lost": [self.mover(d) for d in lost]}

    def mover(self, d: Delta) -> dict[str, Any]:
        return {"label": head_label(d.layer, d.head), "href": self.compare_href(d.method, d.layer, d.head),
                "delta": signed(d.delta), "ci": f"[{signed(d.lo)}, {signed(d.hi)}]", "sig": d.excludes_zero,
                "base": fmt(d.base_mean), "variant": fmt(d.variant_mean), "n": d.n,
                "improved": "–" if not math.isfinite(d.improved) else f"{d.improved:.0%}"}

    def ranking(self, method: str) -> list[dict[str, Any]]:
        """The heads whose mean rank moved most (largest ``|moved|`` first)."""
        entry = next((r for r in self.summary.ranking_deltas if (r["variant"], r["base"], r["method"]) ==
                      (self.pair.variant, self.pair.base, method)), None)
        heads = [h for h in (entry or {}).get("heads", []) if h.get("moved") is not None]
        heads = sorted(heads, key=lambda h: (-abs(h["moved"]), h["layer"], int(h["head"])))[:RANKING_ROWS]
        return [{"label": head_label(h["layer"], h["head"]), "href": self.compare_href(method, h["layer"], h["head"]),
                 "base": h["base_position"], "variant": h["variant_position"],
                 "base_rank": f"{h['base_mean_rank']:.1f}", "variant_rank": f"{h['variant_mean_rank']:.1f}",
                 "moved": f"{h['moved']:+.1f}"} for h in heads]

    def images(self, method: str) -> list[dict[str, Any]]:
        """The images that moved most: each with its map of the largest shift, linked to the compare view."""
        return [{"image": s["image"], "label": head_label(s["layer"], s["head"]), "base": fmt(s["base"]),
                 "variant": fmt(s["variant"]), "delta": signed(s["delta"]),
                 "href": self.compare_href(method, s["layer"], s["head"], s["image"])}
                for s in self.shifts.get(method, []) if s["image"] in self.slugs]

    def page(self) -> Page:
        methods = sorted({d.method for d in self.rows})
        base, variant = self.models[self.pair.base], self.models[self.pair.variant]
        sections = [{"method": m, "table": self.table(m), **self.movers(m), "ranking": self.ranking(m),
                     "images": self.images(m)} for m in methods]
        context = {
            "pair": self.pair, "base": base, "variant": variant, "primary": self.primary,
            "higher_is_better": higher_is_better(self.primary), "sections": sections,
            "n_boot": self.summary.n_boot, "confidence": f"{self.summary.confidence:.0%}",
            "base_href": self.site.url(self.src, layout.model_page(base.slug)),
            "variant_href": self.site.url(self.src, layout.model_page(variant.slug)),
            "index_href": self.site.url(self.src, layout.VARIANTS_PAGE),
            "metrics_doc": self.site.docs_url(self.src, "metrics.md"),
        }
        return Page(self.src, f"Variant {self.pair.variant} of {self.pair.base}", context,
                    {"variant": variant.slug, "base": base.slug})


def declared_pairs(site: AtlasPages) -> list[VariantPair]:
    """The pairs of the build's summary whose two models are in the site."""
    summary = site.metrics.summary if site.metrics else Summary()
    names = {m.name for m in site.catalog.models}
    return [p for p in summary.variants if p.variant in names and p.base in names]


def variants_index_page(site: AtlasPages) -> Iterator[Page]:
    """Every declared variant with its base, linked to its page (or how to declare one)."""
    src = layout.VARIANTS_PAGE
    summary = site.metrics.summary if site.metrics else Summary()
    models = {m.name: m for m in site.catalog.models}
    pairs = []
    for pair in declared_pairs(site):
        rows = [d for d in summary.deltas if (d.variant, d.base) == (pair.variant, pair.base)
                and d.metric == summary.primary and d.head != FUSED]
        pairs.append({"variant": models[pair.variant], "base": models[pair.base],
                      "href": site.url(src, layout.variant_page(models[pair.variant].slug)),
                      "significant": sum(d.excludes_zero for d in rows), "total": len(rows)})
    context = {"pairs": pairs, "primary": summary.primary, "compare_href": site.url(src, layout.COMPARE_PAGE),
               "cli_doc": site.docs_url(src, "cli.md")}
    yield Page(src, "Variants", context)


def variant_pages(site: AtlasPages) -> Iterator[Page]:
    """One page per declared pair (``atlas/variants/<variant>/``)."""
    for pair in declared_pairs(site):
        yield VariantView(site, pair, site.metrics.summary).page()


def pairs_data(site: AtlasPages, pairs: Sequence[VariantPair]) -> list[dict[str, str]]:
    """The declared pairs as the page scripts read them: ``{variant, base}`` model slugs."""
    models: Mapping[str, ModelEntry] = {m.name: m for m in site.catalog.models}
    return [{"variant": models[p.variant].slug, "base": models[p.base].slug} for p in pairs]


def compare_page(site: AtlasPages) -> Iterator[Page]:
    """The compare view: any two maps of one image (``compare.mjs``; its state is in the permalink)."""
    src = layout.COMPARE_PAGE
    data = {"pairs": pairs_data(site, declared_pairs(site)), "photoUrl": site.url(src, layout.photo("IMAGE")),
            **site.index_urls(src)}
    context = {"image_count": len(site.catalog.images), "methods": site.methods(list(site.catalog.models))}
    yield Page(src, "Compare", context, data)
