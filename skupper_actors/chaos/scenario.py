"""A chaos scenario as frozen dataclasses: topology, traffic, faults, invariants.

``load_scenario`` / ``parse_scenario`` (in ``_schema``) build these from YAML; nothing
past that boundary sees a dict.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from skupper_actors.protocol.routing import RoutingSettings

#: routing defaults are RoutingSettings' own
_ROUTING = RoutingSettings()


class ScenarioError(ValueError):
    """A scenario that cannot be run; one ``<source>: <field path>: <what>`` line per problem."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(
            "\n".join(
                f"{source}: {path}: {what}" if path else f"{source}: {what}"
                for path, what in self.problems
            )
        )


class Mode(enum.Enum):
    """How sites are joined: through fault proxies on loopback, or network namespaces."""

    PROXY = "proxy"
    NETNS = "netns"


class Setup(enum.Enum):
    """How sites are declared: one site config file each, or Skupper v2 resources + tokens."""

    CONFIG = "config"
    NAMESPACE = "namespace"


class FaultKind(enum.Enum):
    KILL = "kill"  #: SIGKILL a node; restarted after ``duration`` if given
    RESTART = "restart"  #: SIGTERM a node and start it again at once
    STOP = "stop"  #: SIGSTOP a node (a silent stall), SIGCONT after ``duration``
    CUT = "cut"  #: close the link's connections and refuse new ones
    BLACKHOLE = "blackhole"  #: accept the link's bytes, deliver nothing
    LATENCY = "latency"  #: delay every chunk on the link by ``latency``
    BANDWIDTH = "bandwidth"  #: cap the link at ``rate`` bytes/s each way
    FLAP = "flap"  #: alternate cut and pass every ``period``
    FLIP_BITS = "flip_bits"  #: flip a bit about every ``every`` bytes (TLS must reject)
    CORRUPT_AFTER_TLS = "corrupt_after_tls"  #: test-only: corrupt payload on a plaintext link
    GARBAGE = "garbage"  #: send malformed input to a node's inter-router port
    REPLAY_TOKEN = "replay_token"  #: redeem an already used token again (needs the token API)


NODE_FAULTS = frozenset(
    {FaultKind.KILL, FaultKind.RESTART, FaultKind.STOP, FaultKind.GARBAGE, FaultKind.REPLAY_TOKEN}
)
LINK_FAULTS = frozenset(set(FaultKind) - NODE_FAULTS)
#: link faults that namespace mode can inject (it has no proxy in the path)
NETNS_LINK_FAULTS = frozenset({FaultKind.CUT, FaultKind.FLAP})
#: link faults after which the link cannot carry traffic until the fault ends
BREAKING_FAULTS = frozenset(
    {FaultKind.CUT, FaultKind.BLACKHOLE, FaultKind.FLAP, FaultKind.FLIP_BITS}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteSpec:
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSpec:
    """``source`` dials ``target``; the link is named ``source-target``."""

    source: str
    target: str
    cost: int = 1

    @property
    def name(self) -> str:
        return f"{self.source}-{self.target}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSpec:
    """A routing key served by harness servers at ``connectors``, reached from ``listeners``."""

    name: str
    connectors: tuple[str, ...]
    listeners: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SizeRange:
    """Bytes, drawn uniformly from [low, high] by the seeded generator."""

    low: int
    high: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamTraffic:
    """``concurrency`` long TCP streams at all times, both directions checked byte by byte."""

    service: str
    concurrency: int
    up: SizeRange
    down: SizeRange


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTraffic:
    """Request/response exchanges at ``rate`` per second over ``connections`` connections."""

    service: str
    rate: float
    connections: int = 1
    request: SizeRange = SizeRange(low=64, high=4096)
    response: SizeRange = SizeRange(low=64, high=16384)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionTraffic:
    """New connections at ``rate`` per second: connect, one small exchange, close."""

    service: str
    rate: float
    size: int = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class TrafficSpec:
    streams: tuple[StreamTraffic, ...] = ()
    requests: tuple[RequestTraffic, ...] = ()
    connections: tuple[ConnectionTraffic, ...] = ()
    #: a stream with no progress for this long is abandoned (its client sees a timeout)
    idle_timeout: float = 20.0
    connect_timeout: float = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpec:
    """One fault at a stated time (seconds after traffic starts)."""

    at: float
    kind: FaultKind
    target: str  #: a site name, or a link name ``source-target``
    duration: float | None = None  #: None: until the end of the run (kill: no restart)
    latency: float | None = None
    rate: int | None = None
    period: float | None = None
    every: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomFaults:
    """A seeded random schedule: one fault after another, ``gap`` apart."""

    kinds: tuple[FaultKind, ...]
    start: float = 5.0
    gap: tuple[float, float] = (5.0, 10.0)
    duration: tuple[float, float] = (2.0, 6.0)
    sites: tuple[str, ...] = ()  #: node-fault targets; empty: every site
    links: tuple[str, ...] = ()  #: link-fault targets; empty: every link
    latency: tuple[float, float] = (0.05, 0.2)
    rate: tuple[int, int] = (256 * 1024, 2 * 1024 * 1024)
    period: tuple[float, float] = (0.5, 2.0)
    every: tuple[int, int] = (16 * 1024, 256 * 1024)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingSpec:
    hello_interval: float = _ROUTING.hello_interval
    hello_max_age: float = _ROUTING.hello_max_age


@dataclass(frozen=True, slots=True, kw_only=True)
class InvariantSpec:
    """The bounds the invariants check."""

    #: after a fault (or its end), new connections succeed within this long if a path remains
    recovery_within: float = 10.0
    memory_limit_mib: int = 256
    #: a node's resident size may grow at most this much after warm-up (median to median)
    memory_growth_mib: int = 48
    #: at least this many streams must complete intact, so a run cannot pass by doing nothing
    min_intact_streams: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str
    sites: tuple[SiteSpec, ...]
    links: tuple[LinkSpec, ...] = ()
    services: tuple[ServiceSpec, ...] = ()
    traffic: TrafficSpec = field(default_factory=TrafficSpec)
    faults: tuple[FaultSpec, ...] = ()
    random_faults: RandomFaults | None = None
    invariants: InvariantSpec = field(default_factory=InvariantSpec)
    routing: RoutingSpec = field(default_factory=RoutingSpec)
    duration: float = 60.0
    seed: int = 0
    mode: Mode = Mode.PROXY
    setup: Setup = Setup.CONFIG
    #: plaintext inter-router links everywhere (test-only: needed by corrupt_after_tls)
    plaintext: bool = False
    #: seconds to let in-flight streams finish after the run before they are abandoned
    drain: float = 5.0
    description: str = ""

    def site_names(self) -> tuple[str, ...]:
        return tuple(site.name for site in self.sites)

    def link(self, name: str) -> LinkSpec:
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(name)

    def service(self, name: str) -> ServiceSpec:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)
