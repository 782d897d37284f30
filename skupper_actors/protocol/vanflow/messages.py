"""Vanflow messages to and from AMQP, with proton's ``Message`` as the codec.

Four kinds, told apart by ``properties.subject``: BEACON (a source announces itself on
``mc/sfe.all``), HEARTBEAT (a source is alive), FLUSH (a collector asks a source to
send every live record again) and RECORD (a list of maps, one per record, attribute
code -> value). Decoding never raises on a record's content: unknown record types,
unknown attributes and values of the wrong kind are counted in ``Problems`` and left
out; only a message that is not vanflow at all raises ``VanflowDecodeError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proton import Message, uint, ulong

from .codes import INTEGER_ATTRS, Attr, RecordType, Value

BEACON = "BEACON"
HEARTBEAT = "HEARTBEAT"
FLUSH = "FLUSH"
RECORD = "RECORD"
VERSION = 1
BEACON_ADDRESS = "mc/sfe.all"
SOURCE_ROUTER = "ROUTER"
SOURCE_CONTROLLER = "CONTROLLER"


def records_address(source: str) -> str:
    return f"mc/sfe.{source}"


def flows_address(source: str) -> str:
    return f"mc/sfe.{source}.flows"


def logs_address(source: str) -> str:
    return f"mc/sfe.{source}.logs"


def heartbeats_address(source: str) -> str:
    return f"mc/sfe.{source}.heartbeats"


def direct_address(source: str) -> str:
    return f"sfe.{source}"


def corecord_address(source: str) -> str:
    return f"vfcr.{source}"


class VanflowDecodeError(ValueError):
    """Bytes that are not a vanflow message of a version we read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Beacon:
    source: str
    source_type: str = SOURCE_ROUTER
    address: str = ""
    direct: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    source: str
    now: int  # µs since the epoch


@dataclass(frozen=True, slots=True, kw_only=True)
class Flush:
    reply_to: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One record as sent: its type, identity and the attributes this emission carries."""

    type: RecordType
    identity: str
    attrs: Mapping[int, Value]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordBatch:
    records: tuple[Record, ...]


VanflowMessage = Beacon | Heartbeat | Flush | RecordBatch


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """A message for the transport to send: ``to``, ``subject``, application properties
    and body, as AMQP values (``encode`` turns it into bytes)."""

    address: str
    subject: str
    properties: Mapping[str, object] | None
    body: list[dict[Any, Any]] | None


@dataclass(slots=True)
class Problems:
    """What decoding left out, by kind (a collector adds these up)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, count: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + count


# -- to the wire -------------------------------------------------------------------------
def beacon(source: str, source_type: str = SOURCE_ROUTER) -> Outgoing:
    properties = {
        "v": uint(VERSION),
        "sourceType": source_type,
        "id": source,
        "address": records_address(source),
        "direct": direct_address(source),
    }
    return Outgoing(address=BEACON_ADDRESS, subject=BEACON, properties=properties, body=None)


def heartbeat(source: str, now_us: int, address: str | None = None) -> Outgoing:
    properties = {"v": uint(VERSION), "now": ulong(now_us), "id": source}
    return Outgoing(
        address=address or records_address(source),
        subject=HEARTBEAT,
        properties=properties,
        body=None,
    )


def flush(source: str, reply_to: str | None = None) -> Outgoing:
    properties = {"replyTo": reply_to} if reply_to else None
    return Outgoing(address=direct_address(source), subject=FLUSH, properties=properties, body=None)


def record_body(records: list[Record]) -> list[dict[Any, Any]]:
    """Records as the body's list of maps: uint codes, ulong or string values."""
    body = []
    for record in records:
        entry: dict[Any, Any] = {uint(Attr.RECORD_TYPE): uint(record.type)}
        entry[uint(Attr.IDENTITY)] = record.identity
        for code, value in record.attrs.items():
            if code in (Attr.RECORD_TYPE, Attr.IDENTITY):
                continue
            entry[uint(code)] = ulong(value) if isinstance(value, int) else value
        body.append(entry)
    return body


