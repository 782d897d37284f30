"""The TCP adaptor's protocol: the mapping's headers, the window, the connection and
its attempt policy (sans-IO)."""

from ..addresses import FORWARD, REVERSE
from .attempts import DESTINATION_REFUSALS, MAX_ATTEMPTS, Attempts, GiveUp, Retry
from .budget import DEFAULT_BUFFER_BUDGET, BufferBudget
from .connection import RECEIVE, SEND, Closing, Effect, Event, Half, TcpConnection, closing
from .mapping import (
    StreamHeader,
    StreamHeaderError,
    encoded_header,
    forward_header,
    parse_header,
    reply_address,
    reverse_header,
    through,
    trace_of,
)
from .window import DEFAULT_ACK_EVERY, DEFAULT_WINDOW, Acknowledger, Window

__all__ = [
    "DEFAULT_ACK_EVERY",
    "DEFAULT_BUFFER_BUDGET",
    "DEFAULT_WINDOW",
    "DESTINATION_REFUSALS",
    "FORWARD",
    "MAX_ATTEMPTS",
    "RECEIVE",
    "REVERSE",
    "SEND",
    "Acknowledger",
    "Attempts",
    "BufferBudget",
    "Closing",
    "Effect",
    "Event",
    "GiveUp",
    "Half",
    "Retry",
    "StreamHeader",
    "StreamHeaderError",
    "TcpConnection",
    "Window",
    "closing",
    "encoded_header",
    "forward_header",
    "parse_header",
    "reply_address",
    "reverse_header",
    "through",
    "trace_of",
]
