"""Forwarding: the router's per-stream lookup and bookkeeping (sans-IO).

Shared by the link and TCP actors of one node (``actors/tcp/dataplane.py`` re-exports it
as ``DataPlane``).

Data never travels through a mailbox: a link actor's reader (a read callback on the
loop, or its greenlet for large reads) hands each received chunk straight to the
stream's sink (a socket writer at the edge of the VAN, or the next hop's connection at a
transit router). This object is the lookup those readers do per stream (never per
byte): routes and sessions published by the routing and link actors, local connector
bindings, streams waiting for their reverse direction. Calls into it never yield, so
greenlets cannot interleave inside one.
"""

from __future__ import annotations

import itertools
import zlib
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import routing as rt
from .addresses import FORWARD, MESSAGE, OUTCOME_KIND, REVERSE
from .addressing import AddressTable, Destination, DistributionMode
from .tcp.budget import BufferBudget
from .tcp.mapping import StreamHeader

#: router messages held, node-wide, for routers this router has no route to yet, and
#: their size (as ``repr`` measures it), at most: the oldest go first past either (a
#: neighbour's route lags the link it sends over; a peer naming routers that never
#: appear, with messages as large as a link takes, must not grow memory)
UNROUTED_LIMIT = 1024
UNROUTED_BYTES = 4 << 20


class StreamRefused(Exception):
    """A stream cannot be delivered here (no route, no connector, nobody waiting)."""

    def __init__(self, condition: str, description: str) -> None:
        super().__init__(description)
        self.condition = condition
        self.description = description


class Sink(Protocol):
    """Where a stream's bytes go at a router: called from a link's reader (never blocks)."""

    def data(self, chunk: bytes) -> None: ...

    def end(self, aborted: bool, length: int | None = None) -> None:
        """The stream ended: aborted, or cleanly after ``length`` bytes (as its sender
        announced; None when it announced nothing, which never counts as whole)."""


class ReverseSink(Sink, Protocol):
    """An ingress's sink for the reverse direction: its arrival means the far end connected.

    ``refuse(condition, description)`` stops the stream at its sender (the ingress's
    socket cannot take more); None when the stream did not come over a link.
    """

    def started(self, refuse: Callable[[str, str], None] | None = None) -> None: ...


class StreamOwner(Protocol):
    """Told when the link carrying its outgoing stream ends before the stream did."""

    def link_closed(self, condition: str | None, description: str | None) -> None: ...


class OutStream(Protocol):
    """The sending end of one stream: over an inter-router link, or local."""

    def write(self, chunk: bytes) -> None: ...

    def backlog(self) -> int: ...

    def end(self, length: int | None = None) -> None:
        """End the stream cleanly, announcing the ``length`` bytes written to it."""

    def abort(self) -> None: ...


class Port(Protocol):
    """What a live inter-router connection offers the data plane (LinkSession)."""

    link_id: str
    peer: str | None

    def open_stream(self, header: StreamHeader, owner: StreamOwner) -> OutStream: ...

    def send_whole(self, header: StreamHeader, body: bytes) -> None: ...

    def send_router_message(
        self, to_router: str, body: dict[str, Any], ours: bool = False
    ) -> None: ...


@dataclass(slots=True)
class ConnectorBinding:
    """A local connector serving a routing key; ``accept`` takes an arriving stream."""

    name: str
    routing_key: str
    accept: Callable[[StreamHeader, EgressSink], None]
    capacity: int = 1 << 30


