"""VanflowActor: the node's flow records, a thin shell over protocol.vanflow's Emitter.

It keeps the SITE and ROUTER records, a ROUTER_ACCESS per inter-router access point and
a LINK per outgoing inter-router link (both read from routing's snapshot once a second),
a LISTENER / CONNECTOR per TCP adaptor, one BIFLOW_TPORT per TCP connection made at
the listener side, the connector side's co-record of it, and LOG records. Facts come in
as the typed messages below (a TCP connection tells it three things: opened, first
byte back, closed); a live connection's octets are read once a second from the
counters it keeps anyway, never counted here. Every 200 ms the emitter's due messages
go to an ``Outbox``: a ``MessagingOutbox`` that sends them as AMQP messages into the
node's MessageRouter (an internal client, protocol/messaging/local.py: multicast to
every observer in the network that subscribed), and a ``ManagementOutbox`` that
management drains while someone reads it (an observer on the same host,
``skupper-observer -n SITE``). It receives a collector's FLUSH on ``sfe.<id>`` and other
routers' co-records on ``vfcr.<id>`` the same way (docs/adr/0032, 0033).
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import gevent

from skupper_actors.kernel import Actor, KernelError
from skupper_actors.logconfig import WARNING_HOOKS
from skupper_actors.protocol.messaging.addresses import advertised
from skupper_actors.protocol.messaging.local import LocalEndpoint
from skupper_actors.protocol.vanflow import (
    BEACON_ADDRESS,
    LOG_ERROR,
    LOG_WARNING,
    Attr,
    Emitter,
    Flush,
    RecordBatch,
    RecordType,
    Value,
    VanflowDecodeError,
    corecord_address,
    decode,
    direct_address,
    flows_address,
    logs_address,
    micros,
    records_address,
    source_of,
)

from .context import RouterContext
from .links.listener import GetBoundAddress
from .messages import BindAddress, GetRoutingSnapshot, UnbindAddress
from .vanflow_messages import (
    AdaptorStarted,
    AdaptorStopped,
    AnnounceToVanflow,
    BiflowClosed,
    BiflowOpened,
    CoRecordClosed,
    CoRecordOpened,
    CoRecordsReceived,
    DrainVanflow,
    FirstByteBack,
    FlushRequested,
    LogRecord,
)
from .vanflow_outbox import ManagementOutbox, MessagingOutbox, Outbox, Outboxes

TICK = 0.2
POLL = 1.0
#: bytes of arrived messages (FLUSH, co-records) waiting in the mailbox, at most; more
#: are dropped (counted as vanflow_events_lost): what a client sends cannot grow memory
ARRIVED_BYTES = 8 << 20
#: one arrived message's bytes, at most (a RECORD carries at most 50 records)
ARRIVED_MESSAGE = 256 << 10


def site_identity(site_name: str) -> str:
    """The SITE record's identity: a UUID stable for the site's name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"skupper-actors-site:{site_name}"))


def access_identity(router_id: str, port: int) -> str:
    """A ROUTER_ACCESS identity that the far end of a link can name too (a LINK's peer)."""
    return f"access:{router_id}:{port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Tick:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class _Arrived:
    """An AMQP message for one of our addresses (``sfe.<id>``, ``vfcr.<id>``), as it came."""

    address: str
    data: bytes


