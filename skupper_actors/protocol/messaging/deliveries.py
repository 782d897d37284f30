"""A client delivery's stream at either end, for the messaging router (router.py): its
owner at the ingress, and at the egress the sink that writes it to one receiver
(``_EgressSink``) or to each of an address's receivers (``_MulticastSink``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..addresses import MESSAGE
from ..amqp.client_events import (
    OUTCOME_ACCEPTED,
    OUTCOME_RELEASED,
)
from ..tcp.mapping import StreamHeader
from .records import MESSAGE_ACK_EVERY, MULTICAST_QUEUE, _Egress, _Receiver

if TYPE_CHECKING:
    from .egress import EgressSide
    from .ingress import IngressSide


class _StreamOwner:
    """Told when the link carrying a delivery's stream ends before the stream did."""

    __slots__ = ("router", "stream_id")

    def __init__(self, router: IngressSide, stream_id: str) -> None:
        self.router = router
        self.stream_id = stream_id

    def link_closed(self, condition: str | None, description: str | None) -> None:
        self.router.stream_lost(self.stream_id)


class _Outgoing:
    """One delivery to a local receiver: written through while it is the link's current
    delivery, else its bytes wait (a link carries its deliveries one after another)."""

    __slots__ = (
        "aborted",
        "chunks",
        "dead",
        "delivery_id",
        "ended",
        "received",
        "receiver",
        "router",
        "settled",
        "source",
        "stream_id",
    )

    def __init__(
        self, router: EgressSide, receiver: _Receiver, header: StreamHeader, settled: bool
    ) -> None:
        self.router = router
        self.receiver = receiver
        self.stream_id = header.stream_id
        self.source = header.source
        self.settled = settled
        self.chunks: list[bytes] = []
        self.ended = False
        self.aborted = False
        self.delivery_id = 0
        self.received = 0
        self.dead = False  # its receiver is gone
        receiver.outstanding += 1
        if receiver.current is None:
            self._activate()
        else:
            receiver.waiting.append(self)

    def _activate(self) -> None:
        receiver = self.receiver
        receiver.current = self
        conn = receiver.port.conn
        self.delivery_id = conn.start_delivery(receiver.link_id)
        chunks, self.chunks = self.chunks, []
        for chunk in chunks:
            conn.write_delivery(self.delivery_id, chunk)
        if self.ended:
            self._complete()
        receiver.port.flush()

    def data(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.dead:
            return
        if self.receiver.current is self:
            self.receiver.port.conn.write_delivery(self.delivery_id, chunk)
            self.receiver.port.flush()
        else:
            self.chunks.append(chunk)

    def moved(self) -> int:
        """Bytes handed on to the receiver's connection (or dropped with its receiver)."""
        if self.dead:
            return self.received
        here = sum(map(len, self.chunks))
        if self.receiver.current is self and self.delivery_id:
            here += self.receiver.port.conn.held_for(self.delivery_id)
        return self.received - here

    def end(self, aborted: bool) -> None:
        if self.dead:
            return
        receiver = self.receiver
        self.ended = True
        self.aborted = aborted
        if receiver.current is self:
            self._complete()
            receiver.port.flush()
        elif aborted:
            receiver.waiting.remove(self)
            receiver.outstanding = max(0, receiver.outstanding - 1)
            self.chunks = []

    def _complete(self) -> None:
        receiver = self.receiver
        conn = receiver.port.conn
        router = self.router
        if self.aborted or not self.delivery_id:
            if self.delivery_id:
                conn.abort_delivery(self.delivery_id)
            receiver.outstanding = max(0, receiver.outstanding - 1)
        else:
            conn.finish_delivery(self.delivery_id, settled=self.settled)
            router._stats(receiver.address).delivered_out += 1
            if self.settled:
                receiver.outstanding = max(0, receiver.outstanding - 1)
            else:
                router._egress[(receiver.port.port_id, self.delivery_id)] = _Egress(
                    receiver, self.delivery_id, self.stream_id, self.source, False
                )
        receiver.current = None
        if receiver.waiting:
            receiver.waiting.popleft()._activate()


class _Acking:
    """A large delivery arriving: acknowledges to its ingress the bytes its receiver
    connection(s) took, every ``MESSAGE_ACK_EVERY`` (the ingress reads its sender only
    so far ahead: records.MESSAGE_WINDOW)."""

    __slots__ = ("acked_at", "header", "outs", "received", "router", "tracked")

    def __init__(self, router: EgressSide, header: StreamHeader) -> None:
        self.router = router
        self.header = header
        self.outs: list[_Outgoing] = []
        self.received = 0
        self.acked_at = 0
        self.tracked = False  # in the router's table of deliveries to acknowledge

    def data(self, chunk: bytes) -> None:
        for out in self.outs:
            out.data(chunk)
        self.received += len(chunk)
        if self.received - self.acked_at >= MESSAGE_ACK_EVERY:
            if not self.tracked:
                self.tracked = True
                for out in self.outs:
                    self.router._acking.setdefault(out.receiver.port.port_id, set()).add(self)
            self.acknowledge()

    def acknowledge(self) -> None:
        outs = self.outs
        moved = min(out.moved() for out in outs) if outs else self.received
        if moved - self.acked_at >= MESSAGE_ACK_EVERY:
            self.acked_at = moved
            header = self.header
            self.router.forwarder.send_ack(header.source, header.stream_id, MESSAGE, moved)

    def _untrack(self) -> None:
        if self.tracked:
            self.tracked = False
            acking = self.router._acking
            for out in self.outs:
                found = acking.get(out.receiver.port.port_id)
                if found is not None:
                    found.discard(self)


class _EgressSink(_Acking):
    """A client message's stream arriving here: its bytes go to one local receiver."""

    __slots__ = ()

    def __init__(self, router: EgressSide, receiver: _Receiver, header: StreamHeader) -> None:
        super().__init__(router, header)
        self.outs.append(_Outgoing(router, receiver, header, settled=False))

    def end(self, aborted: bool, length: int | None = None) -> None:
        self._untrack()
        out = self.outs[0]
        dead = out.dead  # its receiver detached: released already
        out.end(aborted)
        if aborted and not dead:
            # cut on its way here (a connection lost on the path): never delivered, and
            # the ingress may have sent all of it and wait for an outcome
            header = self.header
            self.router.send_outcome(header.source, header.stream_id, OUTCOME_RELEASED)


class _MulticastSink(_Acking):
    """A multicast message arriving here: a pre-settled copy to every local receiver."""

    __slots__ = ()

    def __init__(
        self, router: EgressSide, address: str, receivers: list[_Receiver], header: StreamHeader
    ) -> None:
        super().__init__(router, header)
        # a receiver whose link already has MULTICAST_QUEUE deliveries waiting misses this
        # one (at most once): a slow multicast receiver never grows the router's memory
        takers = [
            r for r in receivers if len(r.waiting) + r.port.conn.queued(r.link_id) < MULTICAST_QUEUE
        ]
        self.outs.extend(_Outgoing(router, r, header, settled=True) for r in takers)
        dropped = len(receivers) - len(takers) if receivers else 1
        if dropped:
            router._stats(address).dropped += dropped

    def end(self, aborted: bool, length: int | None = None) -> None:
        self._untrack()
        for out in self.outs:
            out.end(aborted)
        # the copy is through: the ingress may let its sender send more
        header = self.header
        self.router.send_outcome(header.source, header.stream_id, OUTCOME_ACCEPTED)
