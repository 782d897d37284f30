"""Routing control messages and their wire encoding.

On the wire each message is a plain dict (str, int, list, dict only) carrying ``op``
(the message type) and ``pv`` (protocol version); the dicts travel as AMQP message
bodies between neighbouring routers. ``decode`` validates with marshmallow and loads
the frozen dataclasses below; any bad input raises ``ControlMessageError``.

A message whose ``pv`` is newer than ours is refused by ``decode`` (a newer version may
carry fields we cannot judge); one built in-process with a newer ``pv`` is refused by
``RoutingEngine.receive``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from ..addresses import ROUTING_PROTOCOL_VERSION
from .serial import SEQ_MODULUS

MAX_COST = (1 << 31) - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """Neighbour discovery and liveness, sent on every link each HELLO interval."""

    id: str
    instance: int
    seen: tuple[str, ...] = ()  # router ids heard on any link within HELLO max age
    pv: int = ROUTING_PROTOCOL_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterAdvertisement:
    """An origin's current sequence numbers, flooded periodically (anti-entropy).

    ``ra_seq`` goes up with every RA the origin sends; it de-duplicates the flood, since
    a periodic RA usually repeats the same ``ls_seq`` and ``mobile_seq``.
    """

    id: str
    instance: int
    ls_seq: int
    mobile_seq: int
    ra_seq: int
    pv: int = ROUTING_PROTOCOL_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkStateUpdate:
    """An origin's whole link state: two-way neighbour id -> link cost."""

    id: str
    instance: int
    ls_seq: int
    ls: Mapping[str, int] = field(default_factory=dict)
    pv: int = ROUTING_PROTOCOL_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkStateRequest:
    """Asks a neighbour for the link state of ``origin``; ``id`` is the requester."""

    id: str
    instance: int
    origin: str
    pv: int = ROUTING_PROTOCOL_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class MobileAddressUpdate:
    """An origin's mobile addresses: a difference (add/delete) or, with ``exist``, absolute."""

    id: str
    instance: int
    mobile_seq: int
    add: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()  # "del" on the wire
    exist: tuple[str, ...] | None = None

    pv: int = ROUTING_PROTOCOL_VERSION

    @property
    def absolute(self) -> bool:
        return self.exist is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class MobileAddressRequest:
    """Asks a neighbour for the absolute address list of ``origin``; ``id`` is the requester."""

    id: str
    instance: int
    origin: str
    have_seq: int
    pv: int = ROUTING_PROTOCOL_VERSION


ControlMessage = (
    Hello
    | RouterAdvertisement
    | LinkStateUpdate
    | LinkStateRequest
    | MobileAddressUpdate
    | MobileAddressRequest
)


class ControlMessageError(ValueError):
    """A control message from the wire is malformed; ``field`` names the culprit."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ControlMessageTooLarge(ControlMessageError):
    """A control message lists more entries than allowed; ``origin`` is its ``id`` field."""

    def __init__(self, message: str, *, field: str, origin: str | None) -> None:
        super().__init__(message, field=field)
        self.origin = origin


# Lists and maps a control message may carry; each is checked before validation, so an
# oversized message costs a len() and not a validation of every entry.
_LISTS = ("exist", "add", "del", "seen", "ls")


# --- marshmallow schemas (the boundary validator) ---------------------------------------

_RouterId = validate.Length(min=1, max=255)
_Seq = validate.Range(min=0, max=SEQ_MODULUS - 1)
_Instance = validate.Range(min=0, max=(1 << 63) - 1)
_Cost = validate.Range(min=1, max=MAX_COST)


def _router_id(**kwargs: Any) -> fields.String:
    return fields.String(required=True, validate=_RouterId, **kwargs)


def _int(rule: validate.Validator, **kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, required=True, validate=rule, **kwargs)


def _names(**kwargs: Any) -> fields.List[str]:
    return fields.List(fields.String(validate=_RouterId), **kwargs)


class _MessageSchema(Schema):
    class Meta:
        unknown = RAISE

    op = fields.String(required=True, load_only=True)
    pv = _int(validate.Range(min=1, max=ROUTING_PROTOCOL_VERSION))
    id = _router_id()
    instance = _int(_Instance)

    message_class: ClassVar[type[Any]]

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Any:
        data.pop("op", None)
        for name, value in data.items():
            if isinstance(value, list):
                data[name] = tuple(value)
        return self.message_class(**data)


class _HelloSchema(_MessageSchema):
    message_class = Hello
    seen = _names(required=True)


class _RouterAdvertisementSchema(_MessageSchema):
    message_class = RouterAdvertisement
    ls_seq = _int(_Seq)
    mobile_seq = _int(_Seq)
    ra_seq = _int(_Seq)


class _LinkStateUpdateSchema(_MessageSchema):
    message_class = LinkStateUpdate
    ls_seq = _int(_Seq)
    ls = fields.Dict(
        keys=fields.String(validate=_RouterId),
        values=fields.Integer(strict=True, validate=_Cost),
        required=True,
    )


class _LinkStateRequestSchema(_MessageSchema):
    message_class = LinkStateRequest
    origin = _router_id()


class _MobileAddressUpdateSchema(_MessageSchema):
    message_class = MobileAddressUpdate
    mobile_seq = _int(_Seq)
    add = _names(load_default=list)
    delete = _names(data_key="del", load_default=list)
    exist = _names(load_default=None)

    @validates_schema
    def _absolute_or_difference(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("exist") is not None and (data.get("add") or data.get("delete")):
            raise ValidationError("an absolute update (exist) carries no add/del", "exist")


class _MobileAddressRequestSchema(_MessageSchema):
    message_class = MobileAddressRequest
    origin = _router_id()
    have_seq = _int(_Seq)


_SCHEMAS: dict[str, _MessageSchema] = {
    "HELLO": _HelloSchema(),
    "RA": _RouterAdvertisementSchema(),
    "LSU": _LinkStateUpdateSchema(),
    "LSR": _LinkStateRequestSchema(),
    "MAU": _MobileAddressUpdateSchema(),
    "MAR": _MobileAddressRequestSchema(),
}
_OPS: dict[type[Any], str] = {schema.message_class: op for op, schema in _SCHEMAS.items()}


def op_name(message: ControlMessage) -> str:
    """The wire name of a message's type: HELLO, RA, LSU, LSR, MAU or MAR."""
    return _OPS[type(message)]


