"""Serving the observer's WSGI app with gevent's own WSGIServer (docs/adr/0030)."""

from __future__ import annotations

import ipaddress
from typing import Any

from gevent.pool import Pool
from gevent.pywsgi import WSGIHandler, WSGIServer

from .api import Credentials, ObserverApp

#: connections served at once; past it the server stops accepting (they wait in the
#: kernel's backlog) until one ends: a flood of sockets costs the observer a bounded
#: number of greenlets (docs/observer.md, "Limits")
MAX_CONNECTIONS = 256
#: connections the kernel holds for the server past those (then a client's connect waits)
BACKLOG = 512
#: seconds a connection may take to send a request (or stay idle between two)
IDLE_TIMEOUT = 10.0


class _Handler(WSGIHandler):  # type: ignore[misc]
    """gevent's handler with a deadline on every read of the client."""

    def handle(self) -> Any:
        self.socket.settimeout(IDLE_TIMEOUT)
        return super().handle()


class InsecureBindError(ValueError):
    """A bind address beyond the loopback without credentials."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_bind(host: str, credentials: Credentials | None) -> None:
    if credentials is None and not is_loopback(host):
        raise InsecureBindError(
            f"binding {host} serves the network's traffic data beyond this host: "
            "give --username and --password-file"
        )


def make_server(app: ObserverApp, host: str = "127.0.0.1", port: int = 8080) -> WSGIServer:
    """A started-later server for ``app`` (``start()`` binds; ``server_port`` tells the port)."""
    check_bind(host, app.credentials)
    return WSGIServer(
        (host, port),
        app,
        log=None,
        error_log=None,
        spawn=Pool(MAX_CONNECTIONS),
        handler_class=_Handler,
        backlog=BACKLOG,
    )
