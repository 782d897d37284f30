"""What a connection carried lately that its loss could have swallowed (docs/adr/0018).

Bytes in a connection's buffers die with it, and a silent peer takes up to the HELLO age
to be noticed. So a ``LinkSession`` remembers, for ``RECENT_SECONDS``, the client
messages it sent whole and the outcomes it sent; when the connection is lost, the
messages' ingress routers are told to release them (unless an outcome came first: an
ingress takes an outcome for a delivery it settled already as nothing) and the outcomes
go again, by another way.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from skupper_actors.protocol.messaging.outcomes import released_batches

#: seconds a message sent whole, or an outcome, is remembered (more than the HELLO age)
RECENT_SECONDS = 5.0


class RecentlySent:
    """Client messages sent whole and outcomes sent over one connection, lately."""

    __slots__ = ("outcomes", "wholes")

    def __init__(self) -> None:
        #: (when, stream id, ingress router)
        self.wholes: deque[tuple[float, str, str]] = deque()
        #: (when, ingress router, outcome message body)
        self.outcomes: deque[tuple[float, str, dict[str, Any]]] = deque()

    def whole(self, stream_id: str, source: str) -> None:
        now = time.monotonic()
        wholes = self.wholes
        wholes.append((now, stream_id, source))
        while wholes[0][0] < now - RECENT_SECONDS:
            wholes.popleft()

    def outcome(self, to_router: str, body: dict[str, Any]) -> None:
        now = time.monotonic()
        outcomes = self.outcomes
        outcomes.append((now, to_router, body))
        while outcomes[0][0] < now - RECENT_SECONDS:
            outcomes.popleft()

    def lost(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The router messages to send now the connection is lost, as (router, body):
        the outcomes again first, then the releases of the messages sent whole."""
        since = time.monotonic() - RECENT_SECONDS
        outcomes, self.outcomes = self.outcomes, deque()
        wholes, self.wholes = self.wholes, deque()
        for when, to_router, body in outcomes:
            if when >= since:
                yield to_router, body
        lost = ((stream_id, source) for when, stream_id, source in wholes if when >= since)
        yield from released_batches(lost)
