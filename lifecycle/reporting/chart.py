"""Guests by state over time, drawn inline (no script, no external asset)."""

from __future__ import annotations


def line_chart(history: list[tuple[str, dict[str, int]]], states: tuple[str, ...]) -> str:
    """An inline SVG line chart: one polyline per state across the days. A single day is drawn as a level
    line across the chart (there is no change to show yet), never as a lone dot."""
    width, height, pad = 720, 240, 40
    peak = max([max(c.values(), default=0) for _, c in history] + [1])
    colours = {"pending": "#bf8700", "active": "#1a7f37", "disabled": "#cf222e"}
    step = (width - 2 * pad) / max(len(history) - 1, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="guests by state over time">'
    ]
    parts.append(f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#57606a"/>')
    for state in states:
        points = [
            (pad + i * step, height - pad - (counts.get(state, 0) / peak) * (height - 2 * pad))
            for i, (_, counts) in enumerate(history)
        ]
        if len(points) == 1:
            points.append((width - pad, points[0][1]))
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<polyline class="series-{state}" fill="none" stroke="{colours[state]}" stroke-width="2" '
            f'stroke-linejoin="round" points="{path}"/>'
        )
    for i, (day, _) in enumerate(history):
        if len(history) <= 8 or i % max(len(history) // 8, 1) == 0:
            parts.append(
                f'<text x="{pad + i * step:.1f}" y="{height - pad + 16}" font-size="10" '
                f'text-anchor="middle">{day[5:]}</text>'
            )
    legend = " ".join(f'<tspan fill="{colours[s]}">&#9473; {s}</tspan>' for s in states)
    parts.append(f'<text x="{pad}" y="16" font-size="12">{legend} (peak {peak})</text></svg>')
    return "".join(parts)
