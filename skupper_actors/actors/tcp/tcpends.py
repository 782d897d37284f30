"""How a TCP connection is set up at each edge of the VAN; the rest is tcpconn.py.

The ingress (a listener's client) picks a destination for the routing key, opens the
forward stream and waits until the far end has connected to its server (the reverse
stream arrives) before it reads the client: a refused attempt can then go to another
destination (protocol.tcp.attempts decides which) with nothing to replay but the early
bytes it kept. The egress (a connector's stream) connects to host:port and opens the
reverse stream, back the way the forward one came.
"""

from __future__ import annotations

import contextlib
import socket
import time

import gevent

from skupper_actors.protocol.tcp import (
    FORWARD,
    REVERSE,
    Event,
    GiveUp,
    forward_header,
    reverse_header,
    trace_of,
)

from ..vanflow_messages import BiflowOpened, CoRecordClosed, CoRecordOpened, tell_vanflow
from .dataplane import StreamRefused
from .tcpconn import AttemptOwner, TcpConnectionActor
from .tcpedge import SocketSink, close_cleanly, reset, reset_on_close

CONNECT_TIMEOUT = 5.0
ACCEPT_TIMEOUT = 10.0  # forward stream sent -> reverse stream must arrive
# Client bytes already waiting when the forward stream opens go with it at once, before
# the far end has answered; they are kept to be sent again if another attempt follows.
EARLY_DATA = 64 * 1024


class IngressConnection(TcpConnectionActor):
    """A listener's client: attempts toward the destinations of its routing key."""

    def path_closed(self, attempt: int, condition: str | None, why: str) -> None:
        if attempt != self.attempts.current or self.refusal is not None:
            return  # an attempt given up, or refused, already
        if not self._pumping and not self.inbound.accepted.is_set():
            self.refusal = (condition, why)  # before the far end connected: try again
            self.inbound.accepted.set()
            return
        super().path_closed(attempt, condition, why)

    def _read_early(self) -> bytes:
        """What the client has sent so far (up to EARLY_DATA), without waiting."""
        try:
            data: bytes = self.sock._sock.recv(EARLY_DATA)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            self._early_end = Event.LOCAL_FAIL  # the far end must see an abort
            return b""
        if not data:
            self._early_end = Event.LOCAL_END  # half-closed already: the stream ends then
        elif self._first_in is None:
            self._first_in = time.monotonic()
        return data

    def _flow_opened(self) -> None:
        """The biflow begins (its identity travels in the forward stream's header)."""
        self.flow_id = self.ctx.flow_ids.next()
        try:
            host, port = self.sock.getpeername()[:2]
        except OSError:
            host, port = "", 0
        conn = self.conn
        tell_vanflow(
            self.ctx,
            BiflowOpened(
                identity=self.flow_id,
                listener=self.adaptor_name,
                source_host=host,
                source_port=port,
                at=time.time(),
                octets=lambda: (conn.window.sent, conn.acker.written),
            ),
        )

    def _set_up(self) -> None:
        attempts = self.attempts
        early = b""
        outcome: GiveUp | None = None
        self._flow_opened()
        while outcome is None:
            dest = self.dp.select(self.routing_key, attempts.excluded, self.distribution)
            if dest is None or not attempts.may_start():
                outcome = attempts.no_destination()
                break
            attempt = attempts.start(dest.router_id)
            stream_id = self.dp.new_stream_id()
            header = forward_header(
                stream_id, self.dp.router_id, dest.router_id, self.routing_key, self.flow_id
            )
            self.header, self._dest, self.refusal = header, dest, None
            if attempt > 1:
                self.inbound.discard()
                self.inbound = SocketSink(self.dp.budget)  # a fresh one per attempt after the first
            self.dp.expect_reverse(stream_id, self.inbound)
            self.dp.on_ack(stream_id, FORWARD, self._on_ack)
            self.dp.reserve(dest)
            try:
                self.out = self.dp.open_stream(header, AttemptOwner(self, attempt))
            except StreamRefused as refused:
                self.refusal = (refused.condition, refused.description)
            else:
                if not early and self._early_end is None:
                    early = self._read_early()
                self.conn.restart_send()  # a new stream: offsets from 0
                if early:
                    self.conn.window.on_sent(len(early))
                    self.out.write(early)
                if not self.inbound.accepted.wait(ACCEPT_TIMEOUT):
                    no_answer = f"no answer from {dest.router_id} within {ACCEPT_TIMEOUT:g} s"
                    self.refusal = ("skupper:no-answer", no_answer)
            if self.refusal is None:
                self.peer_router = dest.router_id
                self.counters.octets_in += len(early)
                self._pump(FORWARD, REVERSE)
                return
            condition, why = self.refusal
            self.log.info("tcp_attempt_refused", router=dest.router_id, reason=why)
            if self.out is not None:
                self.out.abort()
                self.out = None
            self._forget()
            decision = attempts.refused(attempt, condition)
            if isinstance(decision, GiveUp):
                outcome = decision
            elif decision is not None and decision.delay:
                gevent.sleep(decision.delay)  # let routing take the lost path out first
        self.counters.refused += 1
        if self.refusal is None:  # for the biflow's listener-side error
            self.refusal = ("skupper:no-destination", f"no destination for {self.routing_key}")
        tried = list(attempts.tried)
        self.log.info("tcp_connection_refused", routing_key=self.routing_key, tried=tried)
        if outcome.reset:
            reset(self.sock)  # every destination refused: as a refused server would
        else:
            close_cleanly(self.sock)  # no destination at all: accept and close


