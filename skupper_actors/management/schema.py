"""Wire shapes of management requests and replies (JSON), validated with marshmallow.

A request is ``{"kind": "<kind>"}``. A reply is ``{"ok": true, "result": {...}}`` or
``{"ok": false, "error": "..."}``. Results load into the frozen dataclasses below, so
neither the node nor the CLI handles raw dicts past this module.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

REQUEST_KINDS = (
    "status",
    "links",
    "routers",
    "addresses",
    "adaptors",
    "network",
    "reload",
    "vanflow",
    "vanflow-flush",
)
LINK_STATES = ("connecting", "handshaking", "up", "down", "backing-off", "failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterInfo:
    id: str
    instance: int
    version: str
    inter_router_host: str
    inter_router_port: int
    tls: bool
    started_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthInfo:
    """The node's event loop as it measures it, and its refusals past a limit."""

    #: the longest event-loop stall since the node started, in milliseconds (wall clock,
    #: including time the operating system gave to other processes)
    loop_stall_max_ms: float = 0.0
    #: the longest time the loop's thread spent on the CPU without the loop coming round
    loop_busy_max_ms: float = 0.0
    #: the longest cyclic garbage collection since the node started, in milliseconds
    gc_pause_max_ms: float = 0.0
    #: (unix second, longest stall, longest busy stall in that second, in ms), last 2 min
    loop_stalls: tuple[tuple[int, float, float], ...] = ()
    #: refusals and disconnections past a limit, by the limit's setting name
    limits_exceeded: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkInfo:
    name: str
    link_id: str
    direction: str  # outgoing | incoming
    peer: str | None
    host: str
    port: int
    cost: int
    state: str
    since: float
    attempts: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteInfo:
    router: str
    cost: int
    next_hops: tuple[str, ...]  # peer router ids, equal-cost alternatives


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressInfo:
    address: str
    local: bool
    routers: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptorInfo:
    """A TCP listener or connector with its counters."""

    kind: str  # listener | connector
    name: str
    routing_key: str
    host: str
    port: int
    matched: bool  # listener: hasMatchingConnector; connector: hasMatchingListener
    opened: int
    closed: int
    active: int
    errors: int
    refused: int
    octets_in: int
    octets_out: int
    first_byte_ms: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessagingAddressInfo:
    """An AMQP client address at this router: its clients, destinations and counters."""

    address: str
    distribution: str  # balanced | closest | multicast
    senders: int  # local sender links
    receivers: int  # local receiver links
    remote: tuple[str, ...]  # other routers with receivers
    delivered_in: int  # deliveries from local senders
    delivered_out: int  # deliveries to local receivers
    accepted: int
    released: int
    dropped: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerLink:
    peer: str
    cost: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteView:
    """One router of the network as this node sees it (link-state database + addresses)."""

    router: str
    reachable: bool
    links: tuple[PeerLink, ...]
    listeners: tuple[str, ...]  # routing keys with a listener at that router
    connectors: tuple[str, ...]  # routing keys served there


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStatus:
    router: RouterInfo
    links: tuple[LinkInfo, ...] = ()
    routers: tuple[RouteInfo, ...] = ()
    addresses: tuple[AddressInfo, ...] = field(default_factory=tuple)
    adaptors: tuple[AdaptorInfo, ...] = ()
    network: tuple[SiteView, ...] = ()
    #: AMQP client addresses known at this router (docs/messaging.md)
    messaging: tuple[MessagingAddressInfo, ...] = ()
    #: limit counters (what was refused or cut, since start), e.g. grant_server_*
    counters: dict[str, int] = field(default_factory=dict)
    health: HealthInfo = field(default_factory=HealthInfo)
    #: "vanflow": the AMQP-encoded vanflow messages the node sent since the last such
    #: request (base64), for an observer on the same host reading management (the
    #: single-host mode; over the VAN the node sends them as AMQP messages, ADR 0033)
    vanflow: tuple[str, ...] = ()


class _Strict(Schema):
    class Meta:
        ordered = True


