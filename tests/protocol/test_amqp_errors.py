"""Bad input, EOF and idle timeouts become events and state, never exceptions."""

from __future__ import annotations

import random

import cproton
import pytest
from amqp_pair import AmqpPair
from cproton import lib

from skupper_actors.protocol.amqp import (
    AmqpConnection,
    AmqpDecodeError,
    AmqpEvent,
    ConnectionClosed,
    LinkClosed,
    LinkOpened,
    MessageHeader,
    StreamEnded,
    StreamStarted,
    TransportFailed,
)
from skupper_actors.protocol.amqp._codec import (
    HEADER_END,
    parse_section_head,
    section_at,
    section_head_need,
)
from skupper_actors.protocol.amqp._headers import decode_templated_header, encode_stream_header

pytestmark = pytest.mark.timeout(20)
AMQP_HEADER = b"AMQP\x00\x01\x00\x00"


def feed_until_failed(connection: AmqpConnection, data: bytes) -> list[AmqpEvent]:
    """Feed ``data``; if the engine is still waiting for more, hang up (EOF)."""
    connection.receive_data(data)
    events = connection.events()
    if not connection.failed:
        connection.receive_data(b"")
        events += connection.events()
    return events


def assert_failed_cleanly(connection: AmqpConnection, events: list[AmqpEvent]) -> None:
    failures = [e for e in events if isinstance(e, TransportFailed | ConnectionClosed)]
    assert len(failures) == 1, events
    assert failures[0].condition
    assert connection.failed
    # The close frame (with the error) can still be flushed, and then nothing more.
    connection.data_to_send()
    assert connection.data_to_send() == b""
    assert connection.closed
    connection.receive_data(b"more bytes after the end")
    connection.receive_data(b"")
    assert [e for e in connection.events() if isinstance(e, TransportFailed)] == []


@pytest.mark.parametrize("server", [True, False])
@pytest.mark.parametrize("seed", range(20))
def test_random_garbage_fails_the_transport(server: bool, seed: int) -> None:
    rng = random.Random(seed)
    connection = AmqpConnection("victim", server=server)
    connection.open()
    connection.data_to_send()
    events = feed_until_failed(connection, rng.randbytes(rng.randrange(1, 2000)))
    assert_failed_cleanly(connection, events)


@pytest.mark.parametrize("server", [True, False])
@pytest.mark.parametrize("cut", [1, 4, 6, 7])
def test_truncated_protocol_header_then_eof(server: bool, cut: int) -> None:
    connection = AmqpConnection("victim", server=server)
    connection.open()
    events = feed_until_failed(connection, AMQP_HEADER[:cut])
    assert_failed_cleanly(connection, events)
    (failure,) = events
    assert failure == TransportFailed(
        condition="amqp:connection:framing-error", description=failure.description
    )


@pytest.mark.parametrize(
    "after_header",
    [
        b"\x00\x00\x00\x04\x02\x00\x00\x00",  # frame shorter than its own header
        b"\x00\x00\x00\x10\x01\x00\x00\x00" + b"\xff" * 8,  # data offset below 2
        b"\x00\x00\x00\x10\x02\x00\x00\x00" + b"\x00\x53\x10\xc0\x01\x00\xee\xee",  # bad open
        random.Random(3).randbytes(500),
    ],
)
@pytest.mark.parametrize("server", [True, False])
def test_valid_header_then_garbage(after_header: bytes, server: bool) -> None:
    connection = AmqpConnection("victim", server=server)
    connection.open()
    connection.data_to_send()
    events = feed_until_failed(connection, AMQP_HEADER + after_header)
    assert_failed_cleanly(connection, events)


def test_garbage_mid_connection_ends_links_then_reports() -> None:
    pair = AmqpPair()
    sender = pair.client.open_sender("control", "router/control")
    pair.pump()
    pair.take_client()
    pair.client.receive_data(b"\x00\x00\x00\x04garbage")
    events = pair.client.events()
    assert [type(e) for e in events] == [LinkClosed, TransportFailed]
    assert events[0].link_id == sender  # type: ignore[union-attr]
    assert_failed_cleanly(pair.client, events)
    # The server reads the client's close frame carrying the error.
    pair.server.receive_data(pair.client.data_to_send() or b"")
    pair.pump()
    assert pair.server.failed or pair.take_server() == []


