"""What the router's actors share: identity, TLS contexts, timings, the registry."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from skupper_actors.kernel import ActorRef, Registry

PROTOCOL_VERSION = 1
CONTROL_ADDRESS = "_skupper/router/control"
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

    @property
    def tls(self) -> bool:
        return self.server_tls is not None

    def lookup(self, name: str) -> ActorRef | None:
        return self.registry.lookup(name)
