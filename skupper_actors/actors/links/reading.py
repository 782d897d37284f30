"""How a link's connection is read (cut from link.py): small reads by the socket
watcher's callback on the loop, large ones by the link's greenlet in pieces that give the
loop up (docs/adr/0021, second addendum; docs/limits-links.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gevent.hub import Waiter

from ..health import yield_to_loop
from .linksession import LinkSession
from .wire import READ_SIZE, Wire

#: a connection's reader lets the other greenlets run after holding the loop this long
#: (a peer that floods it with frames must not starve the other links' HELLOs)
READ_SLICE = 0.005
MIN_PIECE = 2 << 10
MAX_PIECE = READ_SIZE  # a whole read: stream bytes go to the engine as they came
#: reads up to this size are handled on the loop by a watcher's callback (their events
#: are few); larger ones by the link's greenlet, which gives the loop up between pieces
INLINE_READ_MAX = MIN_PIECE


class LinkReading:
    """LinkActor's reading half: ``_handle_events`` (the actor's) acts on what was read."""

    clock: Any
    #: the actor's (LinkActor._handle_events): acts on the engine's events; ``inline``
    #: on the loop, never yielding
    _handle_events: Callable[..., str | None]

    def _by_callback(self, session: LinkSession, wire: Wire) -> tuple[str, Any]:
        """Wait while a watcher's callback reads and handles the small reads (no greenlet
        switch per read, no wait set up and torn down: 3-4 µs a read). Returns what the
        callback hands over: ("data", a read too large to handle without giving the loop
        up), ("lost", the error), ("raise", an exception its handling raised) or
        ("ended", why the connection is over)."""
        waiter: Waiter[tuple[str, Any]] = Waiter()
        watcher = session.read_watcher
        if watcher is None:
            watcher = session.read_watcher = session.loop.io(wire.fileno(), 1)  # readable
        watcher.start(self._readable, session, wire, waiter, watcher)
        try:
            return waiter.get()
        finally:
            watcher.stop()

    def _readable(
        self, session: LinkSession, wire: Wire, waiter: Waiter[Any], watcher: Any
    ) -> None:
        """On the loop: read what arrived and, if small, handle it here."""
        try:
            data = wire.read_now()
        except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
            watcher.stop()
            waiter.switch(("lost", error))
            return
        if data is None:
            return  # part of a record: more is on its way
        if not data or len(data) > INLINE_READ_MAX:
            watcher.stop()
            waiter.switch(("data", data))  # the end, or a large read: the greenlet's
            return
        try:
            session.last_input = self.clock.now()
            conn = session.conn
            conn.receive_data(data)
            ended = self._handle_events(session, inline=True)
            session.flush()
        except BaseException as error:  # handled by the greenlet, as before
            watcher.stop()
            waiter.switch(("raise", error))
            return
        if ended is None:
            ended = session.closing
        if ended is not None:
            watcher.stop()
            waiter.switch(("ended", ended))
        # (a read this small took every whole record held: what is left above the kernel
        # is part of a record, whose rest makes the socket readable again)

    def _receive(self, session: LinkSession, data: memoryview) -> str | None:
        """Feed what was read to the engine and act on its events, in pieces.

        Some frames cost far more than their bytes (an attach: a lookup among the
        connection's links, a link record, its flow), so a read goes in pieces whose
        size adapts: a piece that took more than half of ``READ_SLICE`` halves the next
        (down to ``MIN_PIECE``), a quick one doubles it (up to ``MAX_PIECE``: stream
        bytes stay in big pieces), and the loop is given up between pieces once this
        reader has held it for ``READ_SLICE``. A read that fits in one piece (most do)
        goes in whole, untimed.

        The slice starts again whenever the event loop has run since the reader last
        looked (it waited in ``read``): only a reader that reads on and on without
        waiting gives the loop up on purpose.
        """
        conn = session.conn
        clock = time.monotonic
        session.last_input = self.clock.now()
        iteration = session.loop.iteration
        if iteration != session.loop_iteration:
            session.loop_iteration = iteration
            session.slice_started = clock()
        size = len(data)
        if size <= session.piece:
            conn.receive_data(data)
            ended = self._handle_events(session)
            session.flush()
            if clock() - session.slice_started > READ_SLICE:
                self._yield(session)
            return ended
        start = 0
        while True:
            piece = session.piece
            began = clock()
            conn.receive_data(data[start : start + piece])
            start += piece
            ended = self._handle_events(session)
            session.flush()
            now = clock()
            took = now - began
            if took > READ_SLICE / 2:
                session.piece = max(MIN_PIECE, piece // 2)
            elif took < READ_SLICE / 8 and piece < MAX_PIECE:
                session.piece = piece * 2
            if now - session.slice_started > READ_SLICE:
                self._yield(session)
            if ended is not None or start >= size or session.closing is not None:
                return ended

    @staticmethod
    def _yield(session: LinkSession) -> None:
        """Let the loop run a whole iteration; a new slice starts after it."""
        yield_to_loop()
        session.loop_iteration = session.loop.iteration
        session.slice_started = time.monotonic()
