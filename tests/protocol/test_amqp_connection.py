"""AmqpConnection: open/close, properties, links both ways, credit, complete messages."""

from __future__ import annotations

import pytest
from amqp_pair import AmqpPair
from cproton import lib

from skupper_actors.protocol.amqp import (
    AmqpConnection,
    AmqpMessage,
    AmqpUsageError,
    ConnectionClosed,
    ConnectionOpened,
    CreditAvailable,
    LinkClosed,
    LinkOpened,
    LinkRole,
    MessageHeader,
    MessageReceived,
)

pytestmark = pytest.mark.timeout(10)


def opened_pair(**options: object) -> AmqpPair:
    pair = AmqpPair(**options)
    pair.take_client()
    pair.take_server()
    return pair


def message_link(pair: AmqpPair, credit: int = 10) -> tuple[int, int]:
    """A client->server message link with credit; returns (sender id, receiver id)."""
    sender = pair.client.open_sender("control", "router/control")
    pair.pump()
    (attached,) = pair.take_server()
    assert isinstance(attached, LinkOpened)
    pair.server.flow(attached.link_id, credit)
    pair.pump()
    pair.take_client()
    return sender, attached.link_id


def test_open_exchanges_container_ids_and_properties() -> None:
    pair = AmqpPair(
        client={"properties": {"site-id": "site-a", "version": 3}},
        server={"properties": {"site-id": "site-b"}},
    )
    assert pair.take_client() == [
        ConnectionOpened(remote_container_id="server", remote_properties={"site-id": "site-b"})
    ]
    assert pair.take_server() == [
        ConnectionOpened(
            remote_container_id="client", remote_properties={"site-id": "site-a", "version": 3}
        )
    ]
    assert not pair.client.closed and not pair.client.failed


def test_nothing_is_sent_before_open() -> None:
    connection = AmqpConnection("idle", server=False)
    assert connection.data_to_send() == b"AMQP\x00\x01\x00\x00"
    assert not connection.has_data_to_send
    connection.open()
    assert connection.has_data_to_send


def test_clean_close_from_either_side() -> None:
    for closer, other in (("client", "server"), ("server", "client")):
        pair = opened_pair()
        getattr(pair, closer).close()
        pair.pump()
        assert pair.take_client() == [ConnectionClosed()]
        assert pair.take_server() == [ConnectionClosed()]
        for side in (closer, other):
            connection: AmqpConnection = getattr(pair, side)
            assert connection.closed
            assert not connection.failed
            assert connection.data_to_send() == b""


def test_close_with_error_condition_marks_the_peer_failed() -> None:
    pair = opened_pair()
    pair.client.close("amqp:unauthorized-access", "not one of ours")
    pair.pump()
    assert pair.take_server() == [
        ConnectionClosed(condition="amqp:unauthorized-access", description="not one of ours")
    ]
    assert pair.server.failed
    assert not pair.client.failed
    assert pair.client.closed and pair.server.closed


def test_sender_attach_is_answered_and_reported_on_both_sides() -> None:
    pair = opened_pair()
    sender = pair.client.open_sender("control", "router/control")
    pair.pump()
    (remote,) = pair.take_server()
    assert remote == LinkOpened(
        link_id=remote.link_id,
        name="control",
        role=LinkRole.RECEIVER,
        address="router/control",
        streaming=False,
        remote_initiated=True,
    )
    assert pair.take_client() == [
        LinkOpened(
            link_id=sender,
            name="control",
            role=LinkRole.SENDER,
            address="router/control",
            streaming=False,
            remote_initiated=False,
        )
    ]


def test_receiver_attach_with_credit_gives_the_peer_a_sender() -> None:
    pair = opened_pair()
    receiver = pair.server.open_receiver("updates", "router/updates", credit=5, streaming=True)
    pair.pump()
    opened, credit = pair.take_client()
    assert isinstance(opened, LinkOpened)
    assert opened.role is LinkRole.SENDER
    assert opened.address == "router/updates"
    assert opened.streaming and opened.remote_initiated
    assert credit == CreditAvailable(link_id=opened.link_id, credit=5)
    assert pair.client.credit(opened.link_id) == 5
    (answer,) = pair.take_server()
    assert answer == LinkOpened(
        link_id=receiver,
        name="updates",
        role=LinkRole.RECEIVER,
        address="router/updates",
        streaming=True,
        remote_initiated=False,
    )


def test_credit_is_reported_as_it_grows_and_used_by_sends() -> None:
    pair = opened_pair()
    sender, receiver = message_link(pair, credit=2)
    assert pair.client.credit(sender) == 2
    pair.client.send_message(sender, AmqpMessage(body="one"))
    pair.client.send_message(sender, AmqpMessage(body="two"))
    assert pair.client.credit(sender) == 0
    pair.client.send_message(sender, AmqpMessage(body="three"))  # queued: no credit
    pair.pump()
    assert [e.message.body for e in pair.take_server() if isinstance(e, MessageReceived)] == [
        "one",
        "two",
    ]
    pair.server.flow(receiver, 3)
    pair.pump()
    # The queued message takes one of the three as soon as they arrive.
    assert pair.take_client() == [CreditAvailable(link_id=sender, credit=2)]
    received = pair.take_server()
    assert [e.message.body for e in received if isinstance(e, MessageReceived)] == ["three"]
    assert pair.client.credit(sender) == 2


