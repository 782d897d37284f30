"""The fault schedule: the scenario's stated faults plus a seeded random series.

``plan_schedule`` is a pure function of (scenario, seed, duration): the same seed always
gives the same schedule, which is what makes a failing chaos run reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from .scenario import LINK_FAULTS, FaultKind, FaultSpec, RandomFaults, Scenario

#: faults with no duration: they happen and are over
INSTANT = frozenset({FaultKind.RESTART, FaultKind.GARBAGE, FaultKind.REPLAY_TOKEN})


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultEvent:
    """One planned fault, at run time ``at`` (seconds after traffic starts)."""

    index: int
    at: float
    kind: FaultKind
    target: str
    duration: float | None = None
    latency: float | None = None
    rate: int | None = None
    period: float | None = None
    every: int | None = None
    origin: str = "scenario"  #: "scenario" (stated) or "random" (seeded)

    @property
    def end(self) -> float | None:
        """When the fault is undone (None: at the end of the run, or never for instants)."""
        return None if self.duration is None else self.at + self.duration

    @property
    def on_link(self) -> bool:
        return self.kind in LINK_FAULTS

    def describe(self) -> str:
        params = [
            f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
            for name in ("latency", "rate", "period", "every")
            if (value := getattr(self, name)) is not None
        ]
        span = f" for {self.duration:g}s" if self.duration is not None else ""
        extra = f" ({', '.join(params)})" if params else ""
        return f"{self.kind.value} {self.target}{extra}{span}"

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "index": self.index,
            "at": self.at,
            "kind": self.kind.value,
            "target": self.target,
            "origin": self.origin,
        }
        for name in ("duration", "latency", "rate", "period", "every"):
            if (value := getattr(self, name)) is not None:
                data[name] = value
        return data


def plan_schedule(scenario: Scenario, *, seed: int, duration: float) -> tuple[FaultEvent, ...]:
    """Every fault of a run of ``duration`` seconds, in time order."""
    planned = [_stated(fault) for fault in scenario.faults if fault.at < duration]
    if scenario.random_faults is not None:
        planned += _random(scenario, scenario.random_faults, seed, duration)
    # sorted() is stable: at equal times, stated faults keep their order, before random ones
    ordered = sorted(planned, key=lambda event: event.at)
    return tuple(replace(event, index=index) for index, event in enumerate(ordered))


def _stated(fault: FaultSpec) -> FaultEvent:
    return FaultEvent(
        index=-1,
        at=fault.at,
        kind=fault.kind,
        target=fault.target,
        duration=fault.duration,
        latency=fault.latency,
        rate=fault.rate,
        period=fault.period,
        every=fault.every,
    )


def _random(scenario: Scenario, spec: RandomFaults, seed: int, duration: float) -> list[FaultEvent]:
    rng = random.Random(f"skupper-chaos schedule {seed}")
    sites = list(spec.sites or scenario.site_names())
    links = list(spec.links or (link.name for link in scenario.links))
    events: list[FaultEvent] = []
    at = spec.start
    while at < duration:
        kind = rng.choice(spec.kinds)
        length = None if kind in INSTANT else round(rng.uniform(*spec.duration), 3)
        if at + (length or 0.0) >= duration:
            break
        target = rng.choice(links if kind in LINK_FAULTS else sites)
        event = FaultEvent(
            index=-1, at=round(at, 3), kind=kind, target=target, duration=length, origin="random"
        )
        if kind is FaultKind.LATENCY:
            event = replace(event, latency=round(rng.uniform(*spec.latency), 3))
        elif kind is FaultKind.BANDWIDTH:
            event = replace(event, rate=rng.randint(*spec.rate))
        elif kind is FaultKind.FLAP:
            event = replace(event, period=round(rng.uniform(*spec.period), 3))
        elif kind is FaultKind.FLIP_BITS:
            event = replace(event, every=rng.randint(*spec.every))
        events.append(event)
        at += (length or 0.0) + rng.uniform(*spec.gap)
    return events
