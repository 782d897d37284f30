"""The timeline picture: throughput, errors and open connections, with the faults marked (SVG).

Written by hand rather than with a plotting library: three line charts and some shaded
spans need no dependency, and SVG stays readable in a browser and diffable in review.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from xml.sax.saxutils import escape

from .faults import FaultRecord
from .monitor import Sample

WIDTH = 1000
PANEL = 150
GAP = 30
LEFT, RIGHT, TOP = 70, 20, 40
COLOURS = {
    "throughput": "#1f77b4",
    "errors": "#d62728",
    "open": "#2ca02c",
}
FAULT_FILL = {
    "kill": "#ff9896",
    "stop": "#ffbb78",
    "restart": "#c49c94",
    "garbage": "#c7c7c7",
}
LINK_FILL = "#aec7e8"


def series(samples: Sequence[Sample]) -> dict[str, list[tuple[float, float]]]:
    """Per-interval throughput (MiB/s), errors per second and open connections."""
    out: dict[str, list[tuple[float, float]]] = {"throughput": [], "errors": [], "open": []}
    for before, after in itertools.pairwise(samples):
        span = after.at - before.at
        if span <= 0:
            continue
        out["throughput"].append(
            (after.at, (after.bytes_verified - before.bytes_verified) / span / (1 << 20))
        )
        out["errors"].append((after.at, (after.errors - before.errors) / span))
        out["open"].append((after.at, float(after.open_connections)))
    return out


def render_timeline(
    samples: Sequence[Sample], faults: Sequence[FaultRecord], *, end: float, title: str
) -> str:
    data = series(samples)
    panels = [
        ("throughput", "verified MiB/s"),
        ("errors", "errors / s"),
        ("open", "open connections"),
    ]
    height = TOP + len(panels) * (PANEL + GAP) + 40
    plot_width = WIDTH - LEFT - RIGHT
    end = max(end, 1e-9)

    def x(at: float) -> float:
        return LEFT + plot_width * min(max(at, 0.0), end) / end

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    bottom = TOP + len(panels) * (PANEL + GAP) - GAP
    for record in faults:
        if record.started is None:
            continue
        kind = record.event.kind.value
        fill = FAULT_FILL.get(kind, LINK_FILL)
        left = x(record.started)
        right = x(record.ended if record.ended is not None else end)
        label = escape(f"{kind} {record.event.target}")
        if right - left < 2:
            parts.append(
                f'<line x1="{left:.1f}" y1="{TOP}" x2="{left:.1f}" y2="{bottom}" '
                f'stroke="{fill}" stroke-width="2"><title>{label}</title></line>'
            )
        else:
            parts.append(
                f'<rect x="{left:.1f}" y="{TOP}" width="{right - left:.1f}" '
                f'height="{bottom - TOP}" fill="{fill}" fill-opacity="0.35">'
                f"<title>{label} ({record.status})</title></rect>"
            )
        parts.append(
            f'<text x="{left + 2:.1f}" y="{TOP - 4}" font-size="9" '
            f'transform="rotate(-30 {left + 2:.1f} {TOP - 4})">{label}</text>'
        )
    for index, (key, label) in enumerate(panels):
        top = TOP + index * (PANEL + GAP)
        points = data[key]
        peak = max((value for _, value in points), default=0.0) or 1.0
        parts.append(
            f'<rect x="{LEFT}" y="{top}" width="{plot_width}" height="{PANEL}" '
            'fill="none" stroke="#888"/>'
        )
        parts.append(f'<text x="{LEFT - 6}" y="{top + 10}" text-anchor="end">{peak:.3g}</text>')
        parts.append(f'<text x="{LEFT - 6}" y="{top + PANEL}" text-anchor="end">0</text>')
        parts.append(
            f'<text x="{LEFT + 6}" y="{top + 14}" fill="{COLOURS[key]}">{escape(label)}</text>'
        )
        if points:
            path = " ".join(
                f"{x(at):.1f},{top + PANEL - PANEL * value / peak:.1f}" for at, value in points
            )
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{COLOURS[key]}" '
                'stroke-width="1.5"/>'
            )
    axis = bottom + 14
    step = _tick_step(end)
    tick = 0.0
    while tick <= end + 1e-9:
        parts.append(f'<text x="{x(tick):.1f}" y="{axis}" text-anchor="middle">{tick:g}s</text>')
        tick += step
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _tick_step(end: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if end / step <= 12:
            return float(step)
    return 1200.0
