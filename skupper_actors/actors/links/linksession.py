"""LinkSession: one live inter-router connection (socket + AMQP engine) and its links.

Three kinds of AMQP link run over it: the control link (routing protocol), the message
link (small router-addressed messages: stream acknowledgements, messaging outcomes,
refusals of TCP streams), and a pool of streaming links, each carrying one stream (a TCP
stream direction or a client message) after another, attached once with credit granted
ahead (docs/adr/0018, 0021). A peer's link named otherwise carries one stream and is
closed at its end (the shape before ADR 0021, still understood). Received stream bytes
go straight to the stream's sink.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Any

import gevent
import gevent.event
import structlog

from skupper_actors.protocol import amqp
from skupper_actors.protocol import routing as rt
from skupper_actors.protocol.addresses import (
    CONTROL_ADDRESS,
    MESSAGE,
    MESSAGE_ADDRESS,
    OUTCOME_KIND,
    ROUTER_PREFIX,
)
from skupper_actors.protocol.messaging.outcomes import released_body
from skupper_actors.protocol.tcp import (
    REVERSE,
    StreamHeader,
    StreamHeaderError,
    encoded_header,
    parse_header,
    through,
)
from skupper_actors.security.identity import UNKNOWN, PeerIdentity

from ..context import LinkLimits
from ..health import NodeHealth
from ..tcp.dataplane import DataPlane, Sink, StreamOwner, StreamRefused
from .output import SessionOutput
from .recent import RecentlySent
from .remotestream import RemoteStream, _TransitOwner, _TransitSink
from .wire import Wire

CONTROL_CREDIT = 256
MESSAGE_CREDIT = 1024
STREAM_CREDIT = 1
#: deliveries a pooled message link may have in flight toward us (one more is granted
#: as each ends): a sender rarely waits for credit, and the session window still bounds
#: the bytes
POOL_CREDIT = 64
#: the name prefix of a pooled message link (``m/~<n>``): a receiver keeps such a link
#: open after each stream's end, for the next one
POOL_PREFIX = f"{MESSAGE}/~"
POOL_TARGET = "_skupper/messages"
#: idle pooled links a connection keeps for its next streams; one freed past this is
#: closed, so a burst of connections does not leave its links attached for ever
POOL_IDLE_MAX = 256
#: the router message (kind) by which a receiver refuses a TCP stream on a pooled link
REFUSAL_KIND = "sr"
PENDING_CONTROL_LIMIT = 1000

_log = structlog.get_logger("skupper_actors.link")

LIMIT_CONDITION = "amqp:resource-limit-exceeded"


class PeerOverLimit(Exception):
    """The peer itself passed a limit that ends the connection (docs/limits-links.md)."""

    condition = LIMIT_CONDITION
    event = "link_limit_exceeded"

    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(detail)
        self.limit = limit


def _stream_link_name(header: StreamHeader) -> str:
    """``<direction>/<stream id>``: unique per connection, and it says which stream a
    link carried when the link closes before the stream's header arrived."""
    return f"{header.direction}/{header.stream_id}"


