"""What the router's actors share: identity, TLS contexts, timings, the registry."""

from __future__ import annotations

import secrets
import ssl
import string
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from skupper_actors.kernel import ActorName, ActorRef, Registry
from skupper_actors.protocol.messaging import MessageRouter
from skupper_actors.protocol.vanflow import Identities

from .control.memory import MemoryCounters
from .health import NodeHealth
from .tcp.dataplane import DataPlane

M = TypeVar("M")


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkTimings:
    connect_timeout: float = 5.0
    handshake_timeout: float = 5.0  # TLS handshake, then AMQP open
    backoff_initial: float = 0.2
    backoff_max: float = 5.0
    backoff_jitter: float = 0.25  # +-25%


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkLimits:
    """What one inter-router connection may hold (docs/limits-links.md)."""

    #: AMQP links the peer may attach on one connection (its TCP streams, two per
    #: stream crossing it, and the two control links); past it attaches are refused
    max_links_per_connection: int = 32768
    #: the largest AMQP frame this router accepts (offered in its open)
    max_frame_size: int = 1 << 20
    #: entries in one list of a control message (addresses of an update, links of a
    #: link state); a bigger message is refused and its origin, if the peer, cut off
    max_control_entries: int = 50_000
    #: bytes of one non-streamed message (control messages, acknowledgements)
    max_message_size: int = 16 << 20

    def __post_init__(self) -> None:
        if self.max_links_per_connection < 4:
            raise ValueError("max-links-per-connection must be at least 4 (the control links)")
        if not 512 <= self.max_frame_size <= 1 << 24:
            raise ValueError("max-frame-size must be between 512 and 16777216 bytes")
        if self.max_control_entries < 1:
            raise ValueError("max-control-entries must be at least 1")
        if self.max_message_size < 1024:
            raise ValueError("max-message-size must be at least 1024 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterContext:
    router_id: str
    instance: int
    registry: Registry
    server_tls: ssl.SSLContext | None  # None: plaintext (explicit opt-in)
    client_tls: ssl.SSLContext | None
    timings: LinkTimings = field(default_factory=LinkTimings)
    limits: LinkLimits = field(default_factory=LinkLimits)
    dataplane: DataPlane = field(init=False)
    health: NodeHealth = field(init=False)
    #: router id -> {link id: router its certificate is bound to} of the open
    #: connections that claim it (docs/adr/0013)
    router_claims: dict[str, dict[str, str | None]] = field(init=False)
    #: bytes a TCP stream may have unacknowledged per direction (docs/limits.md)
    tcp_window: int = 1 << 20
    memory: MemoryCounters = field(default_factory=MemoryCounters)
    #: vanflow record identities of this run: a random 5-character prefix, as
    #: skupper-router's, so that a restarted node never reuses one
    flow_ids: Identities = field(init=False)
    #: TLS for the AMQP client endpoint: the site's certificate, client certificates optional
    client_endpoint_tls: ssl.SSLContext | None = None
    #: AMQP messaging for clients (protocol/messaging), sharing the data plane
    messages: MessageRouter = field(init=False)

    def __post_init__(self) -> None:
        alphabet = string.ascii_lowercase + string.digits
        prefix = "".join(secrets.choice(alphabet) for _ in range(5))
        object.__setattr__(self, "flow_ids", Identities(prefix))
        dataplane = DataPlane(self.router_id)
        dataplane._instance = self.instance
        object.__setattr__(self, "dataplane", dataplane)
        object.__setattr__(self, "messages", MessageRouter(dataplane))
        object.__setattr__(self, "health", NodeHealth())
        object.__setattr__(self, "router_claims", {})

    @property
    def tls(self) -> bool:
        return self.server_tls is not None

    @overload
    def lookup(self, name: ActorName[M]) -> ActorRef[M] | None: ...

    @overload
    def lookup(self, name: str) -> ActorRef[Any] | None: ...

    def lookup(self, name: str | ActorName[Any]) -> ActorRef[Any] | None:
        return self.registry.lookup(name)
