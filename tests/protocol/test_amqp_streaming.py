"""Streaming deliveries: sizes, concurrency, abort, and ends caused by links or the connection."""

from __future__ import annotations

import hashlib
import random

import pytest
from amqp_pair import AmqpPair, whole

from skupper_actors.protocol.amqp import (
    AmqpEvent,
    LinkClosed,
    LinkOpened,
    MessageHeader,
    StreamData,
    StreamEnded,
    StreamLength,
    StreamStarted,
    StreamWhole,
    TransportFailed,
)
from skupper_actors.protocol.amqp._headers import encode_stream_header
from skupper_actors.protocol.amqp._receive import READ_AHEAD

pytestmark = pytest.mark.timeout(30)
HEADER = MessageHeader(
    to="tcp/backend:8080",
    reply_to="reply/42",
    subject="tcp",
    application_properties={"V": 1, "flow": "f-1"},
)


def stream_link(pair: AmqpPair, name: str = "stream-1") -> tuple[int, int]:
    """A client->server streaming link with one credit; returns (sender id, receiver id)."""
    sender = pair.client.open_sender(name, "tcp/backend", streaming=True)
    pair.pump()
    attached = [e for e in pair.take_server() if isinstance(e, LinkOpened)]
    assert len(attached) == 1 and attached[0].streaming
    pair.server.flow(attached[0].link_id, 1)
    pair.pump()
    pair.take_client()
    return sender, attached[0].link_id


def opened_pair(**options: object) -> AmqpPair:
    pair = AmqpPair(**options)
    pair.take_client()
    pair.take_server()
    return pair


def collect(events: list[AmqpEvent]) -> dict[int, tuple[list[AmqpEvent], bytes]]:
    """Per delivery: the non-data events in order, and the body bytes joined."""
    streams: dict[int, tuple[list[AmqpEvent], bytearray]] = {}
    for event in events:
        if isinstance(event, StreamStarted | StreamData | StreamEnded):
            marks, body = streams.setdefault(event.delivery_id, ([], bytearray()))
            if isinstance(event, StreamData):
                assert event.data, "StreamData never carries nothing"
                assert not marks or not isinstance(marks[-1], StreamEnded)
                body += event.data
            else:
                marks.append(event)
    return {key: (marks, bytes(body)) for key, (marks, body) in streams.items()}


def send_stream(pair: AmqpPair, sender: int, payload: bytes, write_size: int) -> int:
    """Write ``payload`` in chunks, pumping whenever the backlog passes two frames."""
    delivery = pair.client.start_stream(sender, HEADER)
    limit = 2 * (1 << 20)
    for start in range(0, len(payload), write_size):
        pair.client.write_stream(delivery, payload[start : start + write_size])
        if pair.client.stream_backlog(delivery) > limit:
            pair.pump()
            assert pair.client.stream_backlog(delivery) <= limit
    pair.client.end_stream(delivery)
    pair.pump()
    return delivery


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 10 * 1024 * 1024])
def test_stream_sizes_arrive_whole(size: int) -> None:
    payload = random.Random(size).randbytes(size)
    pair = opened_pair()
    sender, receiver = stream_link(pair)
    send_stream(pair, sender, payload, write_size=256 * 1024)
    ((marks, body),) = collect(pair.take_server()).values()
    started, ended = marks
    assert isinstance(started, StreamStarted)
    assert started.link_id == receiver and started.header == HEADER
    assert ended == StreamEnded(link_id=receiver, delivery_id=started.delivery_id, aborted=False)
    assert len(body) == size
    assert hashlib.sha256(body).digest() == hashlib.sha256(payload).digest()
    assert pair.client.statistics().streams_out == 0
    assert pair.server.statistics().streams_in == 0


def test_receiver_gets_data_as_it_arrives_not_whole_messages() -> None:
    pair = opened_pair()
    sender, receiver = stream_link(pair)
    delivery = pair.client.start_stream(sender, HEADER)
    pair.pump()
    (started,) = pair.take_server()
    assert isinstance(started, StreamStarted)  # reported before any body byte
    for chunk in (b"first", b"second" * 1000, b"third"):
        pair.client.write_stream(delivery, chunk)
        pair.pump()
        assert b"".join(e.data for e in pair.take_server() if isinstance(e, StreamData)) == chunk
    pair.client.end_stream(delivery)
    pair.pump()
    assert pair.take_server() == [
        StreamEnded(link_id=receiver, delivery_id=started.delivery_id, aborted=False)
    ]