@pytest.mark.parametrize(
    "body",
    [
        None,
        b"",
        b"\x00\xff binary",
        "text \u00e9",
        {},
        {
            "kind": "MAU",
            "id": "router-a",
            "seq": 2**40,
            "add": ["svc/a", "svc/b"],
            "nested": {"cost": 1, "flags": [True, False, None], "ratio": 0.5},
            "raw": b"\x01\x02",
        },
    ],
)
def test_complete_messages_round_trip(body: object) -> None:
    pair = opened_pair()
    sender, receiver = message_link(pair)
    message = AmqpMessage(
        to="router/control",
        reply_to="router/reply",
        subject="hello",
        application_properties={"opcode": "HELLO", "version": 1, "ok": True, "blob": b"x"},
        body=body,  # type: ignore[arg-type]
    )
    pair.client.send_message(sender, message)
    pair.pump()
    assert pair.take_server() == [MessageReceived(link_id=receiver, message=message)]


def test_messages_keep_their_order_and_survive_many_frames() -> None:
    pair = opened_pair(max_frame_size=4096, session_capacity=16384)
    sender, _ = message_link(pair, credit=100)
    big = {"blob": b"z" * 100_000, "n": 1}
    for index in range(20):
        pair.client.send_message(sender, AmqpMessage(body={"index": index}))
    pair.client.send_message(sender, AmqpMessage(body=big))
    pair.pump()
    bodies = [e.message.body for e in pair.take_server() if isinstance(e, MessageReceived)]
    assert bodies == [{"index": i} for i in range(20)] + [big]


def test_message_over_the_size_limit_fails_the_link() -> None:
    pair = opened_pair(server={"max_message_size": 10_000})
    sender, receiver = message_link(pair)
    pair.client.send_message(sender, AmqpMessage(body=b"x" * 20_000))
    pair.pump()
    (closed,) = pair.take_server()
    assert closed == LinkClosed(
        link_id=receiver,
        condition="amqp:link:message-size-exceeded",
        description="message exceeds 10000 bytes",
    )
    assert pair.take_client() == [
        LinkClosed(
            link_id=sender,
            condition="amqp:link:message-size-exceeded",
            description="message exceeds 10000 bytes",
        )
    ]


def test_remote_detach_is_reported_with_its_condition_and_the_link_forgotten() -> None:
    pair = opened_pair()
    sender, receiver = message_link(pair)
    pair.server.close_link(receiver)
    pair.pump()
    assert pair.take_client() == [LinkClosed(link_id=sender)]
    assert pair.take_server() == []
    # Commands naming the ended link are quiet no-ops (the caller may have raced).
    pair.client.send_message(sender, AmqpMessage(body="late"))
    pair.server.flow(receiver, 1)
    assert pair.client.credit(sender) == 0
    assert pair.client.statistics().links == 0
    assert pair.server.statistics().links == 0


def test_connection_close_ends_every_link() -> None:
    pair = opened_pair()
    sender, receiver = message_link(pair)
    pair.client.close()
    pair.pump()
    assert pair.take_client() == [LinkClosed(link_id=sender), ConnectionClosed()]
    assert pair.take_server() == [LinkClosed(link_id=receiver), ConnectionClosed()]


def test_misuse_raises_usage_errors() -> None:
    pair = opened_pair()
    sender, receiver = message_link(pair)
    streaming = pair.client.open_sender("stream", "svc", streaming=True)
    with pytest.raises(AmqpUsageError):
        pair.client.flow(sender, 1)
    with pytest.raises(AmqpUsageError):
        pair.server.send_message(receiver, AmqpMessage(body="wrong way"))
    with pytest.raises(AmqpUsageError):
        pair.client.start_stream(sender, MessageHeader(to="svc"))
    with pytest.raises(AmqpUsageError):
        pair.client.send_message(streaming, AmqpMessage(body="not a stream"))
    pair.client.start_stream(streaming, MessageHeader(to="svc"))
    with pytest.raises(AmqpUsageError):
        pair.client.start_stream(streaming, MessageHeader(to="svc"))
    with pytest.raises(TypeError):
        pair.client.send_message(sender, AmqpMessage(body={"bad": object()}))  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        AmqpConnection("x", server=False, max_frame_size=1 << 20, session_capacity=1 << 10)


def test_closing_a_link_with_a_condition_tells_the_peer_why() -> None:
    pair = opened_pair()
    sender, receiver = message_link(pair)
    pair.server.close_link(receiver, "amqp:not-found", "no such address")
    pair.pump()
    assert pair.take_client() == [
        LinkClosed(link_id=sender, condition="amqp:not-found", description="no such address")
    ]
    assert pair.take_server() == []


def test_peer_ending_its_session_ends_the_links_on_it() -> None:
    pair = opened_pair()
    sender, receiver = message_link(pair)
    # Our peers never end a session; fault injection through the engine.
    lib.pn_session_close(pair.client._session)
    pair.pump()
    assert pair.take_server() == [LinkClosed(link_id=receiver)]
    assert pair.server.statistics().links == 0
    assert not pair.server.failed
    assert sender


def test_peek_and_pop_output_let_the_socket_take_part_of_it() -> None:
    pair = opened_pair()
    sender, receiver = message_link(pair)
    pair.client.send_message(sender, AmqpMessage(body=b"x" * 5000))
    view = pair.client.peek_output()
    assert len(view) > 5000 and pair.client.has_data_to_send
    first = bytes(view[:1000])
    pair.client.pop_output(1000)
    rest = bytes(pair.client.peek_output())
    pair.client.pop_output(len(rest))
    assert pair.client.peek_output() == b"" and not pair.client.has_data_to_send
    pair.server.receive_data(first)
    pair.server.receive_data(rest)
    assert pair.server.events() == [
        MessageReceived(link_id=receiver, message=AmqpMessage(body=b"x" * 5000))
    ]
