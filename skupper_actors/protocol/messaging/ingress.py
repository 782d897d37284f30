"""The ingress side of the messaging router (router.py): deliveries from local senders
are routed (balanced, closest, multicast) and sent on as message streams; outcomes
coming back settle them; senders get credit while their deliveries have somewhere to go.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..addresses import MESSAGE
from ..addressing import Destination, DistributionMode
from ..amqp.client_events import OUTCOME_ACCEPTED, OUTCOME_RELEASED, Outcome
from ..forwarding import StreamRefused
from ..tcp.mapping import StreamHeader
from .addresses import AddressRefused, Distribution, check_address, dynamic_router
from .deliveries import _StreamOwner
from .egress import EgressSide
from .outcomes import read_outcomes
from .records import (
    CREDIT_BATCH,
    MESSAGE_WINDOW,
    SENDER_BYTES,
    SENDER_WINDOW,
    ClientPort,
    _Ingress,
    _Sender,
)
from .sections import MAX_LEADING_BYTES, Incomplete, message_to


class IngressSide(EgressSide):
    """Local senders' deliveries in flight, their streams, windows and outcomes."""

    distribution: Distribution
    _senders: dict[tuple[int, int], _Sender]
    _waiting: dict[str, set[_Sender]]
    _incoming: dict[tuple[int, int], _Ingress]
    _pending: dict[str, _Ingress]
    _copies: dict[str, tuple[_Ingress, str]]
    _outstanding: Counter[Destination]
    _flowing: dict[str, _Ingress]

    def has_destination(self, address: str) -> bool:
        router = dynamic_router(address)
        if router is not None:
            return router == self.router_id or router in self.forwarder.routes
        return bool(self.forwarder.table.destinations(self._key(address)))

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
        header = self._message_header(stream_id, router, address)
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

    def _message_header(
        self, stream_id: str, router: str, address: str, multicast: bool = False
    ) -> StreamHeader:
        """The header of a message stream from here to ``router`` for ``address``."""
        return StreamHeader(
            stream_id=stream_id,
            direction=MESSAGE,
            source=self.router_id,
            destination=router,
            routing_key=address,
            reply_to="multicast" if multicast else None,
        )

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
            header = self._message_header(stream_id, target, address, multicast)
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

    # -- outcomes coming back ----------------------------------------------------------

    def outcome_arrived(self, body: dict[str, Any]) -> None:
        """Outcomes came back from an egress router (outcomes.py has the shape)."""
        for stream_id, outcome in read_outcomes(body):
            self._outcome(stream_id, outcome)

    def _outcome(self, stream_id: str, outcome: Outcome) -> None:
        ingress = self._pending.get(stream_id)
        if ingress is not None and ingress.ended:  # the common case: sent whole, in flight
            del self._pending[stream_id]
            self._done(ingress, outcome)
            return
        if stream_id in self._copies:
            self._copy_through(stream_id)
            return
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
