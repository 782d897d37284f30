"""RoutingActor: the router's link-state database, next hops and address bindings.

A thin shell over :class:`~skupper_actors.protocol.routing.RoutingEngine`: it feeds the
engine what the link actors report, performs the effects the engine returns (control
messages to links, dropping silent neighbours), and answers snapshots for management.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skupper_actors.kernel import Actor, ActorDead, ActorRef, Cancellable, MailboxFull
from skupper_actors.management import AddressInfo, LinkInfo, PeerLink, RouteInfo, SiteView
from skupper_actors.protocol import routing as rt
from skupper_actors.protocol.addresses import LISTENER_PREFIX
from skupper_actors.protocol.forwarding import UNROUTED_BYTES, UNROUTED_LIMIT

from ..health import NodeHealth
from ..messages import (
    BindAddress,
    ControlReceived,
    DropConnection,
    GetNetworkView,
    GetRoutingSnapshot,
    LinkConnected,
    LinkDisconnected,
    LinkForgotten,
    LinkStatusChanged,
    SendControlOnLink,
    SetLinkCost,
    Tick,
    UnbindAddress,
)
from ..tcp.dataplane import DataPlane
from .linksession import LIMIT_CONDITION


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingSnapshot:
    router_id: str
    instance: int
    links: tuple[LinkInfo, ...]
    routes: tuple[RouteInfo, ...]
    addresses: tuple[AddressInfo, ...]
    network: tuple[SiteView, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkView:
    """The reachable part of the network, bounded: at most ``max_sites`` sites and
    ``max_services`` routing keys per kind and site (``omitted`` counts the rest)."""

    version: int
    sites: tuple[SiteView, ...]
    omitted_sites: int
    omitted_services: int


class RoutingActor(Actor):
    """Owns the routing engine; the only writer of the routing state."""

    mailbox_size = 10_000

    def __init__(
        self,
        router_id: str,
        instance: int,
        settings: rt.RoutingSettings,
        addresses: tuple[str, ...] = (),
        dataplane: DataPlane | None = None,
        health: NodeHealth | None = None,
    ) -> None:
        super().__init__()
        self.dataplane = dataplane or DataPlane(router_id)
        self.health = health or NodeHealth()
        # routing keys served per router, kept up to date from the address changes, so
        # the network view never walks every address (listener keys, connector keys)
        self._served: dict[str, tuple[set[str], set[str]]] = {}
        self._service_routers: dict[str, frozenset[str]] = {}
        self.network_version = 0
        self.initial_addresses = addresses
        self.router_id = router_id
        self.instance = instance
        self.settings = settings
        self.engine = rt.RoutingEngine(router_id, instance, settings)
        self.links: dict[str, ActorRef] = {}  # link id -> LinkActor
        self.peers: dict[str, str] = {}  # link id -> peer router id
        self.link_status: dict[str, LinkInfo] = {}  # link name -> latest status
        self.local_addresses: set[str] = set()
        self._timer: Cancellable | None = None
        self._due = float("inf")

    def on_start(self) -> None:
        self.dataplane.on_unrouted_drop = self._unrouted_drop
        now = self.clock.now()
        for address in self.initial_addresses:
            self.local_addresses.add(address)
            self._perform(self.engine.add_local_address(address, now))
        self._perform(self.engine.tick(now))
        self._schedule()

    def _unrouted_drop(self, router: str, dropped: int) -> None:
        """A router message that waited too long in line for a route was dropped."""
        if dropped == 1 or dropped % 1000 == 0:
            self.log.warning(
                "router_message_dropped",
                router=router,
                dropped=dropped,
                error=f"no route to router {router}: router messages waiting for routes "
                f"passed {UNROUTED_LIMIT} or {UNROUTED_BYTES >> 20} MiB; the oldest was dropped",
            )

    def on_receive(self, message: object) -> Any:
        reply = self._handle(message)
        if self.engine.next_deadline() < self._due:
            self._schedule()  # the engine has work due sooner (a batch of changes to flood)
        return reply

    def _handle(self, message: object) -> Any:
        now = self.clock.now()
        if isinstance(message, ControlReceived):
            if message.link_id in self.links:
                self._perform(self.engine.receive(message.link_id, message.message, now))
        elif isinstance(message, Tick):
            self._timer = None
            ports = self.dataplane.ports
            for link_id in self.links:
                # bytes read from a neighbour keep it alive while its HELLO waits behind
                # them (a busy node reading a backlog in order)
                last_input = getattr(ports.get(link_id), "last_input", 0.0)
                if last_input:
                    self.engine.link_active(link_id, last_input)
            self._perform(self.engine.tick(now))
            self._schedule()
            return None
        elif isinstance(message, LinkConnected):
            self.links[message.link_id] = message.link
            self.peers[message.link_id] = message.peer
            self.log.info("link_up", link_id=message.link_id, peer=message.peer, cost=message.cost)
            self._perform(self.engine.link_opened(message.link_id, message.cost, now))
        elif isinstance(message, LinkDisconnected):
            if self.links.pop(message.link_id, None) is not None:
                peer = self.peers.pop(message.link_id, None)
                self.log.info(
                    "link_down", link_id=message.link_id, peer=peer, reason=message.reason
                )
                self._perform(self.engine.link_closed(message.link_id, now))
        elif isinstance(message, SetLinkCost):
            if message.link_id in self.links:
                self._perform(self.engine.link_cost_changed(message.link_id, message.cost, now))
        elif isinstance(message, LinkStatusChanged):
            self.link_status[message.info.name] = message.info
        elif isinstance(message, LinkForgotten):
            self.link_status.pop(message.name, None)
        elif isinstance(message, BindAddress):
            self.local_addresses.add(message.address)
            self._perform(self.engine.add_local_address(message.address, now))
        elif isinstance(message, UnbindAddress):
            self.local_addresses.discard(message.address)
            self._perform(self.engine.remove_local_address(message.address, now))
        elif isinstance(message, GetRoutingSnapshot):
            return self.snapshot(addresses=message.addresses, network=message.network)
        elif isinstance(message, GetNetworkView):
            if message.version == self.network_version:
                return None
            return self.bounded_view(message.max_sites, message.max_services)
        else:
            return super().on_receive(message)
        return None

    def on_stop(self, reason: object) -> None:
        if self._timer is not None:
            self._timer.cancel()

    # -- effects ---------------------------------------------------------------------
    def _perform(self, effects: list[rt.Effect]) -> None:
        for effect in effects:
            if isinstance(effect, rt.SendControl):
                message = SendControlOnLink(link_id=effect.link_id, message=effect.message)
                self._send(effect.link_id, message)
            elif isinstance(effect, rt.NeighbourLost):
                level = "info" if effect.reason == "link-closed" else "warning"
                getattr(self.log, level)(
                    "neighbour_lost",
                    link_id=effect.link_id,
                    peer=effect.router_id,
                    reason=effect.reason,
                )
                if effect.reason != "link-closed":
                    self._send(
                        effect.link_id, DropConnection(link_id=effect.link_id, reason=effect.reason)
                    )
            elif isinstance(effect, rt.NeighbourAdded):
                self.log.info("neighbour_added", link_id=effect.link_id, peer=effect.router_id)
            elif isinstance(effect, rt.LimitExceeded):
                total = self.health.count(effect.limit)
                self.log.warning(
                    "routing_limit_exceeded",
                    link_id=effect.link_id,
                    origin=effect.origin,
                    limit=effect.limit,
                    error=effect.detail,
                    disconnect=effect.neighbour,
                    refused_on_node=total,
                )
                if effect.neighbour:
                    self._send(
                        effect.link_id,
                        DropConnection(
                            link_id=effect.link_id, reason=effect.detail, condition=LIMIT_CONDITION
                        ),
                    )
            elif isinstance(effect, rt.RoutesChanged):
                self.network_version += 1
                self.dataplane.set_routes(dict(effect.table))
                self.log.info("routes_changed", routes=self._route_summary(effect.table))
            elif isinstance(effect, rt.RouterAdded):
                self.log.info("router_added", router=effect.router_id)
            elif isinstance(effect, rt.RouterLost):
                self.log.info("router_lost", router=effect.router_id)
            elif isinstance(effect, rt.AddressesChanged):
                self.dataplane.set_address_routers(effect.address, effect.routers)
                if not effect.address.startswith("_") or effect.address.startswith(
                    LISTENER_PREFIX
                ):
                    self._service_changed(effect.address, effect.routers)
                self.log.debug(
                    "address_changed", address=effect.address, routers=sorted(effect.routers)
                )
            elif isinstance(effect, rt.ProtocolRefused):
                self.log.warning(
                    "control_message_refused", link_id=effect.link_id, reason=effect.reason
                )

    def _send(self, link_id: str, message: object) -> None:
        ref = self.links.get(link_id)
        if ref is None:
            return
        try:
            ref.tell(message)
        except (MailboxFull, ActorDead) as error:
            # The routing protocol repeats itself (HELLO, RA); a dropped message is recovered.
            self.log.warning("control_message_dropped", link_id=link_id, error=str(error))

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._due = self.engine.next_deadline()
        self._timer = self.send_after(max(0.0, self._due - self.clock.now()), Tick())

    # -- queries -----------------------------------------------------------------------
    def _route_summary(self, table: Mapping[str, rt.Route]) -> dict[str, str]:
        return {
            router: f"cost {route.cost} via {','.join(self._hop_names(route.next_hops))}"
            for router, route in sorted(table.items())
        }

    def _hop_names(self, link_ids: tuple[str, ...]) -> list[str]:
        return sorted({self.peers.get(link_id, link_id) for link_id in link_ids})

    def _service_changed(self, address: str, routers: frozenset[str]) -> None:
        self.network_version += 1
        old = self._service_routers.get(address, frozenset())
        if routers:
            self._service_routers[address] = routers
        else:
            self._service_routers.pop(address, None)
        listener = address.startswith(LISTENER_PREFIX)
        key = address[len(LISTENER_PREFIX) :] if listener else address
        for router in old - routers:
            served = self._served.get(router)
            if served is not None:
                served[0 if listener else 1].discard(key)
                if not served[0] and not served[1]:
                    del self._served[router]
        for router in routers - old:
            self._served.setdefault(router, (set(), set()))[0 if listener else 1].add(key)

    def bounded_view(self, max_sites: int, max_services: int) -> NetworkView:
        """Reachable routers with their links and services; costs O(sites x services
        listed), plus one pass over a router's keys when it serves more than listed."""
        routes = self.engine.routes()
        database = self.engine.link_state_database()
        reachable = sorted(r for r in database if r == self.router_id or r in routes)
        omitted_services = 0
        sites = []
        for router in reachable[:max_sites]:
            listeners, connectors = self._served.get(router, ((), ()))
            picked = []
            for keys in (listeners, connectors):
                if len(keys) > max_services:
                    omitted_services += len(keys) - max_services
                    picked.append(tuple(heapq.nsmallest(max_services, keys)))
                else:
                    picked.append(tuple(sorted(keys)))
            state = database[router]
            sites.append(
                SiteView(
                    router=router,
                    reachable=True,
                    links=tuple(PeerLink(peer=p, cost=c) for p, c in sorted(state.ls.items())),
                    listeners=picked[0],
                    connectors=picked[1],
                )
            )
        return NetworkView(
            version=self.network_version,
            sites=tuple(sites),
            omitted_sites=max(0, len(reachable) - max_sites),
            omitted_services=omitted_services,
        )

    def snapshot(self, *, addresses: bool = True, network: bool = True) -> RoutingSnapshot:
        routes = tuple(
            RouteInfo(router=r, cost=route.cost, next_hops=tuple(self._hop_names(route.next_hops)))
            for r, route in sorted(self.engine.routes().items())
        )
        listed: tuple[AddressInfo, ...] = ()
        if addresses:
            names = set(self.engine.addresses()) | self.local_addresses
            listed = tuple(
                AddressInfo(
                    address=address,
                    local=address in self.local_addresses,
                    routers=tuple(sorted(self.engine.address_routers(address))),
                )
                for address in sorted(names)
            )
        links = tuple(self.link_status[name] for name in sorted(self.link_status))
        return RoutingSnapshot(
            network=self.network_view() if network else (),
            router_id=self.router_id,
            instance=self.instance,
            links=links,
            routes=routes,
            addresses=listed,
        )

    def network_view(self) -> tuple[SiteView, ...]:
        """Every router in the link-state database with its links and services."""
        reachable = set(self.engine.routes()) | {self.router_id}
        listeners: dict[str, set[str]] = {}
        connectors: dict[str, set[str]] = {}
        for address, routers in self.engine.addresses().items():
            if address.startswith(LISTENER_PREFIX):
                for router in routers:
                    listeners.setdefault(router, set()).add(address[len(LISTENER_PREFIX) :])
            elif not address.startswith("_"):
                for router in routers:
                    connectors.setdefault(router, set()).add(address)
        views = []
        for router, state in sorted(self.engine.link_state_database().items()):
            views.append(
                SiteView(
                    router=router,
                    reachable=router in reachable,
                    links=tuple(PeerLink(peer=p, cost=c) for p, c in sorted(state.ls.items())),
                    listeners=tuple(sorted(listeners.get(router, ()))),
                    connectors=tuple(sorted(connectors.get(router, ()))),
                )
            )
        return tuple(views)