def records_message(address: str, records: list[Record]) -> Outgoing:
    return Outgoing(address=address, subject=RECORD, properties=None, body=record_body(records))


def encode(message: Outgoing) -> bytes:
    amqp = Message(
        address=message.address,
        subject=message.subject,
        properties=dict(message.properties) if message.properties else None,
        body=message.body,
    )
    return bytes(amqp.encode())  # proton gives a bytearray


# -- from the wire -----------------------------------------------------------------------
def decode(data: bytes, problems: Problems | None = None) -> VanflowMessage:
    """One message's bytes as a vanflow message (raises VanflowDecodeError)."""
    amqp = Message()
    try:
        amqp.decode(data)
    except Exception as error:  # proton raises its own types for any malformed frame
        raise VanflowDecodeError(f"not an AMQP message: {error}") from error
    return from_message(amqp.subject, amqp.properties, amqp.body, problems)


def from_message(
    subject: object,
    properties: Mapping[str, object] | None,
    body: object,
    problems: Problems | None = None,
) -> VanflowMessage:
    """A vanflow message from an AMQP message's subject, application properties and body
    (what a receiver hands over; raises VanflowDecodeError)."""
    props = properties or {}
    if subject == BEACON:
        _check_version(props)
        source = _text(props, "id")
        return Beacon(
            source=source,
            source_type=_text(props, "sourceType"),
            address=_text(props, "address", records_address(source)),
            direct=_text(props, "direct", direct_address(source)),
        )
    if subject == HEARTBEAT:
        _check_version(props)
        now = props.get("now")
        if not isinstance(now, int) or isinstance(now, bool) or now < 0:
            raise VanflowDecodeError("heartbeat without a valid 'now'")
        return Heartbeat(source=_text(props, "id"), now=int(now))
    if subject == FLUSH:
        reply = props.get("replyTo")
        return Flush(reply_to=reply if isinstance(reply, str) else None)
    if subject == RECORD:
        if not isinstance(body, list):
            raise VanflowDecodeError("a RECORD message's body is not a list")
        return RecordBatch(records=tuple(decode_records(body, problems or Problems())))
    raise VanflowDecodeError(f"unknown vanflow subject {subject!r}")


def decode_records(body: list[object], problems: Problems) -> list[Record]:
    records = []
    for entry in body:
        if not isinstance(entry, Mapping):
            problems.add("record_not_a_map")
            continue
        kind = entry.get(Attr.RECORD_TYPE)
        identity = entry.get(Attr.IDENTITY)
        if not isinstance(identity, str) or not identity:
            problems.add("record_without_identity")
            continue
        try:
            record_type = RecordType(kind) if isinstance(kind, int) else None
        except ValueError:
            record_type = None
        if record_type is None:
            problems.add("unknown_record_type")
            continue
        attrs: dict[int, Value] = {}
        for code, value in entry.items():
            if code in (Attr.RECORD_TYPE, Attr.IDENTITY):
                continue
            if not isinstance(code, int) or isinstance(code, bool) or code not in _KNOWN:
                problems.add("unknown_attribute")
                continue
            if _valid(code, value):
                attrs[int(code)] = int(value) if isinstance(value, int) else str(value)
            else:
                problems.add("bad_attribute_value")
        records.append(Record(type=record_type, identity=identity, attrs=attrs))
    return records


_KNOWN = frozenset(int(code) for code in Attr)


def _valid(code: int, value: object) -> bool:
    if code in INTEGER_ATTRS:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return isinstance(value, str)


def _check_version(props: Mapping[str, object]) -> None:
    version = props.get("v")
    if version != VERSION:
        raise VanflowDecodeError(f"vanflow version {version!r} is not {VERSION}")


def _text(props: Mapping[str, object], key: str, default: str | None = None) -> str:
    value = props.get(key, default)
    if not isinstance(value, str) or not value:
        raise VanflowDecodeError(f"vanflow message lacks {key!r}")
    return value
