"""The edge of the VAN: what a TCP connection actor uses of its local socket.

Counters of listeners and connectors, a connector's server address, the sink that
writes bytes from the VAN to a socket, and the two ways a socket may close (a clean FIN
only when both directions ended cleanly, else a reset).
"""

from __future__ import annotations

import socket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event
import gevent.socket

from skupper_actors.management import AdaptorInfo
from skupper_actors.protocol.addresses import LISTENER_PREFIX
from skupper_actors.protocol.tcp import BufferBudget

# Client and server sockets are made with SO_LINGER (on, 0): whatever closes them before
# both directions ended cleanly (a crash, a kill -9 of this node, a stop) sends a reset,
# never the FIN that would pass a truncated stream off as complete. A clean end lifts it.
_LINGER_RESET = struct.pack("ii", 1, 0)
_LINGER_OFF = struct.pack("ii", 0, 0)


def reset_on_close(sock: Any) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)


def close_cleanly(sock: Any) -> None:
    """Close with a FIN: lift the reset-on-close set when the socket was made."""
    _close(sock, _LINGER_OFF)


def reset(sock: Any) -> None:
    """Close with a reset (never an EOF the peer could take for a complete stream)."""
    if sock is not None:
        _close(sock, _LINGER_RESET)


def _close(sock: Any, linger: bytes) -> None:
    try:  # noqa: SIM105  (contextlib.suppress: three Python calls, per connection)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    except OSError:
        pass
    try:  # noqa: SIM105  (per connection: no contextlib)
        sock.close()
    except OSError:
        pass


@dataclass(slots=True)
class TcpCounters:
    """Counters of one listener or connector (mutated in place by its connections)."""

    opened: int = 0
    closed: int = 0
    active: int = 0
    errors: int = 0
    refused: int = 0
    octets_in: int = 0  # from local sockets into the VAN
    octets_out: int = 0  # from the VAN to local sockets
    first_byte_latency_sum: float = 0.0
    first_byte_samples: int = 0

    def info(
        self, kind: str, name: str, key: str, host: str, port: int, matched: bool
    ) -> AdaptorInfo:
        samples = self.first_byte_samples
        return AdaptorInfo(
            kind=kind,
            name=name,
            routing_key=key,
            host=host,
            port=port,
            matched=matched,
            opened=self.opened,
            closed=self.closed,
            active=self.active,
            errors=self.errors,
            refused=self.refused,
            octets_in=self.octets_in,
            octets_out=self.octets_out,
            first_byte_ms=(self.first_byte_latency_sum / samples * 1000) if samples else None,
        )


class ServerAddress:
    """A connector's host:port, resolved once and reused while connections succeed.

    Resolving per connection went through gevent's thread pool every time (a third of
    an egress connection's set-up). A failed connect forgets the addresses, so a host
    that moved is looked up again for the next connection.
    """

    __slots__ = ("_resolved", "host", "port")

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._resolved: list[tuple[Any, Any]] = []

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    def single_address(self) -> tuple[Any, Any] | None:
        """The one address this host resolved to, once known (None: resolve first)."""
        addresses = self._resolved
        return addresses[0] if len(addresses) == 1 else None

    def forget(self) -> None:
        """A connect failed: the host is looked up again next time."""
        self._resolved = []

    def connect(self, timeout: float) -> Any:
        """A connected gevent socket; raises OSError when no address answers."""
        addresses = self._resolved
        if not addresses:
            infos = gevent.socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
            addresses = [(family, sockaddr) for family, _, _, _, sockaddr in infos]
        error: OSError | None = None
        for family, sockaddr in addresses:
            sock = gevent.socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            self._resolved = addresses
            return sock
        self._resolved = []
        raise error or OSError(f"{self.host} has no address")


def listener_address(routing_key: str) -> str:
    """The address a listener binds so that connectors can tell they are matched."""
    return f"{LISTENER_PREFIX}{routing_key}"


class SocketSink:
    """Bytes from the VAN for one socket.

    The link's reader (its read callback, or its greenlet for large reads) writes a
    chunk straight to the socket when nothing is queued and the socket takes it (no
    greenlet switch); what the socket does not take waits here for a writer greenlet,
    started only then, which keeps the order. The end of the stream is handled inline
    when nothing waits. An idle connection has no writer
    greenlet. What waits is counted in the node's buffer budget until it is written
    (or discarded when the connection ends).
    """

    __slots__ = (
        "accepted",
        "budget",
        "busy",
        "chunks",
        "direct",
        "ended",
        "length",
        "refuse",
        "start_writer",
    )

    def __init__(self, budget: BufferBudget) -> None:
        self.budget = budget
        self.chunks: deque[bytes] = deque()
        self.ended: bool | None = None  # None: open; False: ended; True: aborted
        self.length: int | None = None  # the length the far end announced at its clean end
        self.accepted = gevent.event.Event()
        self.busy = False  # the writer holds a chunk: nothing may overtake it
        self.direct: Callable[[bytes], int] | None = None  # non-blocking send, once attached
        self.start_writer: Callable[[], None] | None = None  # once attached
        # stops the stream at its sender: set when a reverse stream arrives, or by the
        # egress from its EgressSink; cleared once used
        self.refuse: Callable[[str, str], None] | None = None

    def data(self, chunk: bytes) -> None:
        direct = self.direct
        if direct is not None and not self.chunks and not self.busy:
            sent = direct(chunk)
            if sent == len(chunk):
                return
            chunk = chunk[sent:]
        self.chunks.append(chunk)
        self.budget.add(len(chunk))
        if self.start_writer is not None:
            self.start_writer()

    def end(self, aborted: bool, length: int | None = None) -> None:
        if self.ended is None:
            self.ended = aborted
            self.length = length
        if self.start_writer is not None:
            self.start_writer()

    def discard(self) -> None:
        """The connection ended: what still waits is dropped (and leaves the budget)."""
        chunks = self.chunks
        if chunks:
            dropped = sum(map(len, chunks))
            chunks.clear()
            self.budget.sub(dropped)

    def started(self, refuse: Callable[[str, str], None] | None = None) -> None:
        self.refuse = refuse
        self.accepted.set()
