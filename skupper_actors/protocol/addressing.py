"""Address bindings and the choice of destination for each new connection or request.

Local destinations are what this router serves itself (connectors, with an optional
capacity); remote ones are other routers serving the address, at their path cost. The
routing engine's ``AddressesChanged`` and ``RoutesChanged`` feed the remote side.

``select`` is called per new connection, so candidates are kept sorted when bindings or
routes change and a selection is one pass that stops early: remote candidates are
sorted by cost, and none costing more than the best score so far can win.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from .addresses import MULTICAST_PREFIX

_NOTHING_OUTSTANDING: Mapping[Destination, int] = MappingProxyType({})


class DistributionMode(StrEnum):
    BALANCED = "balanced"  # local first, then fewest outstanding + path cost
    CLOSEST = "closest"  # lowest cost; equal costs take turns
    MULTICAST = "multicast"  # every destination


class Destination(NamedTuple):
    """Where a connection can go: a local connector, or another router as a whole.

    A named tuple, not a dataclass: it keys the outstanding counts, looked up several
    times per connection, and a tuple hashes in C.
    """

    router_id: str
    connector_id: str | None = None  # set for a destination on this router

    @property
    def local(self) -> bool:
        return self.connector_id is not None


@dataclass(slots=True)
class _Address:
    local: list[tuple[Destination, int | None]] = field(default_factory=list)  # by connector id
    remote_routers: frozenset[str] = frozenset()
    remote: tuple[tuple[Destination, int], ...] = ()  # reachable, by (cost, router id)
    costs_version: int = -1  # which route costs ``remote`` was built from
    turn: int = 0  # round-robin position for CLOSEST


class AddressTable:
    """Which destinations serve each address, and the choice among them."""

    def __init__(self, router_id: str) -> None:
        self.router_id = router_id
        self._addresses: dict[str, _Address] = {}
        self._costs: Mapping[str, int] = {}
        self._costs_version = 0

    # --- bindings -------------------------------------------------------------------

    def bind_local(self, address: str, connector_id: str, capacity: int | None = None) -> bool:
        """Serve ``address`` with a local connector; True if it is the address's first.

        ``capacity`` bounds the outstanding connections it takes (None: unbounded).
        """
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be >= 1 or None, not {capacity}")
        entry = self._addresses.setdefault(address, _Address())
        destination = Destination(router_id=self.router_id, connector_id=connector_id)
        first = not entry.local
        entry.local = sorted(
            [(d, c) for d, c in entry.local if d != destination] + [(destination, capacity)],
            key=lambda item: item[0].connector_id or "",
        )
        return first

    def unbind_local(self, address: str, connector_id: str) -> bool:
        """Stop serving ``address`` with a connector; True if none is left here."""
        entry = self._addresses.get(address)
        if entry is None or not entry.local:
            return False
        entry.local = [(d, c) for d, c in entry.local if d.connector_id != connector_id]
        self._drop_if_empty(address, entry)
        return not entry.local

    def set_remote_routers(self, address: str, routers: Iterable[str]) -> None:
        """The routers serving ``address`` (from ``AddressesChanged``); our own id is ignored."""
        remote = frozenset(routers) - {self.router_id}
        entry = self._addresses.setdefault(address, _Address())
        if remote != entry.remote_routers:
            entry.remote_routers = remote
            entry.costs_version = -1
        self._drop_if_empty(address, entry)

    def set_route_costs(self, costs: Mapping[str, int]) -> None:
        """Path cost per reachable router (from ``RoutesChanged``); others are skipped."""
        self._costs = dict(costs)
        self._costs_version += 1

    # --- queries --------------------------------------------------------------------

    def addresses(self) -> frozenset[str]:
        return frozenset(self._addresses)

    def local_addresses(self) -> frozenset[str]:
        return frozenset(a for a, entry in self._addresses.items() if entry.local)

    @staticmethod
    def mode_for(address: str) -> DistributionMode:
        """The default mode: multicast for ``mc/`` addresses, balanced otherwise."""
        if address.startswith(MULTICAST_PREFIX):
            return DistributionMode.MULTICAST
        return DistributionMode.BALANCED

    def destinations(self, address: str) -> tuple[Destination, ...]:
        """Every destination for ``address``: local ones, then reachable routers by cost."""
        entry = self._addresses.get(address)
        if entry is None:
            return ()
        return tuple(d for d, _ in entry.local) + tuple(d for d, _ in self._remote(entry))

    def cost(self, destination: Destination) -> int | None:
        """Path cost to a destination (0 when local), None when unreachable."""
        if destination.local:
            return 0
        return self._costs.get(destination.router_id)

    def select(
        self,
        address: str,
        mode: DistributionMode | None = None,
        outstanding: Mapping[Destination, int] = _NOTHING_OUTSTANDING,
        exclude: frozenset[str] = frozenset(),
    ) -> Destination | None:
        """One destination for a new connection, or None if none can take it.

        ``outstanding`` counts open connections per destination. BALANCED takes the
        local destination with fewest outstanding, else the remote with the lowest
        outstanding + cost; CLOSEST takes turns among the lowest-cost ones. Either skips
        a local destination at its capacity; ties go to the first in sorted order.
        For a multicast address use ``select_all``. Routers in ``exclude`` (this one
        included, for its local destinations) are skipped: they refused this connection.
        """
        mode = mode or self.mode_for(address)
        entry = self._addresses.get(address)
        if mode is DistributionMode.MULTICAST:
            raise ValueError(f"{address!r} is multicast: use select_all()")
        if entry is None:
            return None
        if mode is DistributionMode.CLOSEST:
            return self._closest(entry, outstanding, exclude)
        return self._balanced(entry, outstanding, exclude)

    def select_all(self, address: str) -> tuple[Destination, ...]:
        """Every destination, for multicast: local ones first, then routers by cost."""
        return self.destinations(address)

    # --- helpers --------------------------------------------------------------------

    def _balanced(
        self, entry: _Address, outstanding: Mapping[Destination, int], exclude: frozenset[str]
    ) -> Destination | None:
        best: Destination | None = None
        best_score = 0
        local = entry.local if self.router_id not in exclude else []
        for destination, capacity in local:
            load = outstanding.get(destination, 0)
            if capacity is not None and load >= capacity:
                continue
            if best is None or load < best_score:
                best, best_score = destination, load
        if best is not None:
            return best
        for destination, cost in self._remote(entry):
            if best is not None and cost >= best_score:
                break  # sorted by cost, and a score is never below its cost
            if destination.router_id in exclude:
                continue
            score = outstanding.get(destination, 0) + cost
            if best is None or score < best_score:
                best, best_score = destination, score
        return best

    def _closest(
        self, entry: _Address, outstanding: Mapping[Destination, int], exclude: frozenset[str]
    ) -> Destination | None:
        candidates = [
            destination
            for destination, capacity in entry.local
            if (capacity is None or outstanding.get(destination, 0) < capacity)
            and self.router_id not in exclude
        ]
        if not candidates:
            remote = [(d, c) for d, c in self._remote(entry) if d.router_id not in exclude]
            candidates = [d for d, cost in remote if cost == remote[0][1]] if remote else []
        if not candidates:
            return None
        choice = candidates[entry.turn % len(candidates)]
        entry.turn += 1
        return choice

    def _remote(self, entry: _Address) -> tuple[tuple[Destination, int], ...]:
        if entry.costs_version != self._costs_version:
            costs = self._costs
            entry.remote = tuple(
                sorted(
                    (
                        (Destination(router_id=r), costs[r])
                        for r in entry.remote_routers
                        if r in costs
                    ),
                    key=lambda item: (item[1], item[0].router_id),
                )
            )
            entry.costs_version = self._costs_version
        return entry.remote

    def _drop_if_empty(self, address: str, entry: _Address) -> None:
        if not entry.local and not entry.remote_routers:
            del self._addresses[address]
