"""Message layout: AMQP 1.0 sections (part 3 of the spec) for complete and streamed messages.

A streaming delivery is an ordinary AMQP message whose body is a run of data sections
(as skupper-router streams): the properties and application-properties sections, then
one empty data section that marks the end of the header so the receiver can report
the stream at once, then one data section per ``write_stream`` call.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from proton import Data, symbol

from ..addresses import FOOTER_STREAM_LENGTH
from ._types import decode_value, encode_value
from .errors import AmqpDecodeError
from .events import AmqpBody, AmqpMessage, AmqpSimple, AmqpValue

# Section descriptors (AMQP 1.0, 3.2) as small ulongs.
PROPERTIES = 0x73
APPLICATION_PROPERTIES = 0x74
DATA_SECTION = 0x75
FOOTER_SECTION = 0x78
AMQP_SEQUENCE = 0x76
AMQP_VALUE = 0x77
# Sections a stream's header may hold (header, annotations, properties, app properties).
HEADER_SECTIONS = frozenset({0x70, 0x71, 0x72, PROPERTIES, APPLICATION_PROPERTIES})
_SKIPPED = frozenset({0x70, 0x71, 0x72, 0x78})  # header, annotations, footer: not ours
# Value constructors a streamed section may use, and the width of their size field.
_SIZE_WIDTH = {
    0x40: 0,  # null
    0x45: 0,  # list0
    0xA0: 1,  # vbin8
    0xA1: 1,  # str8
    0xA3: 1,  # sym8
    0xC0: 1,  # list8
    0xC1: 1,  # map8
    0xB0: 4,  # vbin32
    0xB1: 4,  # str32
    0xB3: 4,  # sym32
    0xD0: 4,  # list32
    0xD1: 4,  # map32
}
_BINARY_CONSTRUCTORS = frozenset({0xA0, 0xB0})
_ULONG = struct.Struct(">Q")
DATA_HEAD = struct.Struct(">4sI")
DATA_PREFIX = b"\x00\x53\x75\xb0"
# An empty data section (vbin8 of length 0): the end-of-header marker.
HEADER_END = b"\x00\x53\x75\xa0\x00"
MAX_HEADER_BYTES = 64 * 1024
# A stream's footer: one entry, the count of body bytes the sender wrote before its end,
# so the far end can tell a whole stream from one that lost bytes on the way.
FOOTER_LENGTH_KEY = FOOTER_STREAM_LENGTH.encode("ascii")
_FOOTER_ENTRY = b"\xa3" + bytes([len(FOOTER_LENGTH_KEY)]) + FOOTER_LENGTH_KEY + b"\x80"
_FOOTER_BODY = 1 + len(_FOOTER_ENTRY) + 8  # count, key, ulong
_FOOTER_HEAD = bytes([0x00, 0x53, FOOTER_SECTION, 0xC1, _FOOTER_BODY, 2])
MAX_FOOTER_BYTES = 1024


def encode_stream_footer(length: int) -> bytes:
    """The footer section that closes a stream of ``length`` body bytes."""
    return _FOOTER_HEAD + _FOOTER_ENTRY + _ULONG.pack(length)


def decode_stream_footer(body: bytes | bytearray) -> int | None:
    """The body length a footer section's map body announces (None if it has none).

    ``body`` is the map's body after its size byte(s): the count, then the entries.
    """
    if body[: 1 + len(_FOOTER_ENTRY)] == b"\x02" + _FOOTER_ENTRY and len(body) == _FOOTER_BODY:
        value: int = _ULONG.unpack_from(body, 1 + len(_FOOTER_ENTRY))[0]
        return value
    return None


def section_head_need(head: bytes | bytearray) -> int:
    """How many more bytes the section head in ``head`` needs (0 when complete).

    Never asks for more than the head itself, so reading exactly this much never
    consumes body bytes. Raises AmqpDecodeError on a layout we do not accept.
    """
    n = len(head)
    if n < 4:
        return 4 - n
    if head[0] != 0:
        raise AmqpDecodeError("section is not a described type")
    form = head[1]
    if form == 0x53:
        ctor_at = 3
    elif form == 0x80:
        ctor_at = 10
        if n < 11:
            return 11 - n
    else:
        raise AmqpDecodeError(f"section descriptor format 0x{form:02x} is not supported")
    width = _SIZE_WIDTH.get(head[ctor_at])
    if width is None:
        raise AmqpDecodeError(f"section constructor 0x{head[ctor_at]:02x} is not supported")
    return max(0, ctor_at + 1 + width - n)


def parse_section_head(head: bytes | bytearray) -> tuple[int, int]:
    """Return (descriptor code, body length) of a complete section head."""
    if head[1] == 0x53:
        code, ctor_at = head[2], 3
    else:
        code, ctor_at = int.from_bytes(head[2:10], "big"), 10
    ctor = head[ctor_at]
    width = _SIZE_WIDTH[ctor]
    size = int.from_bytes(head[ctor_at + 1 : ctor_at + 1 + width], "big") if width else 0
    if code == DATA_SECTION and ctor not in _BINARY_CONSTRUCTORS:
        raise AmqpDecodeError("data section does not hold binary")
    return code, size


def section_at(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """The section whose head starts at ``data[pos]``: (code, body length, body start).

    None when ``data`` ends inside the head. The same layouts as ``section_head_need``
    and ``parse_section_head`` accept, for a head already in memory.
    """
    end = len(data)
    if end - pos < 4:
        return None
    if data[pos] != 0:
        raise AmqpDecodeError("section is not a described type")
    form = data[pos + 1]
    if form == 0x53:
        code = data[pos + 2]
        ctor_at = pos + 3
    elif form == 0x80:
        if end - pos < 11:
            return None
        code = _ULONG.unpack_from(data, pos + 2)[0]
        ctor_at = pos + 10
    else:
        raise AmqpDecodeError(f"section descriptor format 0x{form:02x} is not supported")
    ctor = data[ctor_at]
    width = _SIZE_WIDTH.get(ctor)
    if width is None:
        raise AmqpDecodeError(f"section constructor 0x{ctor:02x} is not supported")
    start = ctor_at + 1 + width
    if start > end:
        return None
    size = int.from_bytes(data[ctor_at + 1 : start], "big") if width else 0
    if code == DATA_SECTION and ctor not in _BINARY_CONSTRUCTORS:
        raise AmqpDecodeError("data section does not hold binary")
    return code, size, start


_COMPOUND = (list, tuple, dict)


def _encode_header(
    to: str | None,
    reply_to: str | None,
    subject: str | None,
    application_properties: Mapping[str, AmqpSimple],
) -> bytearray:
    out = bytearray()
    if to is not None or reply_to is not None or subject is not None:
        # properties: message-id, user-id, to, subject, reply-to (trailing nulls dropped)
        fields: list[object] = [None, None, to, subject, reply_to]
        while fields[-1] is None:
            fields.pop()
        out += b"\x00\x53\x73"
        encode_value(fields, out)
    if application_properties:
        for value in application_properties.values():
            if type(value) is not str and isinstance(value, _COMPOUND):
                raise TypeError("application property values must be simple")
        out += b"\x00\x53\x74"
        encode_value(application_properties, out)
    return out


def encode_message(message: AmqpMessage) -> bytes:
    out = _encode_header(
        message.to, message.reply_to, message.subject, message.application_properties
    )
    body = message.body
    if body is None:
        pass
    elif isinstance(body, bytes | bytearray | memoryview):
        out += b"\x00\x53\x75"
        encode_value(bytes(body), out)
    else:
        out += b"\x00\x53\x77"
        encode_value(body, out)
    return bytes(out)


def decode_message(data: bytes) -> AmqpMessage:
    """Decode a complete message; raises AmqpDecodeError for what we do not carry."""
    to, reply_to, subject, properties, body = _decode(data)
    return AmqpMessage(
        to=to, reply_to=reply_to, subject=subject, application_properties=properties, body=body
    )


_Decoded = tuple[str | None, str | None, str | None, dict[str, AmqpSimple], AmqpBody]


def _decode(data: bytes) -> _Decoded:
    """(to, reply-to, subject, application properties, body) of a message's sections."""
    to = reply_to = subject = None
    properties: dict[str, AmqpSimple] = {}
    body: AmqpBody = None
    parts: list[bytes] = []
    pos = 0
    end = len(data)
    while pos < end:
        code, pos = _descriptor(data, pos)
        if code == APPLICATION_PROPERTIES:
            found = _string_map(data, pos)
            if found is not None:
                properties, pos = found
                continue
        elif code == PROPERTIES:
            fields = _addresses_at(data, pos)
            if fields is not None:
                to, subject, reply_to, pos = fields
                continue
        try:
            value, pos = decode_value(data, pos)
        except RecursionError as exc:
            raise AmqpDecodeError("values nest too deeply") from exc
        if code == PROPERTIES:
            to, subject, reply_to = _addresses(value)
        elif code == APPLICATION_PROPERTIES:
            properties = _simple_map(value)
        elif code == DATA_SECTION:
            if not isinstance(value, bytes):
                raise AmqpDecodeError("data section does not hold binary")
            parts.append(value)
        elif code == AMQP_VALUE:
            if not isinstance(value, bytes | str | dict) and value is not None:
                raise AmqpDecodeError(f"message body of type {type(value).__name__} is not carried")
            body = value
        elif code not in _SKIPPED:
            raise AmqpDecodeError(f"message section 0x{code:x} is not supported")
    if parts:
        body = parts[0] if len(parts) == 1 else b"".join(parts)
    return to, reply_to, subject, properties, body


