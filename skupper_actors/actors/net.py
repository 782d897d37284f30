"""Cooperative sockets and TLS for actors (gevent's, without monkey-patching)."""

from __future__ import annotations

import ssl
from typing import Any

import gevent
import gevent.socket
import gevent.ssl


class HandshakeFailed(Exception):
    """A peer did not complete the TLS handshake (refused, garbage, timeout)."""


def wrap_tls(
    context: ssl.SSLContext,
    sock: gevent.socket.socket,
    *,
    server_side: bool,
    server_hostname: str | None = None,
    timeout: float = 10.0,
) -> Any:
    """Wrap ``sock`` with ``context`` and complete the handshake within ``timeout``.

    The context may be a plain :class:`ssl.SSLContext`: the socket class is gevent's, so
    the handshake and all later I/O yield to the hub instead of blocking it.
    """
    tls = gevent.ssl.SSLSocket(
        sock=sock,
        server_side=server_side,
        do_handshake_on_connect=False,
        server_hostname=server_hostname,
        _context=context,
    )
    try:
        with gevent.Timeout(timeout, HandshakeFailed(f"no TLS handshake within {timeout:g} s")):
            tls.do_handshake()
    except ssl.SSLError as error:
        tls.close()
        raise HandshakeFailed(describe_ssl_error(error)) from None
    except (OSError, HandshakeFailed) as error:
        tls.close()
        if isinstance(error, HandshakeFailed):
            raise
        raise HandshakeFailed(f"connection lost during TLS handshake: {error}") from None
    return tls


def describe_ssl_error(error: ssl.SSLError) -> str:
    reason = getattr(error, "reason", None) or ""
    if isinstance(error, ssl.SSLEOFError) or reason == "UNEXPECTED_EOF_WHILE_READING":
        return "connection lost during TLS handshake (the peer hung up)"
    verify = getattr(error, "verify_message", None)
    if verify:
        return f"TLS handshake refused: {verify}"
    if reason:
        return f"TLS handshake refused: {reason.lower().replace('_', ' ')}"
    return f"TLS handshake refused: {error}"
