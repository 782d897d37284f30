"""Serving the observer's WSGI app with gevent's own WSGIServer (docs/adr/0030)."""

from __future__ import annotations

import ipaddress

from gevent.pywsgi import WSGIServer

from .api import Credentials, ObserverApp


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
    return WSGIServer((host, port), app, log=None, error_log=None)
