"""The grant server's connection handling: caps, timeouts, a request budget, counters.

The grant port faces other sites' networks, so every connection is bounded before it
costs anything: a connection past the total cap or its peer address's cap is closed
right after accept (with a reset), the TLS handshake must finish within
`handshake_timeout`, a connection that sends nothing for `idle_timeout` is closed, one
that is still open after `request_timeout` is closed whatever it does, and a connection
may send at most `max_request_bytes` in all (request line, headers and body). Running out
of descriptors pauses accepting (see `AcceptPause`) instead of failing. Each refusal and
each close for a limit is a log event and a counter (`GrantCounters`).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import gevent
from gevent.pywsgi import WSGIHandler, WSGIServer

from skupper_actors.api.settings import lenient_setting

from ..acceptpause import AcceptPause, is_resource_shortage

SETTING_PREFIX = "grant-server-"


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantLimits:
    """The grant server's limits; each is a Site setting `grant-server-<name with dashes>`."""

    max_connections: int = 64
    max_connections_per_peer: int = 8
    handshake_timeout: float = 10.0
    idle_timeout: float = 15.0
    request_timeout: float = 30.0
    max_request_bytes: int = 16384

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, str], problem: Callable[[str, str, str], None]
    ) -> GrantLimits:
        """The limits a Site's settings ask for; a bad value keeps the default (and is told)."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            default = item.default
            assert isinstance(default, int | float)
            key = SETTING_PREFIX + item.name.replace("_", "-")
            values[item.name] = lenient_setting(settings, key, default, problem, positive=True)
        return cls(**values)

    def setting_names(self) -> tuple[str, ...]:
        return tuple(SETTING_PREFIX + item.name.replace("_", "-") for item in fields(self))


@dataclass(slots=True, kw_only=True)
class GrantCounters:
    """What the grant server refused or cut, since the node started (all only grow)."""

    connections_accepted: int = 0
    refused_max_connections: int = 0
    refused_max_connections_per_peer: int = 0
    closed_handshake_timeout: int = 0
    closed_handshake_failed: int = 0
    closed_idle_timeout: int = 0
    closed_request_timeout: int = 0
    closed_request_too_large: int = 0
    accept_paused: int = 0

    def snapshot(self) -> dict[str, int]:
        """Counter name (prefixed `grant_server_`) to value."""
        return {f"grant_server_{name}": value for name, value in asdict(self).items()}


class ConnectionGate:
    """Open connections in all and per peer address; `admit` says why not, or None."""

    def __init__(self, limits: GrantLimits) -> None:
        self.limits = limits
        self.total = 0
        self.per_peer: dict[str, int] = {}

    def admit(self, peer: str) -> str | None:
        if self.total >= self.limits.max_connections:
            return "max_connections"
        if self.per_peer.get(peer, 0) >= self.limits.max_connections_per_peer:
            return "max_connections_per_peer"
        self.total += 1
        self.per_peer[peer] = self.per_peer.get(peer, 0) + 1
        return None

    def release(self, peer: str) -> None:
        self.total -= 1
        left = self.per_peer.get(peer, 0) - 1
        if left > 0:
            self.per_peer[peer] = left
        else:
            self.per_peer.pop(peer, None)


class CappedReader:
    """A binary reader that reads at most `budget` bytes in all, then reports end of file."""

    def __init__(self, raw: Any, budget: int) -> None:
        self._raw = raw
        self.left = budget
        self.exceeded = False
        self.timed_out = False

    def _allowance(self, size: int | None) -> tuple[int, bool]:
        """How much may be read, and whether the budget (not the caller) set that."""
        if size is None or size < 0:
            return self.left, True
        return min(size, self.left), size > self.left

    def read(self, size: int | None = -1) -> bytes:
        allowed, capped = self._allowance(size)
        if capped and size is not None and size >= 0:
            self.exceeded = True  # the caller wants more than the budget has left
        if allowed <= 0:
            return b""
        data: bytes = self._call(self._raw.read, allowed)
        self.left -= len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        allowed, capped = self._allowance(size)
        if allowed <= 0:
            self.exceeded = self.exceeded or size != 0
            return b""
        data: bytes = self._call(self._raw.readline, allowed)
        self.left -= len(data)
        if capped and len(data) == allowed and not data.endswith(b"\n"):
            self.exceeded = True  # the budget cut the line
        return data

    def _call(self, method: Callable[[int], bytes], size: int) -> bytes:
        try:
            return method(size)
        except TimeoutError:  # socket.timeout: the idle timeout
            self.timed_out = True
            raise

    def close(self) -> None:
        self._raw.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class _Handler(WSGIHandler):  # type: ignore[misc]
    """pywsgi's handler reading through a `CappedReader`."""

    def __init__(self, sock: Any, address: Any, server: GrantHttpServer) -> None:
        super().__init__(sock, address, server)
        # pywsgi drops `rfile` when it is done: keep our own reference to read the flags
        self.capped = self.rfile = CappedReader(self.rfile, server.limits.max_request_bytes)