def test_stream_data_is_bounded_by_one_frame() -> None:
    pair = opened_pair(max_frame_size=16384, session_capacity=65536)
    sender, _ = stream_link(pair)
    delivery = pair.client.start_stream(sender, HEADER)
    pair.client.write_stream(delivery, b"y" * 200_000)
    pair.client.end_stream(delivery)
    pair.pump()
    sizes = [len(e.data) for e in pair.take_server() if isinstance(e, StreamData)]
    assert sum(sizes) == 200_000
    assert max(sizes) <= 16384


def test_small_transfers_cost_no_session_flow_frames() -> None:
    """An echo's small chunks: a hundred transfers and the receiver writes nothing back
    (the session window counts frames; at 8 a flow frame followed every few)."""
    pair = opened_pair()
    sender, _ = stream_link(pair)
    delivery = pair.client.start_stream(sender, HEADER)
    pair.pump()
    pair.take_server()
    for _ in range(100):
        pair.client.write_stream(delivery, b"x" * 64)
        pair.server.receive_data(pair.client.data_to_send())
        assert [e for e in pair.server.events() if not isinstance(e, StreamData)] == []
        assert pair.server.data_to_send() == b""


def test_interleaved_streams_on_one_connection() -> None:
    pair = opened_pair()
    links = [stream_link(pair, f"stream-{i}") for i in range(5)]
    rng = random.Random(7)
    payloads = [rng.randbytes(rng.randrange(1, 300_000)) for _ in links]
    deliveries = [pair.client.start_stream(sender, HEADER) for sender, _ in links]
    offsets = [0] * len(links)
    while any(offset < len(p) for offset, p in zip(offsets, payloads, strict=True)):
        index = rng.randrange(len(links))
        chunk = payloads[index][offsets[index] : offsets[index] + rng.randrange(1, 40_000)]
        pair.client.write_stream(deliveries[index], chunk)
        offsets[index] += len(chunk)
        if rng.random() < 0.3:
            pair.pump()
    for delivery in deliveries:
        pair.client.end_stream(delivery)
    pair.pump()
    streams = collect(pair.take_server())
    assert len(streams) == len(links)
    by_link = {marks[0].link_id: body for marks, body in streams.values()}
    for (_, receiver), payload in zip(links, payloads, strict=True):
        assert by_link[receiver] == payload
    for marks, _ in streams.values():
        assert isinstance(marks[-1], StreamEnded) and not marks[-1].aborted


def test_streams_flow_both_ways_at_once() -> None:
    pair = opened_pair()
    forward, forward_receiver = stream_link(pair, "forward")
    backward_receiver = pair.client.open_receiver("backward", "reply/42", credit=1, streaming=True)
    pair.pump()
    (backward,) = [e.link_id for e in pair.take_server() if isinstance(e, LinkOpened)]
    pair.take_client()
    up = pair.client.start_stream(forward, HEADER)
    down = pair.server.start_stream(backward, MessageHeader(to="reply/42"))
    for index in range(50):
        pair.client.write_stream(up, b"u%d," % index)
        pair.server.write_stream(down, b"d%d," % index)
        pair.pump()
    pair.client.end_stream(up)
    pair.server.end_stream(down)
    pair.pump()
    ((_, to_server),) = collect(pair.take_server()).values()
    ((_, to_client),) = collect(pair.take_client()).values()
    assert to_server == b"".join(b"u%d," % i for i in range(50))
    assert to_client == b"".join(b"d%d," % i for i in range(50))
    assert backward_receiver and forward_receiver


def test_abort_mid_stream_is_seen_as_aborted() -> None:
    pair = opened_pair()
    sender, receiver = stream_link(pair)
    delivery = pair.client.start_stream(sender, HEADER)
    pair.client.write_stream(delivery, b"partial" * 1000)
    pair.pump()
    pair.client.abort_stream(delivery)
    pair.client.write_stream(delivery, b"ignored after abort")
    pair.pump()
    ((marks, body),) = collect(pair.take_server()).values()
    assert body == b"partial" * 1000
    started = marks[0]
    assert isinstance(started, StreamStarted)
    assert marks[-1] == StreamEnded(
        link_id=receiver, delivery_id=started.delivery_id, aborted=True
    )
    # The link carries the next stream normally.
    pair.server.flow(receiver, 1)
    pair.pump()
    send_stream(pair, sender, b"next", write_size=1024)
    ((marks, body),) = collect(pair.take_server()).values()
    assert body == b"next" and marks[-1].aborted is False  # type: ignore[union-attr]


