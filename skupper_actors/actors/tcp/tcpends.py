"""How a TCP connection is set up at each edge of the VAN; the rest is tcpconn.py.

The ingress (a listener's client) picks a destination for the routing key, opens the
forward stream and waits until the far end has connected to its server (the reverse
stream arrives). Meanwhile it reads at most ``EARLY_DATA`` of the client's first bytes,
sends them behind the stream's header and keeps them: a refused attempt can then go to
another destination (protocol.tcp.attempts decides which) with nothing to replay but
those. A request therefore reaches the far end with the header, not a round trip later.
The egress (a connector's stream) connects to host:port and opens the reverse stream,
back the way the forward one came. Both run from loop callbacks, with no
greenlet of their own (docs/adr/0021): what waits is a watcher, a timer or an event's
rawlink.
"""

from __future__ import annotations

import _socket
import contextlib
import errno
import os
import socket
import time
from collections.abc import Callable
from typing import Any

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

from ..health import close_watcher
from ..vanflow_messages import BiflowOpened, CoRecordClosed, CoRecordOpened, tell_vanflow
from .dataplane import StreamRefused
from .tcpconn import AttemptOwner, TcpConnectionActor
from .tcpedge import SocketSink, close_cleanly, reset, reset_on_close

CONNECT_TIMEOUT = 5.0
ACCEPT_TIMEOUT = 10.0  # forward stream sent -> reverse stream must arrive
# Client bytes read before the far end has answered (already waiting when the forward
# stream opens, or arriving while the attempt waits) go with the stream at once; they are
# kept to be sent again if another attempt follows, so at most this many are read then.
EARLY_DATA = 64 * 1024