def test_eof_after_clean_close_is_not_a_failure() -> None:
    pair = AmqpPair()
    pair.client.close()
    pair.pump()
    pair.client.receive_data(b"")
    assert [e for e in pair.client.events() if isinstance(e, TransportFailed)] == []
    assert not pair.client.failed


def test_peer_silence_beyond_the_idle_timeout_fails_the_transport() -> None:
    pair = AmqpPair(idle_timeout=1.0)
    pair.take_client()
    pair.take_server()
    now = 1000.0
    # Both ticking: heartbeats keep the quiet connection alive.
    while now < 1010.0:
        for side in (pair.client, pair.server):
            deadline = side.tick(now)
            assert deadline is not None and now < deadline <= now + 1.0
        pair.pump()
        now += 0.1
    assert not pair.client.failed and not pair.server.failed
    assert pair.take_client() == [] and pair.take_server() == []
    # The server stops ticking (a hung peer): the client gives up within its timeout.
    failed_at = None
    while failed_at is None and now < 1020.0:
        pair.client.tick(now)
        pair.pump()
        if pair.client.failed:
            failed_at = now
        now += 0.1
    assert failed_at is not None and failed_at - 1010.0 <= 1.5
    (failure,) = pair.take_client()
    assert failure == TransportFailed(
        condition="amqp:resource-limit-exceeded", description="local-idle-timeout expired"
    )


def test_no_idle_timeout_means_no_deadline() -> None:
    pair = AmqpPair()
    assert pair.client.tick(5.0) is None


def test_malformed_stream_sections_fail_only_that_link() -> None:
    pair = AmqpPair()
    pair.take_client()
    pair.take_server()
    sender = pair.client.open_sender("rogue", "tcp/x", streaming=True)
    healthy = pair.client.open_sender("healthy", "router/control")
    pair.pump()
    opened = {e.name: e.link_id for e in pair.take_server() if isinstance(e, LinkOpened)}
    pair.server.flow(opened["rogue"], 1)
    pair.pump()
    pair.take_client()
    delivery = pair.client.start_stream(sender, MessageHeader(to="tcp/x"))
    # Fault injection: an amqp-value section where a stream's body holds data sections.
    rogue = b"\x00\x53\x77\xa1\x03abc"
    lib.pn_link_send(pair.client._links.by_id[sender].ptr, rogue, len(rogue))
    pair.client.end_stream(delivery)
    pair.pump()
    events = pair.take_server()
    assert [type(e) for e in events] == [StreamStarted, StreamEnded, LinkClosed]
    assert events[1].aborted  # type: ignore[union-attr]
    assert events[2] == LinkClosed(
        link_id=opened["rogue"],
        condition="amqp:decode-error",
        description="a stream's body holds data sections only",
    )
    assert pair.take_client() == [
        LinkClosed(
            link_id=sender,
            condition="amqp:decode-error",
            description="a stream's body holds data sections only",
        )
    ]
    assert pair.server.statistics().links == 1 and not pair.server.failed
    assert healthy in pair.client._links.by_id


@pytest.mark.parametrize(
    ("head", "need"),
    [
        (b"", 4),
        (b"\x00\x53", 2),
        (b"\x00\x53\x75\xa0", 1),
        (b"\x00\x53\x75\xb0", 4),
        (b"\x00\x53\x75\xb0\x00\x00\x00\x05", 0),
        (b"\x00\x53\x70\x45", 0),
        (b"\x00\x80\x00\x00", 7),
        (b"\x00\x80\x00\x00\x00\x00\x00\x00\x00\x75\xa0", 1),
    ],
)
def test_section_head_need(head: bytes, need: int) -> None:
    assert section_head_need(head) == need


@pytest.mark.parametrize(
    "head",
    [
        b"\x01\x53\x75\xa0",  # not described
        b"\x00\xa3\x75\xa0",  # symbolic descriptor
        b"\x00\x53\x75\x55",  # smalllong body
    ],
)
def test_section_head_rejects(head: bytes) -> None:
    with pytest.raises(AmqpDecodeError):
        section_head_need(head)