def test_sender_closing_the_link_mid_stream_aborts_it() -> None:
    pair = opened_pair()
    sender, receiver = stream_link(pair)
    delivery = pair.client.start_stream(sender, HEADER)
    pair.client.write_stream(delivery, b"abc")
    pair.pump()
    pair.take_server()
    pair.client.close_link(sender)
    pair.pump()
    ended, closed = pair.take_server()
    assert isinstance(ended, StreamEnded) and ended.link_id == receiver and ended.aborted
    assert closed == LinkClosed(link_id=receiver)
    assert pair.client.stream_backlog(delivery) == 0
    assert pair.take_client() == []


def test_transport_failure_aborts_open_streams_and_ends_links() -> None:
    pair = opened_pair()
    sender, receiver = stream_link(pair)
    delivery = pair.client.start_stream(sender, HEADER)
    pair.client.write_stream(delivery, b"abc")
    pair.pump()
    pair.take_server()
    pair.server.receive_data(b"")  # EOF without a close frame
    ended, closed, failed = pair.take_server() + pair.server.events()
    assert isinstance(ended, StreamEnded) and ended.aborted
    assert isinstance(failed, TransportFailed)
    assert failed.condition == "amqp:connection:framing-error"
    assert closed == LinkClosed(
        link_id=receiver, condition=failed.condition, description=failed.description
    )
    assert pair.server.failed


def test_receiver_closing_after_end_of_stream_frees_both_ends() -> None:
    pair = opened_pair()
    for round_ in range(3):
        sender, receiver = stream_link(pair, f"stream-{round_}")
        send_stream(pair, sender, b"payload", write_size=4)
        ((_, body),) = collect(pair.take_server()).values()
        assert body == b"payload"
        pair.server.close_link(receiver)
        pair.pump()
        assert pair.take_client() == [LinkClosed(link_id=sender)]
    for side in (pair.client, pair.server):
        statistics = side.statistics()
        assert statistics.links == statistics.streams_in == statistics.streams_out == 0


def test_abort_before_any_credit_sends_nothing_and_frees_the_link_for_the_next() -> None:
    pair = opened_pair()
    sender = pair.client.open_sender("s", "tcp/backend", streaming=True)
    pair.pump()
    (receiver,) = [e.link_id for e in pair.take_server() if isinstance(e, LinkOpened)]
    pair.take_client()
    delivery = pair.client.start_stream(sender, HEADER)
    pair.client.write_stream(delivery, b"never seen")
    assert pair.client.stream_backlog(delivery) > len(b"never seen")  # held: no credit
    pair.client.abort_stream(delivery)
    assert pair.client.stream_backlog(delivery) == 0
    pair.pump()
    assert pair.take_server() == []
    pair.server.flow(receiver, 1)
    pair.pump()
    send_stream(pair, sender, b"second", write_size=3)
    ((marks, body),) = collect(pair.take_server()).values()
    assert body == b"second"
    assert isinstance(marks[-1], StreamEnded) and not marks[-1].aborted


def test_stream_waits_for_credit_then_flows() -> None:
    pair = opened_pair()
    sender = pair.client.open_sender("s", "tcp/backend", streaming=True)
    pair.pump()
    (receiver,) = [e.link_id for e in pair.take_server() if isinstance(e, LinkOpened)]
    delivery = pair.client.start_stream(sender, HEADER)
    pair.client.write_stream(delivery, b"held")
    pair.client.end_stream(delivery)
    pair.pump()
    assert collect(pair.take_server()) == {}
    pair.server.flow(receiver, 1)
    pair.pump()
    ((marks, body),) = collect(pair.take_server()).values()
    assert body == b"held" and len(marks) == 2


@pytest.mark.parametrize("at_once", [False, True], ids=["frame-by-frame", "all-at-once"])
def test_sections_cut_across_transfers_read_the_same_small_or_large(at_once: bool) -> None:
    """Small arrivals are read whole and parsed in memory, large ones head by head.

    512-byte frames cut section heads and bodies anywhere; handed over one byte at a
    time the receiver sees each transfer alone (the in-memory path, heads left over
    between arrivals), handed over whole it sees ~40 KiB at once (the exact path).
    """
    pair = opened_pair(max_frame_size=512)
    sender, receiver = stream_link(pair)
    rng = random.Random(5)
    writes = [b"", b"x", rng.randbytes(3), rng.randbytes(20_000), b"", rng.randbytes(5)]
    writes += [rng.randbytes(rng.randrange(1, 700)) for _ in range(40)]
    delivery = pair.client.start_stream(sender, HEADER)
    for chunk in writes:
        pair.client.write_stream(delivery, chunk)
    pair.client.end_stream(delivery)
    pair.pump(whole if at_once else (lambda data: (data[i : i + 1] for i in range(len(data)))))
    ((marks, body),) = collect(pair.take_server()).values()
    started, ended = marks
    assert isinstance(started, StreamStarted) and started.header == HEADER
    assert ended == StreamEnded(link_id=receiver, delivery_id=started.delivery_id, aborted=False)
    assert body == b"".join(writes)


