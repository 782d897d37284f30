"""AmqpConnection: one AMQP 1.0 connection as a sans-IO object over proton's engine.

Bytes in (``receive_data``), bytes out (``data_to_send``), typed events out
(``events``), time in (``tick``). The engine is driven through the binding's
low-level ``lib`` calls: each high-level proton wrapper object costs microseconds,
and this is the data path. No proton object leaves the package.

Each side begins its own session at ``open()``; the peer's sessions are answered
when their begin arrives. Message links share that session; streaming links are
spread over up to ``stream_sessions`` more (begun as they are first needed), because
proton finds the link an incoming attach names by walking every link of its session:
with one session, opening the ten-thousandth stream cost ten thousand name compares
(ADR 0019). Each session has its own incoming byte window (``session_capacity``), which
proton advertises in frames (capacity / max frame size); a
peer may begin at most ``MAX_CHANNELS`` sessions. Deliveries are sent pre-settled: the
layers above acknowledge end to end, and a lost link ends its streams. The handlers of
proton's events, behind ``events()``, are in _events.py.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import cproton
from cproton import ffi, lib

from ._codec import (
    DATA_HEAD,
    DATA_PREFIX,
    encode_message,
    encode_stream_footer,
    put_symbol_map,
)
from ._events import EngineEvents
from ._headers import encode_stream_header
from ._links import LinkTable, set_condition
from ._receive import Reader
from ._state import OutgoingStreamDelivery
from .errors import AmqpUsageError
from .events import (
    AmqpMessage,
    MessageHeader,
)

_MAX_SECTION: Final = 0xFFFFFFFF
#: a data section up to this size goes to proton in one call, its head joined to it
_JOINED_SECTION: Final = 4096
_NO_OUTPUT: Final = memoryview(b"")
_PEEK_LIMIT: Final = 1 << 20
#: sessions a peer may begin on one connection (AMQP channel-max is this minus one)
MAX_CHANNELS: Final = 64
#: sessions this side spreads its streaming links over, by default
STREAM_SESSIONS: Final = 16
#: a session's incoming window, in frames, unless ``session_capacity`` says otherwise.
#: Every transfer counts as a frame, however small, and proton re-opens the window with
#: a flow frame when it runs low: at 8 frames, an echo's 64 B transfers cost a flow
#: frame (a write, a wake-up and a read of the other router) every fourth or fifth
#: round trip. Bytes are read out of proton as they arrive (ADR 0019), so the window
#: bounds no memory.
SESSION_WINDOW_FRAMES: Final = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class AmqpStatistics:
    """A snapshot of what the connection holds, for tests and diagnostics."""

    links: int
    engine_links: int
    streams_out: int
    streams_in: int
    sessions: int = 1  # open at both ends, in the engine


def _release(transport: Any, connection: Any, collector: Any) -> None:
    lib.pn_collector_release(collector)
    lib.pn_decref(transport)
    lib.pn_decref(connection)
    lib.pn_collector_free(collector)


class AmqpConnection(EngineEvents):
    """One AMQP 1.0 connection; call ``open()``, then pump bytes and drain ``events()``.

    After ``receive_data``, ``tick`` or any command, call ``events()`` (which also
    answers the peer's begin/attach/detach/close) and then ``data_to_send()`` (or
    ``peek_output``/``pop_output``). ``receive_data(b"")`` means the peer's socket
    reached EOF. Call ``tick(now)`` once the connection is open and again by each
    deadline it returns (there is one whenever either side asked for an idle
    timeout): that sends heartbeats and notices a silent peer.

    Calls naming a link or stream that has ended (the peer detached it, the
    connection closed) do nothing: the caller learns of the end from
    ``LinkClosed``/``ConnectionClosed`` and may have raced with it.
    """

    __slots__ = (
        "__weakref__",
        "_collector",
        "_connection",
        "_links",
        "_out_streams",
        "_output",
        "_output_size",
        "_reader",
        "_session",
        "_session_capacity",
        "_stream_sessions",
        "_stream_turn",
        "_streams_over",
        "_tail_closed",
        "_transport",
    )

    def __init__(
        self,
        container_id: str,
        *,
        server: bool,
        properties: Mapping[str, str | int] | None = None,
        max_frame_size: int = 1 << 20,
        session_capacity: int | None = None,
        idle_timeout: float = 0.0,
        max_message_size: int = 16 << 20,
        stream_sessions: int = STREAM_SESSIONS,
    ) -> None:
        if session_capacity is None:
            session_capacity = SESSION_WINDOW_FRAMES * max_frame_size
        if session_capacity < max_frame_size:
            raise ValueError("session_capacity must hold at least one frame")
        if not 0 <= stream_sessions < MAX_CHANNELS:
            raise ValueError(f"stream_sessions must be 0 to {MAX_CHANNELS - 1}")
        transport = lib.pn_transport()
        connection = lib.pn_connection()
        collector = lib.pn_collector()
        weakref.finalize(self, _release, transport, connection, collector)
        self._transport = transport
        self._connection = connection
        self._collector = collector
        # No SASL layer: TLS client certificates authenticate the peer below us.
        if server:
            lib.pn_transport_set_server(transport)
        lib.pn_transport_set_max_frame(transport, max_frame_size)
        lib.pn_transport_set_channel_max(transport, MAX_CHANNELS - 1)
        if idle_timeout > 0:
            lib.pn_transport_set_idle_timeout(transport, int(idle_timeout * 1000))
        cproton.pn_connection_set_container(connection, container_id)
        if properties:
            put_symbol_map(lib.pn_connection_properties(connection), dict(properties))
        lib.pn_connection_collect(connection, collector)
        lib.pn_transport_bind(transport, connection)
        self._session_capacity = session_capacity
        self._session = lib.pn_session(connection)
        lib.pn_session_set_incoming_capacity(self._session, session_capacity)
        self._stream_sessions: list[Any] = []
        self._stream_turn = -1
        self._streams_over = stream_sessions
        self._links = LinkTable(max_message_size)
        self._out_streams: dict[int, OutgoingStreamDelivery] = self._links.out_streams
        self._reader = Reader(
            self._links.new_id, limit=max_frame_size, max_message_size=max_message_size
        )
        self._output: Any = None
        self._output_size = 0
        self._failed = False
        self._transport_failed = False
        self._tail_closed = False

    # -- connection -------------------------------------------------------------------

    def open(self) -> None:
        """Send open and begin."""
        lib.pn_connection_open(self._connection)
        lib.pn_session_open(self._session)

    def close(self, condition: str | None = None, description: str | None = None) -> None:
        """Send close, with an error condition (an AMQP symbol) if given."""
        connection = self._connection
        if lib.pn_connection_state(connection) & lib.PN_LOCAL_CLOSED:
            return
        set_condition(lib.pn_connection_condition(connection), condition, description)
        lib.pn_connection_close(connection)

    @property
    def closed(self) -> bool:
        """Both directions of the transport are done: flush ``data_to_send`` and hang up."""
        return bool(lib.pn_transport_closed(self._transport))

    @property
    def failed(self) -> bool:
        """The connection ended abnormally (transport error, or the peer closed with an error)."""
        return self._failed

    # -- bytes and time ---------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the socket; ``b""`` means EOF. Never raises for bad input."""
        transport = self._transport
        total = len(data)
        if total == 0:
            if not self._tail_closed:
                self._tail_closed = True
                lib.pn_transport_close_tail(transport)
            return
        source = ffi.from_buffer(data)
        offset = 0
        capacity_of = lib.pn_transport_capacity
        push = lib.pn_transport_push
        while offset < total:
            capacity = capacity_of(transport)
            if capacity <= 0:
                return  # input already closed (after an error): what follows is moot
            count = min(capacity, total - offset)
            if push(transport, source + offset, count) < 0:
                return
            offset += count

    def data_to_send(self) -> bytes:
        """Frames ready for the socket, or b'' when there is nothing to write."""
        transport = self._transport
        pending = lib.pn_transport_pending
        size = pending(transport)
        if size <= 0:
            return b""
        chunks: list[bytes] = []
        while size > 0:
            buffer = self._reader.buffer(size)
            lib.pn_transport_peek(transport, buffer, size)
            chunks.append(ffi.buffer(buffer, size)[:])
            lib.pn_transport_pop(transport, size)
            size = pending(transport)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def peek_output(self) -> memoryview:
        """Frames ready for the socket as a view of a buffer the connection reuses.

        No allocation per call, so no allocator churn at gigabit rates. At most 1 MiB
        at a time (the rest follows on the next call). The view is valid until the
        next call on this connection; after the socket takes ``n`` bytes of it, call
        ``pop_output(n)`` and peek again (empty when all is sent).
        """
        transport = self._transport
        size = lib.pn_transport_pending(transport)
        if size <= 0:
            return _NO_OUTPUT
        # A socket takes a few MiB at most per call: copying more would be copied
        # again on the next call, and would grow the buffer to the whole backlog.
        size = min(size, _PEEK_LIMIT)
        if size > self._output_size:
            self._output_size = size
            self._output = ffi.new("char[]", size)
        lib.pn_transport_peek(transport, self._output, size)
        return memoryview(ffi.buffer(self._output, size))

    def pop_output(self, count: int) -> None:
        """Discard the first ``count`` bytes of output (the socket has taken them)."""
        lib.pn_transport_pop(self._transport, count)

    @property
    def has_data_to_send(self) -> bool:
        return bool(lib.pn_transport_pending(self._transport) > 0)

    def tick(self, now: float) -> float | None:
        """Run idle-timeout checks and heartbeats at ``now`` (seconds); return the next deadline."""
        deadline = lib.pn_transport_tick(self._transport, int(now * 1000))
        return deadline / 1000 if deadline else None

    # -- links ------------------------------------------------------------------------

    def open_sender(self, name: str, target: str | None, *, streaming: bool = False) -> int:
        """Attach a sending link; names must be unique on the connection. Returns its id."""
        session = self._session_for(streaming)
        ptr = cproton.pn_sender(session, name)
        if target is not None:
            cproton.pn_terminus_set_address(lib.pn_link_target(ptr), target)
        link = self._links.attach(ptr, session, name, target, is_sender=True, streaming=streaming)
        return link.link_id

    def open_receiver(
        self, name: str, source: str | None, *, credit: int = 0, streaming: bool = False
    ) -> int:
        """Attach a receiving link and grant ``credit``. Returns its id."""
        session = self._session_for(streaming)
        ptr = cproton.pn_receiver(session, name)
        if source is not None:
            cproton.pn_terminus_set_address(lib.pn_link_source(ptr), source)
        link = self._links.attach(ptr, session, name, source, is_sender=False, streaming=streaming)
        if credit:
            lib.pn_link_flow(ptr, credit)
        return link.link_id

    def close_link(
        self, link_id: int, condition: str | None = None, description: str | None = None
    ) -> None:
        """Detach and forget a link, with an error condition for the peer if given.

        Its unfinished streams end without further events on this side.
        """
        link = self._links.by_id.get(link_id)
        if link is not None:
            set_condition(lib.pn_link_condition(link.ptr), condition, description)
            self._links.drop(link, None, None, None)

    def _session_for(self, streaming: bool) -> Any:
        """The session a new link attaches on: streaming links take turns over the
        stream sessions (a name walk per attach stays short), the others share one."""
        if not streaming or not self._streams_over:
            return self._session
        sessions = self._stream_sessions
        turn = self._stream_turn = (self._stream_turn + 1) % self._streams_over
        if turn == len(sessions):
            session = lib.pn_session(self._connection)
            lib.pn_session_set_incoming_capacity(session, self._session_capacity)
            lib.pn_session_open(session)
            sessions.append(session)
        return sessions[turn]

    def flow(self, link_id: int, credit: int) -> None:
        """Grant ``credit`` more deliveries on a receiving link."""
        link = self._links.by_id.get(link_id)
        if link is None:
            return
        if link.is_sender:
            raise AmqpUsageError("flow grants credit on receiving links only")
        lib.pn_link_flow(link.ptr, credit)

    def read_whole(self, link_id: int) -> None:
        """A small streaming delivery that arrives complete on this receiving link comes
        as one StreamWhole event (not StreamStarted, StreamData..., StreamEnded)."""
        link = self._links.by_id.get(link_id)
        if link is not None and link.streaming and not link.is_sender:
            link.whole = True

    def set_chunk_sink(
        self, link_id: int, delivery_id: int, sink: Callable[[bytes], object]
    ) -> None:
        """Body bytes of the stream ``delivery_id`` (started: its StreamStarted came) go
        to ``sink`` as they arrive, from inside ``events()`` and in order, instead of as
        StreamData events: a running stream's chunk costs no event. Its end is still an
        event (StreamLength, StreamEnded), made after the last bytes went to the sink,
        and ends the sink too. Ignored once that stream is over."""
        link = self._links.by_id.get(link_id)
        if link is not None:
            stream = link.in_stream
            if stream is not None and stream.started and stream.delivery_id == delivery_id:
                link.chunk_sink = sink

    def clear_chunk_sink(self, link_id: int) -> None:
        """The stream arriving on ``link_id`` has no sink any more: StreamData events again."""
        link = self._links.by_id.get(link_id)
        if link is not None:
            link.chunk_sink = None

    def credit(self, link_id: int) -> int:
        """Deliveries the peer lets this side send now on a sending link (0 if ended)."""
        link = self._links.by_id.get(link_id)
        return int(lib.pn_link_credit(link.ptr)) if link is not None else 0

    # -- sending ----------------------------------------------------------------------

    def _new_delivery(self, ptr: Any) -> tuple[int, Any]:
        delivery_id = self._links.new_id()
        # the tag as a (size, pointer) pair: cproton.pn_delivery's conversion costs more
        tag = ffi.from_buffer(delivery_id.to_bytes(8, "big"))
        return delivery_id, lib.pn_delivery(ptr, (8, tag))

    def send_message(self, link_id: int, message: AmqpMessage) -> None:
        """Send one complete message (queued by proton until the peer grants credit)."""
        link = self._links.sending(link_id, streaming=False)
        if link is None:
            return
        data = encode_message(message)
        ptr = link.ptr
        _, delivery = self._new_delivery(ptr)
        lib.pn_link_send(ptr, data, len(data))
        lib.pn_link_advance(ptr)
        lib.pn_delivery_settle(delivery)
        link.credit_seen = lib.pn_link_credit(ptr)

    def start_stream(self, link_id: int, header: MessageHeader | bytes) -> int:
        """Begin a streaming delivery on a streaming sending link; returns its delivery id.

        ``header``: the stream's header, or its encoding (``encode_stream_header``). A
        link carries one stream at a time: end or abort it before the next.
        """
        link = self._links.sending(link_id, streaming=True)
        if link is None:
            return self._links.new_id()  # the link has ended: writes to this stream are dropped
        if link.out_stream is not None:
            raise AmqpUsageError(f"link {link_id} already carries stream {link.out_stream}")
        head = header if isinstance(header, bytes) else encode_stream_header(header)
        ptr = link.ptr
        delivery_id, delivery = self._new_delivery(ptr)
        lib.pn_link_send(ptr, head, len(head))
        stream = OutgoingStreamDelivery(delivery_id, delivery, link)
        self._out_streams[delivery_id] = link.out_stream = stream
        return delivery_id

    def send_stream(self, link_id: int, header: bytes, body: bytes) -> bool:
        """Send a whole stream (encoded header, then ``body`` as data sections) as one
        complete delivery, as ``start_stream``, ``write_stream`` and ``end_stream`` would
        (no footer). False when the link has ended (nothing sent)."""
        link = self._links.sending(link_id, streaming=True)
        if link is None:
            return False
        if link.out_stream is not None:
            raise AmqpUsageError(f"link {link_id} already carries stream {link.out_stream}")
        ptr = link.ptr
        _, delivery = self._new_delivery(ptr)
        send = lib.pn_link_send
        send(ptr, header, len(header))
        size = len(body)
        if size > _MAX_SECTION:
            raise AmqpUsageError(f"a whole stream of {size} bytes: stream it (write_stream)")
        if size:
            send(ptr, DATA_HEAD.pack(DATA_PREFIX, size), 8)
            send(ptr, body, size)
        lib.pn_link_advance(ptr)
        lib.pn_delivery_settle(delivery)
        link.credit_seen = lib.pn_link_credit(ptr)
        return True

    def write_stream(self, delivery_id: int, data: bytes | bytearray | memoryview) -> None:
        """Append body bytes to a stream as one data section (copied into proton)."""
        stream = self._out_streams.get(delivery_id)
        size = len(data)
        if stream is None or size == 0:
            return
        if size > _MAX_SECTION:
            view = memoryview(data)
            for start in range(0, size, _MAX_SECTION):
                self.write_stream(delivery_id, view[start : start + _MAX_SECTION])
            return
        ptr = stream.link.ptr
        if size <= _JOINED_SECTION and type(data) is bytes:
            # a small chunk (a request, a reply): one copy is cheaper than a second call
            lib.pn_link_send(ptr, DATA_HEAD.pack(DATA_PREFIX, size) + data, size + 8)
            return
        send = lib.pn_link_send
        send(ptr, DATA_HEAD.pack(DATA_PREFIX, size), 8)
        send(ptr, data if type(data) is bytes else ffi.from_buffer(data), size)

    def stream_backlog(self, delivery_id: int) -> int:
        """Bytes of a stream not yet framed: stop feeding it past one or two frames.

        Proton makes a partly sent delivery buffer contiguous again by rotating it a
        byte at a time; with an 8-frame backlog the benchmark ran 40 times slower.
        """
        stream = self._out_streams.get(delivery_id)
        return int(lib.pn_delivery_pending(stream.delivery)) if stream is not None else 0

    def end_stream(self, delivery_id: int, length: int | None = None) -> None:
        """Complete a stream: the receiver sees StreamEnded(aborted=False) after its data.

        ``length``: the body bytes written, announced in a footer section; the receiver's
        StreamEnded carries it, to be checked against what it received.
        """
        stream = self._out_streams.pop(delivery_id, None)
        if stream is None:
            return
        link = stream.link
        link.out_stream = None
        if length is not None:
            footer = encode_stream_footer(length)
            lib.pn_link_send(link.ptr, footer, len(footer))
        lib.pn_link_advance(link.ptr)
        lib.pn_delivery_settle(stream.delivery)
        link.credit_seen = lib.pn_link_credit(link.ptr)

    def abort_stream(self, delivery_id: int) -> None:
        """Give up a stream: the receiver sees StreamEnded(aborted=True)."""
        stream = self._out_streams.pop(delivery_id, None)
        if stream is None:
            return
        link = stream.link
        link.out_stream = None
        # Aborting settles the delivery and moves the link on to the next one.
        lib.pn_delivery_abort(stream.delivery)
        link.credit_seen = lib.pn_link_credit(link.ptr)

    # -- diagnostics ------------------------------------------------------------------

    def statistics(self) -> AmqpStatistics:
        engine_links = 0
        ptr = lib.pn_link_head(self._connection, 0)
        while ptr:
            engine_links += 1
            ptr = lib.pn_link_next(ptr, 0)
        sessions = 0
        active = lib.PN_LOCAL_ACTIVE | lib.PN_REMOTE_ACTIVE
        session = lib.pn_session_head(self._connection, active)
        while session:
            sessions += 1
            session = lib.pn_session_next(session, active)
        return AmqpStatistics(
            links=len(self._links.by_id),
            engine_links=engine_links,
            streams_out=len(self._out_streams),
            streams_in=self._links.incoming_streams(),
            sessions=sessions,
        )