class VanflowActor(Actor):
    mailbox_size = 50_000

    def __init__(
        self,
        ctx: RouterContext,
        *,
        version: str = "",
        outbox: Outbox | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.wall = clock
        self.version = version
        self.emitter = Emitter(ctx.flow_ids, now=clock())
        source_id = self.emitter.source_id
        #: the node's internal AMQP client: our messages out, FLUSH and co-records in
        self.endpoint = LocalEndpoint(ctx.messages, max_message=ARRIVED_MESSAGE)
        self.management = ManagementOutbox(source_id)
        self.outbox: Outbox = outbox or Outboxes(
            MessagingOutbox(self.endpoint, source_id), self.management
        )
        wants = getattr(self.outbox, "wants_corecords", None)
        if wants is not None:  # a test's outbox may take every co-record
            self.emitter.corecords_wanted = wants
        self.inbound = (direct_address(source_id), corecord_address(source_id))
        self._bound_with: object = None  # the routing actor our addresses are bound with
        self._bad_logged_at = -1e9
        self._arrived_bytes = 0  # of _Arrived messages in the mailbox
        self.site_id = site_identity(ctx.router_id)
        self._adaptors: dict[tuple[str, str], str] = {}  # (kind, name) -> identity
        self._live: dict[str, Callable[[], tuple[int, int]]] = {}
        #: a connection's facts, by type: handled without the clock or the isinstance chain
        self._facts: dict[type, Callable[[Any], None]] = {
            BiflowOpened: self._biflow_opened,
            FirstByteBack: self._first_byte_back,
            BiflowClosed: self._biflow_closed,
            CoRecordOpened: self._corecord_opened,
            CoRecordClosed: self._corecord_closed,
        }
        self._opened: dict[str, Callable[[], int]] = {}  # adaptor identity -> its count
        self._links: dict[str, str] = {}  # link name -> LINK identity
        self._access: dict[int, str] = {}  # port -> ROUTER_ACCESS identity
        self._last_poll = 0.0
        self._synced = False
        self._ticker: gevent.Greenlet[Any, Any] | None = None

    def on_start(self) -> None:
        WARNING_HOOKS.append(self._log_hook)
        now = self.wall()
        name = self.ctx.router_id
        attrs: dict[int, Value] = {Attr.NAME: name, Attr.PLATFORM: "linux"}
        if self.version:
            attrs[Attr.BUILD_VERSION] = self.version
        self.emitter.add(RecordType.SITE, attrs, now=now, identity=self.site_id)
        router: dict[int, Value] = {
            Attr.PARENT: self.site_id,
            Attr.NAME: f"0/{name}",
            Attr.MODE: "interior",
            Attr.HOSTNAME: _hostname(),
        }
        if self.version:
            router[Attr.BUILD_VERSION] = self.version
        self.emitter.add(RecordType.ROUTER, router, now=now, identity=self.emitter.source_id)
        bound = False
        try:
            for address in self.inbound:
                self.endpoint.receive(address, self._arrived)
            self._bind_inbound()
            bound = True
        finally:
            if not bound:  # on_stop does not run for an actor that did not start
                self.endpoint.close()
        self._ticker = gevent.spawn(self._tick_loop)

    def on_stop(self, reason: object) -> None:
        with contextlib.suppress(ValueError):
            WARNING_HOOKS.remove(self._log_hook)
        if self._ticker is not None:
            self._ticker.kill(block=False)
        self.endpoint.close()
        routing = self.ctx.lookup("routing")
        if routing is not None and routing is self._bound_with:
            for address in self.inbound:
                with contextlib.suppress(KernelError):
                    routing.tell(UnbindAddress(address=advertised(address)))

    def _bind_inbound(self) -> None:
        """Advertise ``sfe.<id>`` and ``vfcr.<id>`` (mobile addresses, as a client's
        receivers' are) with the routing actor, again if it restarted since."""
        routing = self.ctx.lookup("routing")
        if routing is None or routing is self._bound_with:
            return
        try:
            for address in self.inbound:
                routing.tell(BindAddress(address=advertised(address)))
        except KernelError:
            return
        self._bound_with = routing

    def _arrived(self, address: str, data: bytes) -> None:
        """A message for one of our receivers (inside the router's call: hand it on)."""
        if self._arrived_bytes + len(data) > ARRIVED_BYTES:
            self.ctx.health.count("vanflow_events_lost")
            return
        try:
            self.ref.tell(_Arrived(address=address, data=data))
        except KernelError:
            self.ctx.health.count("vanflow_events_lost")
            return
        self._arrived_bytes += len(data)

    def _log_hook(self, method: str, event: MutableMapping[str, Any]) -> None:
        """A warning or error logged anywhere in the node: a LOG record."""
        severity = LOG_WARNING if method == "warning" else LOG_ERROR
        details = " ".join(
            f"{key}={value}"
            for key, value in event.items()
            if key not in ("event", "timestamp", "level", "exc_info")
        )
        text = f"{event.get('event', '')} {details}".strip()[:1000]
        with contextlib.suppress(KernelError):
            self.ref.tell(LogRecord(severity=severity, text=text))

    def _tick_loop(self) -> None:
        while True:
            gevent.sleep(TICK)
            with contextlib.suppress(KernelError):
                self.ref.tell(_Tick())

    def on_receive(self, message: object) -> Any:
        fact = self._facts.get(type(message))
        if fact is not None:  # a connection's (three per connection): no clock, no chain
            fact(message)
            return None
        now = self.wall()
        emitter = self.emitter
        if isinstance(message, _Tick):
            self._tick(now)
        elif isinstance(message, AdaptorStarted):
            self._adaptor_started(message, now)
        elif isinstance(message, AdaptorStopped):
            identity = self._adaptors.pop((message.kind, message.name), None)
            if identity is not None:
                self._opened.pop(identity, None)
                emitter.end(identity, now=now)
        elif isinstance(message, LogRecord):
            made = emitter.add(
                RecordType.LOG,
                {
                    Attr.PARENT: emitter.source_id,
                    Attr.LOG_SEVERITY: message.severity,
                    Attr.LOG_TEXT: message.text,
                },
                now=now,
            )
            if made is not None:
                emitter.end(made, now=now)
        elif isinstance(message, _Arrived):
            self._arrived_bytes -= len(message.data)
            self._inbound(message)
        elif isinstance(message, FlushRequested):
            emitter.flush()
        elif isinstance(message, CoRecordsReceived):
            for record in message.records:
                emitter.merge_corecord(record.identity, dict(record.attrs))
        elif isinstance(message, DrainVanflow):
            management = self.outbox if isinstance(self.outbox, ManagementOutbox) else None
            if isinstance(self.outbox, Outboxes):
                management = self.management
            if management is not None:
                drained = management.drain()
                if message.flush:
                    emitter.flush()
                self._tick(now)  # consumers now exist: the next read has the records
                return drained
            return ()
        else:
            return super().on_receive(message)
        return None

    # -- a connection's facts (self._facts) ----------------------------------------------
    def _biflow_opened(self, message: BiflowOpened) -> None:
        parent = self._adaptors.get(("listener", message.listener))
        attrs: dict[int, Value] = {
            Attr.SOURCE_HOST: message.source_host,
            Attr.SOURCE_PORT: str(message.source_port),
        }
        if parent is not None:
            attrs[Attr.PARENT] = parent
        made = self.emitter.add(
            RecordType.BIFLOW_TPORT, attrs, now=message.at, identity=message.identity
        )
        if made is not None:
            self._live[message.identity] = message.octets

    def _first_byte_back(self, message: FirstByteBack) -> None:
        code = Attr.PROCESS_LATENCY if message.connector_side else Attr.LATENCY
        self._corecord_or_own(message.identity, {code: micros(message.latency)})

    def _biflow_closed(self, message: BiflowClosed) -> None:
        self._live.pop(message.identity, None)
        final: dict[int, Value] = {
            Attr.OCTETS: message.octets,
            Attr.OCTETS_REVERSE: message.octets_reverse,
        }
        if message.error:
            final[Attr.ERROR_LISTENER_SIDE] = message.error
        self.emitter.end(message.identity, now=message.at, attrs=final)

    def _corecord_closed(self, message: CoRecordClosed) -> None:
        emitter = self.emitter
        error: dict[int, Value] = {}
        if message.error:
            error[Attr.ERROR_CONNECTOR_SIDE] = message.error
        if source_of(message.identity) == emitter.source_id:
            if error:
                emitter.merge_corecord(message.identity, error)
        else:
            emitter.end(message.identity, now=message.at, attrs=error)

    # -- inside --------------------------------------------------------------------------------
    def _inbound(self, message: _Arrived) -> None:
        """A collector's FLUSH on ``sfe.<id>``, another router's co-records on
        ``vfcr.<id>``; anything else there is logged and left."""
        try:
            decoded = decode(message.data)
        except VanflowDecodeError as error:
            self._bad_input("vanflow_bad_message", address=message.address, error=str(error))
            return
        if message.address == self.inbound[0] and isinstance(decoded, Flush):
            self.emitter.flush()
        elif message.address == self.inbound[1] and isinstance(decoded, RecordBatch):
            for record in decoded.records:
                if source_of(record.identity) == self.emitter.source_id:
                    self.emitter.merge_corecord(record.identity, dict(record.attrs))
        else:
            kind = type(decoded).__name__
            self._bad_input("vanflow_unexpected_message", address=message.address, kind=kind)

    def _bad_input(self, event: str, **details: str) -> None:
        """Counted; logged at most once every 10 s (each warning is a LOG record too)."""
        self.ctx.health.count("vanflow_bad_input")
        now = time.monotonic()
        if now - self._bad_logged_at >= 10.0:
            self._bad_logged_at = now
            self.log.warning(event, **details)

    def _corecord_or_own(self, identity: str, attrs: dict[int, Value]) -> None:
        if source_of(identity) == self.emitter.source_id:
            if not self.emitter.update(identity, attrs):
                self.emitter.merge_corecord(identity, attrs)
        else:
            self.emitter.update(identity, attrs)

    def _corecord_opened(self, message: CoRecordOpened) -> None:
        attrs: dict[int, Value] = {Attr.TRACE: message.trace}
        connector = self._adaptors.get(("connector", message.connector))
        if connector is not None:
            attrs[Attr.CONNECTOR] = connector
        if message.proxy_host:
            attrs[Attr.PROXY_HOST] = message.proxy_host
        if message.proxy_port is not None:
            attrs[Attr.PROXY_PORT] = str(message.proxy_port)
        if source_of(message.identity) == self.emitter.source_id:
            self.emitter.merge_corecord(message.identity, attrs)  # a local connection
        else:
            self.emitter.add_corecord(message.identity, attrs, now=message.at)

    def _adaptor_started(self, message: AdaptorStarted, now: float) -> None:
        key = (message.kind, message.name)
        old = self._adaptors.get(key)
        if old is not None:
            held = self.emitter.get(old) or {}
            if (held.get(Attr.VAN_ADDRESS), held.get(Attr.DEST_PORT)) == (
                message.routing_key,
                str(message.port),
            ):
                if message.opened is not None:  # the same adaptor, said again
                    self._opened[old] = message.opened
                return
            del self._adaptors[key]
            self._opened.pop(old, None)
            self.emitter.end(old, now=now)
        kind = RecordType.LISTENER if message.kind == "listener" else RecordType.CONNECTOR
        identity = self.emitter.add(
            kind,
            {
                Attr.PARENT: self.emitter.source_id,
                Attr.NAME: message.name,
                Attr.PROTOCOL: "tcp",
                Attr.VAN_ADDRESS: message.routing_key,
                Attr.DEST_HOST: message.host,
                Attr.DEST_PORT: str(message.port),
            },
            now=now,
        )
        if identity is not None:
            self._adaptors[key] = identity
            if message.opened is not None:
                self._opened[identity] = message.opened

    def _tick(self, now: float) -> None:
        emitter = self.emitter
        consumers = self.outbox.consumers()
        for address in (
            BEACON_ADDRESS,
            records_address(emitter.source_id),
            flows_address(emitter.source_id),
            logs_address(emitter.source_id),
        ):
            emitter.set_consumer(address, address in consumers)
        if not self._synced:
            self._synced = True
            self._sync_adaptors()
        if now - self._last_poll >= POLL:
            self._last_poll = now
            self._bind_inbound()
            self._poll(now)
        # every tick: what waited for the router's window goes now
        self.outbox.send(emitter.tick(now))
        # refusals past a limit, with the node's others (management's limits_exceeded)
        counters = self.ctx.health.counters
        if emitter.stats.flows_not_made:
            counters["vanflow_flows_not_made"] = emitter.stats.flows_not_made
        if emitter.stats.corecords_unmatched:
            counters["vanflow_corecords_unmatched"] = emitter.stats.corecords_unmatched
        dropped = getattr(self.outbox, "dropped", 0)
        if dropped:
            counters["vanflow_outbox_dropped"] = dropped
        too_large = self.endpoint.stats.dropped_too_large
        if too_large:
            counters["vanflow_inbound_too_large"] = too_large

    def _sync_adaptors(self) -> None:
        """Adaptors that started before this actor did (their word was lost): ask them
        to say it again."""
        for name in self.ctx.registry.names():
            if name.startswith(("listener-", "connector-")):
                ref = self.ctx.lookup(name)
                if ref is not None:
                    with contextlib.suppress(KernelError):
                        ref.tell(AnnounceToVanflow())

    def _poll(self, now: float) -> None:
        """Octets of live connections; links and access points from routing."""
        for identity, octets in self._live.items():
            forward, reverse = octets()
            self.emitter.update(identity, {Attr.OCTETS: forward, Attr.OCTETS_REVERSE: reverse})
        for identity, opened in self._opened.items():
            self.emitter.update(identity, {Attr.FLOW_COUNT_L4: opened()})
        routing = self.ctx.lookup("routing")
        if routing is None:
            return
        try:
            snapshot = routing.ask(GetRoutingSnapshot(addresses=False, network=False), timeout=2)
        except KernelError:
            return
        incoming = sum(1 for info in snapshot.links if info.direction == "incoming")
        self._access_points(now, incoming)
        seen = set()
        for info in snapshot.links:
            if info.direction != "outgoing":
                continue
            seen.add(info.name)
            up = info.state == "up"
            attrs: dict[int, Value] = {
                Attr.PARENT: self.emitter.source_id,
                Attr.NAME: info.name,
                Attr.ROLE: "inter-router",
                Attr.LINK_COST: info.cost,
                Attr.PROTOCOL: "amqps" if self.ctx.tls else "amqp",
                Attr.DEST_HOST: info.host,
                Attr.DEST_PORT: str(info.port),
                Attr.OPER_STATUS: "up" if up else "down",
            }
            if info.peer:
                attrs[Attr.PEER] = access_identity(info.peer, info.port)
            if info.last_error and not up:
                attrs[Attr.RESULT] = "failed"
                attrs[Attr.REASON] = info.last_error
            link_id = self._links.get(info.name)
            if link_id is None:
                made = self.emitter.add(RecordType.LINK, attrs, now=now)
                if made is not None:
                    self._links[info.name] = made
                continue
            before = self.emitter.get(link_id) or {}
            if before.get(Attr.OPER_STATUS) != attrs[Attr.OPER_STATUS]:
                stamp = Attr.UP_TIMESTAMP if up else Attr.DOWN_TIMESTAMP
                attrs[stamp] = micros(now)
                if not up:
                    down = before.get(Attr.DOWN_COUNT, 0)
                    attrs[Attr.DOWN_COUNT] = (down if isinstance(down, int) else 0) + 1
            self.emitter.update(link_id, attrs)
        for name in [n for n in self._links if n not in seen]:
            self.emitter.end(self._links.pop(name), now=now)

    def _access_points(self, now: float, incoming: int) -> None:
        for name in self.ctx.registry.names():
            if not name.startswith("access-"):
                continue
            ref = self.ctx.lookup(name)
            if ref is None:
                continue
            try:
                _, port = ref.ask(GetBoundAddress(), timeout=2)
            except KernelError:
                continue
            identity = self._access.get(port)
            count: dict[int, Value] = {Attr.LINK_COUNT: incoming}
            if identity is None:
                identity = access_identity(self.ctx.router_id, port)
                attrs: dict[int, Value] = {
                    Attr.PARENT: self.emitter.source_id,
                    Attr.NAME: name.removeprefix("access-"),
                    Attr.ROLE: "inter-router",
                    **count,
                }
                if self.emitter.add(RecordType.ROUTER_ACCESS, attrs, now=now, identity=identity):
                    self._access[port] = identity
            else:
                self.emitter.update(identity, count)


def _hostname() -> str:
    return socket.gethostname()
