"""Two AmqpConnections wired back to back in memory (the AMQP twin of h11's ConnectionPair)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from skupper_actors.protocol.amqp import AmqpConnection, AmqpEvent

Splitter = Callable[[bytes], Iterator[bytes]]


def whole(data: bytes) -> Iterator[bytes]:
    yield data


class AmqpPair:
    """A client and a server connection; ``pump`` moves bytes until both are quiet.

    Events are drained after every chunk handed over and collected per side, so a
    test reads them with ``take_client()`` / ``take_server()``.
    """

    def __init__(self, *, open_now: bool = True, **options: Any) -> None:
        client_only = options.pop("client", {})
        server_only = options.pop("server", {})
        client_options = {**options, **client_only}
        server_options = {**options, **server_only}
        self.client = AmqpConnection("client", server=False, **client_options)
        self.server = AmqpConnection("server", server=True, **server_options)
        self.client_events: list[AmqpEvent] = []
        self.server_events: list[AmqpEvent] = []
        self.bytes_moved = 0
        if open_now:
            self.client.open()
            self.server.open()
            self.pump()

    def _drain(self) -> bool:
        client = self.client.events()
        server = self.server.events()
        self.client_events += client
        self.server_events += server
        return bool(client or server)

    def pump(self, split: Splitter = whole, max_rounds: int = 100_000) -> None:
        """Move bytes both ways until neither side has anything to say."""
        for _ in range(max_rounds):
            busy = self._drain()
            for source, sink in ((self.client, self.server), (self.server, self.client)):
                data = source.data_to_send()
                if data:
                    busy = True
                    self.bytes_moved += len(data)
                    for chunk in split(data):
                        sink.receive_data(chunk)
                        self._drain()
            if not busy:
                return
        raise AssertionError("the pair did not settle down")

    def take_client(self) -> list[AmqpEvent]:
        events, self.client_events = self.client_events, []
        return events

    def take_server(self) -> list[AmqpEvent]:
        events, self.server_events = self.server_events, []
        return events
