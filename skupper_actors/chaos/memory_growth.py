"""The memory invariant over time: each node's resident size, after warm-up, does not grow.

``memory_bound`` checks the peak; this checks the trend. For each site it takes the
longest stretch of samples after the warm-up (the first quarter of the run) in which the
node was up without a break (a restart starts a new process, with a new size), and
compares the median of the stretch's last third with the median of its first third.
Medians keep one burst (a slow reader, a stalled path) from reading as growth.
"""

from __future__ import annotations

from statistics import median
from typing import Any

from .rundata import RunData
from .verdict import InvariantResult

WARMUP_FRACTION = 0.25
MIN_STRETCH = 20.0  # seconds: a shorter stretch says nothing about a trend
MIN_SAMPLES = 6


def _stretches(run: RunData, site: str, after: float) -> list[list[tuple[float, int]]]:
    stretches: list[list[tuple[float, int]]] = [[]]
    for sample in run.observed.samples:
        if sample.at < after:
            continue
        kib = sample.rss_kib.get(site)
        if kib is None:
            if stretches[-1]:
                stretches.append([])
            continue
        stretches[-1].append((sample.at, kib))
    return [s for s in stretches if s]


def memory_not_growing(run: RunData) -> InvariantResult:
    limit = run.scenario.invariants.memory_growth_mib
    samples = run.observed.samples
    if not samples:
        return InvariantResult(
            name="memory_not_growing",
            passed=True,
            summary="no samples",
            evidence={"growth_limit_mib": limit},
        )
    start, end = samples[0].at, samples[-1].at
    after = start + (end - start) * WARMUP_FRACTION
    sites = sorted({site for sample in samples for site in sample.rss_kib})
    per_site: dict[str, dict[str, Any]] = {}
    grown: dict[str, float] = {}
    for site in sites:
        stretches = _stretches(run, site, after)
        if not stretches:
            continue
        longest = max(stretches, key=lambda s: s[-1][0] - s[0][0])
        span = longest[-1][0] - longest[0][0]
        if span < MIN_STRETCH or len(longest) < MIN_SAMPLES:
            per_site[site] = {"skipped": f"up for only {span:.0f} s after warm-up"}
            continue
        third = len(longest) // 3
        early = median(kib for _, kib in longest[:third]) / 1024
        late = median(kib for _, kib in longest[-third:]) / 1024
        growth = late - early
        per_site[site] = {
            "from": round(longest[0][0], 1),
            "to": round(longest[-1][0], 1),
            "early_mib": round(early, 1),
            "late_mib": round(late, 1),
            "growth_mib": round(growth, 1),
        }
        if growth > limit:
            grown[site] = round(growth, 1)
    checked = [s for s, v in per_site.items() if "growth_mib" in v]
    most = max((per_site[s]["growth_mib"] for s in checked), default=0.0)
    return InvariantResult(
        name="memory_not_growing",
        passed=not grown,
        summary=(
            f"{len(checked)} nodes checked after warm-up, most growth {most:+.1f} MiB, "
            f"limit {limit} MiB"
            if not grown
            else "grew after warm-up: " + ", ".join(f"{s} +{m} MiB" for s, m in grown.items())
        ),
        evidence={"growth_limit_mib": limit, "warmup_until": round(after, 1), "sites": per_site},
    )
