"""Closed links and whole connections are freed: nothing piles up in proton or in our maps."""

from __future__ import annotations

import gc
import weakref

import pytest
from amqp_pair import AmqpPair

from skupper_actors.protocol.amqp import (
    AmqpConnection,
    AmqpMessage,
    LinkClosed,
    LinkOpened,
    MessageHeader,
    MessageReceived,
    StreamData,
    StreamEnded,
    TransportFailed,
)

pytestmark = pytest.mark.timeout(60)


def test_many_stream_link_cycles_leave_nothing_behind() -> None:
    pair = AmqpPair()
    pair.take_client()
    pair.take_server()
    control = pair.client.open_sender("control", "router/control")
    pair.pump()
    pair.take_client()
    pair.take_server()
    for cycle in range(2000):
        sender = pair.client.open_sender(f"stream-{cycle}", "tcp/svc", streaming=True)
        pair.pump()
        (opened,) = pair.take_server()
        assert isinstance(opened, LinkOpened)
        pair.server.flow(opened.link_id, 1)
        pair.pump()
        delivery = pair.client.start_stream(sender, MessageHeader(to="tcp/svc"))
        pair.client.write_stream(delivery, b"x" * 100)
        pair.client.end_stream(delivery)
        pair.pump()
        assert isinstance(pair.take_server()[-1], StreamEnded)
        # The receiving side closes after end of message.
        pair.server.close_link(opened.link_id)
        pair.pump()
        assert [e for e in pair.take_client() if isinstance(e, LinkClosed)] == [
            LinkClosed(link_id=sender)
        ]
        if cycle % 500 == 0:
            for side in (pair.client, pair.server):
                assert side.statistics().engine_links <= 2
    for side in (pair.client, pair.server):
        statistics = side.statistics()
        assert statistics.links == 1  # the control link
        assert statistics.engine_links == 1
        assert statistics.streams_in == statistics.streams_out == 0
    assert control


def test_both_sides_closing_a_link_at_once_frees_it_quietly() -> None:
    pair = AmqpPair()
    sender = pair.client.open_sender("control", "router/control")
    pair.pump()
    (receiver,) = [e.link_id for e in pair.take_server() if isinstance(e, LinkOpened)]
    pair.take_client()
    pair.client.close_link(sender)
    pair.server.close_link(receiver)
    pair.pump()
    assert pair.take_client() == [] and pair.take_server() == []
    assert pair.client.statistics().engine_links == 0
    assert pair.server.statistics().engine_links == 0


def test_closing_a_receiving_link_mid_stream_stops_its_events() -> None:
    pair = AmqpPair()
    sender = pair.client.open_sender("s", "tcp/svc", streaming=True)
    pair.pump()
    (receiver,) = [e.link_id for e in pair.take_server() if isinstance(e, LinkOpened)]
    pair.server.flow(receiver, 1)
    pair.pump()
    delivery = pair.client.start_stream(sender, MessageHeader(to="tcp/svc"))
    pair.client.write_stream(delivery, b"one")
    pair.pump()
    pair.take_server()
    pair.server.close_link(receiver)
    pair.client.write_stream(delivery, b"two")  # crosses the detach on the wire
    pair.pump()
    assert [e for e in pair.take_server() if isinstance(e, StreamData)] == []
    assert pair.client.statistics().links == 0


def cross_detaches(pair: AmqpPair, rounds: int) -> None:
    """Streams whose receiver detaches while 128 KiB more are on their way to it."""
    chunk = b"x" * (16 * 1024)
    for round_ in range(rounds):
        sender = pair.client.open_sender(f"s{round_}", "tcp/svc", streaming=True)
        pair.pump()
        (receiver,) = [e.link_id for e in pair.take_server() if isinstance(e, LinkOpened)]
        pair.server.flow(receiver, 1)
        pair.pump()
        delivery = pair.client.start_stream(sender, MessageHeader(to="tcp/svc"))
        pair.client.write_stream(delivery, chunk)
        pair.pump()
        pair.take_server()
        pair.server.close_link(receiver, "skupper:connection-failed", "socket failed")
        for _ in range(8):  # 128 KiB sent before the detach reaches the sender
            pair.client.write_stream(delivery, chunk)
        pair.pump()
        pair.take_client()
        pair.take_server()


def test_bytes_that_cross_a_receivers_detach_do_not_close_the_session_window() -> None:
    # What the sender sent before it saw the detach arrives on a link closed here. It
    # used up the session's window as the sender counts it; unless this side says the
    # window is open again, a message link (the routers' hellos) can never send again.
    pair = AmqpPair(max_frame_size=16 * 1024, session_capacity=64 * 1024)
    control = pair.client.open_sender("control", "control")
    pair.pump()
    (control_in,) = [e.link_id for e in pair.take_server() if isinstance(e, LinkOpened)]
    pair.server.flow(control_in, 100)
    pair.pump()
    cross_detaches(pair, rounds=3)
    for number in range(3):
        pair.client.send_message(control, AmqpMessage(to="control", body={"hello": number}))
    pair.pump()
    got = [e for e in pair.take_server() if isinstance(e, MessageReceived)]
    assert [m.message.body for m in got] == [{"hello": n} for n in range(3)]


