"""MessageRouter: the node's AMQP messaging decisions (sans-IO, one per node).

Client connections report what their clients do (links attached and detached, delivery
bytes, outcomes, credit); the link sessions hand it client messages arriving over the
mesh (``arrive``) and outcomes coming back (``outcome_arrived``). It decides where each
delivery goes, moves its bytes on unchanged, and carries the final outcome back.

Across the mesh a client delivery travels as one stream (docs/adr/0017): the ingress
picks the destination router (balanced, closest) or every router with a receiver
(multicast), opens a stream there with the delivery's bytes as its body, cut-through;
the egress router delivers it to one local receiver, unsettled, and sends the
receiver's outcome back to the ingress as a router message. A stream lost before its
end, a destination router that becomes unreachable, a receiver that detaches: each
releases the delivery to its sender. Multicast deliveries are pre-settled.

Credit: a sender link gets ``window`` credit while its address has a destination
(anycast; multicast and anonymous senders always), and one more each time one of its
deliveries is settled end to end, so what one sender has in the mesh is bounded by its
window.

Calls never yield: greenlets of client connections and links call in turn.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..addressing import Destination, DistributionMode
from ..amqp import ConnectionClosed, ConnectionOpened, CreditAvailable, LinkClosed, TransportFailed
from ..amqp.client_events import (
    OUTCOME_RELEASED,
    ClientAttach,
    ClientEvent,
    DeliveryChunk,
    DeliveryOutcome,
)
from ..forwarding import Forwarder
from .addresses import AddressRefused, Distribution, check_address, dynamic_address, is_dynamic
from .deliveries import _Acking
from .ingress import IngressSide
from .outcomes import OutcomeBatches
from .records import (
    SENDER_WINDOW,
    AddressStats,
    ClientPort,
    Handled,
    _Egress,
    _Ingress,
    _Receiver,
    _Sender,
)

__all__ = ["SENDER_WINDOW", "AddressStats", "ClientPort", "Handled", "MessageRouter"]


def _now(call: Callable[[], None]) -> None:
    call()


class MessageRouter(IngressSide):
    """Addresses with local senders and receivers, and every delivery in flight here
    (the ingress side in ingress.py, the egress side in egress.py)."""

    def __init__(self, forwarder: Forwarder, distribution: Distribution | None = None) -> None:
        self.forwarder = forwarder
        self.router_id = forwarder.router_id
        self.distribution = distribution or Distribution()
        #: told (advertised address, True/False) when an address gains its first local
        #: receiver or loses its last: the node's routing actor advertises it
        self.advertise: Callable[[str, bool], None] = lambda address, on: None
        self.stats: dict[str, AddressStats] = {}
        self._senders: dict[tuple[int, int], _Sender] = {}
        self._waiting: dict[str, set[_Sender]] = {}  # address -> senders with no credit
        self._receivers: dict[str, list[_Receiver]] = {}
        self._receiver_links: dict[tuple[int, int], _Receiver] = {}
        self._incoming: dict[tuple[int, int], _Ingress] = {}  # (port, delivery) -> reading
        self._pending: dict[str, _Ingress] = {}  # stream id -> waiting for its outcome
        self._egress: dict[tuple[int, int], _Egress] = {}
        #: multicast copies on their way: stream id -> (delivery, destination router); a
        #: sender's window frees when all copies of its delivery are through (flow control)
        self._copies: dict[str, tuple[_Ingress, str]] = {}
        self._outstanding: Counter[Destination] = Counter()
        self._dynamic = itertools.count(1)
        self._turn = itertools.count()
        #: runs a call once the caller's batch of work is done (the node's event loop sets
        #: it); outcomes for one router asked for meanwhile leave as one router message
        self.defer: Callable[[Callable[[], None]], None] = _now
        self._outcomes = OutcomeBatches()
        #: stream id -> the delivery it carries, while that delivery is read in pieces
        #: (its far end acknowledges the bytes handed on: ``MESSAGE_WINDOW``)
        self._flowing: dict[str, _Ingress] = {}
        #: client port -> deliveries to its receivers big enough to be acknowledged
        self._acking: dict[int, set[_Acking]] = {}
        forwarder.message_arrival = self.arrive
        forwarder.message_outcome = self.outcome_arrived
        forwarder.message_whole = self.arrive_whole
        forwarder.on_change = self.routes_changed

    # -- addresses ----------------------------------------------------------------------

    def addresses(self) -> dict[str, dict[str, Any]]:
        """Per address: local senders and receivers, remote routers, counters."""
        view: dict[str, dict[str, Any]] = {}
        names = set(self.stats) | set(self._receivers)
        names |= {s.address for s in self._senders.values() if s.address is not None}
        for address in sorted(names):
            stats = self._stats(address)
            view[address] = {
                "distribution": self.distribution.mode(address).value,
                "senders": sum(1 for s in self._senders.values() if s.address == address),
                "receivers": len(self._receivers.get(address, ())),
                "remote": sorted(
                    self.forwarder.remote.get(self._key(address), frozenset()) - {self.router_id}
                ),
                "in": stats.delivered_in,
                "out": stats.delivered_out,
                "accepted": stats.accepted,
                "released": stats.released,
                "dropped": stats.dropped,
            }
        return view

    # -- a client connection's events -------------------------------------------------

    def handle(self, port: ClientPort, events: list[ClientEvent]) -> Handled:
        """Carry out what a client did (the events of one read of its connection)."""
        result = Handled()
        for event in events:
            if isinstance(event, DeliveryChunk):
                self.delivery_data(
                    port,
                    event.link_id,
                    event.delivery_id,
                    event.data,
                    first=event.first,
                    last=event.last,
                    aborted=event.aborted,
                    settled=event.settled,
                )
            elif isinstance(event, DeliveryOutcome):
                self.delivery_settled(port, event.delivery_id, event.outcome)
            elif isinstance(event, CreditAvailable):
                self.credit(port, event.link_id, event.credit)
            elif isinstance(event, ClientAttach):
                try:
                    if event.incoming:
                        self.attach_sender(port, event.link_id, event.address)
                    else:
                        self.attach_receiver(port, event.link_id, event.address, event.dynamic)
                except AddressRefused as refused:
                    result.refused.append((event.address, refused.description))
                    port.conn.refuse_link(event.link_id, refused.condition, refused.description)
            elif isinstance(event, LinkClosed):
                self.link_closed(port, event.link_id)
            elif isinstance(event, TransportFailed):
                result.failure = event.reason
                result.ended = True
            elif isinstance(event, ConnectionClosed):
                result.ended = True
            elif isinstance(event, ConnectionOpened):
                result.opened = True
        return result

    # -- links --------------------------------------------------------------------------

    def attach_sender(self, port: ClientPort, link_id: int, address: str | None) -> None:
        """A client attached a link to send on (to ``address``, or anonymous)."""
        if address is not None:
            check_address(address, sender=True)
        conn = port.conn
        conn.accept_link(link_id)
        mode = self.distribution.mode(address) if address is not None else DistributionMode.BALANCED
        sender = _Sender(port, link_id, address, mode)
        self._senders[(port.port_id, link_id)] = sender
        self._replenish(sender)

    def attach_receiver(
        self, port: ClientPort, link_id: int, address: str | None, dynamic: bool
    ) -> str:
        """A client attached a link to receive on; returns its address (assigned if dynamic)."""
        if dynamic:
            address = dynamic_address(self.router_id, next(self._dynamic))
            port.conn.accept_link(link_id, address)
        else:
            if address is None:
                raise AddressRefused("a receiver needs a source address", "amqp:invalid-field")
            check_address(address, sender=False)
            port.conn.accept_link(link_id)
        receiver = _Receiver(port, link_id, address, f"{port.port_id}/{link_id}")
        self._receiver_links[(port.port_id, link_id)] = receiver
        receivers = self._receivers.setdefault(address, [])
        receivers.append(receiver)
        if not is_dynamic(address):
            key = self._key(address)
            self.forwarder.table.bind_local(key, receiver.receiver_id)
            if len(receivers) == 1:
                self.advertise(key, True)
            self._address_changed(address)
        return address

    def credit(self, port: ClientPort, link_id: int, credit: int) -> None:
        receiver = self._receiver_links.get((port.port_id, link_id))
        if receiver is not None:
            receiver.credit = credit

    def link_closed(self, port: ClientPort, link_id: int) -> None:
        """A client's link ended (detached, or its connection is gone)."""
        key = (port.port_id, link_id)
        sender = self._senders.pop(key, None)
        if sender is not None:
            if sender.address is not None:
                self._waiting.get(sender.address, set()).discard(sender)
            return
        receiver = self._receiver_links.pop(key, None)
        if receiver is None:
            return
        receivers = self._receivers.get(receiver.address, [])
        if receiver in receivers:
            receivers.remove(receiver)
        if not receivers:
            self._receivers.pop(receiver.address, None)
        if not is_dynamic(receiver.address):
            address_key = self._key(receiver.address)
            self.forwarder.table.unbind_local(address_key, receiver.receiver_id)
            if not receivers:
                self.advertise(address_key, False)
        # what it was being sent, or waited for it, goes back to the senders, released
        for out in [receiver.current, *receiver.waiting]:
            if out is not None:
                out.dead = True
                out.chunks = []
                if not out.settled:
                    self._stats(receiver.address).released += 1
                    self.send_outcome(out.source, out.stream_id, OUTCOME_RELEASED)
        receiver.current = None
        receiver.waiting.clear()
        # its unsettled deliveries go back to their senders, released
        for egress_key, egress in list(self._egress.items()):
            if egress.receiver is receiver:
                del self._egress[egress_key]
                self._settle_egress(egress, OUTCOME_RELEASED)

    def connection_closed(self, port: ClientPort) -> None:
        """The connection is gone: forget its links and deliveries."""
        for port_id, link_id in [*self._senders, *self._receiver_links]:
            if port_id == port.port_id:
                self.link_closed(port, link_id)
        for key, ingress in list(self._incoming.items()):
            if key[0] == port.port_id:
                del self._incoming[key]
                self._unflow(ingress)
                self._abort_streams(ingress)
        self._acking.pop(port.port_id, None)
        for stream_id, ingress in list(self._pending.items()):
            if ingress.sender.port is port:
                del self._pending[stream_id]
                self._unreserve(ingress)
        for stream_id, (ingress, _) in list(self._copies.items()):
            if ingress.sender.port is port:
                del self._copies[stream_id]
