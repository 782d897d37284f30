"""The egress side of the messaging router (router.py): client messages arriving for
this router go to its local receivers, one receiver each (anycast) or every one
(multicast), and the receivers' outcomes go back to each delivery's ingress router in
batches (outcomes.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from ..amqp.client_events import OUTCOME_RELEASED, Outcome
from ..forwarding import Forwarder, StreamRefused
from ..tcp.mapping import StreamHeader
from .addresses import advertised
from .deliveries import _Acking, _EgressSink, _MulticastSink
from .outcomes import OutcomeBatches
from .records import NO_RECEIVER, AddressStats, ClientPort, _Egress, _Receiver


class EgressSide:
    """Local receivers, the deliveries they hold unsettled, outcomes on their way back."""

    forwarder: Forwarder
    router_id: str
    stats: dict[str, AddressStats]
    defer: Callable[[Callable[[], None]], None]
    _receivers: dict[str, list[_Receiver]]
    _egress: dict[tuple[int, int], _Egress]
    _acking: dict[int, set[_Acking]]
    _outcomes: OutcomeBatches
    _turn: itertools.count[int]

    def _stats(self, address: str) -> AddressStats:
        stats = self.stats.get(address)
        if stats is None:
            stats = self.stats[address] = AddressStats()
        return stats

    def _key(self, address: str) -> str:
        return advertised(address)

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

    def send_outcome(self, router: str, stream_id: str, outcome: Outcome) -> None:
        """Tell the ingress ``router`` how the delivery of ``stream_id`` ended (batched)."""
        if self._outcomes.add(router, stream_id, outcome):
            self.defer(self._send_outcomes)  # (unit tests: at once)

    def _send_outcomes(self) -> None:
        for router, body in self._outcomes.take():
            self.forwarder.router_message(router, body, ours=True)
