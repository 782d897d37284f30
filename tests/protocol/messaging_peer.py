"""A proton engine playing an AMQP client against a ClientConnection, in memory.

The client side is proton's own engine (``proton.Transport``/``Connection``), the same
code proton's client APIs run on; bytes go straight between the two, no sockets.
"""

from __future__ import annotations

from typing import Any

from proton import Connection, Transport

from skupper_actors.protocol.amqp.client import ClientConnection
from skupper_actors.protocol.messaging import MessageRouter


class ClientPeer:
    """One client (proton engine) and its router-side ClientConnection (a ClientPort)."""

    _ids = 0

    def __init__(self, router: MessageRouter) -> None:
        ClientPeer._ids += 1
        self.port_id = ClientPeer._ids
        self.router = router
        self.conn = ClientConnection("router")
        self.conn.open()
        self.transport = Transport()
        self.transport.sasl().allowed_mechs("ANONYMOUS")
        self.client = Connection()
        self.transport.bind(self.client)
        self.client.open()
        self.session = self.client.session()
        self.session.open()
        self.refused: list[str] = []
        self.backlog = bytearray()  # router output the client's transport has no room for
        self.pump()

    def flush(self) -> None:
        self.backlog += self.conn.data_to_send()
        while self.backlog:
            room = self.transport.capacity()
            if room <= 0:
                return
            self.transport.push(bytes(self.backlog[:room]))
            del self.backlog[:room]

    paused = 0

    def pause(self) -> None:
        self.paused += 1

    def resume(self) -> None:
        self.paused -= 1

    def pump(self, rounds: int = 6) -> None:
        """Move bytes both ways and hand the router what the client did (the client's
        bytes wait while the router has paused this connection)."""
        for _ in range(rounds):
            pending = self.transport.pending()
            if pending > 0 and not self.paused:
                data = self.transport.peek(pending)
                self.transport.pop(pending)
                self.conn.receive_data(data)
            handled = self.router.handle(self, self.conn.client_events())
            self.refused += [why for _, why in handled.refused]
            while self.conn.has_held and self.conn.feed():
                self.router.output_moved(self)
            self.flush()

    def sender(self, address: str | None) -> Any:
        link = self.session.sender(f"s-{address}-{id(self)}")
        link.target.address = address
        link.open()
        self.pump()
        return link

    def receiver(self, address: str | None, credit: int, *, dynamic: bool = False) -> Any:
        link = self.session.receiver(f"r-{address}-{id(self)}")
        if dynamic:
            link.source.dynamic = True
        else:
            link.source.address = address
        link.open()
        link.flow(credit)
        self.pump()
        return link
