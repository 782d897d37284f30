"""The message codec agrees with proton's own, both ways, and refuses what it cannot carry."""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proton import (
    UNDESCRIBED,
    Array,
    Data,
    Described,
    Message,
    byte,
    char,
    float32,
    int32,
    short,
    symbol,
    timestamp,
    ubyte,
    uint,
    ulong,
    ushort,
)

from skupper_actors.protocol.amqp import AmqpDecodeError, AmqpMessage, MessageHeader
from skupper_actors.protocol.amqp._codec import HEADER_END, decode_message, encode_message
from skupper_actors.protocol.amqp._headers import (
    decode_stream_header,
    decode_templated_header,
    encode_stream_header,
)

pytestmark = pytest.mark.timeout(60)

simple = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=300)
    | st.binary(max_size=300)
)
values = st.recursive(
    simple,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=20), inner, max_size=6)
    ),
    max_leaves=30,
)
bodies = (
    st.none()
    | st.binary(max_size=3000)
    | st.text(max_size=300)
    | st.dictionaries(st.text(max_size=20), values, max_size=6)
)


def messages(addresses: st.SearchStrategy[str]) -> st.SearchStrategy[AmqpMessage]:
    return st.builds(
        AmqpMessage,
        to=st.none() | addresses,
        reply_to=st.none() | addresses,
        subject=st.none() | addresses,
        application_properties=st.dictionaries(st.text(max_size=20), simple, max_size=6),
        body=bodies,
    )


# proton keeps addresses and subjects as C strings: a NUL cuts them short.
proton_messages = messages(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=50)
)


