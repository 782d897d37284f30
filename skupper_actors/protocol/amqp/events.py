"""Typed values that cross the AMQP wrapper's boundary: messages in, events out.

The events built for every message or stream chunk (``StreamData``, ``StreamWhole``,
``MessageHeader``, ``CreditAvailable``...) are plain slotted dataclasses, read-only by
convention, not frozen: a frozen dataclass pays about 0.2 us per field to be built, and
a message crossing a router builds several (docs/adr/0018, second addendum)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

# What an AMQP value may be once decoded: proton's own types are converted to these.
AmqpValue: TypeAlias = (
    str | int | float | bool | bytes | list["AmqpValue"] | dict[str, "AmqpValue"] | None
)
# Application properties hold simple values only (AMQP 1.0, 3.2.5).
AmqpSimple: TypeAlias = str | int | float | bool | bytes | None
AmqpBody: TypeAlias = bytes | str | dict[str, AmqpValue] | None


class LinkRole(enum.StrEnum):
    """Which end of a link this side holds."""

    SENDER = "sender"
    RECEIVER = "receiver"


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class MessageHeader:
    """The addressing part of a message: what a streaming delivery starts with."""

    to: str | None = None
    reply_to: str | None = None
    subject: str | None = None
    application_properties: Mapping[str, AmqpSimple] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AmqpMessage:
    """A complete (non-streaming) message; a dict body travels as an AMQP map."""

    to: str | None = None
    reply_to: str | None = None
    subject: str | None = None
    application_properties: Mapping[str, AmqpSimple] = field(default_factory=dict)
    body: AmqpBody = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionOpened:
    """The peer's open frame arrived."""

    remote_container_id: str
    remote_properties: Mapping[str, AmqpValue]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed:
    """The peer's close frame arrived (an answer to ours, or its own decision)."""

    condition: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportFailed:
    """The byte stream broke: bad framing, EOF without close, or idle timeout expired."""

    condition: str
    description: str

    @property
    def reason(self) -> str:
        return f"{self.condition}: {self.description}" if self.description else self.condition


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkOpened:
    """The peer attached a link: answering ours, or a new one it initiated.

    ``role`` is this side's role; ``address`` is the sender's target or the receiver's
    source. A peer-initiated receiving link starts with no credit: grant it with ``flow``.
    """

    link_id: int
    name: str
    role: LinkRole
    address: str | None
    streaming: bool
    remote_initiated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkClosed:
    """A link ended by the peer, by the connection ending, or by a protocol error on it."""

    link_id: int
    condition: str | None = None
    description: str | None = None


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class CreditAvailable:
    """The peer granted credit on a sending link; ``credit`` is the total now available."""

    link_id: int
    credit: int


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class MessageReceived:
    """A complete message arrived on a non-streaming receiving link."""

    link_id: int
    message: AmqpMessage


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class StreamStarted:
    """A streaming delivery began; its header is known, its body follows as StreamData."""

    link_id: int
    delivery_id: int
    header: MessageHeader


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class StreamData:
    """Body bytes of a streaming delivery that arrived since the previous StreamData."""

    link_id: int
    delivery_id: int
    data: bytes


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class StreamEnded:
    """A streaming delivery finished; ``aborted`` when the sender, link or connection gave up."""

    link_id: int
    delivery_id: int
    aborted: bool


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class StreamLength:
    """The stream's footer announced its body's length; StreamEnded follows at once.

    The receiver compares it with the bytes it received: a clean end whose length
    differs (or was never announced) is not a whole stream.
    """

    link_id: int
    delivery_id: int
    length: int


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class StreamWhole:
    """A small streaming delivery that arrived complete, on a link that asked for it
    (``AmqpConnection.read_whole``): what StreamStarted, its StreamData, StreamLength and
    a clean StreamEnded would say, in one event."""

    link_id: int
    delivery_id: int
    header: MessageHeader
    body: bytes
    length: int | None


AmqpEvent: TypeAlias = (
    ConnectionOpened
    | ConnectionClosed
    | TransportFailed
    | LinkOpened
    | LinkClosed
    | CreditAvailable
    | MessageReceived
    | StreamStarted
    | StreamData
    | StreamEnded
    | StreamLength
    | StreamWhole
)
