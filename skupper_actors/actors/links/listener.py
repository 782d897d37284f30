"""InterRouterListener: accepts router connections and starts one LinkActor for each.

The accept loop never does a handshake itself: each accepted socket goes to a new
temporary LinkActor under the links supervisor, so a peer that stalls its TLS handshake
holds up nobody else.
"""

from __future__ import annotations

import itertools
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.socket

from skupper_actors.kernel import Actor, ChildSpec, KernelError, Restart

from ..acceptpause import AcceptPause, accept_forever
from ..context import RouterContext
from .link import LinkActor

_accepted = itertools.count(1)


@dataclass(frozen=True, slots=True, kw_only=True)
class _AcceptLoopDied:
    error: BaseException


@dataclass(frozen=True, slots=True, kw_only=True)
class GetBoundAddress:
    pass


class InterRouterListener(Actor):
    """Owns the inter-router listening socket."""

    def __init__(
        self,
        ctx: RouterContext,
        host: str,
        port: int,
        backlog: int = 128,
        server_tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.server_tls = server_tls or ctx.server_tls
        self.host = host
        self.port = port
        self.backlog = backlog
        self.sock: gevent.socket.socket | None = None
        self.bound: tuple[str, int] = (host, port)
        self._loop_greenlet: gevent.Greenlet[Any, Any] | None = None

    def on_start(self) -> None:
        sock = gevent.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(self.backlog)
        self.sock = sock
        self.bound = sock.getsockname()[:2]
        self.log.info(
            "inter_router_listening",
            host=self.bound[0],
            port=self.bound[1],
            tls=self.server_tls is not None,
        )
        self._loop_greenlet = gevent.spawn(self._accept_loop)
        self._loop_greenlet.link_exception(self._loop_died)

    def on_receive(self, message: object) -> Any:
        if isinstance(message, GetBoundAddress):
            return self.bound
        if isinstance(message, _AcceptLoopDied):
            raise message.error
        return super().on_receive(message)

    def on_stop(self, reason: object) -> None:
        if self._loop_greenlet is not None:
            self._loop_greenlet.unlink(self._loop_died)
            self._loop_greenlet.kill(block=True, timeout=2)
        if self.sock is not None:
            self.sock.close()

    def _loop_died(self, greenlet: gevent.Greenlet[Any, Any]) -> None:
        if self.ref.alive:
            self.ref.tell(
                _AcceptLoopDied(error=greenlet.exception or RuntimeError("accept loop died"))
            )

    def _accept_loop(self) -> None:
        assert self.sock is not None
        accept_forever(self.sock, AcceptPause(self.log, "inter-router"), self._take)

    def _take(self, conn: Any, address: Any) -> None:
        links = self.ctx.lookup("links")
        if links is None:
            conn.close()
            return
        peer = (str(address[0]), int(address[1]))
        spec = ChildSpec(
            id=f"incoming-{next(_accepted)}-{peer[0]}:{peer[1]}",
            start=lambda c=conn, p=peer: LinkActor(
                self.ctx, accepted=c, peer_address=p, server_tls=self.server_tls
            ),
            restart=Restart.TEMPORARY,
            shutdown=2.0,
        )
        try:
            links.start_child(spec)  # type: ignore[attr-defined]
        except KernelError as error:
            self.log.warning("incoming_link_not_started", peer_address=peer, error=str(error))
            conn.close()
