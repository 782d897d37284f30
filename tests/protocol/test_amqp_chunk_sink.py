"""A running stream's chunks handed to a sink from inside ``events()`` (set_chunk_sink):
the same bytes in the same order as StreamData events would carry, its end still an
event after them, and events again for the next stream on the link."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import pytest
from amqp_pair import AmqpPair, whole
from test_amqp_streaming import HEADER, opened_pair

from skupper_actors.protocol.amqp import (
    AmqpEvent,
    LinkOpened,
    StreamData,
    StreamEnded,
    StreamLength,
    StreamStarted,
)

pytestmark = pytest.mark.timeout(30)


class Recorder:
    """A sink that notes each chunk and what the receiver had reported before it."""

    def __init__(self, pair: AmqpPair) -> None:
        self.pair = pair
        self.chunks: list[bytes] = []

    def __call__(self, chunk: bytes) -> None:
        assert chunk, "a sink never gets nothing"
        self.chunks.append(chunk)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def link_with_credit(pair: AmqpPair, credit: int) -> tuple[int, int]:
    sender = pair.client.open_sender("stream-1", "tcp/backend", streaming=True)
    pair.pump()
    (opened,) = [e for e in pair.take_server() if isinstance(e, LinkOpened)]
    pair.server.flow(opened.link_id, credit)
    pair.pump()
    pair.take_client()
    return sender, opened.link_id


def started_with_sink(pair: AmqpPair, sender: int, receiver: int) -> tuple[int, Recorder]:
    """A stream started, its StreamStarted taken and a sink set for it."""
    delivery = pair.client.start_stream(sender, HEADER)
    pair.pump()
    (started,) = pair.take_server()
    assert isinstance(started, StreamStarted) and started.link_id == receiver
    sink = Recorder(pair)
    pair.server.set_chunk_sink(receiver, started.delivery_id, sink)
    return delivery, sink


def no_data(events: list[AmqpEvent]) -> list[AmqpEvent]:
    assert not [e for e in events if isinstance(e, StreamData)], "data came as events"
    return events


def test_small_chunks_go_to_the_sink_and_bulk_makes_it_events_again() -> None:
    """Small arrivals go to the sink; the first large one (read section by section)
    turns the rest of the stream back into StreamData events, after what the sink got;
    the end is an event after all of it."""
    pair = opened_pair()
    sender, receiver = link_with_credit(pair, 1)
    delivery, sink = started_with_sink(pair, sender, receiver)
    rng = random.Random(3)
    sent = bytearray()
    for size in (1, 64, 5000, 16 * 1024 - 8):
        chunk = rng.randbytes(size)
        pair.client.write_stream(delivery, chunk)
        sent += chunk
        pair.pump()
        assert no_data(pair.take_server()) == []
        assert sink.body == bytes(sent)
    to_sink = len(sent)
    for size in (200_000, 7, 3 * 1024 * 1024, 100):
        chunk = rng.randbytes(size)
        pair.client.write_stream(delivery, chunk)
        sent += chunk
    pair.client.end_stream(delivery, len(sent))
    pair.pump()
    events = pair.take_server()
    assert len(sink.body) == to_sink  # nothing more went to the sink
    data = b"".join(e.data for e in events if isinstance(e, StreamData))
    length, ended = [e for e in events if not isinstance(e, StreamData)]
    assert isinstance(length, StreamLength) and length.length == len(sent)
    assert isinstance(ended, StreamEnded) and not ended.aborted
    assert events[-2:] == [length, ended]
    whole = sink.body + data
    assert hashlib.sha256(whole).digest() == hashlib.sha256(sent).digest()


def by_three(data: bytes) -> Iterator[bytes]:
    return (data[i : i + 3] for i in range(0, len(data), 3))


def test_several_sections_in_one_arrival_and_split_reads() -> None:
    """Writes framed together arrive as one piece holding several data sections; a
    read split byte by byte leaves section heads cut in two: the sink gets it all."""
    pair = opened_pair()
    sender, receiver = link_with_credit(pair, 1)
    delivery, sink = started_with_sink(pair, sender, receiver)
    expected = b""
    for round_ in range(20):
        for part in range(round_ % 4 + 1):
            chunk = bytes([65 + part]) * (round_ * 37 + part + 1)
            pair.client.write_stream(delivery, chunk)
            expected += chunk
        pair.pump(split=by_three if round_ % 2 else whole)
        assert no_data(pair.take_server()) == []
    assert sink.body == expected


def test_abort_ends_the_sink_and_is_reported() -> None:
    pair = opened_pair()
    sender, receiver = link_with_credit(pair, 1)
    delivery, sink = started_with_sink(pair, sender, receiver)
    pair.client.write_stream(delivery, b"partial")
    pair.pump()
    pair.client.abort_stream(delivery)
    pair.pump()
    (ended,) = no_data(pair.take_server())
    assert isinstance(ended, StreamEnded) and ended.aborted
    assert sink.body == b"partial"


def test_the_next_stream_on_the_link_comes_as_events() -> None:
    """A link carries one stream after another: a sink ends with its stream."""
    pair = opened_pair()
    sender, receiver = link_with_credit(pair, 2)
    delivery, sink = started_with_sink(pair, sender, receiver)
    pair.client.write_stream(delivery, b"one")
    pair.client.end_stream(delivery)
    second = pair.client.start_stream(sender, HEADER)
    pair.client.write_stream(second, b"two")
    pair.pump()
    events = pair.take_server()
    assert sink.body == b"one"
    assert [type(e) for e in events] == [StreamEnded, StreamStarted, StreamData]
    assert events[2].data == b"two"  # type: ignore[union-attr]


def test_a_sink_for_another_or_ended_stream_is_ignored_and_clear_restores_events() -> None:
    pair = opened_pair()
    sender, receiver = link_with_credit(pair, 1)
    delivery = pair.client.start_stream(sender, HEADER)
    pair.pump()
    (started,) = pair.take_server()
    assert isinstance(started, StreamStarted)
    stray = Recorder(pair)
    pair.server.set_chunk_sink(receiver, started.delivery_id + 1000, stray)
    pair.client.write_stream(delivery, b"events")
    pair.pump()
    assert [e.data for e in pair.take_server()] == [b"events"]  # type: ignore[union-attr]
    sink = Recorder(pair)
    pair.server.set_chunk_sink(receiver, started.delivery_id, sink)
    pair.client.write_stream(delivery, b"sink")
    pair.pump()
    assert pair.take_server() == [] and sink.body == b"sink"
    pair.server.clear_chunk_sink(receiver)
    pair.client.write_stream(delivery, b"again")
    pair.client.end_stream(delivery)
    pair.pump()
    events = pair.take_server()
    assert [type(e) for e in events] == [StreamData, StreamEnded]
    late = Recorder(pair)
    pair.server.set_chunk_sink(receiver, started.delivery_id, late)  # over: ignored
    assert stray.chunks == [] and late.chunks == [] and sink.body == b"sink"
