"""AmqpEndpointActor: the port AMQP clients connect to; a ClientActor per connection.

The endpoint is a supervisor of its connections (temporary children), like the TCP
adaptor's listener. A connection actor is a thin shell: the socket (plain or TLS, the
links' wires), a reader greenlet feeding the sans-IO ``ClientConnection``, and the
node's ``MessageRouter`` (protocol/messaging) that decides everything else.

With ``auth="external"`` (TLS only) a client must present a certificate the TLS context
trusts; its subject CN becomes the client's SASL EXTERNAL identity, and EXTERNAL is the
only mechanism offered (docs/adr/0034-sasl-external.md).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import ssl
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import gevent
import gevent.event
import gevent.socket

from skupper_actors.kernel import Actor, ChildSpec, KernelError, Restart, Supervisor
from skupper_actors.protocol import amqp
from skupper_actors.protocol.amqp.client import ClientConnection, external_unavailable
from skupper_actors.protocol.amqp.client_events import (
    AuthenticationFailed,
    ClientAuthenticated,
    ClientEvent,
)
from skupper_actors.protocol.messaging import MessageRouter
from skupper_actors.security import describe_peer

from ..acceptpause import AcceptPause, accept_forever
from ..context import RouterContext
from ..links.wire import HandshakeFailed, PlainWire, TlsWire, Wire, tls_handshake
from ..messages import BindAddress, UnbindAddress

_ids = itertools.count(1)
#: seconds a client has for its TLS handshake, and again for its AMQP open (docs/limits.md)
HANDSHAKE_TIMEOUT = 5.0


class _NoOpen(Exception):
    """The client did not open its AMQP connection in time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Accepted:
    client: Any


class AmqpEndpointActor(Supervisor):
    """Listens for AMQP clients on ``host:port`` (TLS when ``tls`` is given); ``auth``:
    ``anonymous`` or ``external`` (TLS with a client certificate, SASL EXTERNAL)."""

    def __init__(
        self,
        ctx: RouterContext,
        name: str,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        *,
        auth: str = "anonymous",
    ) -> None:
        if auth not in ("anonymous", "external"):
            raise ValueError(f"amqp auth must be anonymous or external, not {auth!r}")
        if auth == "external":
            if tls is None:
                raise ValueError("amqp auth external needs TLS (the client certificate)")
            unavailable = external_unavailable()
            if unavailable is not None:
                raise ValueError(unavailable)
        super().__init__(intensity=1 << 30, period=1.0)
        self.auth = auth
        self.ctx = ctx
        self.endpoint_name = name
        self.host = host
        self.port = port
        self.tls = tls
        self.sock: Any = None
        self._accept: gevent.Greenlet[Any, Any] | None = None

    def on_start(self) -> None:
        super().on_start()
        router = self.ctx.messages
        router.advertise = self._advertise
        router.defer = gevent.get_hub().loop.run_callback
        sock = gevent.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(1024)
        self.sock = sock
        self.log.info(
            "amqp_endpoint_started",
            host=self.host,
            port=self.port,
            tls=self.tls is not None,
            auth=self.auth,
        )
        self._accept = gevent.spawn(self._accept_loop)

    def _advertise(self, address: str, on: bool) -> None:
        routing = self.ctx.lookup("routing")
        if routing is not None and routing.alive:
            with contextlib.suppress(KernelError):
                routing.tell(BindAddress(address=address) if on else UnbindAddress(address=address))

    def on_stop(self, reason: Any) -> None:
        if self._accept is not None:
            self._accept.kill(block=True, timeout=2)
        if self.sock is not None:
            self.sock.close()
        super().on_stop(reason)

    def on_receive(self, message: object) -> Any:
        if isinstance(message, _Accepted):
            spec = ChildSpec(
                id=f"amqp-{next(_ids)}",
                start=partial(ClientActor, self.ctx, message.client, self.tls, self.auth),
                restart=Restart.TEMPORARY,
                shutdown=1.0,
            )
            try:
                self.start_child_here(spec)
            except (KernelError, ValueError) as error:
                self.log.warning("amqp_connection_not_started", error=str(error))
                message.client.close()
            return None
        return super().on_receive(message)

    def _accept_loop(self) -> None:
        accept_forever(self.sock, AcceptPause(self.log, f"amqp-{self.endpoint_name}"), self._take)

    def _take(self, client: Any, _address: Any) -> None:
        try:
            self.ref.wait_tell(_Accepted(client=client))
        except KernelError:
            client.close()