class GrantHttpServer(WSGIServer):  # type: ignore[misc]
    """pywsgi on a listening socket, with the limits above; TLS is done here, not by pywsgi."""

    handler_class = _Handler

    def __init__(
        self,
        listener: Any,
        application: Callable[..., Any],
        *,
        context: Callable[[], ssl.SSLContext],
        limits: GrantLimits,
        counters: GrantCounters,
        log: Any,
    ) -> None:
        super().__init__(listener, application, log=None, error_log=None)
        self.context = context
        self.limits = limits
        self.counters = counters
        self.gate = ConnectionGate(limits)
        self.events = log
        self.pause = AcceptPause(log, "grant-server")
        self._resume: gevent.Greenlet[Any, Any] | None = None

    # -- accepting ---------------------------------------------------------------------------
    def do_read(self) -> Any:
        try:
            found = super().do_read()
        except OSError as error:
            if not is_resource_shortage(error):
                raise
            self._pause_accepting(error)
            return None
        if not found:
            return None
        self.pause.succeeded()
        sock, address = found
        peer = str(address[0])
        refusal = self.gate.admit(peer)
        if refusal is not None:
            name = f"refused_{refusal}"
            setattr(self.counters, name, getattr(self.counters, name) + 1)
            self.events.warning(
                "grant_connection_refused",
                peer=peer,
                reason=refusal,
                limit=getattr(self.limits, refusal),
            )
            _reset(sock)
            return None
        self.counters.connections_accepted += 1
        return sock, address

    def _pause_accepting(self, error: OSError) -> None:
        if not self.pause.paused:
            self.counters.accept_paused += 1
        delay = self.pause.failed(error)
        self.stop_accepting()
        self._resume = gevent.spawn_later(delay, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._resume = None
        if self.started and not self.closed:
            self.start_accepting()

    def do_close(self, sock: Any, address: Any) -> None:
        sock.close()
        self.gate.release(str(address[0]))

    def close(self) -> None:
        if self._resume is not None:
            self._resume.kill(block=False)
        super().close()

    # -- one connection ----------------------------------------------------------------------
    def handle(self, sock: Any, address: Any) -> None:
        peer = str(address[0])
        tls = self._handshake(sock, peer)
        if tls is None:
            return
        handler = self.handler_class(tls, address, self)
        deadline = gevent.Timeout(self.limits.request_timeout)
        deadline.start()
        try:
            tls.settimeout(self.limits.idle_timeout)
            handler.handle()
        except gevent.Timeout as fired:
            if fired is not deadline:
                raise
            self._closed(peer, "request_timeout", self.limits.request_timeout)
        except OSError:
            pass  # a reset or a timeout while answering: nothing to answer any more
        finally:
            deadline.close()
            with contextlib.suppress(OSError):
                tls.close()
        reader = handler.capped
        if reader.exceeded:
            self._closed(peer, "request_too_large", self.limits.max_request_bytes)
        elif reader.timed_out:
            self._closed(peer, "idle_timeout", self.limits.idle_timeout)

    def _handshake(self, sock: Any, peer: str) -> Any:
        # wrap first, then shake hands: the TLS socket owns the descriptor from here on,
        # so it is the one to close when the handshake fails or runs out of time
        tls = self.context().wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        deadline = gevent.Timeout(self.limits.handshake_timeout)
        deadline.start()
        try:
            tls.do_handshake()
            return tls
        except gevent.Timeout as fired:
            if fired is not deadline:
                raise
            self._closed(peer, "handshake_timeout", self.limits.handshake_timeout)
        except (ssl.SSLError, OSError) as error:
            self.counters.closed_handshake_failed += 1
            self.events.info("grant_handshake_failed", peer=peer, error=str(error))
        finally:
            deadline.close()
        with contextlib.suppress(OSError):
            tls.close()
        return None

    def _closed(self, peer: str, reason: str, limit: float) -> None:
        name = f"closed_{reason}"
        setattr(self.counters, name, getattr(self.counters, name) + 1)
        self.events.warning("grant_connection_closed", peer=peer, reason=reason, limit=limit)


def _reset(sock: Any) -> None:
    """Close with a TCP reset: the peer learns at once, and no TIME_WAIT is left here."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