class RouterInfoSchema(_Strict):
    id = fields.String(required=True, validate=validate.Length(min=1))
    instance = fields.Integer(required=True)
    version = fields.String(required=True)
    inter_router_host = fields.String(required=True)
    inter_router_port = fields.Integer(required=True, validate=validate.Range(0, 65535))
    tls = fields.Boolean(required=True)
    started_at = fields.Float(required=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> RouterInfo:
        return RouterInfo(**data)


class HealthInfoSchema(_Strict):
    loop_stall_max_ms = fields.Float(load_default=0.0)
    loop_busy_max_ms = fields.Float(load_default=0.0)
    gc_pause_max_ms = fields.Float(load_default=0.0)
    loop_stalls = fields.List(
        fields.Tuple((fields.Integer(), fields.Float(), fields.Float())), load_default=()
    )
    limits_exceeded = fields.Dict(
        keys=fields.String(), values=fields.Integer(), load_default=dict
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> HealthInfo:
        data["loop_stalls"] = tuple(tuple(x) for x in data.get("loop_stalls", ()))
        return HealthInfo(**data)


class LinkInfoSchema(_Strict):
    name = fields.String(required=True)
    link_id = fields.String(required=True)
    direction = fields.String(required=True, validate=validate.OneOf(["outgoing", "incoming"]))
    peer = fields.String(required=True, allow_none=True)
    host = fields.String(required=True)
    port = fields.Integer(required=True, validate=validate.Range(0, 65535))
    cost = fields.Integer(required=True, validate=validate.Range(min=1))
    state = fields.String(required=True, validate=validate.OneOf(LINK_STATES))
    since = fields.Float(required=True)
    attempts = fields.Integer(load_default=0)
    last_error = fields.String(allow_none=True, load_default=None)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> LinkInfo:
        return LinkInfo(**data)


class RouteInfoSchema(_Strict):
    router = fields.String(required=True)
    cost = fields.Integer(required=True)
    next_hops = fields.List(fields.String(), required=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> RouteInfo:
        return RouteInfo(
            router=data["router"], cost=data["cost"], next_hops=tuple(data["next_hops"])
        )


class AddressInfoSchema(_Strict):
    address = fields.String(required=True)
    local = fields.Boolean(required=True)
    routers = fields.List(fields.String(), required=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> AddressInfo:
        return AddressInfo(
            address=data["address"], local=data["local"], routers=tuple(data["routers"])
        )


class AdaptorInfoSchema(_Strict):
    kind = fields.String(required=True, validate=validate.OneOf(["listener", "connector"]))
    name = fields.String(required=True)
    routing_key = fields.String(required=True)
    host = fields.String(required=True)
    port = fields.Integer(required=True, validate=validate.Range(0, 65535))
    matched = fields.Boolean(required=True)
    opened = fields.Integer(required=True)
    closed = fields.Integer(required=True)
    active = fields.Integer(required=True)
    errors = fields.Integer(required=True)
    refused = fields.Integer(required=True)
    octets_in = fields.Integer(required=True)
    octets_out = fields.Integer(required=True)
    first_byte_ms = fields.Float(required=True, allow_none=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> AdaptorInfo:
        return AdaptorInfo(**data)


class MessagingAddressInfoSchema(_Strict):
    address = fields.String(required=True)
    distribution = fields.String(required=True)
    senders = fields.Integer(required=True)
    receivers = fields.Integer(required=True)
    remote = fields.List(fields.String(), required=True)
    delivered_in = fields.Integer(required=True)
    delivered_out = fields.Integer(required=True)
    accepted = fields.Integer(required=True)
    released = fields.Integer(required=True)
    dropped = fields.Integer(required=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> MessagingAddressInfo:
        return MessagingAddressInfo(**{**data, "remote": tuple(data["remote"])})


class PeerLinkSchema(_Strict):
    peer = fields.String(required=True)
    cost = fields.Integer(required=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> PeerLink:
        return PeerLink(**data)


class SiteViewSchema(_Strict):
    router = fields.String(required=True)
    reachable = fields.Boolean(required=True)
    links = fields.List(fields.Nested(PeerLinkSchema), required=True)
    listeners = fields.List(fields.String(), required=True)
    connectors = fields.List(fields.String(), required=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> SiteView:
        return SiteView(
            router=data["router"],
            reachable=data["reachable"],
            links=tuple(data["links"]),
            listeners=tuple(data["listeners"]),
            connectors=tuple(data["connectors"]),
        )


class NodeStatusSchema(_Strict):
    router = fields.Nested(RouterInfoSchema, required=True)
    links = fields.List(fields.Nested(LinkInfoSchema), load_default=list)
    routers = fields.List(fields.Nested(RouteInfoSchema), load_default=list)
    addresses = fields.List(fields.Nested(AddressInfoSchema), load_default=list)
    adaptors = fields.List(fields.Nested(AdaptorInfoSchema), load_default=list)
    network = fields.List(fields.Nested(SiteViewSchema), load_default=list)
    messaging = fields.List(fields.Nested(MessagingAddressInfoSchema), load_default=list)
    counters = fields.Dict(keys=fields.String(), values=fields.Integer(), load_default=dict)
    health = fields.Nested(HealthInfoSchema, load_default=HealthInfo)
    vanflow = fields.List(fields.String(), load_default=list)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> NodeStatus:
        return NodeStatus(
            router=data["router"],
            links=tuple(data["links"]),
            routers=tuple(data["routers"]),
            addresses=tuple(data["addresses"]),
            adaptors=tuple(data["adaptors"]),
            network=tuple(data["network"]),
            messaging=tuple(data["messaging"]),
            counters=dict(data["counters"]),
            health=data["health"],
            vanflow=tuple(data["vanflow"]),
        )


class RequestSchema(_Strict):
    kind = fields.String(required=True, validate=validate.OneOf(REQUEST_KINDS))


class ReplySchema(_Strict):
    ok = fields.Boolean(required=True)
    error = fields.String(load_default=None, allow_none=True)
    result = fields.Nested(NodeStatusSchema, load_default=None, allow_none=True)


class ProtocolError(ValueError):
    """A management message that does not match its schema."""


def _load(schema: Schema, raw: bytes) -> Any:
    try:
        return schema.load(json.loads(raw))
    except (ValueError, ValidationError) as error:
        detail = error.messages if isinstance(error, ValidationError) else str(error)
        raise ProtocolError(f"invalid management message: {detail}") from None


def encode_request(kind: str) -> bytes:
    RequestSchema().load({"kind": kind})
    return json.dumps({"kind": kind}).encode()


def decode_request(raw: bytes) -> str:
    return str(_load(RequestSchema(), raw)["kind"])


def encode_reply(result: NodeStatus | None = None, error: str | None = None) -> bytes:
    """Encode a reply; the result is validated against its schema before it leaves."""
    if error is not None:
        return json.dumps({"ok": False, "error": error}).encode()
    assert result is not None
    plain = asdict(result)
    NodeStatusSchema().load(plain)  # refuse to send what a client could not load
    return json.dumps({"ok": True, "result": plain}).encode()


def decode_reply(raw: bytes) -> dict[str, Any]:
    return dict(_load(ReplySchema(), raw))
