"""TcpConnectionActor: one TCP connection at the edge of the VAN, ingress or egress.

The ingress picks a destination for the routing key, opens the forward stream and waits
until the far end has connected to its server (the reverse stream arrives) before it
reads the client: a refused attempt can then go to another destination with nothing to
replay. The egress connects to host:port and opens the reverse stream.

Each direction has an end-to-end byte window (protocol.tcpstream.Window): the reading
end stops reading its socket while the window is full; the writing end acknowledges
bytes as it writes them. Half-close travels as the end of a stream; a reset (or a lost
path) travels as an aborted stream and ends in a reset: never a silent truncation.
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event
import gevent.socket

from skupper_actors.kernel import Actor
from skupper_actors.protocol.addressing import Destination, DistributionMode
from skupper_actors.protocol.tcpstream import (
    FORWARD,
    REVERSE,
    Acknowledger,
    StreamHeader,
    Window,
    forward_header,
    reverse_header,
)

from .context import RouterContext
from .dataplane import EgressSink, OutStream, StreamRefused
from .tcpedge import (
    ServerAddress,
    SocketSink,
    TcpCounters,
    close_cleanly,
    reset,
    reset_on_close,
)

READ_SIZE = 256 * 1024
CONNECT_TIMEOUT = 5.0
ACCEPT_TIMEOUT = 10.0  # forward stream sent -> reverse stream must arrive
MAX_ATTEMPTS = 3
# Client bytes already waiting when the forward stream opens go with it at once, before
# the far end has answered (one round trip less for protocols where the client speaks
# first); they are kept to be sent again if the attempt is refused and another follows.
EARLY_DATA = 64 * 1024
# Refusals that say the destination itself cannot serve (the next attempt goes elsewhere);
# any other (a path lost on the way) may try the same destination by another path.
DESTINATION_REFUSALS = frozenset({"skupper:connect-failed", "skupper:no-connector", "skupper:busy"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Finished:
    reason: str


class TcpConnectionActor(Actor):
    """One TCP connection at the edge of the VAN (ingress or egress side)."""

    lifecycle_log_level = "debug"
    mailbox_size = 64

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
        window: int = 1 << 20,
        distribution: DistributionMode | None = None,
    ) -> None:
        super().__init__()
        self.distribution = distribution
        self.ctx = ctx
        self.dp = ctx.dataplane
        self.counters = counters
        self.routing_key = routing_key
        self.sock = client
        self.header = header
        self.egress_sink = egress_sink
        self.server = server
        self.window = Window(window)
        self.acker = Acknowledger(max(1, window // 4))
        self.inbound = SocketSink()
        self.out: OutStream | None = None
        self.peer_router: str | None = None
        self.lost: str | None = None  # why the path failed, once it has
        self.refused: str | None = None
        self.refused_by_destination = False
        # Reading the socket, once set up, is a watcher callback on the hub, not a
        # greenlet blocked in recv: an idle connection holds no greenlet but its actor's.
        self._watcher: Any = None
        self._pumping = False  # set-up done: the socket is read by the watcher
        self._read_done = False  # this socket's direction has ended (or failed)
        self._finished = False
        self.started_at = time.monotonic()
        self._runner: gevent.Greenlet[Any, Any] | None = None
        self._dest: Destination | None = None
        self._first = True
        self._in_direction = ""
        self._raw: Any = None
        self._writer: gevent.Greenlet[Any, Any] | None = None
        self._inbound_done = False  # the other direction has ended (or failed)
        self._read_clean = False  # this socket's direction ended with an EOF
        self._client_ended = False  # the client's EOF was read before the far end answered
        self._client_error: OSError | None = None  # the client reset before it answered
        self._write_clean = False  # the other direction ended and was shut down cleanly

    # -- actor -----------------------------------------------------------------------------
    def on_start(self) -> None:
        self.counters.opened += 1
        self.counters.active += 1
        body = self._ingress if self.header is None else self._egress
        runner = gevent.spawn(body)
        runner.link(self._runner_done)
        self._runner = runner

    def on_receive(self, message: object) -> Any:
        if isinstance(message, _Finished):
            self.stop_self()
        return super().on_receive(message)

    def on_stop(self, reason: object) -> None:
        self._close_watcher()
        for greenlet in (self._runner, self._writer):
            if greenlet is not None and not greenlet.dead and greenlet is not gevent.getcurrent():
                greenlet.kill(block=False)
        if self.out is not None and self.lost is None and self.inbound.ended is None:
            self.out.abort()
        self._stop_inbound("the connection ended")
        self._forget()
        if self.sock is not None:
            if self._read_clean and self._write_clean:
                close_cleanly(self.sock)
            else:
                reset(self.sock)  # anything unfinished: the peer must not see an EOF
        self.counters.active -= 1
        self.counters.closed += 1

    def _runner_done(self, runner: gevent.Greenlet[Any, Any]) -> None:
        failed = runner.exception is not None and not isinstance(
            runner.exception, gevent.GreenletExit
        )
        if failed:
            self.counters.errors += 1
            self.log.error("tcp_connection_failed", exc_info=runner.exception)
        if failed or not self._pumping:
            self._finish()  # else both directions' ends finish the connection

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            if self.ref.alive:
                self.ref.tell(_Finished(reason="done"))

    def _maybe_finish(self) -> None:
        if self._read_done and self._inbound_done:
            self._finish()

    # -- stream owner (called by the data plane) ------------------------------------------------
    def link_closed(self, condition: str | None, description: str | None) -> None:
        why = description or condition or "path closed"
        if self.egress_sink is None and not self.inbound.accepted.is_set():
            self.refused = why  # before the far end connected: try again
            self.refused_by_destination = condition in DESTINATION_REFUSALS
            self.inbound.accepted.set()
        else:
            self.lost = why
            self.inbound.end(True)
            if self.egress_sink is not None:
                # the ingress must learn too: before it was accepted it tries again,
                # after it resets its client
                self.egress_sink.refuse("skupper:path-lost", why)
            self._stop_reading()

    def _on_ack(self, stream_id: str, offset: int) -> None:
        try:
            self.window.on_ack(offset)
        except ValueError as error:
            self.log.warning("tcp_ack_invalid", stream=stream_id, error=str(error))
            return
        watcher = self._watcher
        if watcher is not None and not watcher.active and self.window.open:
            watcher.start(self._on_readable)  # it stopped on a full window

    # -- ingress ---------------------------------------------------------------------------------
    def _read_early(self) -> bytes:
        """What the client has sent so far (up to EARLY_DATA), without waiting."""
        try:
            data: bytes = self.sock._sock.recv(EARLY_DATA)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as error:
            self._client_error = error  # a reset: the far end must see an abort
            self._client_ended = True
            return b""
        if not data:
            self._client_ended = True  # already half-closed: the stream ends after accept
        return data

    def _ingress(self) -> None:
        excluded: set[str] = set()
        tried: list[str] = []
        early = b""
        me = self.dp.router_id
        for _ in range(MAX_ATTEMPTS):
            dest = self.dp.select(self.routing_key, frozenset(excluded), self.distribution)
            if dest is None:
                break
            tried.append(dest.router_id)
            stream_id = self.dp.new_stream_id()
            header = forward_header(stream_id, me, dest.router_id, self.routing_key)
            if len(tried) > 1:
                self.inbound = SocketSink()  # a fresh one per attempt after the first
            self.refused = None
            self.refused_by_destination = True  # unless the path says otherwise
            self.dp.waiting[stream_id] = self.inbound
            self.dp.acks[(stream_id, FORWARD)] = self._on_ack
            self._dest = dest
            self.dp.outstanding[self._dest] += 1
            self.header = header
            try:
                self.out = self.dp.open_stream(header, self)
            except StreamRefused as refused:
                self.refused = refused.description
                self.refused_by_destination = refused.condition in DESTINATION_REFUSALS
            else:
                if not early and not self._client_ended:
                    early = self._read_early()
                self.window = Window(self.window.size)  # a new stream: offsets from 0
                if early:
                    self.window.on_sent(len(early))
                    self.out.write(early)
                if not self.inbound.accepted.wait(ACCEPT_TIMEOUT):
                    self.refused = f"no answer from {dest.router_id} within {ACCEPT_TIMEOUT:g} s"
            if self.refused is None:
                self.peer_router = dest.router_id
                self.counters.octets_in += len(early)
                self._pump(FORWARD, REVERSE)
                return
            self.log.info("tcp_attempt_refused", router=dest.router_id, reason=self.refused)
            if self.out is not None:
                self.out.abort()
                self.out = None
            self._forget()
            if self.refused_by_destination:
                excluded.add(dest.router_id)
            else:
                gevent.sleep(0.05)  # let routing take the lost path out first
        self.counters.refused += 1
        self.log.info("tcp_connection_refused", routing_key=self.routing_key, tried=tried)
        if tried:
            reset(self.sock)  # every destination refused: as a refused server would
        else:
            close_cleanly(self.sock)  # no destination at all: accept and close

    # -- egress ----------------------------------------------------------------------------------
    def _egress(self) -> None:
        assert self.header is not None and self.egress_sink is not None and self.server
        try:
            sock = self.server.connect(CONNECT_TIMEOUT)
        except OSError as error:
            self.counters.refused += 1
            self.log.info("tcp_connect_failed", server=str(self.server), error=str(error))
            self.egress_sink.refuse("skupper:connect-failed", f"{self.server}: {error}")
            return
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reset_on_close(sock)
        self.sock = sock
        forward = self.header
        self.peer_router = forward.source
        reverse = reverse_header(forward)
        self.dp.acks[(forward.stream_id, REVERSE)] = self._on_ack
        self.egress_sink.attach(self.inbound)
        self.inbound.refuse = self.egress_sink.refuse
        try:
            self.out = self.dp.open_stream(reverse, self, via=self.egress_sink.via)
        except StreamRefused as refused:
            self.log.info("tcp_reverse_refused", reason=refused.description)
            self.egress_sink.refuse(refused.condition, refused.description)
            reset(sock)
            return
        self._pump(REVERSE, FORWARD)

    # -- both ------------------------------------------------------------------------------------
    def _pump(self, out_direction: str, in_direction: str) -> None:
        """Read this socket into the outgoing stream; the incoming one is written as it comes."""
        out = self.out
        sock = self.sock
        assert out is not None and sock is not None
        sink = self.inbound
        self._in_direction = in_direction
        self._raw = sock._sock  # the non-blocking socket under gevent's
        sink.direct = self._send_now
        sink.start_writer = self._ensure_writer
        self._pumping = True
        if sink.chunks or sink.ended is not None:
            self._ensure_writer()  # what arrived before the socket was ready
            if self._read_done:
                return  # the far end aborted already: the socket is closed
        if self._client_ended:  # the client's EOF (or reset) came with its early bytes
            self._read_ended(self._client_error)
        elif self.lost is not None:
            self._stop_reading()
        else:
            self._watcher = gevent.get_hub().loop.io(self._raw.fileno(), 1)  # 1: readable
            self._watcher.start(self._on_readable)

    def _on_readable(self) -> None:
        """The socket has bytes (or its end): one read into the outgoing stream.

        Runs on the hub, so it never waits: a full window stops the watcher until an
        acknowledgement opens it again.
        """
        out = self.out
        window = self.window
        try:
            if self.lost is not None or out is None:
                self._stop_reading()
                return
            room = window.room()
            if room <= 0:
                self._watcher.stop()  # until an acknowledgement opens the window
                return
            try:
                data = self._raw.recv(min(READ_SIZE, room))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                self._read_ended(error)
                return
            if not data:
                self._read_ended(None)
                return
            window.on_sent(len(data))
            self.counters.octets_in += len(data)
            out.write(data)
        except Exception as error:  # on the hub: never let it escape
            self.counters.errors += 1
            self.log.error("tcp_connection_failed", exc_info=error)
            if out is not None:
                out.abort()
            self._stop_reading()
            self.inbound.end(True)

    def _read_ended(self, error: OSError | None) -> None:
        """This socket's direction ended: cleanly (None) or reset by the local peer, which
        the far end must see as an abort, never as a clean end."""
        out = self.out
        assert out is not None
        if error is None:
            out.end()
            self._read_clean = True
            self._stop_reading()
        else:
            self.log.debug("tcp_read_failed", error=str(error))
            out.abort()
            self._stop_reading()
            self.inbound.end(True)

    def _stop_reading(self) -> None:
        self._close_watcher()
        if self._pumping and not self._read_done:
            self._read_done = True
            self._maybe_finish()

    def _close_watcher(self) -> None:
        watcher = self._watcher
        if watcher is not None:
            self._watcher = None
            watcher.stop()
            watcher.close()

    def _ensure_writer(self) -> None:
        writer = self._writer
        if (writer is None or writer.dead) and not self._inbound_done:
            sink = self.inbound
            if not sink.chunks and not sink.busy:
                self._write_loop()  # only the end to handle, which never waits: no greenlet
            else:
                self._writer = gevent.spawn(self._write_loop)

    def _send_now(self, chunk: bytes) -> int:
        """Write what the socket takes without waiting; the writer greenlet does the rest."""
        try:
            sent: int = self._raw.send(chunk)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            return 0  # the writer greenlet meets the error and ends the connection
        self._written(sent)
        return sent

    def _written(self, count: int) -> None:
        if self._first:
            self._first = False
            if self.egress_sink is None:  # ingress: the server's first byte is here
                self._first_byte()
        self.counters.octets_out += count
        offset = self.acker.on_written(count)
        if offset is not None:
            assert self.header is not None and self.peer_router is not None
            self.dp.send_ack(self.peer_router, self.header.stream_id, self._in_direction, offset)

    def _write_loop(self) -> None:
        """Write what the socket did not take at once; finish the direction at its end."""
        sink = self.inbound
        sock = self.sock
        assert sock is not None
        chunks = sink.chunks
        while chunks:
            chunk = chunks.popleft()
            sink.busy = True
            try:
                sock.sendall(chunk)
            except OSError:
                sink.direct = sink.start_writer = None
                if self.out is not None:
                    self.out.abort()
                self._stop_inbound("the local socket failed")
                self.lost = "local socket failed"
                self._stop_reading()
                self._inbound_done = True
                self._maybe_finish()
                return
            finally:
                sink.busy = False
            self._written(len(chunk))
        if sink.ended is None:
            return  # drained: the next chunk goes straight to the socket again
        sink.direct = sink.start_writer = None
        self._inbound_done = True
        if sink.ended:
            self.lost = self.lost or "stream aborted by the far end"
            self._stop_reading()  # before the socket closes under the watcher
            reset(sock)
            if self.out is not None:
                self.out.abort()
            self._maybe_finish()
            return
        # No final acknowledgement: the sender ended its stream, it reads no more.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        self._write_clean = True
        self._maybe_finish()

    def _stop_inbound(self, why: str) -> None:
        """The incoming stream can no longer be written: stop it at its sender.

        Aborting our own outgoing stream tells the far end nothing when that stream has
        already ended cleanly; the sender of the incoming one would wait for
        acknowledgements forever, its socket unread, both routers holding the stream.
        """
        sink = self.inbound
        refuse = sink.refuse
        if refuse is None or sink.ended is not None or not self._pumping:
            return
        sink.refuse = None  # once
        refuse("skupper:connection-failed", why)

    def _first_byte(self) -> None:
        self.counters.first_byte_latency_sum += time.monotonic() - self.started_at
        self.counters.first_byte_samples += 1

    def _forget(self) -> None:
        header = self.header
        if header is not None:
            self.dp.waiting.pop(header.stream_id, None)
            self.dp.acks.pop((header.stream_id, FORWARD), None)
            self.dp.acks.pop((header.stream_id, REVERSE), None)
        if self._dest is not None:
            self.dp.outstanding[self._dest] -= 1
            if self.dp.outstanding[self._dest] <= 0:
                del self.dp.outstanding[self._dest]
            self._dest = None
