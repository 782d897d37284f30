"""Bookkeeping records for links and streams (plain slotted classes, private to the package)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Link:
    """One link this connection knows about; ``ptr`` is proton's pn_link_t."""

    __slots__ = (
        "address",
        "chunk_sink",
        "credit_seen",
        "finished",
        "in_stream",
        "is_sender",
        "link_id",
        "message_buffer",
        "name",
        "out_stream",
        "ptr",
        "session",
        "streaming",
        "whole",
    )

    def __init__(
        self,
        link_id: int,
        ptr: Any,
        session: Any,
        *,
        name: str,
        is_sender: bool,
        address: str | None,
        streaming: bool,
    ) -> None:
        self.link_id = link_id
        self.ptr = ptr
        self.session = session
        self.name = name
        self.is_sender = is_sender
        self.address = address
        self.streaming = streaming
        # Sending links: the credit last reported, so a flow that adds none stays quiet.
        self.credit_seen = 0
        self.in_stream: InStream | None = None
        # Receiving streaming links: its delivery has ended (nothing more can arrive).
        self.finished = False
        self.out_stream: OutgoingStreamDelivery | None = None
        # Parts of a complete message that arrived in several transfers.
        self.message_buffer: bytearray | None = None
        # Receiving streaming links: a small stream that arrives complete is one StreamWhole.
        self.whole = False
        # Receiving streaming links: where the body bytes of the running stream go, as
        # they arrive, instead of StreamData events (AmqpConnection.set_chunk_sink).
        self.chunk_sink: Callable[[bytes], object] | None = None


class OutgoingStreamDelivery:
    """A streaming delivery this side is sending."""

    __slots__ = ("delivery", "delivery_id", "link")

    def __init__(self, delivery_id: int, delivery: Any, link: Link) -> None:
        self.delivery_id = delivery_id
        self.delivery = delivery
        self.link = link


class InStream:
    """A streaming delivery arriving: where its section parser stands.

    ``head`` collects the bytes of the section head being read; ``remaining`` counts the
    body bytes of the current section still to come; ``header`` collects the header
    sections until the first data section starts the body.
    """

    __slots__ = ("delivery_id", "footer", "head", "header", "remaining", "started")

    def __init__(self, delivery_id: int) -> None:
        self.delivery_id = delivery_id
        self.head = bytearray()
        self.header = bytearray()
        self.remaining = 0
        self.started = False
        #: the footer section's body once it began (nothing may follow it but the end)
        self.footer: bytearray | None = None
