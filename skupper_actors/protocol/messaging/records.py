"""The messaging router's records: its limits, the client port it drives, and what it
keeps per sender link, receiver link, delivery in flight and address (router.py)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..addressing import Destination, DistributionMode
from ..amqp.client import ClientConnection
from ..amqp.client_events import Outcome
from ..forwarding import OutStream

if TYPE_CHECKING:
    from .deliveries import _Outgoing

#: deliveries of one sender link in the mesh at once, at most
SENDER_WINDOW = 250
#: credit a sender link holds unused at most (topped up as its deliveries arrive)
CREDIT_BATCH = 50
#: bytes of one sender link's deliveries in the mesh past which it gets no more credit
#: (until some settle): with CREDIT_BATCH, what one sender can have queued anywhere
SENDER_BYTES = 8 << 20
NO_RECEIVER = "skupper:no-receiver"
#: multicast deliveries waiting for one receiver link, at most (more are dropped, counted)
MULTICAST_QUEUE = 100
#: bytes of one delivery's stream sent but not yet handed on to its receiver's connection
#: at the far end, at most: past it the ingress stops reading the sender's connection
#: (a large message to a slow receiver never piles up in a router)
MESSAGE_WINDOW = 1 << 20
#: the egress acknowledges a delivery's bytes when this many more have moved on
MESSAGE_ACK_EVERY = 256 << 10


class ClientPort(Protocol):
    """A client connection as the router sees it (its actor shell)."""

    port_id: int
    conn: ClientConnection

    def flush(self) -> None:
        """Send what the connection holds now, without blocking the caller."""

    def pause(self) -> None:
        """Stop reading the client (until as many ``resume`` calls)."""

    def resume(self) -> None:
        """Read the client again, once every ``pause`` has been resumed."""


@dataclass(slots=True)
class AddressStats:
    """Deliveries per address, at this router."""

    delivered_in: int = 0  # from local senders
    delivered_out: int = 0  # to local receivers
    released: int = 0
    dropped: int = 0
    accepted: int = 0


@dataclass(slots=True, eq=False)
class _Sender:
    port: ClientPort
    link_id: int
    address: str | None
    mode: DistributionMode
    credit: int = 0  # granted to the client, not used yet
    in_flight: int = 0  # deliveries taken in, not settled end to end yet
    bytes_in_flight: int = 0


@dataclass(slots=True, eq=False)
class _Receiver:
    port: ClientPort
    link_id: int
    address: str
    receiver_id: str
    credit: int = 0
    outstanding: int = 0
    #: deliveries on a link go one after another: the one being written, those waiting
    current: _Outgoing | None = None
    waiting: deque[_Outgoing] = field(default_factory=deque)


@dataclass(slots=True, eq=False)
class _Ingress:
    """A client delivery this router takes in: forwarded, then waiting for its outcome."""

    sender: _Sender
    delivery_id: int
    settled: bool
    address: str | None = None
    head: bytearray | None = None  # buffered until the `to` of an anonymous sender is read
    streams: list[OutStream] = field(default_factory=list)
    stream_id: str = ""
    destination: Destination | None = None
    ended: bool = False
    done: bool = False  # routed nowhere (``fate`` says how it ends) or finished
    fate: Outcome | None = None
    finished: bool = False
    size: int = 0  # bytes taken in
    mc_left: int = 0  # multicast copies not through to their routers yet
    #: a delivery bigger than its first chunk: stream id -> bytes its far end acknowledged
    acked: dict[str, int] | None = None
    paused: bool = False  # its sender's connection waits for acknowledgements
    multicast: bool = False  # its address is multicast (known once routed)


@dataclass(slots=True, eq=False)
class _Egress:
    """A delivery this router sends a local receiver, for a stream that arrived."""

    receiver: _Receiver
    delivery_id: int
    stream_id: str
    source: str
    settled: bool


@dataclass(slots=True)
class Handled:
    """What the shell must know after ``MessageRouter.handle`` (it logs and ends)."""

    opened: bool = False  # the client's AMQP open arrived
    ended: bool = False  # the connection is over
    failure: str | None = None  # why the transport failed (bad input)
    refused: list[tuple[str | None, str]] = field(default_factory=list)  # (address, why)
