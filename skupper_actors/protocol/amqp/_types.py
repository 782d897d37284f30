"""AMQP 1.0 type system encoding (part 1 of the spec), for the values messages carry.

Written out rather than taken from proton's ``Data``: that goes through several
Python layers and a cffi call per value, which made a small control message cost
~100 us to encode and decode. This covers the plain-Python subset in ``AmqpValue``;
decoding accepts every AMQP primitive and narrows it to that subset.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .errors import AmqpDecodeError
from .events import AmqpValue

_U8 = struct.Struct(">B")
_U32 = struct.Struct(">I")
_I8 = struct.Struct(">b")
_U8U8 = struct.Struct(">BB")
_U32U32 = struct.Struct(">II")
_LONG = struct.Struct(">q")
_ULONG = struct.Struct(">Q")
_DOUBLE = struct.Struct(">d")

_MIN_LONG = -(1 << 63)
_MAX_ULONG = (1 << 64) - 1


def encode_value(value: object, out: bytearray) -> None:
    """Append the AMQP encoding of a plain Python value (see ``AmqpValue``) to ``out``."""
    kind = type(value)
    if kind is str:
        _put_str(value, out)  # type: ignore[arg-type]
    elif value is None:
        out.append(0x40)
    elif kind is bool:
        out.append(0x41 if value else 0x42)
    elif kind is int:
        _put_int(value, out)  # type: ignore[arg-type]
    elif kind is dict:
        _put_map(value, out)  # type: ignore[arg-type]
    elif kind is list or kind is tuple:
        _put_list(value, out)  # type: ignore[arg-type]
    elif kind is bytes:
        _put_binary(value, out)  # type: ignore[arg-type]
    elif kind is float:
        out.append(0x82)
        out += _DOUBLE.pack(value)
    else:
        _encode_subclass(value, out)


def _encode_subclass(value: object, out: bytearray) -> None:
    # Enums and other subclasses travel as their plain base type.
    if isinstance(value, bool):
        out.append(0x41 if value else 0x42)
    elif isinstance(value, int):
        _put_int(int(value), out)
    elif isinstance(value, str):
        _put_str(str(value), out)
    elif isinstance(value, float):
        out.append(0x82)
        out += _DOUBLE.pack(value)
    elif isinstance(value, bytes | bytearray | memoryview):
        _put_binary(bytes(value), out)
    elif isinstance(value, Mapping):
        _put_map(value, out)
    elif isinstance(value, list | tuple):
        _put_list(value, out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as an AMQP value")


def _put_int(value: int, out: bytearray) -> None:
    if -128 <= value <= 127:
        out.append(0x55)
        out += _I8.pack(value)
    elif _MIN_LONG <= value < -_MIN_LONG:
        out.append(0x81)
        out += _LONG.pack(value)
    elif 0 <= value <= _MAX_ULONG:
        out.append(0x80)
        out += _ULONG.pack(value)
    else:
        raise TypeError(f"integer {value} does not fit an AMQP long or ulong")


def _put_str(value: str, out: bytearray) -> None:
    data = value.encode()
    if len(data) < 256:
        out.append(0xA1)
        out.append(len(data))
    else:
        out.append(0xB1)
        out += _U32.pack(len(data))
    out += data


def _put_binary(value: bytes, out: bytearray) -> None:
    if len(value) < 256:
        out.append(0xA0)
        out.append(len(value))
    else:
        out.append(0xB0)
        out += _U32.pack(len(value))
    out += value


def _put_compound(small: int, large: int, count: int, body: bytearray, out: bytearray) -> None:
    # The size field counts the count field too.
    if len(body) + 1 < 256 and count < 256:
        out.append(small)
        out += _U8U8.pack(len(body) + 1, count)
    else:
        out.append(large)
        out += _U32U32.pack(len(body) + 4, count)
    out += body


def _put_list(value: list[Any] | tuple[Any, ...], out: bytearray) -> None:
    if not value:
        out.append(0x45)
        return
    body = bytearray()
    for item in value:
        # the common items, inline: a message's properties list is strings and nulls
        if item is None:
            body.append(0x40)
            continue
        if type(item) is str:
            data = item.encode()
            if len(data) < 256:
                body.append(0xA1)
                body.append(len(data))
                body += data
                continue
        encode_value(item, body)
    _put_compound(0xC0, 0xD0, len(value), body, out)


#: encoded map keys (the few property and field names messages use), at most _KEYS_MAX
_KEYS: dict[str, bytes] = {}
_KEYS_MAX = 512


def _key(key: str) -> bytes:
    encoded = _KEYS.get(key)
    if encoded is None:
        buffer = bytearray()
        _put_str(key, buffer)
        encoded = bytes(buffer)
        if len(_KEYS) < _KEYS_MAX:
            _KEYS[key] = encoded
    return encoded


def _put_map(value: Mapping[Any, Any], out: bytearray) -> None:
    body = bytearray()
    keys = _KEYS
    for key, item in value.items():
        if type(key) is not str:
            if not isinstance(key, str):
                raise TypeError(f"map keys must be str, not {type(key).__name__}")
            key = str(key)
        encoded = keys.get(key)
        body += encoded if encoded is not None else _key(key)
        if type(item) is str:  # the common value, inline
            data = item.encode()
            if len(data) < 256:
                body.append(0xA1)
                body.append(len(data))
                body += data
                continue
        encode_value(item, body)
    _put_compound(0xC1, 0xD1, 2 * len(value), body, out)


# -- decoding -------------------------------------------------------------------------

ValueReader = Callable[[bytes, int], tuple[AmqpValue, int]]


def decode_value(data: bytes, pos: int) -> tuple[AmqpValue, int]:
    """Decode one value at ``pos``; return it and the position after it."""
    # The constructors control messages are made of come first, inline: this runs
    # once per value, and a table lookup plus a call per value doubled decode time.
    try:
        ctor = data[pos]
        pos += 1
        if ctor == 0xA1 or ctor == 0xA3:  # str8, sym8
            end = pos + 1 + data[pos]
            if end > len(data):
                raise AmqpDecodeError(_OVERRUN)
            return data[pos + 1 : end].decode(), end
        if ctor == 0x55 or ctor == 0x54 or ctor == 0x51:  # smalllong, smallint, byte
            small = data[pos]
            return (small - 256 if small > 127 else small), pos + 1
        if ctor == 0xC1:
            return _map(data, pos, data[pos], data[pos + 1], pos + 2)
        if ctor == 0xC0:
            return _list(data, pos, data[pos], data[pos + 1], pos + 2)
        if ctor == 0x40:
            return None, pos
        if ctor == 0x45:
            return [], pos
        if ctor == 0x41:
            return True, pos
        if ctor == 0x42:
            return False, pos
        if ctor == 0xD1:
            size, count = _U32U32.unpack_from(data, pos)
            return _map(data, pos + 3, size, count, pos + 8)
        if ctor == 0xD0:
            size, count = _U32U32.unpack_from(data, pos)
            return _list(data, pos + 3, size, count, pos + 8)
        reader = _READERS.get(ctor)
        if reader is None:
            raise AmqpDecodeError(f"AMQP constructor 0x{ctor:02x} is not supported")
        return reader(data, pos)
    except UnicodeDecodeError as exc:
        raise AmqpDecodeError("string is not valid UTF-8") from exc
    except (IndexError, struct.error) as exc:
        raise AmqpDecodeError(_OVERRUN) from exc


_OVERRUN = "value runs past the end of its bytes"


def _map(data: bytes, at: int, size: int, count: int, pos: int) -> tuple[AmqpValue, int]:
    """A map whose one-byte size field sits at ``at`` (wide sizes pass ``at + 3``)."""
    end = at + 1 + size
    if end > len(data) or count > size:
        raise AmqpDecodeError(_OVERRUN)
    if count & 1:
        raise AmqpDecodeError("map has an odd number of entries")
    result: dict[str, AmqpValue] = {}
    for _ in range(count >> 1):
        key, pos = decode_value(data, pos)
        if type(key) is not str:
            raise AmqpDecodeError("map keys must be strings or symbols")
        result[key], pos = decode_value(data, pos)
    if pos != end:
        raise AmqpDecodeError("compound value size disagrees with its contents")
    return result, end


def _list(data: bytes, at: int, size: int, count: int, pos: int) -> tuple[AmqpValue, int]:
    end = at + 1 + size
    if end > len(data) or count > size:
        raise AmqpDecodeError(_OVERRUN)
    result: list[AmqpValue] = []
    for _ in range(count):
        item, pos = decode_value(data, pos)
        result.append(item)
    if pos != end:
        raise AmqpDecodeError("compound value size disagrees with its contents")
    return result, end


def _fixed(unpack: Callable[[bytes, int], tuple[Any, ...]], width: int) -> ValueReader:
    def read(data: bytes, pos: int) -> tuple[AmqpValue, int]:
        return unpack(data, pos)[0], pos + width

    return read


def _constant(value: AmqpValue) -> ValueReader:
    def read(data: bytes, pos: int) -> tuple[AmqpValue, int]:
        return value, pos

    return read


def _variable(width: int, convert: Callable[[bytes], AmqpValue]) -> ValueReader:
    size_of = _U8 if width == 1 else _U32

    def read(data: bytes, pos: int) -> tuple[AmqpValue, int]:
        (size,) = size_of.unpack_from(data, pos)
        start = pos + width
        end = start + size
        if end > len(data):
            raise AmqpDecodeError(_OVERRUN)
        return convert(data[start:end]), end

    return read


def _text(raw: bytes) -> AmqpValue:
    return raw.decode()


def _array(width: int) -> ValueReader:
    header = _U8U8 if width == 1 else _U32U32

    def read(data: bytes, pos: int) -> tuple[AmqpValue, int]:
        size, count = header.unpack_from(data, pos)
        end = pos + width + size
        if end > len(data) or count > size:
            # Elements of zero width (null, true...) would let a tiny array spin forever.
            raise AmqpDecodeError("array count or size does not fit its bytes")
        pos += 2 * width
        element = _READERS.get(data[pos])
        if element is None or data[pos] == 0x00:
            raise AmqpDecodeError(f"array of 0x{data[pos]:02x} is not supported")
        pos += 1
        items: list[AmqpValue] = []
        for _ in range(count):
            item, pos = element(data, pos)
            items.append(item)
        if pos != end:
            raise AmqpDecodeError("array size disagrees with its contents")
        return items, end

    return read


def _described(data: bytes, pos: int) -> tuple[AmqpValue, int]:
    raise AmqpDecodeError("described values are not supported in message contents")


def _unsupported(name: str) -> ValueReader:
    def read(data: bytes, pos: int) -> tuple[AmqpValue, int]:
        raise AmqpDecodeError(f"AMQP {name} values are not supported")

    return read


def _char(data: bytes, pos: int) -> tuple[AmqpValue, int]:
    (code,) = _U32.unpack_from(data, pos)
    try:
        return chr(code), pos + 4
    except ValueError as exc:
        raise AmqpDecodeError("char is not a code point") from exc


def _uuid(data: bytes, pos: int) -> tuple[AmqpValue, int]:
    if pos + 16 > len(data):
        raise AmqpDecodeError(_OVERRUN)
    return str(uuid.UUID(bytes=bytes(data[pos : pos + 16]))), pos + 16


def _boolean(data: bytes, pos: int) -> tuple[AmqpValue, int]:
    return data[pos] != 0, pos + 1


def _empty_list(data: bytes, pos: int) -> tuple[AmqpValue, int]:
    return [], pos


def _list8(data: bytes, pos: int) -> tuple[AmqpValue, int]:
    return _list(data, pos, data[pos], data[pos + 1], pos + 2)


def _map8(data: bytes, pos: int) -> tuple[AmqpValue, int]:
    return _map(data, pos, data[pos], data[pos + 1], pos + 2)


def _list32(data: bytes, pos: int) -> tuple[AmqpValue, int]:
    size, count = _U32U32.unpack_from(data, pos)
    return _list(data, pos + 3, size, count, pos + 8)


def _map32(data: bytes, pos: int) -> tuple[AmqpValue, int]:
    size, count = _U32U32.unpack_from(data, pos)
    return _map(data, pos + 3, size, count, pos + 8)


# Every constructor, including those decode_value reads inline: arrays use this table.
_READERS: dict[int, ValueReader] = {
    0x40: _constant(None),
    0x41: _constant(True),
    0x42: _constant(False),
    0x45: _empty_list,
    0x51: _fixed(_I8.unpack_from, 1),
    0x54: _fixed(_I8.unpack_from, 1),
    0x55: _fixed(_I8.unpack_from, 1),
    0xA1: _variable(1, _text),
    0xA3: _variable(1, _text),
    0xC0: _list8,
    0xC1: _map8,
    0xD0: _list32,
    0xD1: _map32,
    0x56: _boolean,
    0x43: _constant(0),
    0x44: _constant(0),
    0x50: _fixed(struct.Struct(">B").unpack_from, 1),
    0x52: _fixed(struct.Struct(">B").unpack_from, 1),
    0x53: _fixed(struct.Struct(">B").unpack_from, 1),
    0x60: _fixed(struct.Struct(">H").unpack_from, 2),
    0x61: _fixed(struct.Struct(">h").unpack_from, 2),
    0x70: _fixed(struct.Struct(">I").unpack_from, 4),
    0x71: _fixed(struct.Struct(">i").unpack_from, 4),
    0x72: _fixed(struct.Struct(">f").unpack_from, 4),
    0x73: _char,
    0x80: _fixed(_ULONG.unpack_from, 8),
    0x81: _fixed(_LONG.unpack_from, 8),
    0x82: _fixed(_DOUBLE.unpack_from, 8),
    0x83: _fixed(_LONG.unpack_from, 8),  # timestamp: milliseconds since the epoch
    0x98: _uuid,
    0x74: _unsupported("decimal32"),
    0x84: _unsupported("decimal64"),
    0x94: _unsupported("decimal128"),
    0xA0: _variable(1, bytes),
    0xB0: _variable(4, bytes),
    0xB1: _variable(4, _text),
    0xB3: _variable(4, _text),
    0xE0: _array(1),
    0xF0: _array(4),
    0x00: _described,
}