def encode(message: ControlMessage) -> dict[str, Any]:
    """The wire form of ``message``: a dict of str, int, list and dict values only."""
    op = _OPS[type(message)]
    body: dict[str, Any] = _SCHEMAS[op].dump(message)
    if isinstance(message, MobileAddressUpdate):
        # Absolute updates carry exist only; differences carry add/del only.
        for key in ("add", "del") if message.absolute else ("exist",):
            body.pop(key, None)
    return {"op": op, **body}


def decode(obj: object, *, max_entries: int | None = None) -> ControlMessage:
    """Validate a wire dict and load it; raises ``ControlMessageError`` on any bad input.

    With ``max_entries``, a list or map field longer than that raises
    ``ControlMessageTooLarge`` before anything else is checked.
    """
    if not isinstance(obj, Mapping):
        raise ControlMessageError(
            f"control message must be a map, not {type(obj).__name__}", field=None
        )
    op = obj.get("op")
    if max_entries is not None:
        for key in _LISTS:
            value = obj.get(key)
            if isinstance(value, list | tuple | Mapping) and len(value) > max_entries:
                origin = obj.get("id")
                raise ControlMessageTooLarge(
                    f"{op}.{key}: {len(value)} entries, more than the limit of {max_entries}",
                    field=key,
                    origin=origin if isinstance(origin, str) else None,
                )
    if not isinstance(op, str) or op not in _SCHEMAS:
        what = "missing" if op is None else f"unknown message type {op!r}"
        raise ControlMessageError(f"op: {what}", field="op")
    schema = _SCHEMAS[op]
    pv = obj.get("pv")
    if isinstance(pv, int) and not isinstance(pv, bool) and pv > ROUTING_PROTOCOL_VERSION:
        raise ControlMessageError(
            f"{op}.pv: protocol version {pv} is newer than supported {ROUTING_PROTOCOL_VERSION}",
            field="pv",
        )
    try:
        message: ControlMessage = schema.load(obj)
    except ValidationError as error:
        raise _error_from(op, error) from None
    return message


def _error_from(op: str, error: ValidationError) -> ControlMessageError:
    messages: object = error.messages
    if isinstance(messages, Mapping) and messages:
        name, detail = next(iter(messages.items()))
    else:
        name, detail = error.field_name, messages
    # Nested errors (a list item, a dict value) are reported at the top field.
    text = detail if isinstance(detail, str) else _first_text(detail)
    if name == "_schema":
        name = "message"
    return ControlMessageError(f"{op}.{name}: {text}", field=name)


def _first_text(detail: object) -> str:
    while not isinstance(detail, str):
        if isinstance(detail, Mapping):
            detail = next(iter(detail.values()), "invalid")
        elif isinstance(detail, list | tuple):
            detail = detail[0] if detail else "invalid"
        else:
            return str(detail)
    return detail