def _addresses_at(data: bytes, pos: int) -> tuple[str | None, str | None, str | None, int] | None:
    """The common properties section read in one loop: a list8 of at most five fields,
    each null or str8 (message-id, user-id, to, subject, reply-to). None for anything
    else, which the general decoder then reads."""
    end = len(data)
    if pos + 3 > end or data[pos] != 0xC0:
        return None
    stop = pos + 2 + data[pos + 1]
    count = data[pos + 2]
    if stop > end or count > 5:
        return None
    fields: list[str | None] = [None, None, None, None, None]
    at = pos + 3
    try:
        for index in range(count):
            ctor = data[at]
            if ctor == 0x40:
                at += 1
            elif ctor == 0xA1:
                after = at + 2 + data[at + 1]
                fields[index] = data[at + 2 : after].decode()
                at = after
            else:
                return None
    except (IndexError, UnicodeDecodeError):
        return None
    if at != stop or fields[0] is not None or fields[1] is not None:
        return None  # message or user ids: the general decoder checks their types
    return fields[2], fields[3], fields[4], stop


def _descriptor(data: bytes, pos: int) -> tuple[int, int]:
    if data[pos] != 0:
        raise AmqpDecodeError("message section is not a described type")
    form = data[pos + 1] if pos + 1 < len(data) else -1
    if form == 0x53 and pos + 2 < len(data):
        return data[pos + 2], pos + 3
    if form == 0x80 and pos + 10 <= len(data):
        return _ULONG.unpack_from(data, pos + 2)[0], pos + 10
    raise AmqpDecodeError("message section descriptor is not a ulong code")