class EgressSink:
    """A forward stream arrived for a local connector: hold its bytes until the
    connection actor attaches (the window bounds what can arrive meanwhile; the node's
    buffer budget counts it)."""

    __slots__ = ("_ended", "_length", "_target", "budget", "buffer", "header", "refuse", "via")

    def __init__(
        self,
        header: StreamHeader,
        refuse: Callable[[str, str], None],
        via: Port | None = None,
        budget: BufferBudget | None = None,
    ) -> None:
        self.budget = budget if budget is not None else BufferBudget()
        self.header = header
        self.refuse = refuse
        #: the connection the stream came in on: the way back while routes still converge
        self.via = via
        self.buffer: list[bytes] = []
        self._target: Sink | None = None
        self._ended: bool | None = None
        self._length: int | None = None

    def attach(self, target: Sink) -> None:
        self._target = target
        buffer = self.buffer
        if buffer:
            self.buffer = []
            self.budget.sub(sum(map(len, buffer)))
            for chunk in buffer:
                target.data(chunk)
        if self._ended is not None:
            target.end(self._ended, self._length)

    def data(self, chunk: bytes) -> None:
        if self._target is not None:
            self._target.data(chunk)
        else:
            self.buffer.append(chunk)
            self.budget.add(len(chunk))

    def end(self, aborted: bool, length: int | None = None) -> None:
        if self._target is not None:
            self._target.end(aborted, length)
        else:
            self._ended = aborted
            self._length = length

    def discard(self) -> None:
        """No connection will take this stream: drop what waits and whatever comes."""
        if self._target is None:
            self._target = _DISCARD
            buffer, self.buffer = self.buffer, []
            if buffer:
                self.budget.sub(sum(map(len, buffer)))


class _Discard:
    """A sink that drops everything: a stream nobody will read any more."""

    __slots__ = ()

    def data(self, chunk: bytes) -> None:
        pass

    def end(self, aborted: bool, length: int | None = None) -> None:
        pass


_DISCARD = _Discard()


class LocalStream:
    """A stream whose both ends are on this router: no AMQP, straight to the sink."""

    __slots__ = ("done", "sink")

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.done = False

    def write(self, chunk: bytes) -> None:
        if not self.done:
            self.sink.data(chunk)

    def backlog(self) -> int:
        return 0

    def end(self, length: int | None = None) -> None:
        if not self.done:
            self.done = True
            self.sink.end(False, length)

    def abort(self) -> None:
        if not self.done:
            self.done = True
            self.sink.end(True)


AckHandler = Callable[[str, int], None]
ACK_KIND = "ack"


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """The far end wrote a stream's bytes up to ``offset`` to its socket.

    Travels hop by hop, back along the links the acknowledged stream crossed: at each
    router, a message addressed to the next one (body ``{"k": "ack", "s", "d", "o"}``)
    on the connection the stream came in on (see ``Forwarder.stream_entered``).
    """

    stream_id: str
    direction: str
    offset: int

    def to_body(self) -> dict[str, Any]:
        return {"k": ACK_KIND, "s": self.stream_id, "d": self.direction, "o": self.offset}

    @staticmethod
    def from_body(body: Mapping[str, Any]) -> Ack | None:
        """The acknowledgement in a message body, or None if it is not a valid one."""
        stream, direction, offset = body.get("s"), body.get("d"), body.get("o")
        if (
            body.get("k") == ACK_KIND
            and isinstance(stream, str)
            and isinstance(direction, str)
            and isinstance(offset, int)
        ):
            return Ack(stream_id=stream, direction=direction, offset=offset)
        return None


