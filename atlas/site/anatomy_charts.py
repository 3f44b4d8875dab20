"""The head-anatomy charts as inline SVG: one dot per head against its layer, each dot a link to the head.

Built like ``atlas.site.svg_charts`` (presentation attributes only, ``currentColor`` text, the Okabe-Ito palette),
but the chart is a ``role="group"`` of links rather than one ``role="img"``: every dot is an ``<a>`` with
its own accessible name (head, mean and confidence interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from atlas.site.svg_charts import FONT, _line, _num, _text, nice_max, ticks


@dataclass(frozen=True)
class HeadDot:
    """One head of the chart: its place, estimate (mean and CI), colour, link and accessible name."""

    layer: int
    head: int
    mean: float
    lo: float
    hi: float
    colour: str
    href: str
    label: str


def head_dot_chart(
    dots: Sequence[HeadDot], *, layers: int, heads: int, title: str, y_label: str,
    width: float = 640, height: float = 300,
) -> Markup:
    """Dots (with CI whiskers) per head over the layers (ViT Fig. 7): heads of one layer side by side."""
    top = nice_max([d.hi if math.isfinite(d.hi) else d.mean for d in dots])
    left, right, plot_top, bottom = 52, width - 12, 10, height - 36
    slot = (right - left) / max(layers, 1)
    sx = lambda d: left + slot * (d.layer + (d.head + 1) / (heads + 1))  # noqa: E731
    sy = lambda v: bottom - (bottom - plot_top) * max(0.0, min(v, top)) / top  # noqa: E731
    body = [_line(left, plot_top, left, bottom, extra=' stroke-opacity="0.5"')]
    for v in ticks(top):
        body += [
            _line(left, sy(v), right, sy(v), extra=' stroke-opacity="0.12"'),
            _text(left - 4, sy(v) + 4, _num(v), "end"),
        ]
    for layer in range(layers):
        x = left + slot * (layer + 0.5)
        body.append(_text(x, bottom + 15, str(layer), "middle"))
        if layer:
            edge = left + slot * layer
            body.append(_line(edge, plot_top, edge, bottom, extra=' stroke-opacity="0.08"'))
    body.append(_text((left + right) / 2, bottom + 30, "layer", "middle"))
    mid = (plot_top + bottom) / 2
    body.append(_text(12, mid, y_label, "middle", f' transform="rotate(-90 12 {_num(mid)})"'))
    for d in dots:
        if not math.isfinite(d.mean):
            continue
        x, parts = sx(d), []
        if math.isfinite(d.lo) and math.isfinite(d.hi) and d.hi > d.lo:
            parts.append(_line(x, sy(d.lo), x, sy(d.hi), d.colour, ' stroke-width="1.2"'))
        parts.append(f'<circle cx="{_num(x)}" cy="{_num(sy(d.mean))}" r="3.5" fill="{d.colour}"/>')
        body.append(
            f'<a href="{escape(d.href)}" aria-label="{escape(d.label)}" data-layer="{d.layer}" data-head="{d.head}">'
            f"<title>{escape(d.label)}</title>{''.join(parts)}</a>"
        )
    head = (
        f'<svg class="atlas-chart atlas-dot-chart" viewBox="0 0 {_num(width)} {_num(height)}" width="{_num(width)}" '
        f'height="{_num(height)}" role="group" aria-label="{escape(title)}" font-size="{FONT}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    )
    return Markup(head + "".join(body) + "</svg>")
