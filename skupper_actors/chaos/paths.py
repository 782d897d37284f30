"""Which paths the faults left open, over time: for judging whether connections should work."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from .scenario import FaultKind, Scenario

NODE_DOWN = frozenset({FaultKind.KILL, FaultKind.STOP, FaultKind.RESTART})
LINK_BROKEN = frozenset({FaultKind.CUT, FaultKind.BLACKHOLE, FaultKind.FLAP, FaultKind.FLIP_BITS})
#: faults that leave a link up but slow or wrong: nothing is promised while they last
LINK_DEGRADED = frozenset({FaultKind.LATENCY, FaultKind.BANDWIDTH, FaultKind.CORRUPT_AFTER_TLS})


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    kind: FaultKind
    target: str
    start: float
    end: float  #: the run's end when the fault was never undone


@dataclass(slots=True, kw_only=True)
class FaultTimeline:
    """Fault windows in run time, and every moment at which the network changed."""

    scenario: Scenario
    windows: list[Window] = field(default_factory=list)
    changes: list[float] = field(default_factory=list)

    def add(self, kind: FaultKind, target: str, start: float, end: float) -> None:
        self.windows.append(Window(kind=kind, target=target, start=start, end=end))
        if kind is FaultKind.GARBAGE or kind is FaultKind.REPLAY_TOKEN:
            return  # nothing may change: a node shrugs these off
        bisect.insort(self.changes, start)
        bisect.insort(self.changes, end)

    def add_change(self, at: float) -> None:
        bisect.insort(self.changes, at)

    def last_change_before(self, at: float) -> float | None:
        index = bisect.bisect_right(self.changes, at)
        return self.changes[index - 1] if index else None

    def change_within(self, start: float, end: float) -> bool:
        index = bisect.bisect_left(self.changes, start)
        return index < len(self.changes) and self.changes[index] <= end

    def _active(self, at: float, kinds: frozenset[FaultKind]) -> list[Window]:
        return [w for w in self.windows if w.kind in kinds and w.start <= at < w.end]

    def degraded(self, at: float) -> bool:
        return bool(self._active(at, LINK_DEGRADED))

    def nodes_down(self, at: float) -> set[str]:
        return {w.target for w in self._active(at, NODE_DOWN)}

    def path_exists(self, at: float, source: str, destinations: tuple[str, ...]) -> bool:
        """Whether ``source`` reaches any of ``destinations`` over what the faults left."""
        down = self.nodes_down(at)
        if source in down:
            return False
        broken = {w.target for w in self._active(at, LINK_BROKEN)}
        neighbours: dict[str, set[str]] = {}
        for link in self.scenario.links:
            if link.name in broken or link.source in down or link.target in down:
                continue
            neighbours.setdefault(link.source, set()).add(link.target)
            neighbours.setdefault(link.target, set()).add(link.source)
        seen, todo = {source}, [source]
        while todo:
            site = todo.pop()
            if site in destinations and site not in down:
                return True
            for peer in neighbours.get(site, ()):
                if peer not in seen:
                    seen.add(peer)
                    todo.append(peer)
        return False
