"""Moved to ``skupper_actors.protocol.tcp`` (mapping and window); kept for old imports."""

from .tcp.mapping import (
    FORWARD,
    MAPPING_VERSION,
    PROP_DESTINATION,
    PROP_DIRECTION,
    PROP_SOURCE,
    PROP_STREAM,
    PROP_VERSION,
    REPLY_PREFIX,
    REVERSE,
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
    "MAPPING_VERSION",
    "PROP_DESTINATION",
    "PROP_DIRECTION",
    "PROP_SOURCE",
    "PROP_STREAM",
    "PROP_VERSION",
    "REPLY_PREFIX",
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
