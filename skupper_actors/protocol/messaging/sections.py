"""The leading sections of an encoded AMQP message: its ``to``, read without the body.

An anonymous-relay sender's messages name their address in the properties section
(``to``, AMQP 1.0 part 3.2.4). Only the sections before the properties are decoded
(header and annotations are small); the body is never touched, so a 50 MiB message
costs what its first few hundred bytes cost.
"""

from __future__ import annotations

from typing import Final

import proton

_PROPERTIES: Final = 0x73
#: sections that may come before the properties
_LEADING: Final = frozenset({0x70, 0x71, 0x72})
#: bytes looked at for the leading sections; past this the message has no usable ``to``
MAX_LEADING_BYTES: Final = 64 << 10


class Incomplete(Exception):
    """More of the delivery is needed to find its ``to``."""


def message_to(data: bytes, *, complete: bool) -> str | None:
    """The message's ``to`` address, or None when it has none (or is malformed).

    Raises ``Incomplete`` when ``data`` (the delivery so far) ends inside the leading
    sections and more may come (``complete`` False, under ``MAX_LEADING_BYTES``).
    """
    offset = 0
    size = len(data)
    while offset < size:
        piece = data[offset : offset + MAX_LEADING_BYTES]
        section = proton.Data()
        try:
            used = section.decode(piece)
        except proton.DataException:
            if complete or size >= MAX_LEADING_BYTES:
                return None
            raise Incomplete from None
        if used <= 0:
            return None
        section.rewind()
        if not section.next() or section.type() != proton.Data.DESCRIBED:
            return None
        value = section.get_object()
        descriptor = getattr(value, "descriptor", None)
        if descriptor == _PROPERTIES:
            fields = getattr(value, "value", None)
            if isinstance(fields, list) and len(fields) > 2 and fields[2] is not None:
                return str(fields[2])
            return None
        if descriptor not in _LEADING:
            return None
        offset += used
    if complete or size >= MAX_LEADING_BYTES:
        return None
    raise Incomplete
