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

from ..addresses import MESSAGE
from ..addressing import Destination, DistributionMode
from ..amqp import (
    ConnectionClosed,
    ConnectionOpened,
    CreditAvailable,
    LinkClosed,
    TransportFailed,
)
from ..amqp.client_events import (
    OUTCOME_ACCEPTED,
    OUTCOME_RELEASED,
    ClientAttach,
    ClientEvent,
    DeliveryChunk,
    DeliveryOutcome,
    Outcome,
)
from ..forwarding import Forwarder, StreamRefused
from ..tcp.mapping import StreamHeader
from .addresses import (
    AddressRefused,
    Distribution,
    advertised,
    check_address,
    dynamic_address,
    dynamic_router,
    is_dynamic,
)
from .deliveries import _Acking, _EgressSink, _MulticastSink, _StreamOwner
from .outcomes import OutcomeBatches, read_outcomes
from .records import (
    CREDIT_BATCH,
    MESSAGE_WINDOW,
    NO_RECEIVER,
    SENDER_BYTES,
    SENDER_WINDOW,
    AddressStats,
    ClientPort,
    Handled,
    _Egress,
    _Ingress,
    _Receiver,
    _Sender,
)
from .sections import MAX_LEADING_BYTES, Incomplete, message_to

__all__ = ["SENDER_WINDOW", "AddressStats", "ClientPort", "Handled", "MessageRouter"]


def _now(call: Callable[[], None]) -> None:
    call()


