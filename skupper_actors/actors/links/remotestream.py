"""A stream's sending end over an inter-router connection (``RemoteStream``) and what a
transit router puts between the stream's incoming and outgoing hops (actors/links/
linksession.py, which makes them)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from skupper_actors.protocol.tcp import StreamHeader

if TYPE_CHECKING:
    from .linksession import LinkSession

# Bytes of one stream proton may hold unframed. Proton pools a connection's deliveries
# with their buffers at the largest size they ever reached (never given back while the
# connection lives), so past this a stream's chunks wait here, as Python bytes freed
# when sent, and go on as output leaves (docs/limits.md, "Memory").
DELIVERY_BACKLOG = 240 << 10
#: a stream's proton backlog is looked at after this many bytes (so it stays under
#: DELIVERY_BACKLOG + BACKLOG_CHECK + one chunk)
BACKLOG_CHECK = 16 << 10


class RemoteStream:
    """The sending end of a stream over this connection."""

    __slots__ = (
        "delivery",
        "done",
        "flush",
        "header",
        "held",
        "held_end",
        "link",
        "message",
        "pooled",
        "session",
        "unchecked",
    )

    def __init__(
        self,
        session: LinkSession,
        link: int,
        delivery: int,
        pooled: bool = False,
        header: StreamHeader | None = None,
        message: bool = False,
    ) -> None:
        self.session = session
        self.link = link
        self.delivery = delivery
        self.header = header  # a message stream's is remembered once it ended
        #: on a pooled link the link goes back to the pool at the stream's end
        self.pooled = pooled
        #: a client message's stream (else a TCP stream direction)
        self.message = message
        #: output is flushed once per loop pass, after every socket ready in it was read:
        #: twenty clients' requests read in one pass leave in one TLS write, not twenty
        #: (TCP bytes flushed per write cost a record and a send each: redis-benchmark
        #: -c 20 spent 50 µs of router CPU per request, 35 once batched)
        self.flush = session.flush_soon
        self.done = False
        self.held: deque[bytes] | None = None  # chunks waiting for proton's backlog to shrink
        self.held_end: tuple[int | None] | None = None  # an end waiting behind them
        self.unchecked = 0  # bytes written since proton's backlog was last looked at

    def write(self, chunk: bytes) -> None:
        if not self.done:
            session = self.session
            held = self.held
            if held is None:
                # proton's backlog is looked at once per BACKLOG_CHECK bytes, not per
                # chunk: small chunks (a request, an echo) cost no look at all
                unchecked = self.unchecked + len(chunk)
                if unchecked < BACKLOG_CHECK:
                    self.unchecked = unchecked
                    session.conn.write_stream(self.delivery, chunk)
                    self.flush()
                    return
                self.unchecked = 0
                if session.conn.stream_backlog(self.delivery) < DELIVERY_BACKLOG:
                    session.conn.write_stream(self.delivery, chunk)
                    self.flush()
                    return
                held = self.held = deque()
                session.held[self] = None
            held.append(chunk)
            session.dataplane.budget.add(len(chunk))

    def feed(self) -> bool:
        """Move held chunks into proton while its backlog allows; True if any moved.
        Once none are held, a held end follows."""
        held = self.held
        conn = self.session.conn
        budget = self.session.dataplane.budget
        moved = False
        while held and conn.stream_backlog(self.delivery) < DELIVERY_BACKLOG:
            chunk = held.popleft()
            conn.write_stream(self.delivery, chunk)
            budget.sub(len(chunk))
            moved = True
        if not held:
            self.held = None
            self.session.held.pop(self, None)
            if self.held_end is not None:
                (length,) = self.held_end
                self.held_end = None
                self._end(length)
                moved = True
        return moved

    def backlog(self) -> int:
        held = self.held
        return self.session.conn.stream_backlog(self.delivery) + (
            sum(map(len, held)) if held else 0
        )

    def end(self, length: int | None = None) -> None:
        if not self.done:
            self.done = True
            if self.held is not None:
                self.held_end = (length,)  # after the held chunks
                return
            self._end(length)
            # the end of a stream waits for the loop pass to finish: the ends of many
            # connections closing together leave in one write
            self.session.flush_soon()

    def drop_held(self) -> None:
        """Forget the chunks still held (the stream or its connection ended)."""
        held = self.held
        self.held = self.held_end = None
        self.session.held.pop(self, None)
        if held:
            self.session.dataplane.budget.sub(sum(map(len, held)))

    def _end(self, length: int | None) -> None:
        session = self.session
        session.owners.pop(self.link, None)
        session.conn.end_stream(self.delivery, length)
        if self.pooled:
            session.link_free(self.link)
            header = self.header
            if header is not None:
                if self.message:
                    session.sent_whole(header)
                else:
                    session.stream_done(self)

    def abort(self) -> None:
        session = self.session
        self.drop_held()
        if not self.done:
            self.done = True
            session.owners.pop(self.link, None)
            session.conn.abort_stream(self.delivery)
            if self.pooled:
                session.link_free(self.link)  # the far end sees the abort, keeps the link
                session.stream_done(self)
            else:
                session.conn.close_link(self.link)
            self.flush()


class _TransitSink:
    """At a transit router: bytes of an incoming stream go on to the next hop."""

    __slots__ = ("out",)

    def __init__(self, out: RemoteStream) -> None:
        self.out = out

    def data(self, chunk: bytes) -> None:
        self.out.write(chunk)

    def end(self, aborted: bool, length: int | None = None) -> None:
        if aborted:
            self.out.abort()
        else:
            self.out.end(length)  # passed on as announced: the far end checks it


class _TransitOwner:
    """The next hop ended our outgoing half early: end the incoming half too."""

    __slots__ = ("header", "in_link", "session")

    def __init__(self, session: LinkSession, in_link: int, header: StreamHeader) -> None:
        self.session = session
        self.in_link = in_link
        self.header = header  # the incoming stream's: its pooled link may carry another by now

    def link_closed(self, condition: str | None, description: str | None) -> None:
        self.session.refuse_stream(
            self.in_link, condition or "skupper:path-lost", description or "", self.header
        )
