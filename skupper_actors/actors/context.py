"""What the router's actors share: identity, TLS contexts, timings, the registry."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from skupper_actors.kernel import ActorRef, Registry

from .dataplane import DataPlane
from .memory import MemoryCounters

PROTOCOL_VERSION = 1
CONTROL_ADDRESS = "_skupper/router/control"
MESSAGE_ADDRESS = "_skupper/router/messages"
ROUTER_PREFIX = "_skupper/router/"
# AMQP open properties by which routers tell each other who they are.
PROP_ROUTER_ID = "skupper.router-id"
PROP_INSTANCE = "skupper.instance"
PROP_VERSION = "skupper.pv"
PROP_COST = "skupper.cost"


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkTimings:
    connect_timeout: float = 5.0
    handshake_timeout: float = 5.0  # TLS handshake, then AMQP open
    backoff_initial: float = 0.2
    backoff_max: float = 5.0
    backoff_jitter: float = 0.25  # +-25%


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterContext:
    router_id: str
    instance: int
    registry: Registry
    server_tls: ssl.SSLContext | None  # None: plaintext (explicit opt-in)
    client_tls: ssl.SSLContext | None
    timings: LinkTimings = field(default_factory=LinkTimings)
    #: bytes a TCP stream may have unacknowledged per direction (docs/limits.md)
    tcp_window: int = 1 << 20
    dataplane: DataPlane = field(init=False)
    memory: MemoryCounters = field(default_factory=MemoryCounters)

    def __post_init__(self) -> None:
        dataplane = DataPlane(self.router_id)
        dataplane._instance = self.instance
        object.__setattr__(self, "dataplane", dataplane)

    @property
    def tls(self) -> bool:
        return self.server_tls is not None

    def lookup(self, name: str) -> ActorRef | None:
        return self.registry.lookup(name)
