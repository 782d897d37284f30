"""What routing reports: the routing table, and the reachable routers serving each address."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from .database import RouterDatabase
from .effects import AddressesChanged, Effect, Route, RouterAdded, RouterLost, RoutesChanged
from .paths import shortest_paths


class RoutingViews:
    """The last routing table and address view reported, and the changes to report next."""

    def __init__(self, own_id: str, max_address_changes: int | None = None) -> None:
        self.own_id = own_id
        self.routes: Mapping[str, Route] = {}
        self.addresses: dict[str, frozenset[str]] = {}
        # addresses touched but not yet looked at: at most max_address_changes are
        # looked at per update, so a burst of updates is spread over several ticks
        self.pending: set[str] = set()
        self.max_address_changes = max_address_changes

    def update(
        self,
        db: RouterDatabase,
        first_hop_links: Mapping[str, tuple[str, ...]] | None,
        changed_addresses: set[str],
    ) -> list[Effect]:
        """Recompute routes (unless ``first_hop_links`` is None) and the addresses touched.

        An address is touched when its routers changed or one of them came or went.
        Past ``max_address_changes`` touched addresses, the rest stay ``pending`` for the
        next update.
        """
        effects: list[Effect] = []
        if first_hop_links is not None:
            routes = shortest_paths(self.own_id, db.lsdb, first_hop_links)
            if routes != self.routes:
                old, self.routes = self.routes, routes
                effects.append(RoutesChanged(table=routes))
                for router_id in sorted(old.keys() - routes.keys()):
                    effects.append(RouterLost(router_id=router_id))
                    changed_addresses.update(db.addresses_of(router_id))
                for router_id in sorted(routes.keys() - old.keys()):
                    effects.append(RouterAdded(router_id=router_id))
                    changed_addresses.update(db.addresses_of(router_id))
        pending = self.pending
        pending |= changed_addresses
        limit = self.max_address_changes
        if limit is None or len(pending) <= limit:
            batch = sorted(pending)
            pending.clear()
        else:
            batch = sorted(itertools.islice(pending, limit))
            pending.difference_update(batch)
        for address in batch:
            routers = frozenset(
                router_id
                for router_id in db.address_index.get(address, ())
                if router_id == self.own_id or router_id in self.routes
            )
            if routers == self.addresses.get(address, frozenset()):
                continue
            if routers:
                self.addresses[address] = routers
            else:
                del self.addresses[address]
            effects.append(AddressesChanged(address=address, routers=routers))
        return effects
