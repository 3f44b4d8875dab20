"""Small static charts as inline SVG, generated in Python: no JavaScript, no chart library, CSP-safe.

Every chart is an ``<svg role="img">`` with a ``<title>`` (its accessible name) and plain presentation
attributes (no ``style`` attribute, no ``<style>`` element). Text and axes use ``currentColor`` so the
charts follow the theme's light and dark schemes; series use the colour-blind-safe Okabe-Ito palette.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
FONT = 11  # px, in SVG user units
LINE_H = 18  # height of one row in row-based charts


@dataclass(frozen=True)
class Series:
    """One line of a line chart: ``(x, y)`` points (NaN y values are gaps)."""

    label: str
    points: tuple[tuple[float, float], ...]
    colour: str


@dataclass(frozen=True)
class RefLine:
    """A dashed horizontal (line chart) or vertical (dot/bar chart) reference value, e.g. a baseline."""

    label: str
    value: float
    colour: str = "currentColor"


@dataclass(frozen=True)
class Interval:
    """A labelled estimate with its confidence interval (one row of a dot-and-whisker or bar chart)."""

    label: str
    mean: float
    lo: float
    hi: float
    colour: str = PALETTE[0]
    refs: tuple[RefLine, ...] = ()  # reference ticks drawn on this row only


def _num(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if math.isfinite(v) else "0"


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def nice_max(values: Sequence[float], floor: float = 0.1) -> float:
    """A round upper axis limit (multiple of 0.1 up to 1, else of a power of ten) above every value."""
    top = max(_finite(values) or [floor], default=floor)
    step = 0.1 if top <= 1 else 10 ** math.floor(math.log10(top))
    return max(floor, math.ceil(top / step - 1e-9) * step)


def ticks(top: float) -> list[float]:
    """Round tick values from 0 to ``top`` (a value from ``nice_max``)."""
    step = next((s for s in (0.05, 0.1, 0.2, 0.25) if top / s <= 6), top / 5)
    count = max(1, round(top / step))
    return [top * i / count for i in range(count + 1)]


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(width: float, height: float, title: str, body: list[str], cls: str) -> Markup:
    head = (
        f'<svg class="atlas-chart {cls}" viewBox="0 0 {_num(width)} {_num(height)}" width="{_num(width)}" '
        f'height="{_num(height)}" role="img" font-size="{FONT}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}" fill="currentColor"{extra}>{escape(text)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, colour: str = "currentColor", extra: str = "") -> str:
    return f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" stroke="{colour}"{extra}/>'


def _value_axis(x0: float, x1: float, y: float, top: float) -> list[str]:
    """Horizontal value axis from 0 to ``top`` at height ``y`` with tick labels below."""
    out = [_line(x0, y, x1, y, extra=' stroke-opacity="0.5"')]
    for v in ticks(top):
        x = x0 + (x1 - x0) * v / top
        out += [_line(x, y, x, y + 4, extra=' stroke-opacity="0.5"'), _text(x, y + 15, _num(v), "middle")]
    return out


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    refs: Sequence[RefLine] = (),
    width: float = 420,
    height: float = 240,
) -> Markup:
    """Lines over integer x values (e.g. layers) with dashed reference lines and a legend below."""
    xs = sorted({x for s in series for x, _ in s.points}) or [0]
    top = nice_max([y for s in series for _, y in s.points] + [r.value for r in refs])
    left, right, plot_top = 44, width - 12, 10
    legend_rows = math.ceil((len(series) + len(refs)) / 2)
    bottom = height - 36 - LINE_H * legend_rows
    sx = (
        (lambda x: left + (right - left) * (x - xs[0]) / (xs[-1] - xs[0]))
        if len(xs) > 1
        else (lambda x: (left + right) / 2)
    )
    sy = lambda y: bottom - (bottom - plot_top) * y / top  # noqa: E731
    body = [_line(left, plot_top, left, bottom, extra=' stroke-opacity="0.5"')]
    for v in ticks(top):
        body += [
            _line(left, sy(v), right, sy(v), extra=' stroke-opacity="0.12"'),
            _text(left - 4, sy(v) + 4, _num(v), "end"),
        ]
    body += [_line(sx(x), bottom, sx(x), bottom + 4) + _text(sx(x), bottom + 15, str(int(x)), "middle") for x in xs]
    body.append(_text((left + right) / 2, bottom + 29, x_label, "middle"))
    body.append(
        _text(
            12,
            (plot_top + bottom) / 2,
            y_label,
            "middle",
            f' transform="rotate(-90 12 {_num((plot_top + bottom) / 2)})"',
        )
    )
    for r in refs:
        body.append(_line(left, sy(r.value), right, sy(r.value), r.colour, ' stroke-dasharray="4 3"'))
    for s in series:
        pts = [(sx(x), sy(y)) for x, y in s.points if math.isfinite(y)]
        path = " ".join(f"{_num(x)},{_num(y)}" for x, y in pts)
        body.append(f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="2"/>')
        body += [f'<circle cx="{_num(x)}" cy="{_num(y)}" r="3" fill="{s.colour}"/>' for x, y in pts]
    items = [(s.label, s.colour, False) for s in series] + [(r.label, r.colour, True) for r in refs]
    body += _legend(items, left, bottom + 44, (right - left) / 2)
    return _svg(width, height, title, body, "atlas-line-chart")


def _legend(items: Sequence[tuple[str, str, bool]], x0: float, y0: float, col: float) -> list[str]:
    out = []
    for i, (label, colour, dashed) in enumerate(items):
        x, y = x0 + col * (i % 2), y0 + LINE_H * (i // 2)
        dash = ' stroke-dasharray="4 3"' if dashed else ' stroke-width="2"'
        out += [_line(x, y - 4, x + 18, y - 4, colour, dash), _text(x + 22, y, label)]
    return out


def interval_chart(
    rows: Sequence[Interval],
    *,
    title: str,
    x_label: str,
    bars: bool = False,
    width: float = 640,
    label_width: float = 190,
) -> Markup:
    """One row per estimate: a dot (or a bar from 0, ``bars=True``) at the mean and a whisker for the CI.

    Each row's reference values (e.g. its model's baselines) are short ticks with a marker letter.
    """
    values = [v for r in rows for v in (r.mean, r.hi, *(x.value for x in r.refs))]
    top = nice_max(values)
    left, right, y0 = label_width, width - 16, 8
    sx = lambda v: left + (right - left) * max(0.0, min(v, top)) / top  # noqa: E731
    body = []
    for v in ticks(top):
        x = left + (right - left) * v / top
        body.append(_line(x, y0, x, y0 + LINE_H * len(rows), extra=' stroke-opacity="0.12"'))
    for i, r in enumerate(rows):
        y = y0 + LINE_H * i + LINE_H / 2
        body.append(_text(left - 6, y + 4, _short(r.label), "end"))
        if not math.isfinite(r.mean):
            body.append(_text(left + 4, y + 4, "no value"))
            continue
        if bars:
            body.append(
                f'<rect x="{_num(left)}" y="{_num(y - 6)}" width="{_num(sx(r.mean) - left)}" '
                f'height="12" fill="{r.colour}" fill-opacity="0.8"/>'
            )
        if math.isfinite(r.lo) and math.isfinite(r.hi):
            body.append(_line(sx(r.lo), y, sx(r.hi), y, "currentColor" if bars else r.colour, ' stroke-width="1.5"'))
            body += [_line(sx(v), y - 4, sx(v), y + 4, "currentColor" if bars else r.colour) for v in (r.lo, r.hi)]
        if not bars:
            body.append(f'<circle cx="{_num(sx(r.mean))}" cy="{_num(y)}" r="4" fill="{r.colour}"/>')
        for ref in r.refs:
            if math.isfinite(ref.value):
                body.append(_line(sx(ref.value), y - 7, sx(ref.value), y + 7, ref.colour, ' stroke-dasharray="2 2"'))
    axis_y = y0 + LINE_H * len(rows) + 2
    body += _value_axis(left, right, axis_y, top)
    body.append(_text((left + right) / 2, axis_y + 30, x_label, "middle"))
    return _svg(width, axis_y + 38, title, body, "atlas-interval-chart")


def diverging_colour(v: float) -> str:
    """Blue (-1) - white (0) - red (+1), as ``#rrggbb``; grey for NaN."""
    if not math.isfinite(v):
        return "#999999"
    v = max(-1.0, min(1.0, v))
    end = (178, 24, 43) if v > 0 else (33, 102, 172)
    rgb = (round(255 + (c - 255) * abs(v)) for c in end)
    return "#" + "".join(f"{c:02x}" for c in rgb)


