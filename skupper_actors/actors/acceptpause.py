"""AcceptPause: how an accept loop waits out a shortage of descriptors or memory.

`accept()` failing with EMFILE (or ENFILE, ENOBUFS, ENOMEM) leaves the connection in the
listen backlog and the listening socket readable, so retrying at once spins. Each
listener pauses instead, doubling the wait from `initial` to `maximum`, and logs once per
episode (`accept_paused` on the first failure, `accept_resumed` with the count of failed
attempts when an accept succeeds again) rather than once per attempt.

Two ways to accept: ``accept_forever``, a greenlet's loop handing out gevent sockets
(inter-router links, AMQP clients: their sessions block in a greenlet anyway), and
``CallbackAcceptor``, a watcher's callback handing out plain non-blocking sockets (TCP
listeners: a connection per client, set up and served from callbacks, ADR 0021).
"""

from __future__ import annotations

import _socket
import errno
import socket
from collections.abc import Callable
from typing import Any

import gevent

from .health import close_watcher

#: accept() errors that say "not now" (resources), not "this socket is broken".
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def is_resource_shortage(error: OSError) -> bool:
    return error.errno in RESOURCE_ERRNOS


class AcceptPause:
    """The backoff of one accept loop; `failed` returns how long to wait."""

    __slots__ = ("_delay", "_log", "episodes", "failures", "initial", "listener", "maximum")

    def __init__(
        self, log: Any, listener: str, *, initial: float = 0.05, maximum: float = 1.0
    ) -> None:
        self._log = log
        self.listener = listener
        self.initial = initial
        self.maximum = maximum
        self._delay = 0.0
        self.failures = 0  # failed attempts in the current episode
        self.episodes = 0  # pauses since start: a counter for status

    @property
    def paused(self) -> bool:
        return self.failures > 0

    def failed(self, error: OSError) -> float:
        """Count one failed accept; the seconds to wait before the next attempt."""
        if self.failures == 0:
            self.episodes += 1
            self._delay = self.initial
            self._log.warning(
                "accept_paused",
                listener=self.listener,
                error=error.strerror or str(error),
                errno=error.errno,
            )
        else:
            self._delay = min(self.maximum, self._delay * 2)
        self.failures += 1
        return self._delay

    def succeeded(self) -> None:
        """An accept worked: end the episode (and say so, once)."""
        if self.failures:
            self._log.info("accept_resumed", listener=self.listener, failed_attempts=self.failures)
            self.failures = 0


def accept_forever(sock: Any, pause: AcceptPause, accepted: Callable[[Any, Any], None]) -> None:
    """Every listener's loop: accept, pause out a shortage (``pause``), turn Nagle off,
    and hand each client with its address to ``accepted``."""
    while True:
        try:
            client, address = sock.accept()
        except OSError as error:
            # EMFILE and friends: say so once, wait (longer each time), keep serving
            gevent.sleep(pause.failed(error))
            continue
        pause.succeeded()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        accepted(client, address)


class CallbackAcceptor:
    """A listener's accept from a loop callback: no greenlet, no gevent socket.

    A watcher calls it while the listening socket (non-blocking) is readable; it takes
    up to ``batch`` clients per call (the rest wait for the loop's next pass) and hands
    each to ``accepted`` as a plain non-blocking socket with Nagle off, and the peer's
    address (a TCP connection reads and writes from watcher callbacks and never needed
    gevent's wrapper: making one cost more than the ``accept`` itself). ``accepted``
    runs on the hub and must not block. A failed accept pauses the watcher, not a
    greenlet, for ``pause``'s delay.

    Nagle is turned off on the listening socket, once: on Linux an accepted socket
    inherits TCP_NODELAY (and SO_LINGER) from it, which saves a system call per client.
    """

    __slots__ = ("_accept", "_accepted", "_batch", "_family", "_pause", "_timer", "_watcher")

    def __init__(
        self,
        sock: socket.socket,
        pause: AcceptPause,
        accepted: Callable[[_socket.socket, Any], None],
        *,
        batch: int = 64,
    ) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by clients
        self._accept = sock._accept  # type: ignore[attr-defined]  # (fd, address)
        self._family = sock.family
        self._pause = pause
        self._accepted = accepted
        self._batch = batch
        loop = gevent.get_hub().loop
        self._watcher: Any = loop.io(sock.fileno(), 1)  # 1: readable
        self._timer: Any = None
        self._watcher.start(self._ready)

    def _ready(self) -> None:
        pause = self._pause
        for _ in range(self._batch):
            try:
                fd, address = self._accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                # EMFILE and friends: say so once, wait (longer each time), keep serving
                self._watcher.stop()
                self._timer = gevent.get_hub().loop.timer(pause.failed(error))
                self._timer.start(self._resume)
                return
            pause.succeeded()
            client = _socket.socket(self._family, socket.SOCK_STREAM, 0, fd)
            client.setblocking(False)
            self._accepted(client, address)

    def _resume(self) -> None:
        self._close_timer()
        if self._watcher is not None:
            self._watcher.start(self._ready)

    def _close_timer(self) -> None:
        timer, self._timer = self._timer, None
        close_watcher(timer)

    def stop(self) -> None:
        """Accept no more (the listening socket is the caller's to close)."""
        self._close_timer()
        watcher, self._watcher = self._watcher, None
        close_watcher(watcher)
