"""The TCP adaptor's listeners and connectors.

A TcpListenerActor accepts client connections and starts an IngressConnection
for each, as a temporary child. A TcpConnectorActor serves a routing key at this site:
it takes the forward streams for its key and starts an EgressConnection for
each. Both are supervisors of their connections, so a crash ends one connection only.
"""

from __future__ import annotations

import _socket
import contextlib
import itertools
import socket
from collections.abc import Callable
from typing import Any

import gevent

from skupper_actors.kernel import ChildSpec, KernelError, Restart, Supervisor
from skupper_actors.protocol.addressing import DistributionMode
from skupper_actors.protocol.tcp import (
    StreamHeader,
)

from ..acceptpause import AcceptPause, CallbackAcceptor
from ..context import RouterContext
from ..messages import BindAddress, GetAdaptorInfo, UnbindAddress
from ..vanflow_messages import AdaptorStarted, AdaptorStopped, AnnounceToVanflow, tell_vanflow
from .dataplane import ConnectorBinding, EgressSink, StreamRefused
from .tcpconn import TcpConnectionActor
from .tcpedge import (
    ServerAddress,
    TcpCounters,
    listener_address,
    reset,
    reset_on_close,
)
from .tcpends import EgressConnection, IngressConnection

__all__ = ["TcpConnectorActor", "TcpListenerActor", "listener_address"]

_ids = itertools.count(1)
#: forward streams a connector took whose connection has not started yet (the loop's
#: next pass starts them); past this many, a stream is refused as busy
PENDING_MAX = 1000


def _start_connection(
    adaptor: TcpListenerActor | TcpConnectorActor,
    start: Callable[[], TcpConnectionActor],
    not_started: Callable[[str], None],
) -> None:
    """Start one connection as a temporary child of ``adaptor`` (never restarted, 1 s to
    stop), from a loop callback: a failed start costs this connection only, counted and
    logged, and ``not_started(why)`` lets its client or stream go."""
    spec = ChildSpec(id=f"conn-{next(_ids)}", start=start, restart=Restart.TEMPORARY, shutdown=1.0)
    try:
        adaptor.start_child_here(spec)
    except Exception as error:  # on the hub: never let it escape
        adaptor.counters.errors += 1
        adaptor.log.warning("tcp_connection_not_started", error=str(error))
        not_started(str(error))


class TcpListenerActor(Supervisor):
    """A local port whose connections reach the service behind a routing key.

    Clients are accepted from a loop callback (``CallbackAcceptor``), which starts each
    one's connection there and then, not through this actor's mailbox: the start never
    blocks (a connection sets itself up from callbacks), and the callback never yields
    between taking a client and recording the child, so the supervisor's state is never
    seen half-changed. ``on_stop`` stops the acceptor before it stops the children.
    """

    def __init__(
        self,
        ctx: RouterContext,
        name: str,
        routing_key: str,
        host: str,
        port: int,
        distribution: DistributionMode | None = None,
    ):
        super().__init__(intensity=1 << 30, period=1.0)
        self.ctx = ctx
        self.distribution = distribution
        self.listener_name = name
        self.routing_key = routing_key
        self.host = host
        self.port = port
        self.counters = TcpCounters()
        self.sock: socket.socket | None = None
        self._acceptor: CallbackAcceptor | None = None

    def on_start(self) -> None:
        super().on_start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(1024)
        reset_on_close(sock)  # inherited by every client accepted (Linux), as Nagle's off
        self.sock = sock
        self.log.info(
            "tcp_listener_started", routing_key=self.routing_key, host=self.host, port=self.port
        )
        pause = AcceptPause(self.log, f"tcp-{self.listener_name}")
        self._acceptor = CallbackAcceptor(sock, pause, self._take)
        self._tell_vanflow(True)
        routing = self.ctx.lookup("routing")
        if routing is not None:
            routing.tell(BindAddress(address=listener_address(self.routing_key)))

    def on_receive(self, message: object) -> Any:
        if isinstance(message, AnnounceToVanflow):
            self._tell_vanflow(True)
            return None
        if isinstance(message, GetAdaptorInfo):
            return self.counters.info(
                "listener",
                self.listener_name,
                self.routing_key,
                self.host,
                self.port,
                self.has_matching_connector(),
            )
        return super().on_receive(message)

    def _tell_vanflow(self, started: bool) -> None:
        name = self.listener_name
        if started:
            counters = self.counters
            info = AdaptorStarted(
                kind="listener",
                name=name,
                routing_key=self.routing_key,
                host=self.host,
                port=self.port,
                opened=lambda: counters.opened,
            )
            tell_vanflow(self.ctx, info)
        else:
            tell_vanflow(self.ctx, AdaptorStopped(kind="listener", name=name))

    def on_stop(self, reason: Any) -> None:
        self._tell_vanflow(False)
        if self._acceptor is not None:
            self._acceptor.stop()
            self._acceptor = None
        if self.sock is not None:
            self.sock.close()
        routing = self.ctx.lookup("routing")
        if routing is not None and routing.alive:
            with contextlib.suppress(KernelError):
                routing.tell(UnbindAddress(address=listener_address(self.routing_key)))
        super().on_stop(reason)

    def _take(self, client: _socket.socket, address: Any) -> None:
        """A client accepted (from the acceptor's callback): its connection starts now."""
        if self._kernel_dead:
            client.close()
            return
        _start_connection(
            self,
            lambda: IngressConnection(
                self.ctx,
                self.counters,
                self.routing_key,
                client=client,
                peer=address,
                distribution=self.distribution,
                adaptor_name=self.listener_name,
            ),
            lambda _why: reset(client),
        )

    def has_matching_connector(self) -> bool:
        return self.ctx.dataplane.has_destination(self.routing_key)