class EgressConnection(TcpConnectionActor):
    """A connector's stream: connects to the server, answers with the reverse stream."""

    def _set_up(self) -> None:
        assert self.header is not None and self.egress_sink is not None and self.server
        flow_id = self.header.flow_id
        try:
            sock = self.server.connect(CONNECT_TIMEOUT)
        except OSError as error:
            self.counters.refused += 1
            self.log.info("tcp_connect_failed", server=str(self.server), error=str(error))
            self.egress_sink.refuse("skupper:connect-failed", f"{self.server}: {error}")
            if flow_id is not None:
                self._corecord_opened(flow_id, None)
                failed = f"skupper:connect-failed: {self.server}: {error}"
                tell_vanflow(
                    self.ctx, CoRecordClosed(identity=flow_id, at=time.time(), error=failed)
                )
            return
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reset_on_close(sock)
        self.sock = sock
        if flow_id is not None:
            self.flow_id = flow_id  # its end is told when the connection ends
            self._corecord_opened(flow_id, sock)
        forward = self.header
        self.peer_router = forward.source
        self.dp.on_ack(forward.stream_id, REVERSE, self._on_ack)
        self.egress_sink.attach(self.inbound)
        self.inbound.refuse = self.egress_sink.refuse
        try:
            self.out = self.dp.open_stream(
                reverse_header(forward), AttemptOwner(self, 0), via=self.egress_sink.via
            )
        except StreamRefused as refused:
            self.log.info("tcp_reverse_refused", reason=refused.description)
            self.egress_sink.refuse(refused.condition, refused.description)
            reset(sock)
            return
        self._pump(REVERSE, FORWARD)

    def _corecord_opened(self, flow_id: str, sock: socket.socket | None) -> None:
        """The connector side's part of the biflow (merged by the listener's router)."""
        host, port = None, None
        if sock is not None:
            with contextlib.suppress(OSError):
                host, port = sock.getsockname()[:2]
        assert self.header is not None
        trace = trace_of(self.header, self.dp.router_id)
        tell_vanflow(
            self.ctx,
            CoRecordOpened(
                identity=flow_id,
                connector=self.adaptor_name,
                proxy_host=host,
                proxy_port=port,
                trace=trace,
                at=time.time(),
            ),
        )
