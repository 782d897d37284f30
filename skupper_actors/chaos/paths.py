"""Which paths the faults left open, over time: for judging whether connections should work."""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field

from .scenario import FaultKind, LinkSpec, Scenario

NODE_DOWN = frozenset({FaultKind.KILL, FaultKind.STOP, FaultKind.RESTART})
LINK_BROKEN = frozenset({FaultKind.CUT, FaultKind.BLACKHOLE, FaultKind.FLAP, FaultKind.FLIP_BITS})
#: faults that leave a link up but slow or wrong: nothing is promised while they last
LINK_DEGRADED = frozenset({FaultKind.LATENCY, FaultKind.BANDWIDTH, FaultKind.CORRUPT_AFTER_TLS})
#: how far either side of a change the network is looked at, to see it before and after
_AROUND = 1e-6


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    kind: FaultKind
    target: str
    start: float
    end: float  #: the run's end when the fault was never undone


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """A moment the network changed, and what changed: a site or a link."""

    at: float
    target: str | None  #: None: not known, so taken to touch every path
    fault: int | None = None  #: the index of the fault that made it, when known


@dataclass(slots=True, kw_only=True)
class FaultTimeline:
    """Fault windows in run time, and every moment at which the network changed."""

    scenario: Scenario
    windows: list[Window] = field(default_factory=list)
    changes: list[float] = field(default_factory=list)
    #: the same moments as ``changes``, each with its target (sorted by time)
    touched: list[Change] = field(default_factory=list)

    def add(
        self, kind: FaultKind, target: str, start: float, end: float, *, fault: int | None = None
    ) -> None:
        self.windows.append(Window(kind=kind, target=target, start=start, end=end))
        if kind is FaultKind.GARBAGE or kind is FaultKind.REPLAY_TOKEN:
            return  # nothing may change: a node shrugs these off
        self.add_change(start, target, fault=fault)
        self.add_change(end, target, fault=fault)

    def add_change(self, at: float, target: str | None = None, *, fault: int | None = None) -> None:
        bisect.insort(self.changes, at)
        bisect.insort(self.touched, Change(at=at, target=target, fault=fault), key=_at)

    def changes_between(self, start: float, end: float) -> list[Change]:
        """The changes at ``start < at <= end``."""
        low = bisect.bisect_right(self.touched, start, key=_at)
        high = bisect.bisect_right(self.touched, end, key=_at)
        return self.touched[low:high]

    def touches_paths(self, change: Change, source: str, destinations: tuple[str, ...]) -> bool:
        """Whether ``change`` took or gave a site or link on a least-cost path from ``source``
        to any of ``destinations``, just before it or just after it.

        Only such a change can make a new connection fail while routes converge: every
        router on a least-cost path routes along least-cost paths, so a site or link on
        none of them is on no router's way for this connection, before or after.
        """
        if change.target is None:
            return True
        return any(
            change.target in self.least_cost_elements(at, source, destinations)
            for at in (change.at - _AROUND, change.at + _AROUND)
        )

    def least_cost_elements(
        self, at: float, source: str, destinations: tuple[str, ...]
    ) -> set[str]:
        """Every site and link (by name) on a least-cost path from ``source`` to any of
        ``destinations`` over what the faults left at ``at``."""
        if source in self.nodes_down(at):
            return set()
        links = self._usable_links(at)
        neighbours: dict[str, list[tuple[str, int]]] = {}
        for link in links:
            neighbours.setdefault(link.source, []).append((link.target, link.cost))
            neighbours.setdefault(link.target, []).append((link.source, link.cost))
        start = _distances(neighbours, source)
        elements: set[str] = set()
        for destination in destinations:
            if destination not in start:
                continue
            total, end = start[destination], _distances(neighbours, destination)
            elements.update(site for site, cost in start.items() if cost + end[site] == total)
            for link in links:
                for near, far in ((link.source, link.target), (link.target, link.source)):
                    if near in start and start[near] + link.cost + end[far] == total:
                        elements.add(link.name)
        return elements

    def _usable_links(self, at: float) -> list[LinkSpec]:
        down = self.nodes_down(at)
        broken = {w.target for w in self._active(at, LINK_BROKEN)}
        return [
            link
            for link in self.scenario.links
            if link.name not in broken and link.source not in down and link.target not in down
        ]

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


def _at(change: Change) -> float:
    return change.at


def _distances(neighbours: dict[str, list[tuple[str, int]]], source: str) -> dict[str, int]:
    """Least costs from ``source`` (Dijkstra) to every site it reaches."""
    distances = {source: 0}
    todo = [(0, source)]
    while todo:
        cost, site = heapq.heappop(todo)
        if cost > distances.get(site, cost):
            continue
        for peer, step in neighbours.get(site, ()):
            if cost + step < distances.get(peer, cost + step + 1):
                distances[peer] = cost + step
                heapq.heappush(todo, (cost + step, peer))
    return distances
