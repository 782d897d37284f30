"""Where the VanflowActor's messages go (actors/vanflow.py): an ``Outbox`` that sends
them as AMQP messages over the VAN (``MessagingOutbox``), one that management drains
(``ManagementOutbox``), or both (``Outboxes``)."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Protocol

from skupper_actors.protocol.messaging import AddressRefused
from skupper_actors.protocol.messaging.local import LocalEndpoint
from skupper_actors.protocol.vanflow import (
    BEACON_ADDRESS,
    Outgoing,
    encode,
    flows_address,
    logs_address,
    records_address,
)


# -- where the messages go -----------------------------------------------------------------
class Outbox(Protocol):
    def consumers(self) -> frozenset[str]:
        """The addresses that have a consumer now."""

    def wants_corecords(self, source: str) -> bool:
        """Whether co-records for router ``source``'s biflows would be read: someone
        consumes its flow records (else they are not sent at all)."""

    def send(self, messages: list[Outgoing]) -> None: ...


class ManagementOutbox:
    """Holds the last ``size`` messages for management to read. It has a consumer for
    every address of its source while someone reads it: from a read until ``idle_after``
    seconds without one (before and after, the emitter sends nothing, as a router with
    no observer attached; the next reader gets every live record in full)."""

    def __init__(
        self,
        source_id: str,
        size: int = 2_000,
        idle_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.addresses = frozenset(
            {
                BEACON_ADDRESS,
                records_address(source_id),
                flows_address(source_id),
                logs_address(source_id),
            }
        )
        self.idle_after = idle_after
        self.clock = clock
        self.read_at: float | None = None
        self.dropped = 0
        self._held: collections.deque[bytes] = collections.deque(maxlen=size)

    def consumers(self) -> frozenset[str]:
        read_at = self.read_at
        if read_at is None or self.clock() - read_at >= self.idle_after:
            if self._held:
                self._held.clear()  # nobody reads: nothing to keep
            return frozenset()
        return self.addresses

    def wants_corecords(self, source: str) -> bool:
        return bool(self.consumers())  # a reader merges every node's parts itself

    def send(self, messages: list[Outgoing]) -> None:
        if not self.consumers():
            return  # nobody reads (the messages went to the other outbox's consumers)
        for message in messages:
            if len(self._held) == self._held.maxlen:
                self.dropped += 1
            self._held.append(encode(message))

    def drain(self) -> tuple[bytes, ...]:
        self.read_at = self.clock()
        held = tuple(self._held)
        self._held.clear()
        return held


class MessagingOutbox:
    """Sends the emitter's messages as AMQP messages over the VAN: through ``endpoint``
    (an internal client of the node's MessageRouter) to Skupper's addresses, multicast
    ones pre-settled. An address has a consumer while a receiver for it exists anywhere
    in the network (a client here, or one another router advertises); a message to an
    address without one is not sent. While the router's window for an address is full
    (a burst: a FLUSH of thousands of records), messages wait here, at most ``backlog``
    of them, and go at the next tick; ``dropped``: messages lost past that bound."""

    def __init__(self, endpoint: LocalEndpoint, source_id: str, backlog: int = 1_000) -> None:
        self.endpoint = endpoint
        self.addresses = (
            BEACON_ADDRESS,
            records_address(source_id),
            flows_address(source_id),
            logs_address(source_id),
        )
        self.dropped = 0
        self.backlog = backlog
        self._waiting: collections.deque[Outgoing] = collections.deque()

    def consumers(self) -> frozenset[str]:
        has = self.endpoint.has_consumer
        return frozenset(address for address in self.addresses if has(address))

    def wants_corecords(self, source: str) -> bool:
        has = self.endpoint.has_consumer
        return has(flows_address(source)) or has(records_address(source))

    def send(self, messages: list[Outgoing]) -> None:
        """Send ``messages`` after those waiting, in order per address (also called
        with none, each tick, for those waiting)."""
        endpoint = self.endpoint
        waiting, self._waiting = self._waiting, collections.deque()
        waiting.extend(messages)
        full: set[str] = set()
        for message in waiting:
            address = message.address
            try:
                if not endpoint.has_consumer(address):
                    continue  # nobody to send it to any more
                if address in full or not endpoint.can_send(address):
                    full.add(address)
                    if len(self._waiting) < self.backlog:
                        self._waiting.append(message)
                    else:
                        self.dropped += 1
                    continue
                if not endpoint.send(address, encode(message)):
                    self.dropped += 1
            except AddressRefused:
                self.dropped += 1

    @property
    def waiting(self) -> int:
        return len(self._waiting)


class Outboxes:
    """Several outboxes at once: consumers of any of them; each sends to its own."""

    def __init__(self, *outboxes: Outbox) -> None:
        self.outboxes = outboxes

    def consumers(self) -> frozenset[str]:
        return frozenset().union(*(outbox.consumers() for outbox in self.outboxes))

    def wants_corecords(self, source: str) -> bool:
        return any(outbox.wants_corecords(source) for outbox in self.outboxes)

    def send(self, messages: list[Outgoing]) -> None:
        for outbox in self.outboxes:
            outbox.send(messages)

    @property
    def dropped(self) -> int:
        return sum(getattr(outbox, "dropped", 0) for outbox in self.outboxes)