class PendingConnect:
    """A non-blocking connect to one address, its outcome handed to ``done(sock,
    error)`` from a loop callback: the connected non-blocking socket, or the OSError."""

    __slots__ = ("_done", "_raw", "_timer", "_watcher")

    def __init__(self, address: tuple[int, Any], done: Callable[[Any, OSError | None], None]):
        family, sockaddr = address
        self._done = done
        # made non-blocking (an ioctl per connection less than setblocking)
        raw = _socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        self._raw: _socket.socket | None = raw
        self._timer: Any = None
        code = raw.connect_ex(sockaddr)
        loop = gevent.get_hub().loop
        # made now, started only if the connect must be waited for: the connection's
        # reader next (``take_watcher``), events changed from writable (2) to readable
        self._watcher: Any = loop.io(raw.fileno(), 2)
        if code == errno.EINPROGRESS:
            # To a server on this host the handshake is over by now (the kernel ran it
            # within the call): asked again, connect answers 0 or the refusal at once.
            # That saves a loop pass, two epoll_ctl calls and a wake-up per connection
            # (docs/adr/0021, sixth addendum); across a network it says EALREADY: wait.
            code = raw.connect_ex(sockaddr)
            if code not in (errno.EALREADY, errno.EINPROGRESS):
                loop.run_callback(self._settled, code)
                return
        elif code in (0, errno.EISCONN):
            loop.run_callback(self._settled, 0)
            return
        if code not in (errno.EINPROGRESS, errno.EALREADY, errno.EAGAIN):
            self._stop_watching()
            raw.close()
            self._raw = None
            raise OSError(code, os.strerror(code))
        self._watcher.start(self._writable)
        self._timer = loop.timer(CONNECT_TIMEOUT)
        self._timer.start(self._timed_out, update=True)  # from now, not the loop's last pass

    def _writable(self) -> None:
        if self._raw is not None:  # (None: cancelled)
            self._settled(self._raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))

    def _settled(self, code: int) -> None:
        """The connect's outcome, ``code`` an errno (0: connected); told once."""
        raw = self._raw
        if raw is None:
            return  # cancelled
        if code and code != errno.EISCONN:
            self._end(None, OSError(code, os.strerror(code)))
            return
        self._raw = None
        # the watcher, stopped, is the connection's reader next (``take_watcher``)
        self._watcher.stop()
        self._stop_timer()
        self._done(raw, None)

    def _timed_out(self) -> None:
        self._end(None, TimeoutError(errno.ETIMEDOUT, "timed out"))

    def _end(self, sock: Any, error: OSError) -> None:
        self.cancel()
        self._done(sock, error)

    def _stop_watching(self) -> None:
        watcher, self._watcher = self._watcher, None
        close_watcher(watcher)
        self._stop_timer()

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        close_watcher(timer)

    def take_watcher(self) -> Any:
        """After a connect that succeeded: its socket's watcher (stopped), for reading
        it from now on (a watcher made anew is a system call more, and a libev fd)."""
        watcher, self._watcher = self._watcher, None
        return watcher

    def cancel(self) -> None:
        """Stop waiting; the socket is closed (the outcome is never told)."""
        self._stop_watching()
        raw, self._raw = self._raw, None
        if raw is not None:
            raw.close()


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
            data: bytes = self.sock.recv(EARLY_DATA)
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
        host, port = self.peer[:2] if self.peer else ("", 0)
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

    # -- set-up from loop callbacks: no greenlet -----------------------------------------
    # An attempt opens the forward stream with the client's early bytes and waits for the
    # reverse stream (``inbound.accepted``, set by its arrival or by a refusal) with a
    # rawlink and a timer; a refused attempt may be followed by another (after a delay:
    # a timer). Nothing here blocks: it runs in the listener's greenlet at the start,
    # then in the hub's callbacks.
    _early = b""
    _early_watcher: Any = None  # reads the client while an attempt waits (EARLY_DATA)
    _waiting: tuple[int, Any, Any] | None = None  # (attempt, accepted event, timer)
    _delay: Any = None  # the timer before a retry

    def _begin(self) -> None:
        self._flow_opened()
        self._next_attempt()

    def on_stop(self, reason: object) -> None:
        self._stop_waiting()
        delay, self._delay = self._delay, None
        close_watcher(delay)
        super().on_stop(reason)

    def _next_attempt(self) -> None:
        """Attempt after attempt, until one waits for its answer, one is accepted (the
        socket is pumped) or the policy gives up."""
        self._delay = None
        try:
            while not self._finished:
                attempt = self._start_attempt()
                if attempt is None:
                    return  # given up
                if attempt > 0:
                    return  # waiting for the far end's answer
                # refused at once: the verdict decides
                if self._attempt_over(-attempt):
                    return
        except Exception as error:  # on the hub: never let it escape
            self.counters.errors += 1
            self.log.error("tcp_connection_failed", exc_info=error)
            self._finish()

    def _start_attempt(self) -> int | None:
        """Open one attempt's forward stream; its number when it waits for the answer,
        minus its number when it was refused at once, None when none may start."""
        attempts = self.attempts
        dest = self.dp.select(self.routing_key, attempts.excluded, self.distribution)
        if dest is None or not attempts.may_start():
            self._give_up(attempts.no_destination())
            return None
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
            return -attempt
        if not self._early and self._early_end is None:
            self._early = self._read_early()
        self.conn.restart_send()  # a new stream: offsets from 0
        early = self._early
        if early:
            self.conn.window.on_sent(len(early))
            self.out.write(early)
        accepted = self.inbound.accepted
        if accepted.is_set():
            return -attempt  # answered (or refused) already
        timer = gevent.get_hub().loop.timer(ACCEPT_TIMEOUT)
        self._waiting = (attempt, accepted, timer)
        accepted.rawlink(self._answered)
        timer.start(self._no_answer, update=True)
        if len(early) < EARLY_DATA and self._early_end is None:
            watcher = self._early_watcher = gevent.get_hub().loop.io(self.sock.fileno(), 1)
            watcher.start(self._early_readable)
        return attempt

    def _early_readable(self) -> None:
        """Bytes the client sends while the attempt waits: sent with the stream, and
        kept (up to EARLY_DATA) for the next attempt should this one be refused."""
        try:
            room = EARLY_DATA - len(self._early)
            try:
                data: bytes = self.sock.recv(room)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._early_end = Event.LOCAL_FAIL  # the far end must see an abort
                self._stop_early()
                return
            if not data:
                self._early_end = Event.LOCAL_END  # the stream ends once answered
                self._stop_early()
                return
            if self._first_in is None:
                self._first_in = time.monotonic()
            self._early += data
            self.conn.window.on_sent(len(data))
            assert self.out is not None
            self.out.write(data)
            if len(data) >= room:
                self._stop_early()  # the rest waits for the answer
        except Exception as error:  # on the hub: never let it escape
            self.counters.errors += 1
            self.log.error("tcp_connection_failed", exc_info=error)
            self._stop_waiting()
            self._finish()

    def _stop_early(self) -> None:
        watcher, self._early_watcher = self._early_watcher, None
        close_watcher(watcher)

    def _stop_waiting(self, keep_reader: bool = False) -> tuple[int, Any, Any] | None:
        if not keep_reader:
            self._stop_early()
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            _, accepted, timer = waiting
            accepted.unlink(self._answered)
            close_watcher(timer)
        return waiting

    def _answered(self, _event: Any = None) -> None:
        # the early reader goes on watching: an accepted attempt's pump takes it over
        # (``_take_reader``), a refused one stops it (``_attempt_over``)
        waiting = self._stop_waiting(keep_reader=True)
        if waiting is not None:
            self._settle(waiting[0])
        else:
            self._stop_early()

    def _take_reader(self) -> Any:
        watcher, self._early_watcher = self._early_watcher, None
        return watcher

    def _no_answer(self) -> None:
        waiting = self._stop_waiting()
        if waiting is not None:
            if self.refusal is None:
                no_answer = f"no answer from {self._dest.router_id} within {ACCEPT_TIMEOUT:g} s"
                self.refusal = ("skupper:no-answer", no_answer)
            self._settle(waiting[0])

    def _settle(self, attempt: int) -> None:
        """The waiting attempt's answer is in (from a callback): on, or the next one."""
        try:
            if self._finished or self._attempt_over(attempt):
                return
        except Exception as error:  # on the hub: never let it escape
            self.counters.errors += 1
            self.log.error("tcp_connection_failed", exc_info=error)
            self._finish()
            return
        self._next_attempt()

    def _attempt_over(self, attempt: int) -> bool:
        """An attempt was answered or refused; False: start the next one now."""
        dest = self._dest
        assert dest is not None
        if self.refusal is None:
            self.peer_router = dest.router_id
            self.counters.octets_in += len(self._early)
            self._early = b""
            self._pump(FORWARD, REVERSE)
            self._stop_early()  # taken over by the pump, unless it did not start
            if not self._pumping:
                self._finish()  # the path was lost while the far end answered
            return True
        self._stop_early()
        condition, why = self.refusal
        self.log.info("tcp_attempt_refused", router=dest.router_id, reason=why)
        if self.out is not None:
            self.out.abort()
            self.out = None
        self._forget()
        decision = self.attempts.refused(attempt, condition)
        if isinstance(decision, GiveUp):
            self._give_up(decision)
            return True
        if decision is not None and decision.delay:
            # let routing take the lost path out first
            self._delay = gevent.get_hub().loop.timer(decision.delay)
            self._delay.start(self._next_attempt, update=True)
            return True
        return False

    def _give_up(self, outcome: GiveUp) -> None:
        self.counters.refused += 1
        if self.refusal is None:  # for the biflow's listener-side error
            self.refusal = ("skupper:no-destination", f"no destination for {self.routing_key}")
        tried = list(self.attempts.tried)
        self.log.info("tcp_connection_refused", routing_key=self.routing_key, tried=tried)
        if outcome.reset:
            reset(self.sock)  # every destination refused: as a refused server would
        else:
            close_cleanly(self.sock)  # no destination at all: accept and close
        self._finish()