def test_parse_section_head() -> None:
    assert parse_section_head(b"\x00\x53\x75\xb0\x00\x01\x00\x00") == (0x75, 65536)
    assert parse_section_head(b"\x00\x80\x00\x00\x00\x00\x00\x00\x00\x75\xa0\x07") == (0x75, 7)
    with pytest.raises(AmqpDecodeError):
        parse_section_head(b"\x00\x53\x75\xa1\x01")  # data section holding a string


@pytest.mark.parametrize(
    "head",
    [
        b"\x00\x53\x75\xb0\x00\x01\x00\x00",
        b"\x00\x80\x00\x00\x00\x00\x00\x00\x00\x75\xa0\x07",
        b"\x00\x53\x70\x45",
        b"\x00\x53\x74\xc1\x10",
    ],
)
def test_section_at_reads_what_the_head_parser_reads(head: bytes) -> None:
    """In memory, at an offset, the same (code, size) and where the body starts."""
    data = b"junk" + head + b"body"
    assert section_at(data, 4) == (*parse_section_head(head), 4 + len(head))
    for cut in range(4, 4 + len(head)):
        assert section_at(data[:cut], 4) is None  # the head is not all there yet
    with pytest.raises(AmqpDecodeError):
        section_at(b"\x00\x53\x75\xa1\x01", 0)  # a data section holding a string
    with pytest.raises(AmqpDecodeError):
        section_at(b"\x00\xa3\x75\xa0", 0)  # symbolic descriptor


_PROPERTIES = b"\x00\x53\x73\xc0\x05\x03\x40\x40\xa1\x00"  # to: ""
_DATA = b"\x00\x53\x75\xa0\x03abc"
_FOOTER = b"\x00\x53\x78\xc1\x01\x00"
_VALUE = b"\x00\x53\x77\xa1\x01x"  # an amqp-value section


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (_PROPERTIES + _DATA + _VALUE, "a stream's body holds data sections only"),
        (_PROPERTIES + _DATA + _FOOTER + _DATA, "a stream's footer must be its last section"),
        (_PROPERTIES + _VALUE + _DATA, "section 0x77 cannot start a stream's body"),
        (_PROPERTIES + b"\x00\x53\x75\xa0\x09abc", "stream ended inside a section"),
        (_PROPERTIES + _DATA + b"\x00\x53", "stream ended inside a section"),
        (_PROPERTIES + _DATA + b"\x00\x53\x78\xd1" + (5000).to_bytes(4, "big")
         + (0).to_bytes(4, "big") + bytes(4996), "stream footer is too large"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("whole", [False, True], ids=["streamed", "read-whole"])
@pytest.mark.parametrize("learned", [False, True], ids=["new-header", "header-met-before"])
def test_bad_sections_fail_the_link_alike_read_whole_or_not(
    raw: bytes, why: str, whole: bool, learned: bool
) -> None:
    """A complete small stream on a link that reads it whole (one StreamWhole) is checked
    as the section-by-section reader checks it: same condition, same words; also when
    its header is one met before (its sections are then not walked)."""
    if learned:
        header = MessageHeader(to="x", application_properties={"V": 1, "s": "id-1"})
        known = encode_stream_header(header)[: -len(HEADER_END)]
        decode_templated_header(known)  # met before
        raw = known[:-4] + b"id-2" + raw[len(_PROPERTIES) :]
    pair = AmqpPair()
    pair.take_client()
    pair.take_server()
    sender = pair.client.open_sender("rogue", "tcp/x", streaming=True)
    pair.pump()
    (opened,) = [e for e in pair.take_server() if isinstance(e, LinkOpened)]
    if whole:
        pair.server.read_whole(opened.link_id)
    pair.server.flow(opened.link_id, 1)
    pair.pump()
    pair.take_client()
    link = pair.client._links.by_id[sender]
    cproton.pn_delivery(link.ptr, b"t1")
    lib.pn_link_send(link.ptr, raw, len(raw))
    lib.pn_link_advance(link.ptr)
    pair.pump()
    closed = [e for e in pair.take_server() if isinstance(e, LinkClosed)]
    assert closed == [
        LinkClosed(link_id=opened.link_id, condition="amqp:decode-error", description=why)
    ]
    assert not pair.server.failed
