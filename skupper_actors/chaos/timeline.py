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
LEFT, RIGHT, TOP = 70, 40, 80
COLOURS = {
    "throughput": "#1f77b4",
    "errors": "#d62728",
    "open": "#2ca02c",
}
FAULT_FILL = {  # node faults warm, link faults cool, harmless ones grey
    "kill": "#ff9896",
    "stop": "#ffbb78",
    "restart": "#c49c94",
    "garbage": "#c7c7c7",
    "replay_token": "#dbdb8d",
    "cut": "#aec7e8",
    "blackhole": "#9edae5",
    "flap": "#c5b0d5",
    "flip_bits": "#f7b6d2",
    "latency": "#98df8a",
    "bandwidth": "#bcbd22",
    "corrupt_after_tls": "#d62728",
}
LINK_FILL = "#aec7e8"
SITE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
MAX_POINTS = 1500
CROWDED = 20  # faults: past this, a legend instead of a label per fault


def series(samples: Sequence[Sample]) -> dict[str, list[tuple[float, float]]]:
    """Per-interval throughput (MiB/s), errors per second and open connections."""
    out: dict[str, list[tuple[float, float]]] = {"throughput": [], "errors": [], "open": []}
    for before, after in itertools.pairwise(_thin(samples)):
        span = after.at - before.at
        if span <= 0:
            continue
        out["throughput"].append(
            (after.at, (after.bytes_verified - before.bytes_verified) / span / (1 << 20))
        )
        out["errors"].append((after.at, (after.errors - before.errors) / span))
        out["open"].append((after.at, float(after.open_connections)))
    return out


def memory_series(samples: Sequence[Sample]) -> dict[str, list[tuple[float, float]]]:
    """Each node's resident set size (MiB) over time; gaps while it is down."""
    out: dict[str, list[tuple[float, float]]] = {}
    for sample in _thin(samples):
        for site, kib in sample.rss_kib.items():
            if kib is not None:
                out.setdefault(site, []).append((sample.at, kib / 1024))
    return out


def _thin(samples: Sequence[Sample], limit: int = MAX_POINTS) -> list[Sample]:
    """At most ``limit`` samples, evenly spaced, the last kept (rates then average over gaps)."""
    step = max(1, -(-len(samples) // limit))
    picked = list(samples[::step])
    if samples and picked[-1] is not samples[-1]:
        picked.append(samples[-1])
    return picked


def render_timeline(
    samples: Sequence[Sample], faults: Sequence[FaultRecord], *, end: float, title: str
) -> str:
    data = series(samples)
    memory = memory_series(samples)
    panels: list[tuple[str, list[tuple[str, str, list[tuple[float, float]]]]]] = [
        ("verified MiB/s", [("", COLOURS["throughput"], data["throughput"])]),
        ("errors / s", [("", COLOURS["errors"], data["errors"])]),
        ("open connections", [("", COLOURS["open"], data["open"])]),
        (
            "node RSS MiB",
            [
                (site, SITE_COLOURS[i % len(SITE_COLOURS)], points)
                for i, (site, points) in enumerate(sorted(memory.items()))
            ],
        ),
    ]
    height = TOP + len(panels) * (PANEL + GAP) + 10
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
    crowded = len(faults) > CROWDED
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
        if crowded:
            continue
        parts.append(
            f'<text x="{left + 2:.1f}" y="{TOP - 4}" font-size="9" '
            f'transform="rotate(-30 {left + 2:.1f} {TOP - 4})">{label}</text>'
        )
    if crowded:  # too many faults to name each: a legend of kinds (hover a span for its name)
        kinds = sorted({r.event.kind.value for r in faults})
        spacing = min(110, plot_width // len(kinds))
        for number, kind in enumerate(kinds):
            left = LEFT + spacing * number
            parts.append(
                f'<rect x="{left}" y="{TOP - 26}" width="10" height="10" '
                f'fill="{FAULT_FILL.get(kind, LINK_FILL)}"/>'
                f'<text x="{left + 14}" y="{TOP - 17}">{escape(kind)}</text>'
            )
    for index, (label, lines) in enumerate(panels):
        top = TOP + index * (PANEL + GAP)
        peak = max((value for _, _, points in lines for _, value in points), default=0.0) or 1.0
        parts.append(
            f'<rect x="{LEFT}" y="{top}" width="{plot_width}" height="{PANEL}" '
            'fill="none" stroke="#888"/>'
        )
        parts.append(f'<text x="{LEFT - 6}" y="{top + 10}" text-anchor="end">{peak:.3g}</text>')
        parts.append(f'<text x="{LEFT - 6}" y="{top + PANEL}" text-anchor="end">0</text>')
        parts.append(f'<text x="{LEFT + 6}" y="{top + 14}">{escape(label)}</text>')
        for number, (name, colour, points) in enumerate(lines):
            if name:
                parts.append(
                    f'<text x="{LEFT + 120 + 40 * number}" y="{top + 14}" '
                    f'fill="{colour}">{escape(name)}</text>'
                )
            if points:
                path = " ".join(
                    f"{x(at):.1f},{top + PANEL - PANEL * value / peak:.1f}" for at, value in points
                )
                parts.append(
                    f'<polyline points="{path}" fill="none" stroke="{colour}" '
                    f'stroke-width="1.5"><title>{escape(name or label)}</title></polyline>'
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
