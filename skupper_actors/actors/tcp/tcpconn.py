"""TcpConnectionActor: one TCP connection at the edge of the VAN, ingress or egress.

The actor holds the socket, the watcher that reads it and the writer that writes it;
what the connection *is* lives in protocol.tcp.connection (its two halves and the
clean-end rule): the actor feeds it the events it sees and carries out the effects it
returns. How a connection is set up (the ingress's attempts, the egress's connect) is
in tcpends.py, one subclass per side.
"""

from __future__ import annotations

import errno
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import gevent

from skupper_actors.kernel import Actor
from skupper_actors.protocol.addressing import Destination, DistributionMode
from skupper_actors.protocol.tcp import (
    Attempts,
    Closing,
    Effect,
    Event,
    Half,
    StreamHeader,
    TcpConnection,
)

from ..context import RouterContext
from ..health import close_watcher
from ..vanflow_messages import BiflowClosed, CoRecordClosed, FirstByteBack, tell_vanflow
from .dataplane import EgressSink, OutStream
from .tcpedge import ServerAddress, SocketSink, TcpCounters, close_cleanly, reset

READ_SIZE = 256 * 1024
_OPEN = Half.OPEN
_SOCKET_CLOSED = OSError(errno.EBADF, "the connection's socket was closed")


class AttemptOwner:
    """The owner of one attempt's outgoing stream: a late word about an attempt given
    up already never reaches the next one."""

    __slots__ = ("actor", "attempt")

    def __init__(self, actor: TcpConnectionActor, attempt: int) -> None:
        self.actor = actor
        self.attempt = attempt

    def link_closed(self, condition: str | None, description: str | None) -> None:
        self.actor.path_closed(self.attempt, condition, description or condition or "path closed")


def _no_read() -> None:
    """A finished connection's reader: it reads nothing (its watcher is closed)."""