def plain(value: Any) -> Any:
    """What proton's decoder hands back, made comparable."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@settings(max_examples=150, derandomize=True, deadline=None)
@given(proton_messages)
def test_proton_reads_what_we_write(message: AmqpMessage) -> None:
    decoded = Message()
    decoded.decode(encode_message(message))
    assert decoded.address == message.to
    assert decoded.reply_to == message.reply_to
    assert decoded.subject == message.subject
    assert plain(decoded.properties or {}) == message.application_properties
    assert plain(decoded.body) == message.body


@settings(max_examples=150, derandomize=True, deadline=None)
@given(proton_messages)
def test_we_read_what_proton_writes(message: AmqpMessage) -> None:
    original = Message(
        address=message.to,
        reply_to=message.reply_to,
        subject=message.subject,
        properties=dict(message.application_properties) or None,
        body=message.body,
        inferred=isinstance(message.body, bytes),
    )
    try:
        encoded = original.encode()
    except OverflowError:
        return  # proton writes every int as a long; we use ulong past that range
    assert decode_message(encoded) == message


@settings(max_examples=200, derandomize=True, deadline=None)
@given(messages(st.text(max_size=50)))
def test_own_round_trip(message: AmqpMessage) -> None:
    assert decode_message(encode_message(message)) == message


def test_stream_header_round_trip_ends_with_the_marker() -> None:
    header = MessageHeader(to="tcp/a", reply_to="r", application_properties={"V": 1})
    encoded = encode_stream_header(header)
    assert encoded.endswith(HEADER_END)
    assert decode_stream_header(encoded[: -len(HEADER_END)]) == header
    assert encode_stream_header(MessageHeader()) == HEADER_END


def test_every_amqp_primitive_is_narrowed_to_plain_python() -> None:
    moment = uuid.UUID(int=7)
    body = {
        "ubyte": ubyte(1),
        "ushort": ushort(2),
        "uint": uint(3),
        "ulong": ulong(2**64 - 1),
        "byte": byte(-4),
        "short": short(-5),
        "int": int32(-6),
        "float": float32(0.5),
        "char": char("\u00e9"),
        "timestamp": timestamp(1700000000000),
        "uuid": moment,
        "symbol": symbol("sym"),
        "array": Array(UNDESCRIBED, Data.INT, 1, 2, 3),
        "empty": [],
        "big": "x" * 300,
        "blob": b"y" * 300,
        "uint0": uint(0),
        "ulong0": ulong(0),
    }
    message = Message(body=body, properties={"when": timestamp(5), "tag": symbol("t")})
    decoded = decode_message(message.encode())
    assert decoded.body == {
        "ubyte": 1,
        "ushort": 2,
        "uint": 3,
        "ulong": 2**64 - 1,
        "byte": -4,
        "short": -5,
        "int": -6,
        "float": 0.5,
        "char": "\u00e9",
        "timestamp": 1700000000000,
        "uuid": str(moment),
        "symbol": "sym",
        "array": [1, 2, 3],
        "empty": [],
        "big": "x" * 300,
        "blob": b"y" * 300,
        "uint0": 0,
        "ulong0": 0,
    }
    assert decoded.application_properties == {"when": 5, "tag": "t"}
    for value in decoded.body.values():  # type: ignore[union-attr]
        assert type(value) in (int, float, str, bytes, list)


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],  # amqp-value holding a list
        7,
        Described(symbol("x"), 1),
        {1: "int key"},
    ],
)
def test_bodies_we_do_not_carry_are_decode_errors(body: object) -> None:
    with pytest.raises(AmqpDecodeError):
        decode_message(Message(body=body).encode())


@pytest.mark.parametrize(
    "data",
    [
        b"\x01",  # not a described section
        b"\x00\xa3\x03abc\x40",  # symbolic descriptor
        b"\x00\x53\x77\xa1\x05ab",  # string runs past the end
        b"\x00\x53\x77\xa1\x02\xff\xfe",  # not UTF-8
        b"\x00\x53\x77\xc1\x03\x01\x40",  # map with an odd count
        b"\x00\x53\x77\xc0\x05\x02\x40",  # list size disagrees with its contents
        b"\x00\x53\x77\x74\x00\x00\x00\x00",  # decimal32
        b"\x00\x53\x79\x40",  # unknown section
        b"\x00\x53\x76\x45",  # amqp-sequence body
        b"\x00\x53\x73\xa1\x01x",  # properties that are not a list
        b"\x00\x53\x73\xc0\x04\x03\x40\x40\x55",  # 'to' that is not a string
        b"\x00\x53\x74\xc1\x05\x02\xa1\x01k\x45",  # list-valued application property
        b"\x00\x53\x75\xa1\x00",  # data section holding a string
        b"\x00\x53\x77\xe0\x03\x02\x00\x40",  # array of described values
        b"\x00\x53\x77\xf0\x00\x00\x00\x05\xff\xff\xff\xff\x40",  # 4G nulls in 5 bytes
        b"\x00\x53\x77\xc0\x02\xff\x40",  # list count past its size
    ],
)
def test_malformed_messages_raise_decode_errors(data: bytes) -> None:
    with pytest.raises(AmqpDecodeError):
        decode_message(data)


def test_deep_nesting_is_a_decode_error_not_a_recursion_error() -> None:
    nested = b"\x45"
    for _ in range(5000):
        nested = b"\xd0" + struct.pack(">II", len(nested) + 4, 1) + nested
    with pytest.raises(AmqpDecodeError, match="nest"):
        decode_message(b"\x00\x53\x77" + nested)


def test_unencodable_values_raise_type_errors() -> None:
    for body in ({"k": object()}, {"k": 2**64}, {1: "int key"}):
        with pytest.raises(TypeError):
            encode_message(AmqpMessage(body=body))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_message(AmqpMessage(application_properties={"k": [1]}))  # type: ignore[dict-item]


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=20),
        st.one_of(st.text(max_size=40), st.integers(-300, 300), st.booleans(), st.none()),
        max_size=8,
    ),
    st.lists(st.one_of(st.none(), st.text(max_size=30)), max_size=5),
)
def test_one_loop_readers_agree_with_the_general_decoder(
    properties: dict[str, Any], fields: list[str | None]
) -> None:
    """The fast readers of the properties and application-properties sections give what
    the general decoder gives, or step aside (None) for it."""
    from skupper_actors.protocol.amqp._codec import _addresses_at, _string_map
    from skupper_actors.protocol.amqp._types import decode_value, encode_value

    encoded = bytearray(b"xx")
    encode_value(properties, encoded)
    found = _string_map(bytes(encoded), 2)
    if found is not None:
        assert found == decode_value(bytes(encoded), 2)
    elif properties and all(type(v) in (str, int) for v in properties.values()):
        # only long strings or ints beyond a byte make it step aside
        assert (
            any(
                len(k.encode()) > 255
                or (type(v) is str and len(v.encode()) > 255)
                or (type(v) is int and not -128 <= v <= 127)
                for k, v in properties.items()
            )
            or len(encoded) > 250
        )
    listed = bytearray()
    encode_value(fields, listed)
    at = _addresses_at(bytes(listed), 0)
    if at is not None:
        general, end = decode_value(bytes(listed), 0)
        assert isinstance(general, list)
        assert at == (*(general + [None] * 5)[2:5], end)


@pytest.mark.parametrize("value", ["r/1/2", "x" * 200, "é" * 300, "%b%s%%", ""])
def test_a_header_template_renders_what_the_header_encodes_to(value: str) -> None:
    """A template's header with its variable values put in is the same bytes as that
    header encoded in full (map8 or, past 255 bytes, map32; a '%' anywhere; an empty
    value, which no template holds, encoded in full)."""
    from skupper_actors.protocol.amqp import StreamHeaderTemplate

    def header(stream: str) -> MessageHeader:
        properties = {"V": 1, "x-from": "a%", "x-stream": stream, "x-dir": "m", "x-flow": stream}
        return MessageHeader(
            to="bench%", reply_to=f"_r/{stream}", application_properties=properties
        )

    template = StreamHeaderTemplate(header("s"), ("reply_to",), ("x-stream", "x-flow"))
    for stream in (value, value[::-1], value + "1", value):
        rendered = template.render((f"_r/{stream}", stream, stream))
        assert rendered == encode_stream_header(header(stream))
        assert decode_stream_header(rendered[: -len(HEADER_END)]) == header(stream)


def test_a_header_template_knows_its_fields() -> None:
    from skupper_actors.protocol.amqp import StreamHeaderTemplate

    header = MessageHeader(to="a", application_properties={"k": "v"})
    with pytest.raises(ValueError, match="address field"):
        StreamHeaderTemplate(header, ("from",), ())
    with pytest.raises(ValueError, match="does not have"):
        StreamHeaderTemplate(header, (), ("k", "other"))


header_texts = st.text(max_size=12) | st.sampled_from(["%", "%b", "\x00Su", "é"])


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(header_texts, st.integers(-300, 300), st.booleans(), st.none()),
        max_size=5,
    ),
    st.lists(
        st.tuples(header_texts, header_texts | st.none(), header_texts), min_size=1, max_size=5
    ),
)
def test_headers_of_one_shape_decode_as_the_general_decoder_does(
    properties: dict[str, Any], variants: list[tuple[str, str | None, str]]
) -> None:
    """Headers whose string values change (to, reply-to, properties; their lengths too,
    so the shape changes or not) decode, learned or not, as the general decoder reads
    them."""
    for to, reply_to, value in variants:
        changed = {k: (v + value if isinstance(v, str) else v) for k, v in properties.items()}
        header = MessageHeader(
            to=to, reply_to=reply_to, application_properties={**changed, "z-last": value}
        )
        data = encode_stream_header(header)[: -len(HEADER_END)]
        assert decode_templated_header(data) == decode_stream_header(data) == header


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=12),
        st.one_of(st.text(max_size=20), st.integers(-300, 300), st.booleans(), st.none()),
        max_size=5,
    ),
    st.lists(st.text(max_size=12), min_size=1, max_size=6),
    st.one_of(st.none(), st.text(max_size=20)),
)
def test_templated_headers_decode_as_the_general_decoder_does(
    properties: dict[str, Any], values: list[str], to: str | None
) -> None:
    """Headers differing only in their last property's value (cached after the first)
    decode exactly as the plain decoder decodes them, whatever came before."""
    for value in values:
        header = MessageHeader(to=to, application_properties={**properties, "z-last": value})
        data = encode_stream_header(header)[: -len(HEADER_END)]
        assert decode_templated_header(data) == decode_stream_header(data) == header


def test_templated_header_bytes_that_are_not_that_template_are_decoded_in_full() -> None:
    """A cached prefix followed by bytes that are not UTF-8, or by more or fewer bytes
    than its value's length, is no cache hit: the plain decoder says what they are."""
    header = MessageHeader(to="bench", application_properties={"V": 1, "s": "r/1/23"})
    data = encode_stream_header(header)[: -len(HEADER_END)]
    assert decode_templated_header(data) == header  # learned
    assert decode_templated_header(data[:-6] + b"r/1/99").application_properties["s"] == "r/1/99"
    with pytest.raises(AmqpDecodeError):
        decode_templated_header(data[:-6] + b"\xff\xfe/1/9")
    for broken in (data[:-1], data + b"4"):
        with pytest.raises(AmqpDecodeError):
            decode_stream_header(broken)
        with pytest.raises(AmqpDecodeError):
            decode_templated_header(broken)
    # a last value that is not a string is never a template: decoded every time
    numbered = MessageHeader(to="bench", application_properties={"s": "x", "n": 7})
    numbered_data = encode_stream_header(numbered)[: -len(HEADER_END)]
    assert decode_templated_header(numbered_data) == numbered