def _addresses(value: AmqpValue) -> tuple[str | None, str | None, str | None]:
    if not isinstance(value, list):
        raise AmqpDecodeError("properties section is not a list")
    fields = (value + [None] * 5)[2:5]
    for field in fields:
        if field is not None and not isinstance(field, str):
            raise AmqpDecodeError("to, subject and reply-to must be strings")
    return fields[0], fields[1], fields[2]  # type: ignore[return-value]


def _string_map(data: bytes, pos: int) -> tuple[dict[str, AmqpSimple], int] | None:
    """The common application-properties map read in one loop: a map8 of str8 or sym8
    keys to str8 or small int values. None for anything else (or anything odd), which
    the general decoder then reads, or rejects with its reasons."""
    end = len(data)
    if pos + 3 > end or data[pos] != 0xC1:
        return None
    stop = pos + 2 + data[pos + 1]
    count = data[pos + 2]
    if stop > end or count & 1:
        return None
    result: dict[str, AmqpSimple] = {}
    at = pos + 3
    try:
        for _ in range(count >> 1):
            ctor = data[at]
            if ctor != 0xA1 and ctor != 0xA3:
                return None
            after = at + 2 + data[at + 1]
            key = data[at + 2 : after].decode()
            ctor = data[after]
            if ctor == 0xA1:
                at = after + 2 + data[after + 1]
                result[key] = data[after + 2 : at].decode()
            elif ctor == 0x55 or ctor == 0x54:  # smalllong, smallint
                small = data[after + 1]
                result[key] = small - 256 if small > 127 else small
                at = after + 2
            else:
                return None
    except (IndexError, UnicodeDecodeError):
        return None
    if at != stop:
        return None
    return result, stop


def _simple_map(value: AmqpValue) -> dict[str, AmqpSimple]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AmqpDecodeError("application properties are not a map")
    for item in value.values():
        if isinstance(item, list | dict):
            raise AmqpDecodeError("application property values must be simple")
    return value  # type: ignore[return-value]


# -- connection and link properties (symbol-keyed maps, once per attach: proton's Data) --


def put_symbol_map(data_impl: Any, values: Mapping[str, object]) -> None:
    """Fill a pn_data_t (connection or link properties) with a map keyed by symbols."""
    data = Data(data_impl)
    data.clear()
    data.put_object({symbol(k): _proton_value(v) for k, v in values.items()})


def _proton_value(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bytes):
        return _narrow(value)
    raise TypeError(f"connection and link property values must be simple, not {value!r}")


def get_map(data_impl: Any) -> dict[str, AmqpValue]:
    """Read a map (or nothing) from a pn_data_t the peer filled."""
    if not data_impl:
        return {}  # proton has no data object until the peer sends one
    data = Data(data_impl)
    data.rewind()
    if data.next() != Data.MAP:
        return {}
    out: dict[str, AmqpValue] = {}
    for key, value in data.get_dict().items():
        if isinstance(value, memoryview | bytearray):
            value = bytes(value)  # a view into proton's buffer: copy before it moves
        elif not isinstance(value, str | int | float | bytes) and value is not None:
            continue  # nested or exotic values: nothing here needs them
        out[str(key)] = _narrow(value)
    return out


def _narrow(value: str | int | float | bytes | None) -> AmqpValue:
    """Plain base type of a value: proton uses subclasses (symbol, ulong...) both ways."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes):
        return bytes(value)
    return None