class EgressConnection(TcpConnectionActor):
    """A connector's stream: connects to the server, answers with the reverse stream.

    With the server's address known (every connection after the first), the connect
    runs from loop callbacks, with no greenlet: a socket's non-blocking connect, a
    watcher for its completion and a timer for ``CONNECT_TIMEOUT``. Otherwise (the
    name to resolve, several addresses to try) a greenlet does it, as the ingress's
    set-up always does."""

    _connecting: PendingConnect | None = None

    def _begin(self) -> None:
        assert self.server is not None
        address = self.server.single_address()
        if address is None:
            self._set_up_in_greenlet(self._set_up)  # resolve, try each address
            return
        try:
            self._connecting = PendingConnect(address, self._connect_done)
        except OSError as error:
            self._connect_done(None, error)

    def on_stop(self, reason: object) -> None:
        pending = self._connecting
        if pending is not None:
            self._connecting = None
            pending.cancel()
        super().on_stop(reason)

    def _connect_done(self, sock: Any, error: OSError | None) -> None:
        """The connect's outcome (from a loop callback): set up, or refuse."""
        pending, self._connecting = self._connecting, None
        if sock is not None and pending is not None:
            self._spare_reader = pending.take_watcher()
        try:
            self._connect_outcome(sock, error)
        finally:
            spare, self._spare_reader = self._spare_reader, None
            if spare is not None:  # not taken by the pump
                spare.close()

    _spare_reader: Any = None  # the connect's watcher, for ``_take_reader``

    def _take_reader(self) -> Any:
        watcher, self._spare_reader = self._spare_reader, None
        return watcher

    def _connect_outcome(self, sock: Any, error: OSError | None) -> None:
        if self._finished:
            if sock is not None:
                reset(sock)  # stopped meanwhile
            return
        try:
            if error is not None:
                assert self.server is not None
                self.server.forget()
                self._refused_by_server(error)
            else:
                self._connected(sock)
        except Exception as failure:  # on the hub: never let it escape (as _runner_done)
            self.counters.errors += 1
            self.log.error("tcp_connection_failed", exc_info=failure)
            if self.sock is None and sock is not None:
                reset(sock)
            self._finish()
            return
        if not self._pumping:
            self._finish()

    def _set_up(self) -> None:
        assert self.server is not None
        try:
            sock = self.server.connect(CONNECT_TIMEOUT)
        except OSError as error:
            self._refused_by_server(error)
            return
        # the connection's socket is a plain non-blocking one, as PendingConnect's
        raw = _socket.socket(sock.family, sock.type, sock.proto, sock.detach())
        raw.setblocking(False)
        self._connected(raw)

    def _refused_by_server(self, error: OSError) -> None:
        assert self.header is not None and self.egress_sink is not None
        flow_id = self.header.flow_id
        self.counters.refused += 1
        self.log.info("tcp_connect_failed", server=str(self.server), error=str(error))
        self.egress_sink.refuse("skupper:connect-failed", f"{self.server}: {error}")
        if flow_id is not None:
            self._corecord_opened(flow_id, None)
            failed = f"skupper:connect-failed: {self.server}: {error}"
            tell_vanflow(self.ctx, CoRecordClosed(identity=flow_id, at=time.time(), error=failed))

    def _connected(self, sock: Any) -> None:
        """Connected to the server: the reverse stream, then the socket is pumped."""
        assert self.header is not None and self.egress_sink is not None
        flow_id = self.header.flow_id
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

    def _corecord_opened(self, flow_id: str, sock: _socket.socket | None) -> None:
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
