"""Settings, the effects the routing engine returns, and its query results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .messages import ControlMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingSettings:
    """Timers in seconds, after skupper-router's defaults."""

    hello_interval: float = 1.0
    hello_max_age: float = 3.0
    ra_interval: float = 30.0
    ra_interval_flux: float = 4.0  # next RA after our own link state or addresses change
    remote_ls_max_age: float = 60.0
    # Shortest paths run at once after a quiet spell, then at most once per spf_hold, so
    # a flood of updates costs one computation per hold rather than one per message.
    spf_hold: float = 0.05
    initial_seq: int = 0  # first ls/mobile/RA sequence number (tests start near the wrap)
    # What one router may advertise (docs/limits-links.md): past either limit an update
    # is refused, and a neighbour that originated it is disconnected.
    max_addresses_per_router: int = 50_000
    max_addresses_per_update: int = 50_000
    # Addresses whose routers are recomputed per tick; the rest wait for the next tick, so
    # a burst of 50,000 new addresses never holds the event loop for long in one piece.
    max_address_changes_per_tick: int = 250

    def __post_init__(self) -> None:
        if min(
            self.max_addresses_per_router,
            self.max_addresses_per_update,
            self.max_address_changes_per_tick,
        ) < 1:
            raise ValueError("address limits must be at least 1")
        if not 0 < self.hello_interval < self.hello_max_age:
            raise ValueError("need 0 < hello_interval < hello_max_age")
        if not 0 < self.ra_interval_flux <= self.ra_interval < self.remote_ls_max_age:
            raise ValueError("need 0 < ra_interval_flux <= ra_interval < remote_ls_max_age")
        if self.spf_hold < 0:
            raise ValueError("spf_hold must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """How to reach a router: total cost and every equal-cost first-hop link, sorted."""

    router_id: str
    cost: int
    next_hops: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Neighbour:
    """A router heard on one link."""

    link_id: str
    router_id: str
    instance: int
    cost: int
    two_way: bool  # it lists us in its HELLO, so the link carries routes


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkState:
    """One router's entry in the link-state database."""

    router_id: str
    instance: int
    ls_seq: int
    ls: Mapping[str, int]


# --- effects ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SendControl:
    """Send ``message`` to the neighbour on ``link_id``."""

    link_id: str
    message: ControlMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class NeighbourAdded:
    """The link became two-way: it now carries routes."""

    link_id: str
    router_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NeighbourLost:
    """The neighbour on ``link_id`` is gone; after a HELLO timeout the actor should close it.

    ``router_id`` is None when nothing was ever heard on the link.
    """

    link_id: str
    router_id: str | None
    # "link-closed", "hello-timeout", "no-hello", "router-restarted", "router-id-changed"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutesChanged:
    """The routing table changed; ``table`` holds every reachable router but ourselves."""

    table: Mapping[str, Route]


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterAdded:
    router_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterLost:
    router_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressesChanged:
    """The reachable routers (ourselves included) serving ``address`` changed."""

    address: str
    routers: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolRefused:
    """A control message was refused and changed nothing; the actor logs ``reason``."""

    link_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitExceeded:
    """An update from ``origin`` passed a limit and was refused; it changed nothing.

    ``neighbour`` is True when the router on ``link_id`` originated it itself: the actor
    disconnects that link (a relayed update is only dropped).
    """

    link_id: str
    origin: str
    limit: str  # the setting's name, e.g. "max-addresses-per-router"
    detail: str
    neighbour: bool


Effect = (
    SendControl
    | NeighbourAdded
    | NeighbourLost
    | RoutesChanged
    | RouterAdded
    | RouterLost
    | AddressesChanged
    | ProtocolRefused
    | LimitExceeded
)