def matrix_chart(
    values: Sequence[Sequence[float]],
    labels: Sequence[str],
    groups: Sequence[int],
    *,
    title: str,
    cell: float = 22,
) -> Markup:
    """A square heat map of ``values`` (correlations in [-1, 1]) in the given order of ``labels``.

    ``groups`` (a cluster number per row, same order) is drawn as a coloured band with the cluster
    number on both axes; each cell carries its value in a ``<title>`` tooltip.
    """
    n = len(labels)
    pad = 58
    body = []
    for i in range(n):
        colour = PALETTE[groups[i] % len(PALETTE)]
        y = pad + i * cell
        body += [
            f'<rect x="{pad - 14}" y="{_num(y)}" width="10" height="{_num(cell)}" fill="{colour}"/>',
            f'<rect x="{_num(y)}" y="{pad - 14}" width="{_num(cell)}" height="10" fill="{colour}"/>',
            _text(pad - 18, y + cell / 2 + 4, labels[i], "end"),
            _text(
                y + cell / 2, pad - 18, labels[i], "start", f' transform="rotate(-60 {_num(y + cell / 2)} {pad - 18})"'
            ),
        ]
        for j in range(n):
            v = values[i][j]
            tip = f"{labels[i]} vs {labels[j]}: {v:.2f}" if math.isfinite(v) else f"{labels[i]} vs {labels[j]}"
            body.append(
                f'<rect x="{_num(pad + j * cell)}" y="{_num(y)}" width="{_num(cell)}" height="{_num(cell)}" '
                f'fill="{diverging_colour(v)}"><title>{escape(tip)}</title></rect>'
            )
    legend_y = pad + n * cell + 14
    for k in range(11):
        v = -1 + k / 5
        body.append(
            f'<rect x="{_num(pad + k * 16)}" y="{_num(legend_y)}" width="16" height="10" fill="{diverging_colour(v)}"/>'
        )
    body += [
        _text(pad, legend_y + 24, "-1", "middle"),
        _text(pad + 88, legend_y + 24, "0", "middle"),
        _text(pad + 176, legend_y + 24, "+1 correlation", "start"),
    ]
    size = pad + n * cell + 8
    return _svg(max(size, pad + 280), legend_y + 32, title, body, "atlas-matrix-chart")