def test_dropped_connections_are_released() -> None:
    refs = []
    for _ in range(200):
        pair = AmqpPair()
        sender = pair.client.open_sender("control", "router/control")
        pair.pump()
        pair.client.send_message(sender, AmqpMessage(body={"a": 1}))
        refs.append(weakref.ref(pair.client))
        del pair
    gc.collect()
    assert all(ref() is None for ref in refs)


def test_an_unopened_connection_can_be_dropped() -> None:
    connection = AmqpConnection("never-opened", server=True)
    ref = weakref.ref(connection)
    del connection
    gc.collect()
    assert ref() is None


def test_a_link_closed_before_the_peer_answered_its_attach_stays_closed() -> None:
    # The sender gives up at once (its server reset): attach and detach leave together,
    # the peer's attach answer arrives after the close. It must not come back as a new
    # link "opened by the peer" (which a router takes for a protocol violation).
    pair = AmqpPair()
    pair.take_client()
    pair.take_server()
    for cycle in range(50):
        sender = pair.client.open_sender(f"r/stream-{cycle}", "reply/addr", streaming=True)
        server_side = pair.client.data_to_send()  # the attach, held back
        pair.client.close_link(sender)  # closed before any answer
        pair.server.receive_data(server_side)
        (opened,) = pair.server.events()
        assert isinstance(opened, LinkOpened) and opened.remote_initiated
        pair.server.flow(opened.link_id, 1)
        pair.pump()  # the server's attach answer reaches a client that already closed
        client_events = pair.take_client()
        assert not [e for e in client_events if isinstance(e, LinkOpened)], client_events
        assert [e for e in pair.take_server() if isinstance(e, LinkClosed)] == [
            LinkClosed(link_id=opened.link_id)
        ]
    for side in (pair.client, pair.server):
        assert side.statistics().links == 0
        assert side.statistics().engine_links == 0


def test_bytes_that_cross_a_detach_on_a_stream_session_do_not_stall_its_other_links() -> None:
    # The same crossing as above, on a session that carries streaming links only: the
    # flow frame that reopens the window must be on that session, through one of its
    # own receiving links (here a long-lived one, like a pooled message link).
    pair = AmqpPair(max_frame_size=16 * 1024, session_capacity=64 * 1024, stream_sessions=1)
    keep = pair.client.open_sender("keep", "m/keep", streaming=True)
    pair.pump()
    (keep_in,) = [e.link_id for e in pair.take_server() if isinstance(e, LinkOpened)]
    pair.server.flow(keep_in, 10)
    pair.pump()
    cross_detaches(pair, rounds=3)
    chunk = b"x" * (16 * 1024)
    delivery = pair.client.start_stream(keep, MessageHeader(to="m/keep"))
    for _ in range(8):
        pair.client.write_stream(delivery, chunk)
    pair.client.end_stream(delivery)
    pair.pump()
    events = pair.take_server()
    got = sum(len(e.data) for e in events if isinstance(e, StreamData) and e.link_id == keep_in)
    assert got == 8 * len(chunk)
    assert any(isinstance(e, StreamEnded) and not e.aborted for e in events)


def test_streaming_links_take_turns_over_the_stream_sessions() -> None:
    pair = AmqpPair(stream_sessions=4)
    message = pair.client.open_sender("control", "router/control")
    streams = [pair.client.open_sender(f"s{n}", "tcp/svc", streaming=True) for n in range(10)]
    pair.pump()
    opened = [e.link_id for e in pair.take_server() if isinstance(e, LinkOpened)]
    assert len(opened) == 11
    for link_id in opened:
        pair.server.flow(link_id, 1)
    pair.pump()
    # each side's own session and its answer to the other's, plus the client's four
    assert pair.client.statistics().sessions == 2 + 4
    assert pair.server.statistics().sessions == 2 + 4
    for n, sender in enumerate(streams):
        delivery = pair.client.start_stream(sender, MessageHeader(to="tcp/svc"))
        pair.client.write_stream(delivery, bytes([n]) * 1000)
        pair.client.end_stream(delivery)
    pair.client.send_message(message, AmqpMessage(to="router/control", body={"n": 1}))
    pair.pump()
    events = pair.take_server()
    assert sum(len(e.data) for e in events if isinstance(e, StreamData)) == 10 * 1000
    assert sum(isinstance(e, StreamEnded) for e in events) == 10
    assert [m.message.body for m in events if isinstance(m, MessageReceived)] == [{"n": 1}]


def test_a_peer_that_begins_too_many_sessions_is_closed() -> None:
    # proton's own engine as the peer: 70 sessions, past the 64 channels a node allows
    from proton import Connection, Transport

    server = AmqpConnection("server", server=True)
    server.open()
    peer = Connection()
    transport = Transport()
    transport.bind(peer)
    peer.open()
    for _ in range(70):
        peer.session().open()
    failed = []
    for _ in range(50):
        data = transport.peek(1 << 20) or b""
        if data:
            transport.pop(len(data))
            server.receive_data(data)
        failed += [e for e in server.events() if isinstance(e, TransportFailed)]
        reply = server.data_to_send()
        if reply:
            transport.push(reply)
        if failed or not data:
            break
    assert failed, "a peer past channel-max must fail the connection"
    assert "channel" in failed[0].reason
