"""Moved to ``skupper_actors.protocol.tcp`` (mapping and window); kept for old imports."""

from .addresses import FORWARD, REVERSE
from .tcp.mapping import (
    StreamHeader,
    StreamHeaderError,
    forward_header,
    parse_header,
    reply_address,
    reverse_header,
)
from .tcp.window import DEFAULT_ACK_EVERY, DEFAULT_WINDOW, Acknowledger, Window

__all__ = [
    "DEFAULT_ACK_EVERY",
    "DEFAULT_WINDOW",
    "FORWARD",
    "REVERSE",
    "Acknowledger",
    "StreamHeader",
    "StreamHeaderError",
    "Window",
    "forward_header",
    "parse_header",
    "reply_address",
    "reverse_header",
]
