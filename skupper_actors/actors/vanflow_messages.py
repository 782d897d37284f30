"""What the node tells its VanflowActor (actors/vanflow.py): typed facts about adaptors,
connections and logs, and ``tell_vanflow``, which never fails the teller.

The facts told once or more per connection are read-only by convention rather than
frozen, as the AMQP events are (protocol/amqp/events.py): a frozen dataclass's
constructor sets each field through ``object.__setattr__``, 2.6 µs against 1 µs here,
three times per connection at each end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from skupper_actors.kernel import ActorName, KernelError
from skupper_actors.protocol.vanflow import (
    Record,
)

from .context import RouterContext


# -- what the node tells it ----------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptorStarted:
    kind: str  # listener | connector
    name: str
    routing_key: str
    host: str
    port: int
    #: connections opened so far (flowCountL4), read once a second
    opened: Callable[[], int] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AnnounceToVanflow:
    """To a TCP listener or connector: tell the VanflowActor ``AdaptorStarted`` again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptorStopped:
    kind: str
    name: str


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class BiflowOpened:
    """A listener's client connected: its BIFLOW_TPORT begins."""

    identity: str
    listener: str
    source_host: str
    source_port: int
    at: float
    #: (client -> server, server -> client) octets so far, read once a second
    octets: Callable[[], tuple[int, int]]


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class FirstByteBack:
    """The first byte came back: at the listener side, the latency of the biflow; at
    the connector side, the server's (processLatency)."""

    identity: str
    latency: float  # seconds
    connector_side: bool = False


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class BiflowClosed:
    identity: str
    at: float
    octets: int
    octets_reverse: int
    error: str | None = None


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class CoRecordOpened:
    """The connector side of biflow ``identity`` (made by the listener's router)."""

    identity: str
    connector: str
    proxy_host: str | None
    proxy_port: int | None
    trace: str
    at: float


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class CoRecordClosed:
    identity: str
    at: float
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord:
    severity: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FlushRequested:
    """A collector's FLUSH (to ``sfe.<id>``): send every live record in full."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CoRecordsReceived:
    """Another router's co-record parts of our biflows (on ``vfcr.<id>``), as decoded
    from a RECORD message's body."""

    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainVanflow:
    """Management's read of the outbox: the encoded messages since the last read;
    ``flush``: the emitter re-sends every live record in full for the next read."""

    flush: bool = False


VanflowMessage = (
    AdaptorStarted
    | AdaptorStopped
    | BiflowOpened
    | FirstByteBack
    | BiflowClosed
    | CoRecordOpened
    | CoRecordClosed
    | LogRecord
    | FlushRequested
    | CoRecordsReceived
    | DrainVanflow
)
VANFLOW: ActorName[VanflowMessage] = ActorName("vanflow")


#: facts about one connection: they wait in the actor's mailbox for its next tick (or
#: any other message) rather than wake it, three times per connection (``tell_lazy``)
_LAZY = frozenset({BiflowOpened, FirstByteBack, BiflowClosed, CoRecordOpened, CoRecordClosed})


def tell_vanflow(ctx: RouterContext, message: VanflowMessage) -> None:
    """Tell the node's VanflowActor, if it runs; a full mailbox loses the fact (counted
    there as ``vanflow_events_lost``), never the connection. A connection's facts are
    read at the actor's next wake-up (its tick, 0.2 s), in order with everything else."""
    ref = ctx.registry.lookup(VANFLOW)
    if ref is not None:
        try:
            if type(message) in _LAZY:
                ref.tell_lazy(message)
            else:
                ref.tell(message)
        except KernelError:
            ctx.health.count("vanflow_events_lost")
