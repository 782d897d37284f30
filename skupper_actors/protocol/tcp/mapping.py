"""TCP over AMQP streams: the mapping's headers.

Each TCP connection becomes two streaming AMQP deliveries, after skupper-router's
mapping: the forward one ``to`` the routing key with ``reply_to`` naming the reverse
direction and application property ``V: 1``; the reverse one to that reply address.
Extra properties carry what the mesh needs to route and resume a stream: the stream
id, the ingress and destination routers, the direction. A ``StreamHeader`` is built
per stream and per message: read-only by convention rather than frozen (as the AMQP
events, protocol/amqp/events.py); ``through`` makes a changed copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from skupper_actors.protocol.addresses import (
    FORWARD,
    MESSAGE,
    PROP_DESTINATION,
    PROP_DIRECTION,
    PROP_FLOW,
    PROP_MAPPING_VERSION,
    PROP_SOURCE,
    PROP_STREAM,
    PROP_TRACE,
    REVERSE,
    STREAM_MAPPING_VERSION,
    STREAM_REPLY_PREFIX,
)
from skupper_actors.protocol.amqp import MessageHeader, StreamHeaderTemplate

#: the longest trace a stream header carries (about 60 hops of short router names)
MAX_TRACE = 2048


class StreamHeaderError(ValueError):
    """A streaming delivery whose header is not a TCP stream of a version we speak."""


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class StreamHeader:
    """What a stream's first frame says about it."""

    stream_id: str
    direction: str  # FORWARD or REVERSE
    source: str  # router id of the ingress (the listener's router)
    destination: str  # router id the stream is going to
    routing_key: str  # for FORWARD; the reply address for REVERSE
    reply_to: str | None = None
    flow_id: str | None = None  # the vanflow biflow this stream carries (forward only)
    trace: str | None = None  # transit routers so far, "|"-joined names (with flow_id)

    def to_properties(self) -> dict[str, str | int]:
        properties: dict[str, str | int] = {
            PROP_MAPPING_VERSION: STREAM_MAPPING_VERSION,
            PROP_STREAM: self.stream_id,
            PROP_SOURCE: self.source,
            PROP_DESTINATION: self.destination,
            PROP_DIRECTION: self.direction,
        }
        if self.flow_id is not None:
            properties[PROP_FLOW] = self.flow_id
        if self.trace is not None:
            properties[PROP_TRACE] = self.trace
        return properties


#: stream headers by kind: what does not vary between two streams of one kind
_TEMPLATES: dict[tuple[object, ...], StreamHeaderTemplate] = {}
_TEMPLATES_MAX = 1024


def encoded_header(header: StreamHeader) -> bytes:
    """A stream's header as it goes on the wire (AMQP properties, application
    properties, the end-of-header marker).

    Two streams of one kind — a direction, a pair of routers, a service (a message
    stream's reply address too) — differ only in their stream id, the address made from
    it (a forward stream's reply-to, a reverse stream's to), and the flow id and trace
    a forward stream may carry: the rest is encoded once (5-6 us a header otherwise)."""
    direction = header.direction
    flow_id, trace = header.flow_id, header.trace
    to_varies = direction == REVERSE
    reply_varies = direction == FORWARD and header.reply_to is not None
    key = (
        direction,
        None if to_varies else header.routing_key,
        None if reply_varies else header.reply_to,
        header.source,
        header.destination,
        flow_id is None,
        trace is None,
    )
    if flow_id is None and trace is None:
        values: tuple[str, ...] = (header.stream_id,)
    else:
        values = tuple(v for v in (header.stream_id, flow_id, trace) if v is not None)
    if to_varies:
        values = (header.routing_key, *values)
    elif reply_varies:
        values = (header.reply_to, *values)  # type: ignore[arg-type]
    template = _TEMPLATES.get(key)
    if template is None:
        if len(_TEMPLATES) >= _TEMPLATES_MAX:
            _TEMPLATES.clear()
        template = _TEMPLATES[key] = StreamHeaderTemplate(
            MessageHeader(
                to=header.routing_key,
                reply_to=header.reply_to,
                application_properties=header.to_properties(),
            ),
            addresses=("to",) * to_varies + ("reply_to",) * reply_varies,
            properties=(PROP_STREAM,)
            + (PROP_FLOW,) * (flow_id is not None)
            + (PROP_TRACE,) * (trace is not None),
        )
    return template.render(values)


def router_name(router_id: str) -> str:
    """A router's name in a vanflow trace (Skupper's ``<area>/<id>``)."""
    return f"0/{router_id}"


def through(header: StreamHeader, router_id: str) -> StreamHeader:
    """The header a transit router forwards: itself added to a flow's trace."""
    if header.flow_id is None or header.direction != FORWARD:
        return header
    here = router_name(router_id)
    trace = here if header.trace is None else f"{header.trace}|{here}"
    if len(trace) > MAX_TRACE:
        return header  # a path that long is cut short rather than grow without bound
    return replace(header, trace=trace)


def trace_of(header: StreamHeader, router_id: str) -> str:
    """The flow's whole trace at the egress: ingress, transit routers, this router."""
    names = [router_name(header.source)]
    if header.trace:
        names.append(header.trace)
    names.append(router_name(router_id))
    return "|".join(names)


def reply_address(stream_id: str) -> str:
    return f"{STREAM_REPLY_PREFIX}{stream_id}"


def forward_header(
    stream_id: str, source: str, destination: str, routing_key: str, flow_id: str | None = None
) -> StreamHeader:
    return StreamHeader(
        stream_id=stream_id,
        direction=FORWARD,
        source=source,
        destination=destination,
        routing_key=routing_key,
        reply_to=reply_address(stream_id),
        flow_id=flow_id,
    )


def reverse_header(forward: StreamHeader) -> StreamHeader:
    return StreamHeader(
        stream_id=forward.stream_id,
        direction=REVERSE,
        source=forward.destination,
        destination=forward.source,
        routing_key=reply_address(forward.stream_id),
    )


def parse_header(
    to: str | None, reply_to: str | None, properties: Mapping[str, object]
) -> StreamHeader:
    """Read a stream header from a StreamStarted event's fields (raises StreamHeaderError)."""
    version = properties.get(PROP_MAPPING_VERSION)
    if version != STREAM_MAPPING_VERSION:
        raise StreamHeaderError(f"TCP mapping version {version!r} is not {STREAM_MAPPING_VERSION}")
    values = {}
    for key in (PROP_STREAM, PROP_SOURCE, PROP_DESTINATION, PROP_DIRECTION):
        value = properties.get(key)
        if not isinstance(value, str) or not value:
            raise StreamHeaderError(f"stream header lacks {key}")
        values[key] = value
    direction = values[PROP_DIRECTION]
    if direction not in (FORWARD, REVERSE, MESSAGE):
        raise StreamHeaderError(f"unknown stream direction {direction!r}")
    if not to:
        raise StreamHeaderError("stream has no 'to' address")
    flow_id = properties.get(PROP_FLOW)
    trace = properties.get(PROP_TRACE)
    return StreamHeader(
        stream_id=values[PROP_STREAM],
        direction=direction,
        source=values[PROP_SOURCE],
        destination=values[PROP_DESTINATION],
        routing_key=to,
        reply_to=reply_to,
        flow_id=flow_id if isinstance(flow_id, str) and 0 < len(flow_id) <= 256 else None,
        trace=trace if isinstance(trace, str) and 0 < len(trace) <= MAX_TRACE else None,
    )
