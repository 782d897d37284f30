"""SessionOutput: how a LinkSession's frames leave, without ever blocking its caller.

What the socket takes now is sent at once; the rest waits for the writer greenlet, which
waits for room. ``flush_soon`` turns every flush asked for in one loop pass into one
write (cut from linksession.py).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import gevent
import gevent.event

from skupper_actors.protocol import amqp

from .wire import Wire

if TYPE_CHECKING:
    from .remotestream import RemoteStream


class SessionOutput:
    """The output half of ``LinkSession`` (which sets these attributes up)."""

    conn: amqp.AmqpConnection
    wire: Wire
    loop: Any
    held: dict[RemoteStream, None]
    _stalled: bool
    _wake: gevent.event.Event
    _writer: gevent.Greenlet[Any, Any] | None
    _flush_due: bool

    def flush(self) -> None:
        """Send the frames the engine holds now, without ever blocking the caller.

        The caller may be this connection's own reader: if it blocked on a full socket
        while the peer's reader did the same, neither would read again. What the socket
        does not take at once is left to the writer greenlet, which waits for room.
        """
        if self._stalled:
            return  # the writer greenlet is waiting for room and sends everything then
        if not self.held and not self.conn.has_data_to_send:
            # nothing to write (most flushes after a read that only carried data): and
            # the wire holds no ciphertext either, or this output would be stalled
            return
        try:
            done = self._push()
        except (OSError, ValueError):
            self.shutdown()  # the socket failed under us: make the reader see the end too
            return
        if not done:
            self._stalled = True
            self._wake.set()

    def flush_soon(self) -> None:
        """Flush once the running greenlet gives the loop up: every flush asked for in
        the meantime (the messages of one batch) becomes one write."""
        if not self._flush_due:
            self._flush_due = True
            self.loop.run_callback(self._flush_soon_now)

    def _flush_soon_now(self) -> None:
        self._flush_due = False
        self.flush()

    def _push(self) -> bool:
        """Hand the engine's output to the wire; True when all of it has left."""
        conn = self.conn
        wire = self.wire
        while True:
            view = conn.peek_output()
            if not view:
                if self.held and self._feed_held():
                    continue  # frame what moved
                return wire.drain()
            sent = wire.write_some(view)
            if sent:
                conn.pop_output(sent)
            if sent < len(view):
                return False

    def _feed_held(self) -> bool:
        moved = False
        for stream in list(self.held):
            moved = stream.feed() or moved
        return moved

    def start_writer(self) -> None:
        self._writer = gevent.spawn(self._write_loop)

    def stop_writer(self) -> None:
        if self._writer is not None and self._writer is not gevent.getcurrent():
            self._writer.kill(block=False)
        self._writer = None

    def _write_loop(self) -> None:
        wake = self._wake
        try:
            while True:
                wake.wait()
                wake.clear()
                self._send_all()
                self._stalled = False
        except (OSError, ValueError):
            self.shutdown()

    def flush_now(self, timeout: float = 1.0) -> None:
        """Send what is pending before closing (the close frame), waiting at most ``timeout``."""
        with contextlib.suppress(OSError, ValueError), gevent.Timeout(timeout, False):
            self._send_all()

    def _send_all(self) -> None:
        """Send everything, waiting for room as often as needed (writer and close only)."""
        while not self._push():
            self.wire.wait_writable()

    def shutdown(self) -> None:
        """Shut the connection down under any TLS layer: the reader sees the end."""
        with contextlib.suppress(OSError):
            self.wire.shutdown()