def test_tcp_stream_headers_encode_and_decode_by_their_kind() -> None:
    """The TCP mapping's headers of one kind (forward with a flow id and a trace,
    reverse, message) come from a template and, once a shape is learned, are read from
    it: each the header it was made from, whatever its ids."""
    from skupper_actors.protocol.amqp._headers import cached_header
    from skupper_actors.protocol.tcp import mapping

    def made(number: int) -> list[mapping.StreamHeader]:
        stream = f"r-a/7f/{number}"
        forward = mapping.forward_header(stream, "r-a", "r-b", "db:5432", f"r-a:{number}")
        traced = mapping.through(forward, "r-t")
        message = mapping.StreamHeader(
            stream_id=stream, direction=mapping.MESSAGE, source="r-a", destination="r-b",
            routing_key="queue", reply_to="replies",
        )  # fmt: skip
        return [forward, traced, mapping.reverse_header(forward), message]

    for number in (1, 2, 3, 10, 11, 99, 100):
        for header in made(number):
            data = mapping.encoded_header(header)
            assert data == encode_stream_header(
                MessageHeader(
                    to=header.routing_key,
                    reply_to=header.reply_to,
                    application_properties=header.to_properties(),
                )
            )
            data = data[: -len(HEADER_END)]
            if number in (2, 3, 11):  # a length met before: a learned shape reads it
                assert cached_header(data) is not None
            decoded = decode_templated_header(data)
            assert mapping.parse_header(
                decoded.to, decoded.reply_to, decoded.application_properties
            ) == header


def test_learned_shapes_are_bounded_per_length() -> None:
    """Headers of many shapes but one length: each still decodes right, and a header is
    tried against a few learned shapes only (the latest)."""
    from skupper_actors.protocol.amqp._headers import _SHAPES_PER_LENGTH, _decoders

    datas = []
    for index in range(3 * _SHAPES_PER_LENGTH):
        header = MessageHeader(to="q", application_properties={f"k{index:02}": "v"})
        datas.append((encode_stream_header(header)[: -len(HEADER_END)], header))
    assert len({len(data) for data, _ in datas}) == 1
    for _ in range(2):
        for data, header in datas:
            assert decode_templated_header(data) == header
    assert 0 < len(_decoders._by_length[len(datas[0][0])]) <= _SHAPES_PER_LENGTH
