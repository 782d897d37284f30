"""Stream headers of one kind: encoded and decoded in full once.

A router sends and receives the same few kinds of stream header over and over: a TCP
stream's names its service, its two routers and its direction, and differs from the
last one of its kind only in some string values (the stream id, the reply address made
from it, the flow id). Encoding one in full costs 5-6 us and decoding it 3-4 us, twice
per TCP connection at each end, and once per message stream.

- The sender knows which fields vary: a ``StreamHeaderTemplate`` is the rest encoded
  once per tuple of the values' lengths, as a ``%``-template the values go into.
- The receiver does not: it learns each *shape* it meets (every string value's place
  and length, every other byte) and reads a header of a learned shape with one regular
  expression match, its string values taken from their places.

Nothing is used unproven: a template comes from two encodings whose values differ at
every byte (what differs must be exactly the values), a decoder's shape from a second
full decode of the bytes with every string value's content changed (each must come back
as its field's value, everything else as before). Anything else — a shape not proven, a
value that is not UTF-8, bytes of another shape — goes to the general codec, which says
what is wrong with it. Every cache is bounded and starts again when full.
"""

from __future__ import annotations

import re

from ._codec import HEADER_END, _decode, _encode_header
from .errors import AmqpDecodeError
from .events import AmqpSimple, MessageHeader

SHAPES_MAX = 256
_SHAPES_PER_LENGTH = 8  # the latest learned, per length of bytes
_TEMPLATE_LENGTHS_MAX = 64
_FILLERS = 20  # variable values a template may have: fillers b..u tell them apart
_FIELDS = ("to", "subject", "reply_to")  # the properties section's order

#: a field of the header: one of _FIELDS, or an application property's key
_Field = tuple[bool, str]  # (is a property, name)


# -- encoding ------------------------------------------------------------------------------
def encode_stream_header(header: MessageHeader) -> bytes:
    """A stream's header sections and the end-of-header marker (``HEADER_END``), encoded
    in full (``StreamHeaderTemplate`` for a kind of header sent many times)."""
    out = _encode_header(header.to, header.reply_to, header.subject, header.application_properties)
    out += HEADER_END
    return bytes(out)


class StreamHeaderTemplate:
    """Stream headers of one kind: ``header`` but for the string values of the fields
    named in ``addresses`` (of to, subject, reply_to) and ``properties`` (application
    property keys). ``render`` takes those values in the order they are encoded in —
    addresses as to, subject, reply_to, then properties in ``header``'s order — and
    puts them into a ``%``-template of the rest, made once per tuple of their encoded
    lengths (the compound sizes before them depend on nothing else)."""

    __slots__ = ("_addresses", "_header", "_properties", "_templates")

    def __init__(
        self, header: MessageHeader, addresses: tuple[str, ...], properties: tuple[str, ...]
    ) -> None:
        unknown = set(addresses) - set(_FIELDS)
        if unknown:
            raise ValueError(f"not an address field: {sorted(unknown)}")
        self._header = header
        self._addresses = tuple(f for f in _FIELDS if f in addresses)
        self._properties = tuple(k for k in header.application_properties if k in properties)
        if len(self._properties) != len(properties):
            raise ValueError("a variable property the header does not have")
        self._templates: dict[tuple[int, ...], bytes | None] = {}

    def render(self, values: tuple[str, ...]) -> bytes:
        """The header with these values (in encoding order) put in, encoded."""
        raws = tuple([value.encode() for value in values])
        lengths = tuple(map(len, raws))
        templates = self._templates
        template = templates.get(lengths, b"")
        if template == b"":
            if len(templates) >= _TEMPLATE_LENGTHS_MAX:
                templates.clear()
            template = templates[lengths] = self._learn(lengths)
        if template is None:
            return encode_stream_header(self._with(list(values)))
        return template % raws

    def _with(self, values: list[str]) -> MessageHeader:
        """The header with the variable fields' values replaced, in encoding order."""
        header = self._header
        given = dict(zip(self._addresses + self._properties, values, strict=True))
        properties = dict(header.application_properties)
        for key in self._properties:
            properties[key] = given[key]
        return MessageHeader(
            to=given["to"] if "to" in self._addresses else header.to,
            subject=given["subject"] if "subject" in self._addresses else header.subject,
            reply_to=given["reply_to"] if "reply_to" in self._addresses else header.reply_to,
            application_properties=properties,
        )

    def _learn(self, lengths: tuple[int, ...]) -> bytes | None:
        """The ``%``-template for values of these lengths, from two encodings whose values
        differ at every byte (None: no value may be empty, nor more than _FILLERS)."""
        if len(lengths) > _FILLERS or not all(lengths):
            return None
        plain = encode_stream_header(self._with(["a" * n for n in lengths]))
        marked = encode_stream_header(
            self._with([chr(0x62 + i) * n for i, n in enumerate(lengths)])
        )
        runs = _differing_runs(plain, marked)
        found = [(stop - start, marked[start]) for start, stop in runs]
        if len(plain) != len(marked) or found != [(n, 0x62 + i) for i, n in enumerate(lengths)]:
            return None
        pieces = []
        at = 0
        for start, stop in runs:
            pieces.append(plain[at:start].replace(b"%", b"%%"))
            at = stop
        pieces.append(plain[at:].replace(b"%", b"%%"))
        return b"%b".join(pieces)


