"""Inline SVG charts for the simulation's HTML report: work per day against capacity, and
measures of two protocol sets side by side. No scripts and nothing fetched; each chart has a
title, a description and axis labels (the report puts its numbers in a table under it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

LEFT, RIGHT, TOP, BOTTOM = 64, 16, 44, 46
PLOT_HEIGHT = 170
SET_CLASSES = ("set-a", "set-b", "set-c", "set-d")


def ticks(top: float) -> list[float]:
    """Round axis ticks from 0 up to at least `top` (steps of 1, 2, 2.5 or 5 times a power
    of 10)."""
    if top <= 0:
        return [0.0, 1.0]
    rough = top / 4
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= rough)
    count = math.ceil(top / step - 1e-9)
    return [round(step * n, 10) for n in range(count + 1)]


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _open(chart_id: str, title: str, description: str, width: float, height: float) -> list[str]:
    return [
        f'<svg class="chart" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
        f'<text x="8" y="18" class="chart-title">{escape(title)}</text>',
    ]


def _y_axis(scale: list[float], width: float, label: str) -> list[str]:
    top = scale[-1]
    parts = []
    for tick in scale:
        y = TOP + PLOT_HEIGHT * (1 - tick / top)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{width - RIGHT:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick y">{_number(tick)}</text>'
        )
    middle = TOP + PLOT_HEIGHT / 2
    parts.append(
        f'<text x="14" y="{middle:.1f}" class="axis-label" '
        f'transform="rotate(-90 14 {middle:.1f})">{escape(label)}</text>'
    )
    return parts


def workload_chart(
    chart_id: str,
    title: str,
    days: Sequence[date],
    needed: Sequence[float],
    capacity: Sequence[float],
    *,
    unit: str,
) -> str:
    """One role's work per day: a bar for the work needed, a step line for its capacity; a
    day whose work exceeded its capacity has a red bar on a shaded band (class "over")."""
    slot = 14.0 if len(days) > 14 else 32.0
    width = LEFT + RIGHT + slot * max(len(days), 1)
    height = TOP + PLOT_HEIGHT + BOTTOM
    scale = ticks(max([*needed, *capacity, 1]))
    top = scale[-1]
    over = sum(1 for n, c in zip(needed, capacity, strict=True) if n > c)
    parts = _open(
        chart_id,
        title,
        f"Bars: {unit} needed each day; line: capacity. {over} of {len(days)} days needed "
        "more than the capacity (red).",
        width,
        height,
    )
    parts += _y_axis(scale, width, unit)
    bottom = TOP + PLOT_HEIGHT

    def y_of(value: float) -> float:
        return bottom - PLOT_HEIGHT * value / top

    line = []
    for i, (day, need, cap) in enumerate(zip(days, needed, capacity, strict=True)):
        x = LEFT + i * slot
        exceeded = need > cap
        if exceeded:
            parts.append(
                f'<rect x="{x:.1f}" y="{TOP}" width="{slot:.1f}" height="{PLOT_HEIGHT}" '
                f'class="over-band" data-day="{day.isoformat()}"/>'
            )
        bar = slot * 0.7
        tip = f"{day:%a %Y-%m-%d}: {_number(need)} needed, capacity {_number(cap)}"
        parts.append(
            f'<rect x="{x + (slot - bar) / 2:.1f}" y="{y_of(need):.1f}" width="{bar:.1f}" '
            f'height="{bottom - y_of(need):.1f}" class="{"bar over" if exceeded else "bar"}">'
            f"<title>{escape(tip)}</title></rect>"
        )
        line.append(f"{x:.1f},{y_of(cap):.1f} {x + slot:.1f},{y_of(cap):.1f}")
        if len(days) <= 14 or i % 7 == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{bottom + 14}" class="tick x">'
                f"{escape(f'{day:%a %d %b}')}</text>"
            )
    if line:
        parts.append(f'<polyline points="{" ".join(line)}" class="capacity"/>')
    parts.append(
        f'<line x1="{LEFT}" y1="{bottom}" x2="{width - RIGHT:.1f}" y2="{bottom}" class="axis"/>'
    )
    parts.append(
        f'<text x="{LEFT + (width - LEFT - RIGHT) / 2:.1f}" y="{height - 8:.0f}" '
        'class="axis-label">simulated day</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Series:
    """One protocol set's values, one a measure (None: nothing to measure)."""

    name: str
    values: Sequence[float | None]


def side_by_side_chart(
    chart_id: str,
    title: str,
    measures: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str,
    peak: float = 0,
) -> str:
    """Grouped vertical bars: for each measure a bar per protocol set, with its value above
    it and a legend; `peak` fixes the scale (100 for percentages)."""
    group = 36.0 * len(series) + 40
    width = LEFT + RIGHT + group * max(len(measures), 1)
    height = TOP + PLOT_HEIGHT + BOTTOM + 14
    values = [v for s in series for v in s.values if v is not None]
    scale = ticks(max([peak, *values, 1]))
    top = scale[-1]
    names = " and ".join(s.name for s in series)
    parts = _open(chart_id, title, f"{unit} per measure for {names}.", width, height)
    parts += _y_axis(scale, width, unit)
    bottom = TOP + PLOT_HEIGHT
    for i, measure in enumerate(measures):
        x0 = LEFT + i * group + 20
        for j, one in enumerate(series):
            value = one.values[i]
            x = x0 + j * 36
            shown = "n/a" if value is None else _number(value)
            height_of = 0.0 if value is None else PLOT_HEIGHT * value / top
            css = SET_CLASSES[j % len(SET_CLASSES)]
            parts.append(
                f'<rect x="{x:.1f}" y="{bottom - height_of:.1f}" width="30" '
                f'height="{height_of:.1f}" class="bar {css}">'
                f"<title>{escape(f'{measure}, {one.name}: {shown}')}</title></rect>"
                f'<text x="{x + 15:.1f}" y="{bottom - height_of - 4:.1f}" class="value">'
                f"{escape(shown)}</text>"
            )
        words = measure.split(" ")
        first, rest = " ".join(words[:2]), " ".join(words[2:])
        centre = x0 + 18 * len(series)
        parts.append(
            f'<text x="{centre:.1f}" y="{bottom + 14}" class="tick x">{escape(first)}</text>'
        )
        if rest:
            parts.append(
                f'<text x="{centre:.1f}" y="{bottom + 27}" class="tick x">{escape(rest)}</text>'
            )
    parts.append(
        f'<line x1="{LEFT}" y1="{bottom}" x2="{width - RIGHT:.1f}" y2="{bottom}" class="axis"/>'
    )
    legend_x = LEFT
    for j, one in enumerate(series):
        css = SET_CLASSES[j % len(SET_CLASSES)]
        parts.append(
            f'<rect x="{legend_x}" y="{height - 16}" width="12" height="12" class="bar {css}"/>'
            f'<text x="{legend_x + 16}" y="{height - 6}" class="legend">{escape(one.name)}</text>'
        )
        legend_x += 24 + 7 * len(one.name)
    parts.append("</svg>")
    return "".join(parts)
