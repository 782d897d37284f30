"""Typed messages exchanged between the router's actors."""

from __future__ import annotations

from dataclasses import dataclass

from skupper_actors.kernel import ActorRef
from skupper_actors.management import LinkInfo
from skupper_actors.protocol.routing import ControlMessage


# -- link -> routing -----------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class LinkConnected:
    """An inter-router connection finished its handshakes and can carry control traffic."""

    link_id: str
    link: ActorRef
    peer: str
    cost: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkDisconnected:
    link_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlReceived:
    link_id: str
    message: ControlMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkStatusChanged:
    """A link's state for status displays (kept by routing, served by management)."""

    info: LinkInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkForgotten:
    name: str


# -- routing -> link -----------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class SendControlOnLink:
    """Send the routing engine's ``message`` to the neighbour on ``link_id`` (its effect
    ``routing.SendControl``, carried to the link actor that owns the connection)."""

    link_id: str
    message: ControlMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class DropConnection:
    """Close the connection behind ``link_id`` (its neighbour went silent, or passed a limit)."""

    link_id: str
    reason: str
    condition: str = "amqp:connection:forced"


# -- anyone -> routing ---------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class BindAddress:
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnbindAddress:
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetRoutingSnapshot:
    """Routing's state for management; the address and network lists (O(network)) only
    when asked for."""

    addresses: bool = True
    network: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class GetNetworkView:
    """The network as the Site status shows it, unless unchanged since ``version``."""

    version: int = -1
    max_sites: int = 100
    max_services: int = 100  # per site


@dataclass(frozen=True, slots=True, kw_only=True)
class SetLinkCost:
    link_id: str
    cost: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GetAdaptorInfo:
    """Ask a TCP listener or connector for its AdaptorInfo."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SetCost:
    """Tell a LinkActor its link's new cost (it keeps its connection)."""

    cost: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Reload:
    """Reconcile the namespace's resources now (the CLI's reload)."""