class MessageRouter:
    """Addresses with local senders and receivers, and every delivery in flight here."""

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
    def _stats(self, address: str) -> AddressStats:
        stats = self.stats.get(address)
        if stats is None:
            stats = self.stats[address] = AddressStats()
        return stats

    def _key(self, address: str) -> str:
        return advertised(address)

    def has_destination(self, address: str) -> bool:
        router = dynamic_router(address)
        if router is not None:
            return router == self.router_id or router in self.forwarder.routes
        return bool(self.forwarder.table.destinations(self._key(address)))

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

    # -- credit -------------------------------------------------------------------------
    def _replenish(self, sender: _Sender) -> None:
        """Top the sender's credit up to its window if its address has a destination."""
        if sender.bytes_in_flight >= SENDER_BYTES or sender.credit > CREDIT_BATCH // 2:
            # its next settlement asks again; credit goes out in batches (a flow frame
            # per settlement would have the client send one message per packet)
            return
        if (sender.port.port_id, sender.link_id) not in self._senders:
            return
        address = sender.address
        if (
            address is not None
            and sender.mode is not DistributionMode.MULTICAST
            and not self.has_destination(address)
        ):
            self._waiting.setdefault(address, set()).add(sender)
            return
        more = min(SENDER_WINDOW - sender.in_flight, CREDIT_BATCH) - sender.credit
        if more > 0:
            sender.credit += more
            sender.port.conn.grant(sender.link_id, more)
            sender.port.flush()

    def _address_changed(self, address: str) -> None:
        waiting = self._waiting.get(address)
        if waiting and self.has_destination(address):
            del self._waiting[address]
            for sender in list(waiting):
                self._replenish(sender)

    def routes_changed(self) -> None:
        """Routes or remote addresses changed: wake senders, release lost deliveries."""
        for address in list(self._waiting):
            self._address_changed(address)
        routes = self.forwarder.routes
        for stream_id, (_, target) in list(self._copies.items()):
            if target != self.router_id and target not in routes:
                self._copy_through(stream_id)
        for stream_id, ingress in list(self._pending.items()):
            destination = ingress.destination
            if (
                ingress.ended
                and destination is not None
                and destination.router_id != self.router_id
                and destination.router_id not in routes
            ):
                self._finish(stream_id, OUTCOME_RELEASED)

    # -- deliveries from local senders ---------------------------------------------------
    def delivery_data(
        self,
        port: ClientPort,
        link_id: int,
        delivery_id: int,
        data: bytes,
        *,
        first: bool,
        last: bool,
        aborted: bool,
        settled: bool,
    ) -> None:
        key = (port.port_id, delivery_id)
        if first:
            sender = self._senders.get((port.port_id, link_id))
            if sender is None:
                return
            if last and not aborted and self._send_whole(sender, delivery_id, data, settled):
                return
            sender.credit = max(0, sender.credit - 1)
            sender.in_flight += 1
            ingress = _Ingress(sender, delivery_id, settled, sender.address)
            self._incoming[key] = ingress
        else:
            found = self._incoming.get(key)
            if found is None:
                return
            ingress = found
        ingress.size += len(data)
        ingress.sender.bytes_in_flight += len(data)
        if aborted:
            del self._incoming[key]
            self._unflow(ingress)
            self._abort_streams(ingress)
            self._done(ingress, None)
            return
        if ingress.done and not ingress.streams:
            if last:
                del self._incoming[key]
                self._done(ingress, ingress.fate)
            return
        if not ingress.streams and not ingress.done:
            if ingress.address is None:
                head = ingress.head = (ingress.head or bytearray()) + data
                try:
                    to = message_to(bytes(head[:MAX_LEADING_BYTES]), complete=last)
                except Incomplete:
                    return
                data = bytes(head)
                ingress.head = None
                if to is None or not self._allowed_to(to):
                    self._drop(ingress, key, last, "no usable 'to' address")
                    return
                ingress.address = to
            if not self._route(ingress, flow=not last):
                self._drop(ingress, key, last, "no destination")
                return
        for stream in ingress.streams:
            stream.write(data)
        if ingress.acked is not None and not last:
            self._window(ingress)
        if last:
            del self._incoming[key]
            self._unflow(ingress)
            ingress.ended = True
            for stream in ingress.streams:
                stream.end(None)
            if (
                ingress.settled
                or ingress.sender.mode is DistributionMode.MULTICAST
                or ingress.multicast
            ):
                self._done(ingress, OUTCOME_ACCEPTED)
            else:
                self._replenish(ingress.sender)  # it is whole: the sender may send more
                ingress.sender.port.flush()

    def _send_whole(self, sender: _Sender, delivery_id: int, data: bytes, settled: bool) -> bool:
        """The common case, a whole delivery from an anycast sender to another router,
        sent as one complete message stream (no stream object, owner or window). False:
        the general path takes it (multicast, anonymous, local, nowhere to go)."""
        address = sender.address
        if address is None or sender.mode is DistributionMode.MULTICAST:
            return False
        router = dynamic_router(address)
        if router is None:
            destination = self.forwarder.table.select(
                self._key(address), sender.mode, self._outstanding
            )
            if destination is None:
                return False
            router = destination.router_id
        else:
            destination = Destination(router_id=router)
        if router == self.router_id:
            return False
        stream_id = self.forwarder.new_stream_id()
        header = StreamHeader(
            stream_id=stream_id,
            direction=MESSAGE,
            source=self.router_id,
            destination=router,
            routing_key=address,
        )
        try:
            self.forwarder.send_whole(header, data)
        except StreamRefused:
            return False
        sender.credit = max(0, sender.credit - 1)
        sender.in_flight += 1
        size = len(data)
        sender.bytes_in_flight += size
        ingress = _Ingress(sender, delivery_id, settled, address)
        ingress.size = size
        ingress.stream_id = stream_id
        ingress.destination = destination
        ingress.ended = True
        self._outstanding[destination] += 1
        self._stats(address).delivered_in += 1
        if settled:
            self._done(ingress, OUTCOME_ACCEPTED)
        else:
            self._pending[stream_id] = ingress
            self._replenish(sender)  # it is whole: the sender may send more
            sender.port.flush()
        return True

    def _allowed_to(self, address: str) -> bool:
        try:
            check_address(address, sender=True)
        except AddressRefused:
            return False
        return True

    def _drop(self, ingress: _Ingress, key: tuple[int, int], last: bool, why: str) -> None:
        """Nowhere to go: anycast deliveries are released, multicast ones dropped."""
        ingress.done = True
        multicast = ingress.address is not None and (
            self.distribution.mode(ingress.address) is DistributionMode.MULTICAST
        )
        if multicast:
            self._stats(ingress.address or "").dropped += 1
        ingress.fate = OUTCOME_ACCEPTED if multicast else OUTCOME_RELEASED
        if last:
            self._incoming.pop(key, None)
            self._done(ingress, ingress.fate)

    def _route(self, ingress: _Ingress, flow: bool = False) -> bool:
        """Open the stream(s) of a delivery; False when it has nowhere to go.

        ``flow``: more of the delivery is to come; its streams' far ends acknowledge
        what they hand on, and the sender's connection waits past ``MESSAGE_WINDOW``.
        """
        address = ingress.address
        assert address is not None
        forwarder = self.forwarder
        stats = self._stats(address)
        stats.delivered_in += 1
        sender = ingress.sender
        mode = sender.mode if address == sender.address else self.distribution.mode(address)
        ingress.multicast = mode is DistributionMode.MULTICAST
        router = dynamic_router(address)
        if router is not None:
            routers = [router]
        elif mode is DistributionMode.MULTICAST:
            destinations = forwarder.table.destinations(self._key(address))
            routers = sorted({d.router_id for d in destinations})
        else:
            choice = forwarder.table.select(self._key(address), mode, self._outstanding)
            if choice is None:
                return False
            ingress.destination = choice
            routers = [choice.router_id]
        if not routers:
            return False
        multicast = mode is DistributionMode.MULTICAST and router is None
        for target in routers:
            stream_id = forwarder.new_stream_id()
            header = StreamHeader(
                stream_id=stream_id,
                direction=MESSAGE,
                source=self.router_id,
                destination=target,
                routing_key=address,
                reply_to="multicast" if multicast else None,
            )
            owner = _StreamOwner(self, stream_id)
            if not multicast:
                ingress.stream_id = stream_id
                if ingress.destination is None:
                    ingress.destination = Destination(router_id=target)
                self._outstanding[ingress.destination] += 1
                if not ingress.settled:
                    self._pending[stream_id] = ingress
            try:
                ingress.streams.append(forwarder.open_stream(header, owner))
                if multicast:
                    self._copies[stream_id] = (ingress, target)
                    ingress.mc_left += 1
                if flow:
                    if ingress.acked is None:
                        ingress.acked = {}
                    ingress.acked[stream_id] = 0
                    self._flowing[stream_id] = ingress
                    forwarder.on_ack(stream_id, MESSAGE, self._stream_acked)
            except StreamRefused:
                if not multicast:
                    self._pending.pop(stream_id, None)
                    self._unreserve(ingress)
                    return False
        return bool(ingress.streams)

    # -- a large delivery's window ------------------------------------------------------
    def _stream_acked(self, stream_id: str, offset: int) -> None:
        ingress = self._flowing.get(stream_id)
        if ingress is None or ingress.acked is None:
            return
        if offset > ingress.acked.get(stream_id, 0):
            ingress.acked[stream_id] = offset
            self._window(ingress)

    def _window(self, ingress: _Ingress) -> None:
        """Pause or resume the sender's connection as the delivery's far ends keep up."""
        acked = ingress.acked
        behind = ingress.size - min(acked.values()) if acked else 0
        if behind >= MESSAGE_WINDOW:
            if not ingress.paused:
                ingress.paused = True
                ingress.sender.port.pause()
        elif ingress.paused:
            ingress.paused = False
            ingress.sender.port.resume()

    def _unflow(self, ingress: _Ingress, stream_id: str | None = None) -> None:
        """The delivery is no longer read (or one of its streams is gone)."""
        acked = ingress.acked
        if acked is None:
            return
        for sid in [stream_id] if stream_id is not None else list(acked):
            if acked.pop(sid, None) is not None:
                self._flowing.pop(sid, None)
                self.forwarder.forget_acks(sid, MESSAGE)
        if stream_id is None or not acked:
            ingress.acked = None
            if ingress.paused:
                ingress.paused = False
                ingress.sender.port.resume()
        else:
            self._window(ingress)

    def _abort_streams(self, ingress: _Ingress) -> None:
        if ingress.mc_left:
            for stream_id in [k for k, (i, _) in self._copies.items() if i is ingress]:
                del self._copies[stream_id]
            ingress.mc_left = 0
        streams, ingress.streams = ingress.streams, []
        for stream in streams:
            stream.abort()
        if ingress.stream_id:
            self._pending.pop(ingress.stream_id, None)
            self._unreserve(ingress)

    def _unreserve(self, ingress: _Ingress) -> None:
        destination = ingress.destination
        if destination is not None:
            ingress.destination = None
            outstanding = self._outstanding
            outstanding[destination] -= 1
            if outstanding[destination] <= 0:
                del outstanding[destination]

    def stream_lost(self, stream_id: str) -> None:
        """A stream ended before its delivery was whole at the far end: release it."""
        if stream_id in self._copies:
            copy = self._flowing.get(stream_id)
            if copy is not None:
                self._unflow(copy, stream_id)  # the other copies go on
            self._copy_through(stream_id)  # a multicast copy lost: at most once
            return
        ingress = self._pending.get(stream_id)
        if ingress is not None:
            key = (ingress.sender.port.port_id, ingress.delivery_id)
            if self._incoming.get(key) is ingress:
                del self._incoming[key]  # the rest of its bytes have nowhere to go
                self._unflow(ingress)
                ingress.streams = []
            self._finish(stream_id, OUTCOME_RELEASED)

    def send_outcome(self, router: str, stream_id: str, outcome: Outcome) -> None:
        """Tell the ingress ``router`` how the delivery of ``stream_id`` ended (batched)."""
        if self._outcomes.add(router, stream_id, outcome):
            self.defer(self._send_outcomes)  # (unit tests: at once)

    def _send_outcomes(self) -> None:
        for router, body in self._outcomes.take():
            self.forwarder.router_message(router, body)

    def outcome_arrived(self, body: dict[str, Any]) -> None:
        """Outcomes came back from an egress router (outcomes.py has the shape)."""
        for stream_id, outcome in read_outcomes(body):
            self._outcome(stream_id, outcome)

    def _outcome(self, stream_id: str, outcome: Outcome) -> None:
        if stream_id in self._copies:
            self._copy_through(stream_id)
            return
        ingress = self._pending.get(stream_id)
        if ingress is not None:
            key = (ingress.sender.port.port_id, ingress.delivery_id)
            if self._incoming.get(key) is ingress:
                # settled before it was whole here (refused on the way): stop sending it
                del self._incoming[key]
                self._unflow(ingress)
                streams, ingress.streams = ingress.streams, []
                for stream in streams:
                    stream.abort()
        self._finish(stream_id, outcome)

    def _finish(self, stream_id: str, outcome: Outcome) -> None:
        ingress = self._pending.pop(stream_id, None)
        if ingress is None:
            return
        self._unreserve(ingress)
        self._done(ingress, outcome)

    def _done(self, ingress: _Ingress, outcome: Outcome | None) -> None:
        """The delivery is over at this end: settle it (unless pre-settled), give credit."""
        if ingress.finished:
            return
        ingress.finished = True
        self._unreserve(ingress)  # a pre-settled one was counted until now, too
        sender = ingress.sender
        port = sender.port
        if outcome is not None and not ingress.settled:
            port.conn.settle(ingress.delivery_id, outcome)
        if outcome is not None and ingress.address is not None:
            stats = self._stats(ingress.address)
            if outcome.state == OUTCOME_RELEASED.state:
                stats.released += 1
            elif outcome.state == OUTCOME_ACCEPTED.state:
                stats.accepted += 1
        if ingress.mc_left == 0:  # multicast: the window frees once every copy is through
            self._free(ingress)
        port.flush()

    def _free(self, ingress: _Ingress) -> None:
        """The delivery no longer counts against its sender's window."""
        sender = ingress.sender
        sender.in_flight -= 1
        sender.bytes_in_flight -= ingress.size
        self._replenish(sender)

    def _copy_through(self, stream_id: str) -> None:
        """One multicast copy reached its router (or was lost on the way)."""
        found = self._copies.pop(stream_id, None)
        if found is None:
            return
        ingress, _ = found
        ingress.mc_left -= 1
        if ingress.mc_left == 0 and ingress.finished:
            self._free(ingress)
            ingress.sender.port.flush()

    # -- deliveries to local receivers ---------------------------------------------------
    def arrive(
        self, header: StreamHeader, refuse: Callable[[str, str], None]
    ) -> _EgressSink | _MulticastSink:
        """A client message for this router arrived as a stream: pick its receiver(s)."""
        address = header.routing_key
        receivers = self._receivers.get(address)
        if header.reply_to == "multicast":
            return _MulticastSink(self, address, list(receivers or ()), header)
        if not receivers:
            raise StreamRefused(NO_RECEIVER, f"no receiver for {address!r} here")
        return _EgressSink(self, self._pick(receivers), header)

    def _pick(self, receivers: list[_Receiver]) -> _Receiver:
        """The receiver with the most credit left over its outstanding deliveries (ties
        in turn)."""
        if len(receivers) == 1:
            return receivers[0]
        turn = next(self._turn)
        return min(
            receivers,
            key=lambda r: (r.outstanding - r.credit, (hash(r.receiver_id) + turn) % 7),
        )

    def arrive_whole(self, header: StreamHeader, body: bytes) -> bool:
        """A whole anycast message for this router: written to a local receiver at once
        when that receiver's link is free (no sink, no waiting). False: ``arrive`` takes
        it (multicast, no receiver here, the receiver busy with a delivery)."""
        receivers = self._receivers.get(header.routing_key)
        if not receivers or header.reply_to == "multicast":
            return False
        receiver = self._pick(receivers)
        if receiver.current is not None:
            return False
        port = receiver.port
        conn = port.conn
        delivery_id = conn.start_delivery(receiver.link_id)
        if not delivery_id:
            return False
        receiver.outstanding += 1
        conn.write_delivery(delivery_id, body)
        conn.finish_delivery(delivery_id, settled=False)
        self._stats(receiver.address).delivered_out += 1
        self._egress[(port.port_id, delivery_id)] = _Egress(
            receiver, delivery_id, header.stream_id, header.source, False
        )
        port.flush()
        return True

    def _settle_egress(self, egress: _Egress, outcome: Outcome) -> None:
        receiver = egress.receiver
        receiver.outstanding = max(0, receiver.outstanding - 1)
        if outcome.state == OUTCOME_RELEASED.state:
            self._stats(receiver.address).released += 1
        if egress.settled:
            return
        self.send_outcome(egress.source, egress.stream_id, outcome)

    def output_moved(self, port: ClientPort) -> None:
        """Held bytes of the port's outgoing deliveries moved into its engine: the large
        ones acknowledge what moved to their ingress (see ``MESSAGE_WINDOW``)."""
        outs = self._acking.get(port.port_id)
        if outs:
            for out in list(outs):
                out.acknowledge()

    def delivery_settled(self, port: ClientPort, delivery_id: int, outcome: Outcome) -> None:
        """A local receiver settled a delivery: its outcome goes back to the ingress."""
        egress = self._egress.pop((port.port_id, delivery_id), None)
        if egress is not None:
            self._settle_egress(egress, outcome)