class TcpConnectionActor(Actor, ABC):
    """One TCP connection at the edge of the VAN. A subclass (tcpends.py) sets it up
    (``_begin``): from loop callbacks (the ingress; the egress once its server's address
    is known), or in a greenlet (``_set_up_in_greenlet``)."""

    lifecycle_log_level = "debug"
    mailbox_size = 64
    hibernates = True  # it reads and writes from watcher callbacks; its mailbox is for its end
    wakes_inline = True  # its end and its stop never block: handled without a greenlet
    releases_on_exit = True  # its refs let it go: freed at once, no cyclic garbage

    def __init__(
        self,
        ctx: RouterContext,
        counters: TcpCounters,
        routing_key: str,
        *,
        client: Any = None,
        header: StreamHeader | None = None,
        egress_sink: EgressSink | None = None,
        server: ServerAddress | None = None,
        window: int | None = None,
        distribution: DistributionMode | None = None,
        adaptor_name: str = "",
        peer: Any = None,
    ) -> None:
        super().__init__()
        self.adaptor_name = adaptor_name
        self.peer = peer  # the client's address, as accept gave it (ingress)
        self.distribution = distribution
        self.ctx = ctx
        self.dp = ctx.dataplane
        self.counters = counters
        self.routing_key = routing_key
        #: the client's or server's socket: a plain non-blocking socket (no gevent
        #: wrapper: it is read and written from callbacks, waited on by watchers)
        self.sock = client
        self.header = header
        self.egress_sink = egress_sink
        self.server = server
        window = window or ctx.tcp_window
        self.conn = TcpConnection(window, max(1, min(window // 4, 256 << 10)))
        self._acker = self.conn.acker  # counted per chunk written: one lookup less
        self.attempts = Attempts()
        self._budget = self.dp.budget
        self._held_ack: int | None = None  # an acknowledgement held while over the budget
        self.inbound = SocketSink(self._budget)
        self.out: OutStream | None = None
        self.peer_router: str | None = None
        self.refusal: tuple[str | None, str] | None = None  # the current attempt's
        # Reading the socket, once set up, is a watcher callback on the hub, not a
        # greenlet blocked in recv: an idle connection holds no greenlet but its actor's.
        self._watcher: Any = None
        self._pumping = False  # set-up done: the socket is read by the watcher
        self._finished = False
        self.started_at = time.monotonic()
        self._runner: gevent.Greenlet[Any, Any] | None = None
        self._writer: gevent.Greenlet[Any, Any] | None = None
        self._room: Any = None  # the writer's watcher, waiting for room in the socket
        self._dest: Destination | None = None
        self._first = True
        self._in_direction = ""
        self._raw: Any = None
        self._early_end: Event | None = None  # the client's EOF or reset, read with early bytes
        self._send_error: OSError | None = None  # a direct send's failure (see _send_now)
        # vanflow: the biflow's identity, the first byte in and the first byte out (each
        # taken once: the watcher's first callback hands over to the plain one)
        self.flow_id: str | None = None
        self._first_in: float | None = None
        self._first_out: float | None = None
        self._reader = self._on_first_readable

    # -- actor -----------------------------------------------------------------------------
    def on_start(self) -> None:
        self.counters.opened += 1
        self.counters.active += 1
        self._begin()

    def _set_up_in_greenlet(self, set_up: Callable[[], None]) -> None:
        """Run a set-up that blocks in a greenlet of its own (the connection ends with
        it unless it got as far as pumping the socket)."""
        self._runner = gevent.spawn(set_up)
        # rawlink: called from the hub when the set-up ends (``link`` would start a
        # greenlet for the call); _runner_done never blocks
        self._runner.rawlink(self._runner_done)

    def on_stop(self, reason: object) -> None:
        for greenlet in (self._runner, self._writer):
            if greenlet is not None and not greenlet.dead and greenlet is not gevent.getcurrent():
                greenlet.kill(block=False)
        room, self._room = self._room, None
        if room is not None:  # the writer waits on it: wake it before the socket goes
            gevent.get_hub().cancel_wait(room, _SOCKET_CLOSED, True)
        self._finished = True  # nothing more to tell this actor
        self._apply(self.conn.handle(Event.STOP), "the connection ended")
        self._close_watcher()
        self._reader = _no_read  # (a bound method of its own: a cycle, kept no longer)
        self._forget()
        self._budget.forget(self)
        self.inbound.discard()
        if self.egress_sink is not None:
            self.egress_sink.discard()
        if self.sock is not None:
            if self.conn.closed is Closing.CLEAN:
                close_cleanly(self.sock)
            else:
                reset(self.sock)  # anything unfinished: the peer must not see an EOF
        self.counters.active -= 1
        self.counters.closed += 1
        if self.flow_id is not None:
            self._flow_closed()

    def _flow_closed(self) -> None:
        """The biflow's end: octets from the counters the connection keeps anyway."""
        error = None
        if self.refusal is not None:
            condition, why = self.refusal
            error = f"{condition or 'refused'}: {why}"
        elif self.conn.closed is not Closing.CLEAN:
            error = "reset: the connection did not end cleanly"
        assert self.flow_id is not None
        if self.egress_sink is None:
            message: BiflowClosed | CoRecordClosed = BiflowClosed(
                identity=self.flow_id,
                at=time.time(),
                octets=self.conn.window.sent,
                octets_reverse=self.conn.acker.written,
                error=error,
            )
        else:
            message = CoRecordClosed(identity=self.flow_id, at=time.time(), error=error)
        tell_vanflow(self.ctx, message)

    def _runner_done(self, runner: gevent.Greenlet[Any, Any]) -> None:
        if self._runner is runner:
            self._runner = None  # a dead greenlet still costs ~0.5 KiB per connection
        failed = runner.exception is not None and not isinstance(
            runner.exception, gevent.GreenletExit
        )
        if failed:
            self.counters.errors += 1
            self.log.error("tcp_connection_failed", exc_info=runner.exception)
        if failed or not self._pumping:
            self._finish()  # else the connection's end finishes it

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self.stop_soon()  # from a loop callback: no mailbox round trip

    # -- events in, effects out ---------------------------------------------------------------
    @abstractmethod
    def _begin(self) -> None:
        """Set this side up (a subclass's, in tcpends.py), then ``_pump``; never blocks
        (from loop callbacks, or ``_set_up_in_greenlet``)."""

    def path_closed(self, attempt: int, condition: str | None, why: str) -> None:
        """The link carrying an outgoing stream ended before the stream did."""
        if attempt == self.attempts.current:  # else an attempt given up already
            self._event(Event.PATH_LOST, why)

    def _event(self, event: Event, why: str) -> None:
        self._apply(self.conn.handle(event), why, event)

    def _apply(self, effects: list[Effect], why: str, event: Event | None = None) -> None:
        for effect in effects:
            if effect is Effect.STOP_READING:
                self._close_watcher()
            elif effect is Effect.END_STREAM:
                if self.out is not None:
                    self.out.end(self.conn.window.sent)
            elif effect is Effect.ABORT_STREAM:
                if self.out is not None:
                    self.out.abort()
            elif effect is Effect.STOP_SENDER:
                lost = event is Event.PATH_LOST
                self._stop_sender("skupper:path-lost" if lost else "skupper:connection-failed", why)
            elif effect is Effect.SHUTDOWN_WRITE:
                try:  # noqa: SIM105  (per connection: no contextlib)
                    self.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            elif effect is Effect.RESET:
                self.log.debug("tcp_connection_reset", reason=why)
                reset(self.sock)  # now: the peer learns at once
                self._finish()
            elif effect is Effect.CLOSE:
                self._finish()

    def _stop_sender(self, condition: str, why: str) -> None:
        """The incoming stream can no longer be written: stop it at its sender (aborting
        our own stream tells it nothing once that stream ended cleanly)."""
        sink = self.inbound
        refuse = sink.refuse
        if refuse is not None and sink.ended is None:
            sink.refuse = None  # once
            refuse(condition, why)

    def _on_ack(self, stream_id: str, offset: int) -> None:
        try:
            self.conn.window.on_ack(offset)
        except ValueError as error:
            self.log.warning("tcp_ack_invalid", stream=stream_id, error=str(error))
            return
        watcher = self._watcher
        if watcher is not None and not watcher.active and self.conn.window.open:
            watcher.start(self._reader)  # it stopped on a full window

    # -- both: the socket, its watcher and its writer ----------------------------------------------
    def _pump(self, out_direction: str, in_direction: str) -> None:
        """Read this socket into the outgoing stream; the incoming one is written as it comes."""
        if self.conn.closed is not None:
            return  # the path was lost while the far end answered: the socket is reset
        sink = self.inbound
        self._in_direction = in_direction
        self._raw = self.sock
        sink.direct = self._send_now
        sink.start_writer = self._ensure_writer
        self._pumping = True
        if sink.chunks or sink.ended is not None:
            self._ensure_writer()  # what arrived before the socket was ready
        if self._early_end is not None:  # the client's EOF (or reset) came with its early bytes
            self._event(self._early_end, "the client ended before the far end answered")
        if self.conn.send is _OPEN and self.conn.closed is None:
            watcher = self._take_reader()
            if watcher is None:
                watcher = gevent.get_hub().loop.io(self._raw.fileno(), 1)  # 1: readable
                watcher.start(self._reader)
            elif watcher.active:  # reading this socket already: nothing to change
                watcher.callback = self._reader
            else:  # the connect's: made to wait for writable
                watcher.events = 1
                watcher.start(self._reader)
            self._watcher = watcher

    def _take_reader(self) -> Any:
        """A watcher of this socket the set-up made (running: for reads already) to take
        over, if it has one."""
        return None

    def _on_first_readable(self) -> None:
        """``_on_readable`` until the first bytes come in: their time, once."""
        before = self.conn.window.sent
        self._on_readable()
        if self.conn.window.sent > before:
            now = time.monotonic()
            if self._first_in is None:
                self._first_in = now
            self._reader = self._on_readable
            watcher = self._watcher
            if watcher is not None:
                watcher.callback = self._on_readable
            if self.egress_sink is not None and self._first_out is not None and self.flow_id:
                # the server's first byte after our first to it: processLatency
                latency = now - self._first_out
                tell_vanflow(
                    self.ctx,
                    FirstByteBack(identity=self.flow_id, latency=latency, connector_side=True),
                )

    def _on_readable(self) -> None:
        """The socket has bytes (or its end): one read into the outgoing stream.

        Runs on the hub, so it never waits: a full window stops the watcher until an
        acknowledgement opens it again.
        """
        out = self.out
        window = self.conn.window
        try:
            room = window.size - (window.sent - window.acked)  # Window.room, inline
            if room <= 0:
                self._watcher.stop()  # until an acknowledgement opens the window
                return
            budget = self._budget
            if budget.buffered >= budget.limit:
                self._watcher.stop()  # the node holds too much: until it drains
                budget.pause(self, self._budget_resumed)
                return
            try:
                data = self._raw.recv(min(READ_SIZE, room))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                self._event(Event.LOCAL_FAIL, f"reading the socket: {error}")
                return
            if not data:
                # the end is handled from a loop callback, not here: libev runs every
                # ready watcher of a poll in one go, and 10,000 clients closing at once
                # would hold the loop for seconds (hellos missed, links dropped); gevent
                # runs callbacks 5 ms at a time between polls
                self._watcher.stop()
                gevent.get_hub().loop.run_callback(self._socket_ended)
                return
            size = len(data)
            window.sent += size  # Window.on_sent, inline (per chunk)
            self.counters.octets_in += size
            out.write(data)  # type: ignore[union-attr]  # set before the watcher starts
        except Exception as error:  # on the hub: never let it escape
            self.counters.errors += 1
            self.log.error("tcp_connection_failed", exc_info=error)
            self._event(Event.LOCAL_FAIL, "the connection failed")

    def _socket_ended(self) -> None:
        """The socket's end of file, read by ``_on_readable``, now handled."""
        if self._watcher is None:
            return  # the connection closed meanwhile
        try:
            if self._send_error is not None:
                self._event(Event.LOCAL_FAIL, f"writing the socket: {self._send_error}")
            else:
                self._event(Event.LOCAL_END, "the socket's peer ended")
        except Exception as error:  # on the hub: never let it escape
            self.counters.errors += 1
            self.log.error("tcp_connection_failed", exc_info=error)
            self._event(Event.LOCAL_FAIL, "the connection failed")

    def _close_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        close_watcher(watcher)

    def _ensure_writer(self) -> None:
        writer = self._writer
        if (writer is None or writer.dead) and self.conn.receive is _OPEN:
            sink = self.inbound
            if sink.chunks and not sink.busy and sink.direct is not None:
                self._send_queued(sink)  # what came before the socket was ready, most often
            if not sink.chunks and not sink.busy:
                self._write_loop()  # only the end to handle, which never waits: no greenlet
            else:
                self._writer = gevent.spawn(self._write_loop)

    def _send_queued(self, sink: SocketSink) -> None:
        """Send queued chunks as far as the socket takes them without waiting (the
        writer greenlet, needed only if it does not, keeps the rest in order)."""
        chunks = sink.chunks
        budget = sink.budget
        while chunks and self._send_error is None:
            chunk = chunks[0]
            sent = self._send_now(chunk)
            if sent:
                budget.sub(sent)
            if sent < len(chunk):
                if sent:
                    chunks[0] = chunk[sent:]
                return
            chunks.popleft()

    def _send_now(self, chunk: bytes) -> int:
        """Write what the socket takes without waiting; the writer greenlet does the rest."""
        try:
            sent: int = self._raw.send(chunk)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as error:
            # the writer greenlet meets the error and ends the connection; until then, a
            # read's end of file is no clean end: Linux hands a reset to one call only, and
            # this send took it (the read after it returns b"")
            self._send_error = error
            return 0
        if self._first:
            self._written(sent)
            return sent
        # _written, inline for every chunk but the first (a call per request less)
        self.counters.octets_out += sent
        offset = self._acker.on_written(sent)
        if offset is not None:
            self._acknowledge(offset)
        return sent

    def _written(self, count: int) -> None:
        if self._first:
            self._first = False
            now = time.monotonic()
            if self.egress_sink is None:  # ingress: the server's first byte is here
                self.counters.first_byte_latency_sum += now - self.started_at
                self.counters.first_byte_samples += 1
                if self.flow_id is not None and self._first_in is not None:
                    latency = now - self._first_in
                    tell_vanflow(self.ctx, FirstByteBack(identity=self.flow_id, latency=latency))
            else:
                self._first_out = now  # egress: our first byte to the server
        self.counters.octets_out += count
        offset = self._acker.on_written(count)
        if offset is not None:
            self._acknowledge(offset)

    def _acknowledge(self, offset: int) -> None:
        """``offset`` bytes are written: acknowledge them to the far end, unless the
        node holds too much (then once it has drained)."""
        budget = self._budget
        if budget.buffered >= budget.limit:
            # over the budget: the far sender's window stays shut until the node drains
            self._held_ack = offset
            budget.pause(self, self._budget_resumed)
            return
        assert self.header is not None and self.peer_router is not None
        self.dp.send_ack(self.peer_router, self.header.stream_id, self._in_direction, offset)

    def _budget_resumed(self) -> None:
        """The node's buffered bytes fell below the budget's resume mark: send the held
        acknowledgement, read the socket again."""
        offset = self._held_ack
        if offset is not None and not self._finished:
            self._held_ack = None
            assert self.header is not None and self.peer_router is not None
            self.dp.send_ack(self.peer_router, self.header.stream_id, self._in_direction, offset)
        watcher = self._watcher
        if watcher is not None and not watcher.active and self.conn.window.open:
            watcher.start(self._reader)

    def _write_loop(self) -> None:
        """Write what the socket did not take at once; at the stream's end, tell the
        connection (which checks every announced byte was written)."""
        sink = self.inbound
        sock = self.sock
        chunks = sink.chunks
        budget = sink.budget
        while chunks:
            chunk = chunks.popleft()
            sink.busy = True
            try:
                self._send_all(sock, chunk)
            except OSError as error:
                sink.direct = sink.start_writer = None
                self._event(Event.LOCAL_FAIL, f"writing the socket: {error}")
                return
            finally:
                sink.busy = False
                budget.sub(len(chunk))  # written, failed or killed: it leaves the budget
            self._written(len(chunk))
        if sink.ended is None:
            if self._writer is gevent.getcurrent():
                self._writer = None  # it ends here: not kept by an idle connection
            return  # drained: the next chunk goes straight to the socket again
        sink.direct = sink.start_writer = None
        if sink.ended:
            self._event(Event.FAR_ABORT, "stream aborted by the far end")
            return
        event = self.conn.classify_far_end(sink.length)
        if event is Event.FAR_SHORT:
            self.log.warning(
                "tcp_stream_truncated",
                announced=sink.length,
                written=self.conn.acker.written,
                stream=self.header.stream_id if self.header else None,
            )
        self._event(event, "the far end's stream ended")

    def _send_all(self, sock: Any, chunk: bytes) -> None:
        """Send all of ``chunk``, waiting (the writer greenlet) for room as gevent's
        ``sendall`` would; the watcher is kept so that ``on_stop`` can cancel the wait
        before the socket closes, as gevent's ``close`` does."""
        view = memoryview(chunk)
        while view:
            try:
                sent = sock.send(view)
            except (BlockingIOError, InterruptedError):
                watcher = self._room
                if watcher is None:
                    watcher = self._room = gevent.get_hub().loop.io(sock.fileno(), 2)
                gevent.get_hub().wait(watcher)
                continue
            view = view[sent:]

    def _forget(self) -> None:
        if self.header is not None:
            self.dp.forget_stream(self.header.stream_id)
        if self._dest is not None:
            self.dp.release(self._dest)
            self._dest = None