class LinkSession(SessionOutput):
    """State of one connection; its methods never yield (``flush_now`` excepted)."""

    def __init__(
        self,
        wire: Wire,
        conn: amqp.AmqpConnection,
        link_id: str,
        dataplane: DataPlane,
        limits: LinkLimits | None = None,
        health: NodeHealth | None = None,
    ) -> None:
        self.wire = wire
        self.limits = limits or LinkLimits()
        self.health = health or NodeHealth()
        self.identity: PeerIdentity = UNKNOWN
        self.claimed: str | None = None  # the router id this connection holds a claim on
        self.links_refused = 0
        self.slice_started = 0.0  # since when the reader has held the loop
        #: when the reader last took bytes from the peer (routing: the peer is alive)
        self.last_input = 0.0
        self.loop = gevent.get_hub().loop
        self.read_watcher: Any = None  # the loop's watcher of the socket (LinkActor._by_callback)
        self.loop_iteration = -1  # the loop's iteration when the reader last looked
        self.piece = 8 << 10  # bytes handed to the engine at a time (see LinkActor._receive)
        self.conn = conn
        self.link_id = link_id
        self.dataplane = dataplane
        self._stalled = False  # the socket is full: the writer greenlet has the output
        self._wake = gevent.event.Event()
        self._writer: gevent.Greenlet[Any, Any] | None = None
        self.control_sender: int | None = None
        self.control_receiver: int | None = None
        self.message_sender: int | None = None
        self.message_receiver: int | None = None
        self.peer: str | None = None
        self.cost = 1
        self.announced = False
        self.closing: str | None = None
        self.pending_control: deque[rt.ControlMessage] = deque()
        self.owners: dict[int, StreamOwner] = {}  # our streaming sender links
        self.held: dict[RemoteStream, None] = {}  # streams with chunks waiting (in order)
        self.sinks: dict[int, Sink] = {}  # the peer's streaming links to us
        self.headers: dict[int, StreamHeader] = {}
        self.lengths: dict[int, int] = {}  # announced by a footer, until the end follows
        # the peer's streaming links whose stream has not started yet: link id -> name
        self.unstarted: dict[int, str] = {}
        #: pooled message links: ours with no stream on them now (most recent last), all
        #: of ours, and the peer's (kept open between streams)
        self.idle_out: list[int] = []
        self.pooled_out: set[int] = set()
        self.pooled_in: set[int] = set()
        self.pool_ended: dict[int, int] = {}  # the peer's pooled link -> streams not re-credited
        #: our TCP streams on pooled links, by (stream id, direction): a refusal names one
        self.out_streams: dict[tuple[str, str], RemoteStream] = {}
        #: client messages sent whole and outcomes sent lately (lost with the connection?)
        self.recent = RecentlySent()
        self._pool_names = 0
        self._flush_due = False

    def open_links(self, router_id: str) -> None:
        self.control_sender = self.conn.open_sender(f"control-{router_id}", CONTROL_ADDRESS)
        self.message_sender = self.conn.open_sender(f"messages-{router_id}", MESSAGE_ADDRESS)

    def send_control(self, message: rt.ControlMessage) -> None:
        if len(self.pending_control) >= PENDING_CONTROL_LIMIT:
            self.pending_control.popleft()  # the oldest is the most likely to be stale
        self.pending_control.append(message)
        self.drain_control()
        self.flush()

    def drain_control(self) -> None:
        sender = self.control_sender
        if sender is None:
            return
        conn = self.conn
        while self.pending_control and conn.credit(sender) > 0:
            body = rt.encode(self.pending_control.popleft())
            conn.send_message(sender, amqp.AmqpMessage(to=CONTROL_ADDRESS, body=body))

    def send_router_message(self, to_router: str, body: dict[str, Any], ours: bool = False) -> None:
        """Send a router-addressed message; ``ours`` (an outcome this router sent, not one
        it passes on: a peer's could be as large as a link takes) is remembered a while
        (``recent``), to go again by another way if this connection is lost."""
        if self.message_sender is None:
            return
        # proton queues the message if the peer has not granted credit yet
        self.conn.send_message(
            self.message_sender, amqp.AmqpMessage(to=f"{ROUTER_PREFIX}{to_router}", body=body)
        )
        if ours and body.get("k") == OUTCOME_KIND:
            self.recent.outcome(to_router, body)
        self.flush_soon()

    def open_stream(self, header: StreamHeader, owner: StreamOwner) -> RemoteStream:
        """A stream toward the peer, on a pooled streaming link (one delivery after
        another on a link kept attached, credit granted ahead: a stream costs no attach,
        no flow and no detach, nor the round trips they took; docs/adr/0021)."""
        conn = self.conn
        message = header.direction == MESSAGE
        if self.idle_out:
            link = self.idle_out.pop()
        else:
            self._pool_names += 1
            link = conn.open_sender(f"{POOL_PREFIX}{self._pool_names}", POOL_TARGET, streaming=True)
            self.pooled_out.add(link)
        delivery = conn.start_stream(link, encoded_header(header))
        self.owners[link] = owner
        stream = RemoteStream(self, link, delivery, True, header, message)
        if not message:
            # a TCP stream is refused by a router message naming it (the link stays)
            self.out_streams[(header.stream_id, header.direction)] = stream
            # its header leaves with the first bytes if they follow in this loop pass
            # (an ingress's early data), else at the pass's end: one write, not two
            self.flush_soon()
        else:
            stream.flush()
        return stream

    def send_whole(self, header: StreamHeader, body: bytes) -> None:
        """Send a message stream whose body is all here, as one complete delivery on a
        pooled link: no stream object, and the link stays idle for the next one."""
        idle = self.idle_out
        if idle:
            link = idle[-1]
        else:
            self._pool_names += 1
            link = self.conn.open_sender(
                f"{POOL_PREFIX}{self._pool_names}", POOL_TARGET, streaming=True
            )
            self.pooled_out.add(link)
            idle.append(link)
        if not self.conn.send_stream(link, encoded_header(header), body):
            # the link ended under us (its LinkClosed is on the way): like no route
            raise StreamRefused("skupper:path-lost", f"link to {self.peer} ended")
        self.sent_whole(header)
        self.flush_soon()

    def sent_whole(self, header: StreamHeader) -> None:
        """A message stream left whole over this connection: remembered for a while."""
        self.recent.whole(header.stream_id, header.source)

    def link_free(self, link: int) -> None:
        """A pooled link's stream is over (ended or aborted): the next may use it, or,
        past ``POOL_IDLE_MAX`` idle links, it is closed (a burst's links are given back)."""
        if link in self.pooled_out:
            if len(self.idle_out) < POOL_IDLE_MAX:
                self.idle_out.append(link)
            else:
                self.pooled_out.discard(link)
                with contextlib.suppress(amqp.AmqpUsageError):
                    self.conn.close_link(link)

    def stream_done(self, stream: RemoteStream) -> None:
        """A TCP stream we sent ended or was aborted: a refusal naming it comes too late."""
        header = stream.header
        if header is not None and not stream.message:
            self.out_streams.pop((header.stream_id, header.direction), None)

    def _refused(self, body: dict[str, Any]) -> None:
        """The peer refused one of our TCP streams on a pooled link (``refuse_stream``
        there): abort it here (the link goes back to the pool) and tell its owner, as a
        detach with that condition would have."""
        stream_id, direction = body.get("s"), body.get("d")
        if not isinstance(stream_id, str) or not isinstance(direction, str):
            _log.warning("stream_refusal_invalid", link_id=self.link_id, peer=self.peer)
            return
        stream = self.out_streams.pop((stream_id, direction), None)
        if stream is None:
            return  # it ended (or was aborted) meanwhile
        owner = self.owners.get(stream.link)
        stream.abort()
        if owner is not None:
            condition, why = body.get("c"), body.get("t")
            owner.link_closed(
                condition if isinstance(condition, str) else "skupper:refused",
                why if isinstance(why, str) else None,
            )

    def refuse_stream(
        self, link: int, condition: str, description: str, header: StreamHeader | None = None
    ) -> None:
        """Stop an incoming stream. On a pooled link, which stays open for the next
        stream, the rest of this one is dropped and its sender told: a message
        stream's ingress by a released outcome, a TCP stream's neighbour by a refusal
        naming the stream (``header`` when the caller knows it: the link may carry a
        later stream by now). A link of its own is closed, its detach saying why."""
        if link in self.pooled_in:
            current = self.headers.get(link)
            known = header if header is not None else current
            if current is None or current is known:
                self._incoming_done(link)  # else the link carries a later stream now
            if known is not None and known.direction == MESSAGE:
                body = released_body(known.stream_id)
                self.dataplane.router_message(known.source, body, ours=True)
                return
            if known is not None and self.peer is not None and self.message_sender is not None:
                # hop by hop, like the detach it replaces: the peer aborts its stream
                # (a transit router refuses its own incoming one in turn)
                self.send_router_message(
                    self.peer,
                    {
                        "k": REFUSAL_KIND,
                        "s": known.stream_id,
                        "d": known.direction,
                        "c": condition,
                        "t": description,
                    },
                )
                return
            # no way to name it to the peer: the link goes, its detach says why
            self.pooled_in.discard(link)
            self.pool_ended.pop(link, None)
        self._incoming_done(link)
        self.conn.close_link(link, condition, description)
        self.flush()

    def _incoming_done(self, link: int) -> Sink | None:
        """An incoming stream's link ends: forget it (and the way back for its acks)."""
        header = self.headers.pop(link, None)
        if header is not None:
            self.dataplane.stream_left(header, self)
        sink = self.sinks.pop(link, None)
        if sink is not None:
            self.conn.clear_chunk_sink(link)
        return sink

    # -- input (called for the events of one read) -------------------------------------------
    def link_opened(self, event: amqp.LinkOpened) -> bool:
        """A peer-initiated link; False if it is not one of ours to accept."""
        if event.role is not amqp.LinkRole.RECEIVER:
            return False
        if event.streaming:
            # the peer's links: its streams (sinks, unstarted), its pooled message links
            # (counted again while they carry a stream) and the two control links
            held = len(self.sinks) + len(self.unstarted) + len(self.pooled_in) + 2
            if held >= self.limits.max_links_per_connection:
                self._refuse_link(event.link_id, held)
                return True
            if event.name.startswith(POOL_PREFIX):
                self.pooled_in.add(event.link_id)
                self.conn.read_whole(event.link_id)  # a small message: one event
                self.conn.flow(event.link_id, POOL_CREDIT)
            else:
                self.conn.flow(event.link_id, STREAM_CREDIT)
                self.unstarted[event.link_id] = event.name
        elif event.address == CONTROL_ADDRESS:
            self.control_receiver = event.link_id
            self.conn.flow(event.link_id, CONTROL_CREDIT)
        elif event.address == MESSAGE_ADDRESS:
            self.message_receiver = event.link_id
            self.conn.flow(event.link_id, MESSAGE_CREDIT)
        else:
            return False
        return True

    def _refuse_link(self, link: int, held: int) -> None:
        limit = self.limits.max_links_per_connection
        self.links_refused += 1
        total = self.health.count("max-links-per-connection")
        if self.links_refused == 1 or self.links_refused % 1000 == 0:
            _log.warning(
                "link_attach_refused",
                link_id=self.link_id,
                peer=self.peer,
                links=held,
                limit=limit,
                refused=self.links_refused,
                refused_on_node=total,
            )
        self.conn.close_link(
            link, LIMIT_CONDITION, f"this connection holds {held} links (at most {limit})"
        )

    def stream_started(self, event: amqp.StreamStarted) -> None:
        sink = self._open_sink(event.link_id, event.header)
        if sink is not None and self.sinks.get(event.link_id) is sink:
            # the stream's next chunks go to the sink from the engine's read, no events
            self.conn.set_chunk_sink(event.link_id, event.delivery_id, sink.data)

    def stream_whole(self, event: amqp.StreamWhole) -> None:
        """A small stream that arrived complete: started, its body, ended, in one go."""
        link = event.link_id
        stream = self._parse(link, event.header)
        if stream is not None and not self._message_whole(link, stream, event.body):
            sink = self._open(link, stream)
            if sink is not None:
                if event.body:
                    sink.data(event.body)
                if self.sinks.get(link) is sink:  # data may have refused it
                    self._incoming_done(link)
                    sink.end(False, event.length)
        self._pooled_stream_ended(link)

    def _message_whole(self, link: int, stream: StreamHeader, body: bytes) -> bool:
        """A whole client message: to a local receiver at once, or on to the next hop as
        one delivery (no sink, no stream object). False: it takes a stream's way."""
        if stream.direction != MESSAGE:
            return False
        dataplane = self.dataplane
        if stream.destination == dataplane.router_id:
            whole = dataplane.message_whole
            return whole is not None and whole(stream, body)
        try:
            port = dataplane.transit_hop(stream)
            if port is None:
                raise StreamRefused("skupper:no-route", f"no route to router {stream.destination}")
            port.send_whole(stream, body)
        except StreamRefused as refused:
            self.refuse_stream(link, refused.condition, refused.description, stream)
        return True

    def _open_sink(self, link: int, header: amqp.MessageHeader) -> Sink | None:
        """An incoming stream's header arrived: its sink here or at the next hop."""
        stream = self._parse(link, header)
        return None if stream is None else self._open(link, stream)

    def _parse(self, link: int, header: amqp.MessageHeader) -> StreamHeader | None:
        """The stream header of an incoming stream; None (and the link closed) if bad."""
        self.unstarted.pop(link, None)
        try:
            return parse_header(header.to, header.reply_to, header.application_properties)
        except StreamHeaderError as error:
            _log.warning("stream_refused", link_id=self.link_id, error=str(error))
            self.pooled_in.discard(link)  # no header: the link is closed
            self.refuse_stream(link, "amqp:invalid-field", str(error))
            return None

    def _open(self, link: int, stream: StreamHeader) -> Sink | None:
        """The sink of an incoming stream, here or at the next hop (None: refused)."""
        try:
            if stream.destination == self.dataplane.router_id:
                sink: Sink = self.dataplane.arrive(
                    stream,
                    refuse=lambda condition, description: self.refuse_stream(
                        link, condition, description, stream
                    ),
                    via=self,
                )
            else:
                port = self.dataplane.transit_hop(stream)
                if port is None:
                    raise StreamRefused(
                        "skupper:no-route", f"no route to router {stream.destination}"
                    )
                # a flow's forward stream names this router in its trace
                forwarded = through(stream, self.dataplane.router_id)
                out = port.open_stream(forwarded, _TransitOwner(self, link, stream))
                assert isinstance(out, RemoteStream)
                sink = _TransitSink(out)
        except StreamRefused as refused:
            self.refuse_stream(link, refused.condition, refused.description, stream)
            return None
        self.sinks[link] = sink
        self.headers[link] = stream
        self.dataplane.stream_entered(stream, self)  # its acks go back over this connection
        return sink

    def stream_data(self, event: amqp.StreamData) -> None:
        sink = self.sinks.get(event.link_id)
        if sink is not None:
            sink.data(event.data)

    def stream_length(self, event: amqp.StreamLength) -> None:
        """The stream's footer: its StreamEnded follows at once (same read)."""
        self.lengths[event.link_id] = event.length

    def stream_ended(self, event: amqp.StreamEnded) -> None:
        sink = self._incoming_done(event.link_id)
        length = self.lengths.pop(event.link_id, None)
        if sink is not None:
            sink.end(event.aborted, length)
        self._pooled_stream_ended(event.link_id)

    def _pooled_stream_ended(self, link: int) -> None:
        """A stream on ``link`` is over: a pooled link is kept, any other one closed."""
        if link in self.pooled_in:
            # kept open for the sender's next messages; credit goes back in batches (a
            # flow frame per message would be a frame, and often a write, per message)
            ended = self.pool_ended.get(link, 0) + 1
            if ended >= POOL_CREDIT // 2:
                ended = 0
                self.conn.flow(link, POOL_CREDIT // 2)
                self.flush_soon()
            self.pool_ended[link] = ended
            return
        try:  # noqa: SIM105  (per connection: no contextlib)
            self.conn.close_link(link)
        except amqp.AmqpUsageError:
            pass

    def link_closed(self, event: amqp.LinkClosed) -> bool:
        """Returns True when a control or message link closed (the connection is unusable)."""
        link = event.link_id
        if link in self.pooled_out:
            self.pooled_out.discard(link)
            if link in self.idle_out:
                self.idle_out.remove(link)
        self.pooled_in.discard(link)
        self.pool_ended.pop(link, None)
        owner = self.owners.pop(event.link_id, None)
        if owner is not None:
            owner.link_closed(event.condition, event.description)
            return False
        sink = self._incoming_done(event.link_id)
        if sink is not None:
            sink.end(True)
            return False
        name = self.unstarted.pop(event.link_id, None)
        if name is not None:
            # the sender gave up before its stream's first transfer (it never had credit):
            # the link's name says which stream, and whoever waits for it must know
            direction, _, stream_id = name.partition("/")
            if direction == REVERSE:
                self.dataplane.reverse_stream_abandoned(stream_id)
            return False
        return event.link_id in (
            self.control_sender,
            self.control_receiver,
            self.message_sender,
            self.message_receiver,
        )

    def message_received(self, event: amqp.MessageReceived) -> rt.ControlMessage | None:
        """A control message to hand to routing, or None (router messages are handled here)."""
        link = event.link_id
        if link == self.message_receiver:
            self.conn.flow(link, 1)
            to = event.message.to or ""
            body = event.message.body
            if to.startswith(ROUTER_PREFIX) and isinstance(body, dict):
                if body.get("k") == REFUSAL_KIND:
                    self._refused(body)  # about a stream on this connection: not routed
                else:
                    self.dataplane.router_message(to[len(ROUTER_PREFIX) :], body)
            return None
        if link != self.control_receiver:
            return None
        self.conn.flow(link, 1)
        body = event.message.body
        try:
            if not isinstance(body, dict):
                raise rt.ControlMessageError(
                    f"control message body is {type(body).__name__}, not a map"
                )
            return rt.decode(body, max_entries=self.limits.max_control_entries)
        except rt.ControlMessageTooLarge as error:
            total = self.health.count("max-control-entries")
            if error.origin == self.peer:
                raise PeerOverLimit("max-control-entries", str(error)) from None
            # relayed from further away: drop it, keep the neighbour
            _log.warning(
                "control_message_refused",
                link_id=self.link_id,
                origin=error.origin,
                limit="max-control-entries",
                error=str(error),
                refused_on_node=total,
            )
            return None
        except rt.ControlMessageError as error:
            _log.warning("control_message_invalid", link_id=self.link_id, error=str(error))
            return None

    def lost(self) -> None:
        """The connection is gone: every stream crossing it ends, aborted."""
        owners, self.owners = self.owners, {}
        sinks, self.sinks = self.sinks, {}
        for header in self.headers.values():
            self.dataplane.stream_left(header, self)
        for stream in list(self.held):
            stream.drop_held()
        self.headers.clear()
        self.lengths.clear()
        self.unstarted.clear()
        self.idle_out.clear()
        self.out_streams.clear()
        self.pooled_out.clear()
        self.pooled_in.clear()
        self.pool_ended.clear()
        for owner in owners.values():
            owner.link_closed("skupper:link-lost", f"link {self.link_id} to {self.peer} was lost")
        for sink in sinks.values():
            sink.end(True)
        # what this connection carried lately may have died in its buffers
        for router, body in self.recent.lost():
            self.dataplane.router_message(router, body, ours=True)
