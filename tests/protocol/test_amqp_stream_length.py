"""A stream's end announces its length: the receiver can tell a whole stream from one
that lost bytes on the way (the TCP adaptor's clean-end rule, ADR 0009)."""

from __future__ import annotations

import random

from amqp_pair import AmqpPair
from test_amqp_streaming import HEADER, opened_pair, stream_link

from skupper_actors.protocol.amqp import (
    AmqpConnection,
    StreamData,
    StreamEnded,
    StreamLength,
    StreamStarted,
)
from skupper_actors.protocol.amqp._codec import decode_stream_footer, encode_stream_footer


def test_footer_round_trips_any_length() -> None:
    for length in (0, 1, 255, 1 << 32, (1 << 64) - 1):
        footer = encode_stream_footer(length)
        assert decode_stream_footer(footer[5:]) == length


def test_end_with_length_reaches_the_receiver_after_every_byte() -> None:
    pair = opened_pair()
    sender, receiver = stream_link(pair)
    delivery = pair.client.start_stream(sender, HEADER)
    payload = random.Random(7).randbytes(300_000)
    for start in range(0, len(payload), 70_000):
        pair.client.write_stream(delivery, payload[start : start + 70_000])
        pair.pump()
    pair.client.end_stream(delivery, len(payload))
    pair.pump()
    events = pair.take_server()
    started = events[0]
    assert isinstance(started, StreamStarted)
    body = b"".join(e.data for e in events if isinstance(e, StreamData))
    assert body == payload  # the footer is not body
    assert events[-2:] == [
        StreamLength(link_id=receiver, delivery_id=started.delivery_id, length=len(payload)),
        StreamEnded(link_id=receiver, delivery_id=started.delivery_id, aborted=False),
    ]


def test_end_without_length_announces_none() -> None:
    pair = opened_pair()
    sender, _ = stream_link(pair)
    delivery = pair.client.start_stream(sender, HEADER)
    pair.client.write_stream(delivery, b"abc")
    pair.client.end_stream(delivery)
    pair.pump()
    events = pair.take_server()
    assert isinstance(events[-1], StreamEnded) and not events[-1].aborted
    assert not any(isinstance(e, StreamLength) for e in events)


def test_a_section_after_the_footer_fails_the_link() -> None:
    pair: AmqpPair = opened_pair()
    sender, receiver = stream_link(pair)
    delivery = pair.client.start_stream(sender, HEADER)
    pair.client.write_stream(delivery, b"abc")
    pair.pump()
    pair.take_server()
    # a footer then more data: written by hand, as a broken peer would
    conn: AmqpConnection = pair.client
    link = conn._links.by_id[sender]
    from cproton import lib

    footer = encode_stream_footer(3)
    lib.pn_link_send(link.ptr, footer, len(footer))
    conn.write_stream(delivery, b"more")
    conn.end_stream(delivery)
    pair.pump()
    ended = [e for e in pair.take_server() if isinstance(e, StreamEnded)]
    assert ended and ended[0].link_id == receiver and ended[0].aborted


def test_a_link_closed_under_a_partial_stream_never_ends_it_whole() -> None:
    """Proton may complete a partial delivery when its link detaches; whatever it does,
    the receiver must not see a clean end announcing every byte."""
    from cproton import lib

    pair: AmqpPair = opened_pair()
    sender, receiver = stream_link(pair)
    delivery = pair.client.start_stream(sender, HEADER)
    pair.client.write_stream(delivery, b"x" * 5000)
    pair.pump()
    pair.take_server()
    link = pair.client._links.by_id[sender]
    lib.pn_link_close(link.ptr)  # behind the wrapper's back: no abort first
    pair.pump()
    events = pair.take_server()
    ended = [e for e in events if isinstance(e, StreamEnded)]
    assert ended and ended[0].link_id == receiver
    assert ended[0].aborted or not any(isinstance(e, StreamLength) for e in events)