class ClientActor(Actor):
    """One AMQP client's connection: socket in and out, events to the MessageRouter."""

    lifecycle_log_level = "debug"
    mailbox_size = 16

    def __init__(
        self, ctx: RouterContext, sock: Any, tls: ssl.SSLContext | None, auth: str = "anonymous"
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.sock = sock
        self.tls = tls
        self.external = auth == "external"
        self.router: MessageRouter = ctx.messages
        self.port_id = next(_ids)
        self.conn = ClientConnection(
            f"{ctx.router_id}-client-{self.port_id}", require_external=self.external
        )
        self.wire: Wire | None = None
        self._runner: gevent.Greenlet[Any, Any] | None = None
        self._writer: gevent.Greenlet[Any, Any] | None = None
        self._wake = gevent.event.Event()
        self._stalled = False
        self._closed = False
        self._opened = False
        self._flush_due = False
        self._pauses = 0  # the router waits for a large delivery's far end to keep up
        self._resumed = gevent.event.Event()
        self._resumed.set()

    def on_start(self) -> None:
        self._runner = gevent.spawn(self._run)
        self._runner.link(self._done)

    def on_stop(self, reason: object) -> None:
        self._end_links()
        for greenlet in (self._runner, self._writer):
            if greenlet is not None and not greenlet.dead and greenlet is not gevent.getcurrent():
                greenlet.kill(block=False)
        with contextlib.suppress(OSError):
            self.sock.close()

    def _done(self, runner: gevent.Greenlet[Any, Any]) -> None:
        if runner.exception is not None and not isinstance(runner.exception, gevent.GreenletExit):
            self.log.error("amqp_client_failed", exc_info=runner.exception)
        self._end_links()
        self.stop_soon()  # behind what is queued; a full mailbox does not refuse it

    def _end_links(self) -> None:
        if not self._closed:
            self._closed = True
            for event in self.conn.client_events():
                if isinstance(event, amqp.LinkClosed):
                    self.router.link_closed(self, event.link_id)
            self.router.connection_closed(self)

    # -- pausing the input (protocol/messaging: MESSAGE_WINDOW) ----------------------------
    def pause(self) -> None:
        self._pauses += 1
        self._resumed.clear()

    def resume(self) -> None:
        if self._pauses > 0:
            self._pauses -= 1
            if self._pauses == 0:
                self._resumed.set()

    # -- output (never blocks its caller; see LinkSession.flush) ---------------------------
    def flush(self) -> None:
        """Send what the connection holds, once the running greenlet yields: every
        flush asked for while one batch of input is handled becomes one write."""
        if not self._flush_due:
            self._flush_due = True
            gevent.get_hub().loop.run_callback(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_due = False
        if self._stalled or self.wire is None:
            return
        try:
            done = self._push()
        except (OSError, ValueError):
            self._shutdown()
            return
        if not done:
            self._stalled = True
            self._wake.set()

    def _push(self) -> bool:
        conn = self.conn
        wire = self.wire
        assert wire is not None
        while True:
            view = conn.peek_output()
            if not view:
                if conn.has_held and conn.feed():
                    self.router.output_moved(self)
                    continue  # frame what moved
                return wire.drain()
            sent = wire.write_some(view)
            if sent:
                conn.pop_output(sent)
            if sent < len(view):
                return False

    def _write_loop(self) -> None:
        wake = self._wake
        wire = self.wire
        assert wire is not None
        try:
            while True:
                wake.wait()
                wake.clear()
                while not self._push():
                    wire.wait_writable()
                self._stalled = False
        except (OSError, ValueError):
            self._shutdown()

    def _shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    # -- input -----------------------------------------------------------------------------
    def _run(self) -> None:
        if self.tls is not None:
            try:
                self.wire = tls_handshake(
                    self.tls, self.sock, server_side=True, timeout=HANDSHAKE_TIMEOUT
                )
            except HandshakeFailed as error:
                self.log.warning("amqp_client_refused", error=str(error))
                return
            if self.external and not self._take_identity(self.wire):
                return
        else:
            self.wire = PlainWire(self.sock)
        wire = self.wire
        self._writer = gevent.spawn(self._write_loop)
        conn = self.conn
        conn.open()
        self.flush()
        opened_by = time.monotonic() + HANDSHAKE_TIMEOUT
        while not conn.closed:
            if self._pauses:
                self._resumed.wait()
            try:
                if self._opened:
                    data = wire.read()
                else:
                    left = max(0.0, opened_by - time.monotonic())
                    with gevent.Timeout(left, _NoOpen()):
                        data = wire.read()
            except _NoOpen:
                self.log.warning(
                    "amqp_client_bad_input", error=f"no AMQP open within {HANDSHAKE_TIMEOUT:g} s"
                )
                break
            except (OSError, ValueError) as error:
                self.log.info("amqp_client_lost", error=str(error))
                break
            conn.receive_data(bytes(data))
            ended = self._handle(conn.client_events())
            self.flush()
            if not data or ended:
                break
        with contextlib.suppress(OSError, ValueError), gevent.Timeout(1.0, False):
            while not self._push():
                wire.wait_writable()

    def _take_identity(self, wire: TlsWire) -> bool:
        """Hand the client certificate's CN to SASL EXTERNAL; False (and the socket
        closed) when there is none to hand."""
        user = describe_peer(wire.tls)
        if user and "\0" not in user:  # proton takes a C string
            cipher = wire.tls.cipher()
            self.conn.set_external_identity(user, cipher[2] if cipher else 0)
            return True
        has_cert = bool(wire.tls.getpeercert(binary_form=True))
        self.log.warning(
            "amqp_client_refused",
            error="client certificate has no usable subject CN (auth: external)"
            if has_cert
            else "no client certificate (auth: external)",
        )
        with contextlib.suppress(OSError):
            self.sock.close()
        return False

    def _handle(self, events: list[ClientEvent]) -> bool:
        """Carry out what the client did; True once the connection is over."""
        refused: AuthenticationFailed | None = None
        for event in events:
            if isinstance(event, ClientAuthenticated):
                log = self.log.info if self.external else self.log.debug
                log("amqp_client_authenticated", mechanism=event.mechanism, user=event.user)
            elif isinstance(event, AuthenticationFailed):
                refused = event
        outcome = self.router.handle(self, events)
        if refused is not None:
            self.log.warning(
                "amqp_client_refused", error=refused.description, mechanism=refused.mechanism
            )
            return True
        for address, description in outcome.refused:
            self.log.info("amqp_attach_refused", address=address, error=description)
        if outcome.opened:
            self._opened = True
        if outcome.failure is not None:
            self.log.warning("amqp_client_bad_input", error=outcome.failure)
        return outcome.ended