def _differing_runs(a: bytes, b: bytes) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    start = -1
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            if start < 0:
                start = index
        elif start >= 0:
            runs.append((start, index))
            start = -1
    if start >= 0:
        runs.append((start, min(len(a), len(b))))
    return runs


# -- decoding ------------------------------------------------------------------------------
class _Shape:
    """A learned header: its bytes as a pattern (each string value's constructor and
    length as learned, its content any bytes, every other byte as learned), and where
    each value goes."""

    __slots__ = ("_addresses", "_keys", "_pattern", "_properties")

    def __init__(
        self, data: bytes, spans: list[tuple[int, int]], fields: list[_Field],
        properties: dict[str, AmqpSimple],
    ) -> None:  # fmt: skip
        pattern = []
        at = 0
        for start, stop in spans:
            pattern.append(re.escape(data[at:start]))
            pattern.append(b"(.{%d})" % (stop - start))
            at = stop
        pattern.append(re.escape(data[at:]))
        self._pattern = re.compile(b"".join(pattern), re.DOTALL)
        #: the value's index for to, subject and reply-to (-1: absent)
        names = [name for is_property, name in fields if not is_property]
        self._addresses = tuple(names.index(f) if f in names else -1 for f in _FIELDS)
        self._keys = [name for is_property, name in fields if is_property]
        #: the application properties in order, the string ones' values to be put in
        self._properties = properties

    def read(self, data: bytes) -> MessageHeader | None:
        """The header ``data`` is, if it has this shape; None when it does not (or a
        value is not UTF-8: the general decoder says so)."""
        match = self._pattern.fullmatch(data)
        if match is None:
            return None
        try:
            values = [value.decode() for value in match.groups()]
        except UnicodeDecodeError:
            return None
        to, subject, reply_to = (values[i] if i >= 0 else None for i in self._addresses)
        properties = self._properties.copy()
        keys = self._keys
        if keys:
            properties.update(zip(keys, values[len(values) - len(keys) :], strict=True))
        return MessageHeader(
            to=to, reply_to=reply_to, subject=subject, application_properties=properties
        )


class _Decoders:
    """Learned shapes by the length of their bytes (a shape's compound sizes fix it)."""

    __slots__ = ("_by_length", "_count")

    def __init__(self) -> None:
        self._by_length: dict[int, list[_Shape]] = {}
        self._count = 0

    def get(self, data: bytes) -> MessageHeader | None:
        shapes = self._by_length.get(len(data))
        if shapes:
            for shape in shapes:
                header = shape.read(data)
                if header is not None:
                    return header
        return None

    def learn(self, data: bytes, header: MessageHeader) -> None:
        shape = _learn_decoder(data, header)
        if shape is None:
            return
        if self._count >= SHAPES_MAX:
            self._by_length.clear()
            self._count = 0
        shapes = self._by_length.setdefault(len(data), [])
        shapes.insert(0, shape)
        self._count += 1
        if len(shapes) > _SHAPES_PER_LENGTH:  # a header is tried against these few only
            del shapes[_SHAPES_PER_LENGTH:]
            self._count -= 1


_decoders = _Decoders()


def _learn_decoder(data: bytes, header: MessageHeader) -> _Shape | None:
    """``data``'s shape (decoded in full to ``header``), if a probe proves it: every
    string value's bytes found in order, then the bytes decoded again with each value's
    content changed at every byte, which must change those values and nothing else."""
    fields: list[_Field] = []
    raws: list[bytes] = []
    for name, address in zip(_FIELDS, (header.to, header.subject, header.reply_to), strict=True):
        if address is not None:
            fields.append((False, name))
            raws.append(address.encode())
    for key, value in header.application_properties.items():
        if type(value) is str:
            fields.append((True, key))
            raws.append(value.encode())
    if not fields:
        return None
    spans: list[tuple[int, int]] = []
    pos = 0
    for raw in raws:
        n = len(raw)
        if not 0 < n < 256:
            return None
        found = data.find(bytes((0xA1, n)) + raw, pos)
        if found < 0:
            return None
        spans.append((found + 2, found + 2 + n))
        pos = found + 2 + n
    probe = bytearray()
    at = 0
    for start, stop in spans:
        probe += data[at:start]
        probe += bytes(0x62 if b == 0x61 else 0x61 for b in data[start:stop])
        at = stop
    probe += data[at:]
    shape = _Shape(data, spans, fields, dict(header.application_properties))
    probed = bytes(probe)
    try:
        to, reply_to, subject, seen, _ = _decode(probed)
    except AmqpDecodeError:
        return None
    expected = MessageHeader(to=to, reply_to=reply_to, subject=subject, application_properties=seen)
    if shape.read(probed) != expected or shape.read(data) != header:
        return None
    return shape


def decode_stream_header(data: bytes) -> MessageHeader:
    """A stream's header sections (no body) as the header its StreamStarted reports."""
    to, reply_to, subject, properties, _ = _decode(data)
    return MessageHeader(
        to=to, reply_to=reply_to, subject=subject, application_properties=properties
    )


def cached_header(data: bytes) -> MessageHeader | None:
    """The header ``data`` decodes to if its shape is one ``decode_templated_header``
    has learned, else None (``data`` may then be anything)."""
    return _decoders.get(data)


def decode_templated_header(data: bytes) -> MessageHeader:
    """``decode_stream_header`` for headers whose kind comes many times: each shape is
    decoded in full once, then read from its places."""
    found = _decoders.get(data)
    if found is not None:
        return found
    header = decode_stream_header(data)
    _decoders.learn(data, header)
    return header
