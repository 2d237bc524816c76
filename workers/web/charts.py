"""Tiny server-side SVG charts for the dashboard (no JavaScript, no build step)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD = 560, 180, 28


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    unit: str = "",
    peak: float = 0,
    of: Sequence[int] | None = None,
) -> str:
    """Vertical bars with the value above each; `peak` fixes the scale (e.g. 100 for %). A
    None value (a percentage of nothing) has no bar and reads "n/a", never 0; `of` gives each
    percentage's denominator, shown with it."""
    top = max([peak, *(v for v in values if v is not None), 1])
    count = max(len(values), 1)
    slot = (WIDTH - 2 * PAD) / count
    bar = max(slot * 0.7, 1)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} '
        f'{HEIGHT + 40}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{PAD}" y="16" class="chart-title">{escape(title)}</text>',
        f'<line x1="{PAD}" y1="{HEIGHT}" x2="{WIDTH - PAD}" y2="{HEIGHT}" class="axis"/>',
    ]
    whole = list(of) if of is not None else [None] * len(values)
    for i, (label, value, n) in enumerate(zip(labels, values, whole, strict=True)):
        x = PAD + i * slot + (slot - bar) / 2
        shown = "n/a" if value is None else f"{value:g}{unit}"
        full = shown if n is None or value is None else f"{shown} of {n}"
        if count <= 12:  # room for the denominator above the bar; else in the tooltip only
            shown = full
        height = 0.0 if value is None else (HEIGHT - 36) * value / top
        y = HEIGHT - height
        if value is not None:
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                f'class="bar"><title>{escape(label)}: {escape(full)}</title></rect>'
            )
        if count <= 12 or value:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" class="value">{escape(shown)}</text>'
            )
        if count <= 12 or i % 5 == 0:
            centre = x + bar / 2
            parts.append(
                f'<text x="{centre:.1f}" y="{HEIGHT + 14}" class="label">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
