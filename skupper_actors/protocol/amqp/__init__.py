"""Sans-IO AMQP 1.0 connections over python-qpid-proton's engine (never its Container)."""

from __future__ import annotations

from ._headers import StreamHeaderTemplate
from ._links import STREAMING_PROPERTY
from .connection import AmqpConnection, AmqpStatistics
from .errors import AmqpDecodeError, AmqpUsageError
from .events import (
    AmqpBody,
    AmqpEvent,
    AmqpMessage,
    AmqpSimple,
    AmqpValue,
    ConnectionClosed,
    ConnectionOpened,
    CreditAvailable,
    LinkClosed,
    LinkOpened,
    LinkRole,
    MessageHeader,
    MessageReceived,
    StreamData,
    StreamEnded,
    StreamLength,
    StreamStarted,
    StreamWhole,
    TransportFailed,
)

__all__ = [
    "STREAMING_PROPERTY",
    "AmqpBody",
    "AmqpConnection",
    "AmqpDecodeError",
    "AmqpEvent",
    "AmqpMessage",
    "AmqpSimple",
    "AmqpStatistics",
    "AmqpUsageError",
    "AmqpValue",
    "ConnectionClosed",
    "ConnectionOpened",
    "CreditAvailable",
    "LinkClosed",
    "LinkOpened",
    "LinkRole",
    "MessageHeader",
    "MessageReceived",
    "StreamData",
    "StreamEnded",
    "StreamHeaderTemplate",
    "StreamLength",
    "StreamStarted",
    "StreamWhole",
    "TransportFailed",
]