@dataclass(slots=True)
class Forwarder:
    """Routes, live connections and the streams this router is an end of.

    ``ports`` (link id -> live connection) and ``remote`` (address -> routers) are
    published by the link and routing actors; a stream's bookkeeping goes through
    methods: ``expect_reverse``, ``on_ack``, ``reserve``/``release``, ``forget_stream``;
    the link sessions report each stream direction crossing them (``stream_entered``,
    ``stream_left``): its acknowledgements go back the way it came.
    """

    router_id: str
    routes: Mapping[str, rt.Route] = field(default_factory=dict)
    ports: dict[str, Port] = field(default_factory=dict)  # link id -> live connection
    remote: dict[str, frozenset[str]] = field(default_factory=dict)  # address -> routers
    connectors: dict[str, list[ConnectorBinding]] = field(default_factory=dict)
    _waiting: dict[str, ReverseSink] = field(default_factory=dict)  # stream id -> sink
    _acks: dict[tuple[str, str], AckHandler] = field(default_factory=dict)
    # (stream id, direction) -> the connection that direction came in on, while it lives
    _upstream: dict[tuple[str, str], Port] = field(default_factory=dict)
    _outstanding: Counter[Destination] = field(default_factory=Counter)
    #: bytes buffered for local sockets, node-wide (see protocol/tcp/budget.py)
    budget: BufferBudget = field(default_factory=BufferBudget)
    table: AddressTable = field(init=False)
    #: AMQP messaging's hooks (protocol/messaging/router.py sets them): a client message
    #: arriving for this router, an outcome coming back, routes or addresses changed
    message_arrival: Callable[[StreamHeader, Callable[[str, str], None]], Sink] | None = None
    message_outcome: Callable[[dict[str, Any]], None] | None = None
    #: a whole client message for this router, handed on at once (True), or not (False:
    #: it takes ``message_arrival``'s way)
    message_whole: Callable[[StreamHeader, bytes], bool] | None = None
    on_change: Callable[[], None] | None = None
    #: router messages waiting for a route to their router (``router_message``)
    _unrouted: deque[tuple[str, dict[str, Any], int, bool]] = field(default_factory=deque)
    _unrouted_size: int = 0
    #: told (router, messages dropped so far) when the oldest held message is dropped
    on_unrouted_drop: Callable[[str, int], None] | None = None
    unrouted_dropped: int = 0

    def __post_init__(self) -> None:
        self.table = AddressTable(self.router_id)

    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _instance: int = 0

    def new_stream_id(self) -> str:
        return f"{self.router_id}/{self._instance}/{next(self._ids)}"

    # -- routing -----------------------------------------------------------------------
    def next_hop(self, router: str, key: str = "") -> Port | None:
        route = self.routes.get(router)
        if route is None:
            return None
        next_hops = route.next_hops
        if len(next_hops) == 1:  # the common case, without a list
            return self.ports.get(next_hops[0])
        hops = [self.ports[h] for h in next_hops if h in self.ports]
        if not hops:
            return None
        # equal-cost paths: spread streams by a hash of their id
        return hops[zlib.crc32(key.encode()) % len(hops)] if len(hops) > 1 else hops[0]

    # -- addresses (fed by the routing actor and the connectors) ----------------------------
    def set_routes(self, routes: Mapping[str, rt.Route]) -> None:
        self.routes = routes
        self.table.set_route_costs({router: route.cost for router, route in routes.items()})
        if self._unrouted:
            held, self._unrouted, self._unrouted_size = self._unrouted, deque(), 0
            for to_router, body, _, ours in held:
                self.router_message(to_router, body, ours)  # held again if still no way
        if self.on_change is not None:
            self.on_change()

    def set_address_routers(self, address: str, routers: frozenset[str]) -> None:
        if routers:
            self.remote[address] = routers
        else:
            self.remote.pop(address, None)
        self.table.set_remote_routers(address, routers - {self.router_id})
        if self.on_change is not None:
            self.on_change()

    def bind(self, binding: ConnectorBinding) -> None:
        self.connectors.setdefault(binding.routing_key, []).append(binding)
        self.table.bind_local(binding.routing_key, binding.name)

    def unbind(self, binding: ConnectorBinding) -> bool:
        """Forget a local connector; True when it was the last for its routing key."""
        bindings = self.connectors.get(binding.routing_key, [])
        if binding in bindings:
            bindings.remove(binding)
            self.table.unbind_local(binding.routing_key, binding.name)
        if not bindings:
            self.connectors.pop(binding.routing_key, None)
            return True
        return False

    def select(
        self,
        routing_key: str,
        exclude: frozenset[str] = frozenset(),
        mode: DistributionMode | None = None,
    ) -> Destination | None:
        """Balanced (default): local first, then fewest outstanding + path cost; or closest."""
        return self.table.select(routing_key, mode, self._outstanding, exclude)

    def has_destination(self, routing_key: str) -> bool:
        return bool(self.table.destinations(routing_key))

    # -- streams -----------------------------------------------------------------------
    def open_stream(
        self, header: StreamHeader, owner: StreamOwner, via: Port | None = None
    ) -> OutStream:
        """Start a stream toward ``header.destination`` (raises StreamRefused).

        ``via``: a connection to use when there is no route (yet), for the reverse
        direction of a stream that arrived on it.
        """
        if header.destination == self.router_id:
            return LocalStream(self.arrive(header, refuse=owner.link_closed))
        port = self._hop(header, via)
        if port is None:
            raise StreamRefused("skupper:no-route", f"no route to router {header.destination}")
        return port.open_stream(header, owner)

    def send_whole(self, header: StreamHeader, body: bytes) -> None:
        """Send a message stream whose body is all of ``body`` toward another router, as
        one complete delivery (raises StreamRefused). Nothing to own: an outcome comes
        back for it, or its connection's loss releases it (``LinkSession.recent``)."""
        port = self._hop(header, None)
        if port is None:
            raise StreamRefused("skupper:no-route", f"no route to router {header.destination}")
        port.send_whole(header, body)

    def transit_hop(self, header: StreamHeader) -> Port | None:
        """The connection a stream passing through leaves by (None: no route).

        A reverse stream goes back the way its forward stream came in, as at the egress.
        """
        via = None
        if header.direction == REVERSE:
            via = self._upstream.get((header.stream_id, FORWARD))
        return self._hop(header, via)

    def _hop(self, header: StreamHeader, via: Port | None) -> Port | None:
        port = self.next_hop(header.destination, header.stream_id)
        if via is not None and self.ports.get(via.link_id) is via:
            route = self.routes.get(header.destination)
            if port is None or (route is not None and via.link_id in route.next_hops):
                # back the way the forward stream came: both directions share one path,
                # so one lost path ends both, never only the direction a client waits on
                port = via
        return port

    def arrive(
        self, header: StreamHeader, refuse: Callable[[str, str], None], via: Port | None = None
    ) -> Sink:
        """A stream for this router arrived (from a link, or locally): find its sink."""
        if header.direction == MESSAGE:
            if self.message_arrival is None:
                raise StreamRefused("skupper:no-receiver", "no AMQP messaging here")
            return self.message_arrival(header, refuse)
        if header.direction == FORWARD:
            bindings = self.connectors.get(header.routing_key)
            if not bindings:
                raise StreamRefused(
                    "skupper:no-connector", f"no connector for {header.routing_key} here"
                )
            me = self.router_id
            binding = min(
                bindings,
                key=lambda b: self._outstanding[Destination(router_id=me, connector_id=b.name)],
            )
            sink = EgressSink(header, refuse, via, self.budget)
            binding.accept(header, sink)
            return sink
        waiting = self._waiting.pop(header.stream_id, None)
        if waiting is None:
            raise StreamRefused("skupper:stream-gone", f"stream {header.stream_id} has ended")
        waiting.started(refuse)
        return waiting

    def reverse_stream_abandoned(self, stream_id: str) -> None:
        """The far end gave up a reverse stream before it started: the ingress waiting
        for it sees it start aborted, as if the far end had reset at once (its client
        gets a reset, never a hang)."""
        waiting = self._waiting.pop(stream_id, None)
        if waiting is not None:
            waiting.started()
            waiting.end(True)

    # -- a stream's bookkeeping at its ends ------------------------------------------------
    def expect_reverse(self, stream_id: str, sink: ReverseSink) -> None:
        """The ingress waits for the reverse direction of ``stream_id``: its arrival
        (``arrive``) goes to ``sink``."""
        self._waiting[stream_id] = sink

    def on_ack(self, stream_id: str, direction: str, handler: AckHandler) -> None:
        """Acknowledgements of ``direction`` of ``stream_id`` go to ``handler``."""
        self._acks[(stream_id, direction)] = handler

    def reserve(self, destination: Destination) -> None:
        """A stream goes to ``destination``: balancing counts it until ``release``."""
        self._outstanding[destination] += 1

    def release(self, destination: Destination) -> None:
        outstanding = self._outstanding
        outstanding[destination] -= 1
        if outstanding[destination] <= 0:
            del outstanding[destination]

    def outstanding(self, destination: Destination) -> int:
        return self._outstanding[destination]

    def forget_acks(self, stream_id: str, direction: str) -> None:
        """Acknowledgements of ``direction`` of ``stream_id`` are no longer awaited."""
        self._acks.pop((stream_id, direction), None)

    def forget_stream(self, stream_id: str) -> None:
        """The stream ended at this end: no reverse to wait for, no acknowledgements."""
        self._waiting.pop(stream_id, None)
        self._acks.pop((stream_id, FORWARD), None)
        self._acks.pop((stream_id, REVERSE), None)

    # -- acknowledgements ----------------------------------------------------------------
    def stream_entered(self, header: StreamHeader, via: Port) -> None:
        """A stream direction arrived on ``via`` (for this router or passing through):
        its acknowledgements go back on ``via`` until ``stream_left``."""
        self._upstream[(header.stream_id, header.direction)] = via

    def stream_left(self, header: StreamHeader, via: Port) -> None:
        """The stream direction that came in on ``via`` ended there (or ``via`` is lost)."""
        key = (header.stream_id, header.direction)
        if self._upstream.get(key) is via:
            del self._upstream[key]

    def crossing(self) -> int:
        """Stream directions that came in over a connection and still live here."""
        return len(self._upstream)

    def send_ack(self, to_router: str, stream_id: str, direction: str, offset: int) -> None:
        """Acknowledge ``offset`` bytes of a stream written here to its sender ``to_router``.

        The ack goes back along the links the stream came over, never by a route of its
        own: an ack lost with its path means the stream's path is lost too, which ends
        the stream (and the connection) anyway. With no entry the stream has ended at
        this router: nothing waits for the ack any more.
        """
        ack = Ack(stream_id=stream_id, direction=direction, offset=offset)
        if to_router == self.router_id:
            self.deliver_ack(ack)  # both ends here: a local stream
        else:
            self._ack_upstream(ack)

    def _ack_upstream(self, ack: Ack) -> None:
        port = self._upstream.get((ack.stream_id, ack.direction))
        if port is not None and port.peer is not None:
            port.send_router_message(port.peer, ack.to_body())

    def _neighbour(self, router: str) -> Port | None:
        for port in self.ports.values():
            if port.peer == router:
                return port
        return None

    def _hold(self, to_router: str, body: dict[str, Any], ours: bool) -> None:
        held = self._unrouted
        size = len(repr(body))  # rare: only while a route lags
        held.append((to_router, body, size, ours))
        self._unrouted_size += size
        while len(held) > UNROUTED_LIMIT or self._unrouted_size > UNROUTED_BYTES:
            dropped_for, _, dropped_size, _ = held.popleft()
            self._unrouted_size -= dropped_size
            self.unrouted_dropped += 1
            if self.on_unrouted_drop is not None:
                self.on_unrouted_drop(dropped_for, self.unrouted_dropped)

    def unrouted(self) -> int:
        """Router messages waiting for a route (diagnostics, tests)."""
        return len(self._unrouted)

    def deliver_ack(self, ack: Ack) -> None:
        """An ack arrived: for a stream this router sends (its handler), or one passing
        through (one hop further back)."""
        handler = self._acks.get((ack.stream_id, ack.direction))
        if handler is not None:
            handler(ack.stream_id, ack.offset)
        else:
            self._ack_upstream(ack)

    def router_message(self, to_router: str, body: Mapping[str, Any], ours: bool = False) -> None:
        """A router-addressed message arrived on a link, or is sent from here (``ours``:
        the connection it leaves by remembers it a while, LinkSession.recent): deliver it
        here or pass it on.

        With no route to ``to_router`` it goes to that router if it is a neighbour, else
        it waits for a route (``set_routes``; ``UNROUTED_LIMIT`` and ``UNROUTED_BYTES``). A
        router's route to a new neighbour can lag the neighbour's route to it by a few
        routing exchanges, and the outcomes of the first messages the neighbour sends
        meanwhile must not vanish: its senders would wait for them for ever.
        """
        if to_router != self.router_id:
            port = self.next_hop(to_router, str(body.get("s", "")))
            if port is None:
                port = self._neighbour(to_router)
            if port is not None:
                port.send_router_message(to_router, dict(body), ours)
            else:
                self._hold(to_router, dict(body), ours)
            return
        if body.get("k") == OUTCOME_KIND:
            if self.message_outcome is not None:
                self.message_outcome(dict(body))
            return
        ack = Ack.from_body(body)
        if ack is not None:
            self.deliver_ack(ack)
