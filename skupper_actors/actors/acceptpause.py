"""AcceptPause: how an accept loop waits out a shortage of descriptors or memory.

`accept()` failing with EMFILE (or ENFILE, ENOBUFS, ENOMEM) leaves the connection in the
listen backlog and the listening socket readable, so retrying at once spins. Each
listener pauses instead, doubling the wait from `initial` to `maximum`, and logs once per
episode (`accept_paused` on the first failure, `accept_resumed` with the count of failed
attempts when an accept succeeds again) rather than once per attempt.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

import gevent

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