def read_whole_link(credit: int) -> tuple[AmqpPair, int, int]:
    """A streaming link whose receiver reads small streams whole, ``credit`` granted."""
    pair = opened_pair()
    sender, receiver = stream_link(pair)
    pair.server.read_whole(receiver)
    pair.server.flow(receiver, credit)
    pair.pump()
    pair.take_client()
    return pair, sender, receiver


def test_read_whole_link_reports_a_complete_small_stream_as_one_event() -> None:
    pair, sender, receiver = read_whole_link(3)
    # complete in one arrival: one event with the header, the body joined, its length
    delivery = pair.client.start_stream(sender, HEADER)
    for chunk in (b"ab", b"", b"cd" * 100):
        pair.client.write_stream(delivery, chunk)
    pair.client.end_stream(delivery, 202)
    pair.pump()
    (whole,) = pair.take_server()
    assert whole == StreamWhole(
        link_id=receiver, delivery_id=whole.delivery_id, header=HEADER, body=b"ab" + b"cd" * 100,
        length=202,
    )  # fmt: skip
    # no body at all
    pair.client.end_stream(pair.client.start_stream(sender, HEADER))
    pair.pump()
    (empty,) = pair.take_server()
    assert isinstance(empty, StreamWhole) and empty.body == b"" and empty.length is None
    # begun before its end arrived: the usual events, as it arrives
    delivery = pair.client.start_stream(sender, HEADER)
    pair.pump()
    (started,) = pair.take_server()
    assert isinstance(started, StreamStarted)
    pair.client.write_stream(delivery, b"late")
    pair.client.end_stream(delivery, 4)
    pair.pump()
    assert [type(e) for e in pair.take_server()] == [StreamData, StreamLength, StreamEnded]


def test_read_whole_link_streams_what_is_too_large_to_read_at_once() -> None:
    pair = opened_pair()
    sender, receiver = stream_link(pair)
    pair.server.read_whole(receiver)
    payload = random.Random(3).randbytes(READ_AHEAD + 1)
    send_stream(pair, sender, payload, write_size=len(payload))
    events = pair.take_server()
    assert not any(isinstance(e, StreamWhole) for e in events)
    ((marks, body),) = collect(events).values()
    assert body == payload and isinstance(marks[0], StreamStarted)


def test_send_stream_is_a_whole_stream_in_one_call() -> None:
    """``send_stream`` (header bytes and body at once) arrives as the same stream as
    start, write and end would send, and leaves the link free for the next one."""
    pair, sender, receiver = read_whole_link(3)
    head = encode_stream_header(HEADER)
    assert pair.client.send_stream(sender, head, b"body" * 50)
    assert pair.client.send_stream(sender, head, b"")
    pair.pump()
    first, second = pair.take_server()
    assert first == StreamWhole(
        link_id=receiver, delivery_id=first.delivery_id, header=HEADER, body=b"body" * 50,
        length=None,
    )  # fmt: skip
    assert isinstance(second, StreamWhole) and second.body == b""
    # the same link then carries a stream written piece by piece
    delivery = pair.client.start_stream(sender, HEADER)
    pair.client.write_stream(delivery, b"more")
    pair.client.end_stream(delivery)
    pair.pump()
    (third,) = pair.take_server()
    assert isinstance(third, StreamWhole) and third.body == b"more"
    # a link that has ended sends nothing
    assert not pair.client.send_stream(12345, head, b"x")


def test_whole_streams_with_a_header_met_before_read_the_same() -> None:
    """Message streams of one shape (only the stream id and the reply address made from
    it differ) read alike whether their header is decoded or recognised, even with the
    data section's marker inside the address."""
    pair, sender, _ = read_whole_link(10)
    ids = ["s-1", "s-2", "s-33", "s-4", "s-é"]
    for stream_id in ids:
        header = MessageHeader(
            to="odd\x00Su/address",
            reply_to=f"_reply/{stream_id}",
            application_properties={"V": 1, "x-skupper-stream": stream_id},
        )
        assert pair.client.send_stream(
            sender, encode_stream_header(header), stream_id.encode() * 3
        )
    pair.pump()
    events = pair.take_server()
    assert [(e.header.application_properties["x-skupper-stream"], e.body) for e in events] == [
        (stream_id, stream_id.encode() * 3) for stream_id in ids
    ]
    assert all(e.header.to == "odd\x00Su/address" for e in events)
