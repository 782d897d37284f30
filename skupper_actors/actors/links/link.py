"""LinkActor: one inter-router connection (TLS socket + AMQP engine).

An outgoing link keeps trying: connect, TLS, AMQP open, then carry control traffic
until the connection ends, back off (exponential, with jitter) and try again. A
failure to connect is a state shown in status, never a crash. An incoming link lives
for one accepted connection. Both report to the RoutingActor.

Several greenlets touch the connection: the actor's own (control messages from
routing), the session greenlet that reads the socket, and the TCP connections whose
streams cross it. The sans-IO engine calls never yield, so they do not interleave; each
hands the engine's output to the socket at once, without waiting (LinkSession.flush),
and the session's writer greenlet sends the rest when the socket has room.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import socket
import ssl
import time
from dataclasses import dataclass, replace
from typing import Any

import gevent
import gevent.socket

from skupper_actors.kernel import Actor
from skupper_actors.management import LinkInfo
from skupper_actors.protocol import amqp
from skupper_actors.protocol import routing as rt
from skupper_actors.protocol.addresses import (
    PROP_COST,
    PROP_INSTANCE,
    PROP_ROUTER_ID,
    PROP_ROUTING_VERSION,
    ROUTING_PROTOCOL_VERSION,
)
from skupper_actors.security.identity import UNKNOWN, PeerIdentity, peer_identity

from ..context import (
    RouterContext,
)
from ..messages import (
    ControlReceived,
    DropConnection,
    LinkConnected,
    LinkDisconnected,
    LinkForgotten,
    LinkStatusChanged,
    SendControlOnLink,
    SetCost,
    SetLinkCost,
)
from .linksession import LinkSession, PeerOverLimit
from .reading import READ_SLICE, LinkReading
from .wire import HandshakeFailed, PlainWire, TlsWire, Wire, tls_handshake

_connection_ids = itertools.count(1)


class LinkRefused(Exception):
    """The peer is not a router we can link with (self, newer protocol, bad open)."""

    condition = "amqp:unauthorized-access"
    event = "link_refused"


class RouterIdRefused(LinkRefused):
    """The router id in the peer's open is not the one its certificate speaks for, or
    another connection holds it."""

    condition = "skupper:router-id-refused"
    event = "router_id_refused"


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkEndpoint:
    """Where an outgoing link connects."""

    name: str
    host: str
    port: int
    cost: int = 1
    #: the TLS context for this link (credentials from a token); default: the router's
    client_tls: ssl.SSLContext | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSessionCrashed:
    error: BaseException


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSessionEnded:
    """An incoming link's only connection ended: the actor's work is done."""


class LinkActor(LinkReading, Actor):
    """One inter-router connection; outgoing ones reconnect with back-off."""

    def __init__(
        self,
        ctx: RouterContext,
        *,
        endpoint: LinkEndpoint | None = None,
        accepted: Any = None,
        peer_address: tuple[str, int] | None = None,
        server_tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__()
        if (endpoint is None) == (accepted is None):
            raise ValueError("a LinkActor needs either an endpoint or an accepted socket")
        self.ctx = ctx
        self.endpoint = endpoint
        self.accepted = accepted
        self.peer_address = peer_address or ("", 0)
        self.server_tls = server_tls or ctx.server_tls
        self.client_tls = (endpoint.client_tls if endpoint else None) or ctx.client_tls
        self.link_name = endpoint.name if endpoint else f"incoming-{next(_connection_ids)}"
        self.session: LinkSession | None = None
        self.attempts = 0
        self.state = "connecting"
        self.since = time.time()
        self.last_error: str | None = None
        self._runner: gevent.Greenlet[Any, Any] | None = None

    # -- actor ---------------------------------------------------------------------------
    def on_start(self) -> None:
        self._runner = gevent.spawn(self._run)
        self._runner.link_exception(self._runner_crashed)

    def on_receive(self, message: object) -> Any:
        session = self.session
        if isinstance(message, SendControlOnLink):
            if session is not None and session.link_id == message.link_id:
                session.send_control(message.message)
        elif isinstance(message, SetCost):
            self._set_cost(message.cost)
        elif isinstance(message, DropConnection):
            if session is not None and session.link_id == message.link_id:
                self._close(session, message.condition, message.reason)
        elif isinstance(message, LinkSessionCrashed):
            raise message.error
        elif isinstance(message, LinkSessionEnded):
            self.stop_self()
        else:
            return super().on_receive(message)
        return None

    def on_stop(self, reason: object) -> None:
        runner = self._runner
        if runner is not None and not runner.dead and runner is not gevent.getcurrent():
            runner.unlink(self._runner_crashed)
            runner.kill(block=True, timeout=2)
        if self.session is not None:
            self._disconnected(self.session, "link stopped")
        routing = self.ctx.lookup("routing")
        if routing is not None and routing.alive:
            routing.tell(LinkForgotten(name=self.link_name))

    def _set_cost(self, cost: int) -> None:
        """A new cost for this link: routing takes it without dropping the connection."""
        assert self.endpoint is not None
        self.endpoint = replace(self.endpoint, cost=cost)
        session = self.session
        if session is not None:
            session.cost = cost
            routing = self.ctx.lookup("routing")
            if routing is not None and session.announced:
                routing.tell(SetLinkCost(link_id=session.link_id, cost=cost))
        self._report(self.state)

    def _runner_crashed(self, runner: gevent.Greenlet[Any, Any]) -> None:
        if self.ref.alive:
            self.ref.tell(
                LinkSessionCrashed(error=runner.exception or RuntimeError("session died"))
            )

    # -- connection loop -----------------------------------------------------------------
    def _run(self) -> None:
        if self.accepted is not None:
            self._serve(self.accepted, outgoing=False)
            self.accepted = None
            self.ref.tell(LinkSessionEnded())
            return
        assert self.endpoint is not None
        delay = self.ctx.timings.backoff_initial
        while True:
            self.attempts += 1
            connected = self._attempt(self.endpoint)
            if connected:
                delay = self.ctx.timings.backoff_initial
            jitter = self.ctx.timings.backoff_jitter
            wait = delay * random.uniform(1 - jitter, 1 + jitter)
            self._report("backing-off")
            gevent.sleep(wait)
            delay = min(delay * 2, self.ctx.timings.backoff_max)

    def _attempt(self, endpoint: LinkEndpoint) -> bool:
        """One connection attempt; True if the link came up at some point."""
        self._report("connecting")
        timings = self.ctx.timings
        try:
            sock = gevent.socket.create_connection(
                (endpoint.host, endpoint.port), timeout=timings.connect_timeout
            )
        except OSError as error:
            self.last_error = f"connect to {endpoint.host}:{endpoint.port} failed: {error}"
            self.log.info("link_connect_failed", error=self.last_error, attempt=self.attempts)
            return False
        sock.settimeout(None)
        # small frames (attach, flow, acknowledgements) must not wait for Nagle
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._serve(sock, outgoing=True)

    def _serve(self, sock: Any, *, outgoing: bool) -> bool:
        timings = self.ctx.timings
        self._report("handshaking")
        context = self.client_tls if outgoing else self.server_tls
        wire: Wire
        if context is not None:
            try:
                wire = tls_handshake(
                    context,
                    sock,
                    server_side=not outgoing,
                    server_hostname=self.endpoint.host if outgoing and self.endpoint else None,
                    timeout=timings.handshake_timeout,
                )
            except HandshakeFailed as error:
                self.last_error = str(error)
                self.log.warning(
                    "link_refused", peer_address=self._address(), error=self.last_error
                )
                return False
        else:
            wire = PlainWire(sock)
        link_id = f"{self.link_name}#{next(_connection_ids)}"
        properties: dict[str, str | int] = {
            PROP_ROUTER_ID: self.ctx.router_id,
            PROP_INSTANCE: self.ctx.instance,
            PROP_ROUTING_VERSION: ROUTING_PROTOCOL_VERSION,
        }
        if outgoing and self.endpoint is not None:
            properties[PROP_COST] = self.endpoint.cost
        limits = self.ctx.limits
        conn = amqp.AmqpConnection(
            self.ctx.router_id,
            server=not outgoing,
            properties=properties,
            max_frame_size=limits.max_frame_size,
            max_message_size=limits.max_message_size,
        )
        session = LinkSession(wire, conn, link_id, self.ctx.dataplane, limits, self.ctx.health)
        session.identity = (
            peer_identity(wire.tls.getpeercert(binary_form=True))
            if isinstance(wire, TlsWire)
            else UNKNOWN
        )
        session.start_writer()
        if self.endpoint is not None:
            session.cost = self.endpoint.cost
        self.session = session
        conn.open()
        up = False
        reason = "connection closed by peer"
        try:
            session.flush()
            opened_by = time.monotonic() + timings.handshake_timeout
            read = wire.read
            while True:
                handed: tuple[str, Any] | None = None
                try:
                    if session.announced and wire.emptied and not wire.buffered():
                        # small reads are handled by a watcher's callback, on the loop:
                        # this greenlet waits until one needs it (ADR 0021); after a read
                        # that filled the buffer (bulk), it reads on itself, as before
                        handed = self._by_callback(session, wire)
                        data = handed[1] if handed[0] == "data" else None
                    elif session.announced:
                        data = read()
                    else:
                        timeout = max(0.0, opened_by - time.monotonic())
                        with gevent.Timeout(timeout, LinkRefused("no AMQP open from peer in time")):
                            data = read()
                except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
                    reason = f"connection lost: {error}"
                    break
                if handed is not None and handed[0] != "data":
                    kind, value = handed
                    if kind == "raise":
                        raise value  # from the callback's _receive: handled as if raised here
                    # "lost": the read failed; "ended": the connection is over (as below)
                    reason = f"connection lost: {value}" if kind == "lost" else value
                    break
                if not data:
                    reason = "connection closed by peer"
                    break
                ended = self._receive(session, data)
                up = up or session.announced
                if ended is not None:
                    reason = ended
                    break
                if session.closing is not None:
                    reason = session.closing
                    break
        except LinkRefused as error:
            reason = str(error)
            self.log.warning(
                error.event,
                peer_address=self._address(),
                error=reason,
                certificate=session.identity.common_name,
            )
            if isinstance(error, RouterIdRefused):
                self.ctx.health.count("router-id-refused")
            self._close(session, error.condition, reason)
        except PeerOverLimit as error:
            reason = str(error)
            total = self.ctx.health.count(f"disconnected:{error.limit}")
            self.log.warning(
                error.event,
                link_id=session.link_id,
                peer=session.peer,
                limit=error.limit,
                error=reason,
                disconnected_on_node=total,
            )
            self._close(session, error.condition, reason)
        except OSError as error:
            reason = f"connection lost: {error}"
        finally:
            session.stop_writer()
            if session.read_watcher is not None:
                session.read_watcher.close()
                session.read_watcher = None
            self._disconnected(session, reason)
            with contextlib.suppress(OSError):
                wire.close()
        self.last_error = reason
        return up

    def _handle_events(self, session: LinkSession, inline: bool = False) -> str | None:
        """Act on the engine's events; ``inline``: on the loop, never yielding (a read
        of at most INLINE_READ_MAX bytes makes a bounded batch)."""
        conn = session.conn
        sink_of = session.sinks.get
        for count, event in enumerate(conn.events(), 1):
            if (
                count % 16 == 0
                and not inline
                and time.monotonic() - session.slice_started > READ_SLICE
            ):
                session.flush()
                self._yield(session)  # a long batch (an attach flood): let the others run
            kind = type(event)
            if kind is amqp.StreamData:
                sink = sink_of(event.link_id)  # type: ignore[union-attr]
                if sink is not None:  # (LinkSession.stream_data, inline: per chunk)
                    sink.data(event.data)  # type: ignore[union-attr]
            elif kind is amqp.StreamWhole:
                session.stream_whole(event)  # type: ignore[arg-type]
            elif kind is amqp.StreamStarted:
                session.stream_started(event)  # type: ignore[arg-type]
            elif kind is amqp.StreamEnded:
                session.stream_ended(event)  # type: ignore[arg-type]
            elif kind is amqp.StreamLength:
                session.stream_length(event)  # type: ignore[arg-type]
            elif isinstance(event, amqp.MessageReceived):
                message = session.message_received(event)
                if message is not None:
                    self._control_received(session, message)
            elif isinstance(event, amqp.CreditAvailable):
                if event.link_id == session.control_sender:
                    session.drain_control()
                    if not session.announced and session.peer is not None:
                        self._announce(session)
            elif isinstance(event, amqp.LinkOpened):
                if event.remote_initiated and not session.link_opened(event):
                    raise LinkRefused(f"unexpected link {event.name!r} to {event.address!r}")
            elif isinstance(event, amqp.LinkClosed):
                if session.link_closed(event):
                    return "control link closed by peer"
            elif isinstance(event, amqp.ConnectionOpened):
                self._peer_opened(session, event)
            elif isinstance(event, amqp.ConnectionClosed):
                why = event.description or event.condition or "no reason"
                return f"peer closed the connection: {why}"
            elif isinstance(event, amqp.TransportFailed):
                self.log.warning(
                    "link_protocol_error", peer_address=self._address(), error=event.reason
                )
                return f"protocol error: {event.reason}"
        return None

    def _peer_opened(self, session: LinkSession, event: amqp.ConnectionOpened) -> None:
        props = event.remote_properties
        peer = props.get(PROP_ROUTER_ID)
        version = props.get(PROP_ROUTING_VERSION)
        if not isinstance(peer, str) or not peer:
            raise LinkRefused("peer is not a skupper router (no router id in its open frame)")
        if not isinstance(version, int) or version > ROUTING_PROTOCOL_VERSION:
            raise LinkRefused(
                f"peer {peer} speaks router protocol version {version!r}; "
                f"this router speaks {ROUTING_PROTOCOL_VERSION}"
            )
        if peer == self.ctx.router_id:
            raise LinkRefused("peer has this router's own id (a link to itself?)")
        self._check_identity(session, peer)
        if self.endpoint is None:
            cost = props.get(PROP_COST, 1)
            session.cost = cost if isinstance(cost, int) and cost >= 1 else 1
        session.peer = peer
        session.open_links(self.ctx.router_id)

    def _check_identity(self, session: LinkSession, peer: str) -> None:
        """Bind the claimed router id to the certificate, and to one holder at a time."""
        identity: PeerIdentity = session.identity
        refusal = identity.refusal(peer)
        if refusal is not None:
            raise RouterIdRefused(refusal)
        holders = self.ctx.router_claims.setdefault(peer, {})
        others = {link: bound for link, bound in holders.items() if link != session.link_id}
        # the router's own certificate proves it is the router: its parallel links are
        # allowed; anyone else claiming the id of a router with a live link is not
        if others and (identity.router != peer or any(b != peer for b in others.values())):
            raise RouterIdRefused(
                f"router id {peer!r} already has a live link ({min(others)}); "
                f"a second connection claiming it with certificate "
                f"CN {identity.common_name!r} is refused"
            )
        holders[session.link_id] = identity.router
        session.claimed = peer

    def _announce(self, session: LinkSession) -> None:
        session.announced = True
        self.ctx.dataplane.ports[session.link_id] = session
        self._report("up", peer=session.peer)
        routing = self.ctx.lookup("routing")
        assert session.peer is not None
        if routing is not None:
            routing.tell(
                LinkConnected(
                    link_id=session.link_id, link=self.ref, peer=session.peer, cost=session.cost
                )
            )
        self.log.info("link_opened", link_id=session.link_id, peer=session.peer, cost=session.cost)

    def _control_received(self, session: LinkSession, message: rt.ControlMessage) -> None:
        routing = self.ctx.lookup("routing")
        if routing is not None and session.announced:
            routing.tell(ControlReceived(link_id=session.link_id, message=message))

    def _close(self, session: LinkSession, condition: str, description: str) -> None:
        session.closing = description
        session.conn.close(condition, description)
        session.flush_now()
        session.shutdown()

    def _disconnected(self, session: LinkSession, reason: str) -> None:
        if self.session is not session:
            return
        self.session = None
        self.ctx.dataplane.ports.pop(session.link_id, None)
        holders = self.ctx.router_claims.get(session.claimed or "")
        if holders is not None:
            holders.pop(session.link_id, None)
            if not holders:
                del self.ctx.router_claims[session.claimed or ""]
        session.lost()
        if session.announced:
            self.log.info("link_closed", link_id=session.link_id, peer=session.peer, reason=reason)
            routing = self.ctx.lookup("routing")
            if routing is not None and routing.alive:
                routing.tell(LinkDisconnected(link_id=session.link_id, reason=reason))
        self.last_error = reason
        self._report("down", peer=session.peer)

    # -- status --------------------------------------------------------------------------
    def _address(self) -> str:
        if self.endpoint is not None:
            return f"{self.endpoint.host}:{self.endpoint.port}"
        return f"{self.peer_address[0]}:{self.peer_address[1]}"

    def _report(self, state: str, peer: str | None = None) -> None:
        if state != self.state:
            self.state = state
            self.since = time.time()
        routing = self.ctx.lookup("routing")
        if routing is None or not routing.alive:
            return
        host, port = (
            (self.endpoint.host, self.endpoint.port) if self.endpoint else self.peer_address
        )
        session = self.session
        info = LinkInfo(
            name=self.link_name,
            link_id=session.link_id if session else "",
            direction="outgoing" if self.endpoint else "incoming",
            peer=peer or (session.peer if session else None),
            host=host,
            port=port,
            cost=session.cost if session else (self.endpoint.cost if self.endpoint else 1),
            state=state,
            since=self.since,
            attempts=self.attempts,
            last_error=self.last_error,
        )
        routing.tell(LinkStatusChanged(info=info))


__all__ = ["LinkActor", "LinkEndpoint", "LinkRefused"]
