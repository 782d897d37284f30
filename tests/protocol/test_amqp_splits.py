"""Property: however the byte stream is cut between the engines, the same things happen."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import pytest
from amqp_pair import AmqpPair, Splitter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skupper_actors.protocol.amqp import (
    AmqpEvent,
    AmqpMessage,
    LinkOpened,
    MessageHeader,
    StreamData,
)

Normalised = tuple[list[object], dict[int, list[object]]]


def splitter(sizes: list[int]) -> Splitter:
    cycle = itertools.cycle(sizes)

    def split(data: bytes) -> Iterator[bytes]:
        start = 0
        while start < len(data):
            size = next(cycle)
            yield data[start : start + size]
            start += size

    return split


def normalise(events: list[AmqpEvent]) -> Normalised:
    """Connection events in order; per link, its events with adjacent StreamData joined.

    Delivery ids are dropped: they count arrivals across links, whose interleaving
    depends on where the bytes were cut.
    """
    connection: list[object] = []
    links: dict[int, list[object]] = {}
    for event in events:
        link_id = getattr(event, "link_id", None)
        if link_id is None:
            connection.append(event)
            continue
        seen = links.setdefault(link_id, [])
        if isinstance(event, StreamData):
            if seen and isinstance(seen[-1], bytes):
                seen[-1] += event.data
            else:
                seen.append(event.data)
        elif hasattr(event, "delivery_id"):
            fields = {k: getattr(event, k) for k in event.__slots__ if k != "delivery_id"}
            seen.append((type(event).__name__, fields))
        else:
            seen.append(event)
    return connection, links


def run_scenario(seed: int, split: Splitter) -> tuple[Normalised, Normalised]:
    """Links both ways, control messages, interleaved streams, an abort and a close."""
    rng = random.Random(seed)
    pair = AmqpPair(
        open_now=False,
        max_frame_size=2048,
        session_capacity=8192,
        client={"properties": {"site": "a"}},
        server={"properties": {"site": "b"}},
    )
    pair.client.open()
    pair.server.open()
    pair.pump(split)
    control = pair.client.open_sender("control", "router/control")
    reverse = pair.server.open_sender("reverse", "router/reverse")
    streams = [pair.client.open_sender(f"s{i}", f"tcp/{i}", streaming=True) for i in range(3)]
    pair.pump(split)
    for event in pair.server_events:
        if isinstance(event, LinkOpened) and event.remote_initiated:
            pair.server.flow(event.link_id, 5)
    for event in pair.client_events:
        if isinstance(event, LinkOpened) and event.remote_initiated:
            pair.client.flow(event.link_id, 5)
    pair.pump(split)
    for index in range(3):
        pair.client.send_message(control, AmqpMessage(subject="hello", body={"n": index}))
        pair.server.send_message(reverse, AmqpMessage(body=rng.randbytes(rng.randrange(3000))))
    deliveries = [
        pair.client.start_stream(
            link, MessageHeader(to=f"tcp/{i}", application_properties={"i": i})
        )
        for i, link in enumerate(streams)
    ]
    for _ in range(12):
        which = rng.randrange(len(deliveries))
        pair.client.write_stream(deliveries[which], rng.randbytes(rng.randrange(1, 3000)))
        if rng.random() < 0.4:
            pair.pump(split)
    pair.client.end_stream(deliveries[0])
    pair.client.abort_stream(deliveries[1])
    pair.pump(split)
    pair.client.close_link(streams[2])  # mid-stream: the receiver sees an abort
    pair.pump(split)
    pair.client.close()
    pair.pump(split)
    assert pair.client.closed and pair.server.closed
    return normalise(pair.take_client()), normalise(pair.take_server())


@pytest.mark.timeout(120)
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 3),
    sizes=st.lists(
        st.one_of(st.integers(1, 16), st.integers(17, 5000)), min_size=1, max_size=12
    ),
)
def test_random_split_points_give_the_same_events_and_data(seed: int, sizes: list[int]) -> None:
    expected = REFERENCE.get(seed)
    if expected is None:
        expected = REFERENCE[seed] = run_scenario(seed, lambda data: iter([data]))
    assert run_scenario(seed, splitter(sizes)) == expected


REFERENCE: dict[int, tuple[Normalised, Normalised]] = {}


def test_the_scenario_covers_what_it_claims() -> None:
    (client_connection, client_links), (server_connection, server_links) = run_scenario(
        1, lambda data: iter([data])
    )
    kinds = [type(e).__name__ for e in server_connection]
    assert kinds == ["ConnectionOpened", "ConnectionClosed"]
    flat = [item for events in server_links.values() for item in events]
    names = [item[0] for item in flat if isinstance(item, tuple)]
    assert names.count("StreamStarted") == 3
    # Link 1 is the server's own sender; s0, s1, s2 arrive as links 3, 4, 5.
    assert ("StreamEnded", {"link_id": 3, "aborted": False}) in flat
    assert ("StreamEnded", {"link_id": 4, "aborted": True}) in flat  # aborted
    assert ("StreamEnded", {"link_id": 5, "aborted": True}) in flat  # link closed mid-stream
    assert any(type(item).__name__ == "MessageReceived" for item in flat)
    assert any(isinstance(item, bytes) for item in flat)
    assert client_connection and client_links