class TcpConnectorActor(Supervisor):
    """Serves a routing key at this site by connecting to host:port per stream.

    A stream's connection is started from a loop callback (``_accept``), as a
    listener's client's is from the acceptor's: never through the mailbox, and the
    supervisor's state is changed only between yields. ``on_stop`` unbinds first.
    """

    def __init__(self, ctx: RouterContext, name: str, routing_key: str, host: str, port: int):
        super().__init__(intensity=1 << 30, period=1.0)
        self.ctx = ctx
        self.connector_name = name
        self.routing_key = routing_key
        self.server = ServerAddress(host, port)
        self.counters = TcpCounters()
        self.binding = ConnectorBinding(name=name, routing_key=routing_key, accept=self._accept)
        self._loop = gevent.get_hub().loop
        self._pending = 0  # streams accepted whose connection has not started yet

    def on_start(self) -> None:
        super().on_start()
        self.ctx.dataplane.bind(self.binding)
        self._tell_vanflow()
        routing = self.ctx.lookup("routing")
        if routing is not None:
            routing.tell(BindAddress(address=self.routing_key))
        self.log.info(
            "tcp_connector_started",
            routing_key=self.routing_key,
            server=str(self.server),
        )

    def on_stop(self, reason: Any) -> None:
        tell_vanflow(self.ctx, AdaptorStopped(kind="connector", name=self.connector_name))
        if self.ctx.dataplane.unbind(self.binding):
            routing = self.ctx.lookup("routing")
            if routing is not None and routing.alive:
                with contextlib.suppress(KernelError):
                    routing.tell(UnbindAddress(address=self.routing_key))
        super().on_stop(reason)

    def _accept(self, header: StreamHeader, sink: EgressSink) -> None:
        """A forward stream for this connector (inside the link's read): its connection
        starts from a loop callback, once the link has recorded the stream (a refusal
        may follow at once), not through this actor's mailbox and a wake-up of its
        greenlet. At most ``PENDING_MAX`` wait for that callback."""
        if self._kernel_dead:
            raise StreamRefused("skupper:no-connector", f"connector {self.connector_name} stopped")
        if self._pending >= PENDING_MAX:
            raise StreamRefused(
                "skupper:busy", f"connector {self.connector_name}: {PENDING_MAX} streams waiting"
            )
        self._pending += 1
        self._loop.run_callback(self._start_egress, header, sink)

    def _start_egress(self, header: StreamHeader, sink: EgressSink) -> None:
        self._pending -= 1
        if self._kernel_dead:  # stopped meanwhile
            sink.refuse("skupper:no-connector", f"connector {self.connector_name} stopped")
            sink.discard()
            return
        def refuse(why: str) -> None:
            sink.refuse("skupper:busy", why)
            sink.discard()

        _start_connection(
            self,
            lambda: EgressConnection(
                self.ctx,
                self.counters,
                self.routing_key,
                header=header,
                egress_sink=sink,
                server=self.server,
                adaptor_name=self.connector_name,
            ),
            refuse,
        )

    def _tell_vanflow(self) -> None:
        counters = self.counters
        info = AdaptorStarted(
            kind="connector",
            name=self.connector_name,
            routing_key=self.routing_key,
            host=self.server.host,
            port=self.server.port,
            opened=lambda: counters.opened,
        )
        tell_vanflow(self.ctx, info)

    def has_matching_listener(self) -> bool:
        return bool(self.ctx.dataplane.remote.get(listener_address(self.routing_key)))

    def on_receive(self, message: object) -> Any:
        if isinstance(message, GetAdaptorInfo):
            return self.counters.info(
                "connector",
                self.connector_name,
                self.routing_key,
                self.server.host,
                self.server.port,
                self.has_matching_listener(),
            )
        if isinstance(message, AnnounceToVanflow):
            self._tell_vanflow()
            return None
        return super().on_receive(message)
