"""Tiny server-side SVG charts for the dashboard (no JavaScript, no build step)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD = 560, 180, 28


def bar_chart(
    title: str, labels: Sequence[str], values: Sequence[float], *, unit: str = "", peak: float = 0
) -> str:
    """Vertical bars with the value above each; `peak` fixes the scale (e.g. 100 for %)."""
    top = max([peak, *values, 1])
    count = max(len(values), 1)
    slot = (WIDTH - 2 * PAD) / count
    bar = max(slot * 0.7, 1)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} '
        f'{HEIGHT + 40}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{PAD}" y="16" class="chart-title">{escape(title)}</text>',
        f'<line x1="{PAD}" y1="{HEIGHT}" x2="{WIDTH - PAD}" y2="{HEIGHT}" class="axis"/>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = (HEIGHT - 36) * value / top
        x = PAD + i * slot + (slot - bar) / 2
        y = HEIGHT - height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
            f'class="bar"><title>{escape(label)}: {value:g}{unit}</title></rect>'
        )
        if count <= 12 or value:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" class="value">{value:g}{unit}</text>'
            )
        if count <= 12 or i % 5 == 0:
            centre = x + bar / 2
            parts.append(
                f'<text x="{centre:.1f}" y="{HEIGHT + 14}" class="label">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
