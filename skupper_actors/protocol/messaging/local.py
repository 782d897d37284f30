"""LocalEndpoint: an AMQP client of the node's MessageRouter that lives in the node.

Something inside the node (the VanflowActor, docs/adr/0033) sends and receives AMQP
messages on the VAN without a socket or a client connection: the endpoint is a
``ClientPort`` of its own, whose "connection" hands the router's calls straight back.
Its deliveries go through the router's ordinary client path (``attach_sender``,
``delivery_data``, ``attach_receiver``), so an internal message is routed exactly as a
client's delivery of the same bytes would be: multicast to every router with a
receiver, anycast to one, across the mesh as streams; its receivers are bound and
advertised as any client's are.

- ``send(address, encoded)``: one whole, already encoded AMQP message. Multicast
  addresses go pre-settled (at most once); others unsettled, and the outcome is not
  waited for (no retry: at most once as well). False when it was dropped: the sender
  link has no credit left (the router's window for one sender: ``can_send`` says so
  beforehand), or it is too large.
- ``receive(address, deliver)``: a receiver; ``deliver(address, bytes)`` is called for
  each whole delivery, inside the router's call (it must not block: hand the bytes on).
  Deliveries larger than ``max_message`` are dropped and counted; unsettled ones are
  accepted once delivered.
- ``has_consumer(address)``: a receiver for it exists somewhere in the network (here,
  or advertised by another router).

Calls never yield, as the router's.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from ..addressing import DistributionMode
from ..amqp.client import ClientConnection
from ..amqp.client_events import OUTCOME_ACCEPTED, Outcome
from .router import MessageRouter

__all__ = ["LocalEndpoint", "LocalStats"]

Deliver = Callable[[str, bytes], None]
#: port ids of local endpoints: negative, never those of client connections (from 1 up)
_port_ids = itertools.count(-1, -1)
MAX_MESSAGE = 1 << 20


@dataclass(slots=True)
class LocalStats:
    sent: int = 0
    dropped_no_credit: int = 0
    received: int = 0
    dropped_too_large: int = 0


class _Connection:
    """The subset of ``ClientConnection`` the router drives, for a local endpoint."""

    def __init__(self, endpoint: LocalEndpoint) -> None:
        self.endpoint = endpoint
        self._delivery_ids = itertools.count(1)
        #: deliveries to a local receiver being written: id -> (link id, bytes, too large)
        self._incoming: dict[int, tuple[int, bytearray, list[bool]]] = {}

    # links
    def accept_link(self, link_id: int, address: str | None = None) -> None:
        pass

    def refuse_link(self, link_id: int, condition: str, description: str) -> None:
        pass

    def grant(self, link_id: int, credit: int) -> None:
        credits = self.endpoint._credit
        credits[link_id] = credits.get(link_id, 0) + credit

    def queued(self, link_id: int) -> int:
        return 0

    # deliveries the endpoint sent
    def settle(self, delivery_id: int, outcome: Outcome) -> None:
        pass  # sent and forgotten: at most once

    # deliveries to the endpoint's receivers
    def start_delivery(self, link_id: int) -> int:
        delivery_id = next(self._delivery_ids)
        self._incoming[delivery_id] = (link_id, bytearray(), [False])
        return delivery_id

    def write_delivery(self, delivery_id: int, data: bytes) -> None:
        found = self._incoming.get(delivery_id)
        if found is None:
            return
        _, held, too_large = found
        if too_large[0]:
            return
        if len(held) + len(data) > self.endpoint.max_message:
            too_large[0] = True
            held.clear()
            return
        held += data

    def finish_delivery(self, delivery_id: int, *, settled: bool) -> None:
        found = self._incoming.pop(delivery_id, None)
        if found is None:
            return
        link_id, held, too_large = found
        endpoint = self.endpoint
        if not settled:
            endpoint._to_settle.append(delivery_id)  # after the router has recorded it
        if too_large[0]:
            endpoint.stats.dropped_too_large += 1
            return
        receiving = endpoint._receivers.get(link_id)
        if receiving is not None:
            endpoint.stats.received += 1
            address, deliver = receiving
            deliver(address, bytes(held))

    def abort_delivery(self, delivery_id: int) -> None:
        self._incoming.pop(delivery_id, None)

    def held_for(self, delivery_id: int) -> int:
        return 0  # every byte is taken at once (bounded by ``max_message``)


class LocalEndpoint:
    """An internal client of ``router``: senders and receivers without a connection."""

    def __init__(self, router: MessageRouter, *, max_message: int = MAX_MESSAGE) -> None:
        self.router = router
        self.port_id = next(_port_ids)
        self.max_message = max_message
        self.conn = cast(ClientConnection, _Connection(self))
        self.stats = LocalStats()
        self._links = itertools.count(1)
        self._delivery_ids = itertools.count(1)
        self._senders: dict[str, int] = {}  # address -> link id
        self._credit: dict[int, int] = {}  # sender link id -> credit the router granted
        self._receivers: dict[int, tuple[str, Deliver]] = {}  # link id -> (address, deliver)
        self._to_settle: list[int] = []
        self._settling = False

    # -- ClientPort --------------------------------------------------------------------
    def pause(self) -> None:
        pass  # the endpoint hands the router one whole message at a time

    def resume(self) -> None:
        pass

    def flush(self) -> None:
        """The router is done with a call: accept what our receivers got unsettled."""
        if self._settling:
            return
        self._settling = True
        try:
            while self._to_settle:
                self.router.delivery_settled(self, self._to_settle.pop(0), OUTCOME_ACCEPTED)
        finally:
            self._settling = False

    # -- sending -----------------------------------------------------------------------
    def has_consumer(self, address: str) -> bool:
        return self.router.has_destination(address)

    def can_send(self, address: str) -> bool:
        """Whether the sender link to ``address`` has credit now (attaching it if need
        be): the router grants it back as earlier deliveries get through, so a caller
        may hold a message and try again later. Raises AddressRefused, as ``send``."""
        return self._credit.get(self._sender(address), 0) > 0

    def _sender(self, address: str) -> int:
        link_id = self._senders.get(address)
        if link_id is None:
            link_id = next(self._links)
            self.router.attach_sender(self, link_id, address)
            self._senders[address] = link_id
        return link_id

    def send(self, address: str, encoded: bytes) -> bool:
        """Route one encoded message to ``address``; False when it was dropped here.
        Raises AddressRefused (from the router) for an address no client may use."""
        if len(encoded) > self.max_message:
            self.stats.dropped_too_large += 1
            return False
        link_id = self._sender(address)
        credit = self._credit.get(link_id, 0)
        if credit <= 0:
            self.stats.dropped_no_credit += 1
            return False
        self._credit[link_id] = credit - 1
        multicast = self.router.distribution.mode(address) is DistributionMode.MULTICAST
        self.router.delivery_data(
            self,
            link_id,
            next(self._delivery_ids),
            bytes(encoded),  # proton's encode gives a bytearray; connections take bytes
            first=True,
            last=True,
            aborted=False,
            settled=multicast,
        )
        self.stats.sent += 1
        return True

    # -- receiving ---------------------------------------------------------------------
    def receive(self, address: str, deliver: Deliver) -> None:
        """Receive what is sent to ``address`` (advertised as a client's receiver is)."""
        link_id = next(self._links)
        self._receivers[link_id] = (address, deliver)
        try:
            self.router.attach_receiver(self, link_id, address, False)
        except Exception:
            del self._receivers[link_id]
            raise
        self.router.credit(self, link_id, 1 << 30)

    def close(self) -> None:
        """Detach every link (the router forgets and unadvertises them)."""
        self.router.connection_closed(self)
        self._senders.clear()
        self._credit.clear()
        self._receivers.clear()
        self._to_settle.clear()
