"""MessageRouter and ClientConnection, sans-IO: proton engines as clients, one router."""

from __future__ import annotations

import pytest
from messaging_peer import ClientPeer
from proton import Delivery, Message

from skupper_actors.protocol.addressing import DistributionMode
from skupper_actors.protocol.forwarding import Forwarder
from skupper_actors.protocol.messaging import (
    SENDER_WINDOW,
    AddressRefused,
    Distribution,
    MessageRouter,
    check_address,
)
from skupper_actors.protocol.messaging.addresses import dynamic_address, dynamic_router
from skupper_actors.protocol.messaging.sections import Incomplete, message_to


@pytest.fixture
def router() -> MessageRouter:
    return MessageRouter(Forwarder("r1"))


def send(link, body, tag: bytes) -> Delivery:
    delivery = link.delivery(tag)
    link.send(Message(body=body).encode())
    link.advance()
    return delivery


def take(link) -> tuple[Delivery, object]:
    delivery = link.current
    assert delivery is not None and not delivery.partial
    message = Message()
    message.decode(link.recv(delivery.pending))
    link.advance()
    body = message.body
    # proton hands binary bodies out as views of its own buffer: copy while it lives
    return delivery, bytes(body) if isinstance(body, memoryview) else body


def test_addresses_reserved_and_distribution() -> None:
    for address in ("_local/x", "_topo/0/r/t", "_skupper/router/control", "_skupper/stream/1"):
        with pytest.raises(AddressRefused):
            check_address(address, sender=False)
    check_address("orders", sender=False)
    reply = dynamic_address("r1", 7)
    check_address(reply, sender=True)  # a sender may answer a dynamic reply address
    with pytest.raises(AddressRefused):
        check_address(reply, sender=False)
    assert dynamic_router(reply) == "r1" and dynamic_router("orders") is None
    modes = Distribution()
    assert modes.mode("mc/news") is DistributionMode.MULTICAST
    assert modes.mode("closest/x") is DistributionMode.CLOSEST
    assert modes.mode("work") is DistributionMode.BALANCED
    assert Distribution({"q/": DistributionMode.CLOSEST}).mode("q/1") is DistributionMode.CLOSEST


def test_message_to_reads_only_the_leading_sections() -> None:
    encoded = bytes(Message(address="there", body=b"x" * 100_000, durable=True).encode())
    assert message_to(encoded, complete=True) == "there"
    assert message_to(encoded[:300], complete=False) == "there"
    with pytest.raises(Incomplete):
        message_to(encoded[:3], complete=False)
    assert message_to(bytes(Message(body="no to").encode()), complete=True) is None
    assert message_to(b"\x00\x53\x77garbage", complete=True) is None


def test_delivery_settled_end_to_end_with_the_receivers_outcome(router) -> None:
    receiving, sending = ClientPeer(router), ClientPeer(router)
    inbox = receiving.receiver("q", credit=5)
    outbox = sending.sender("q")
    assert outbox.credit == 50  # one batch, while the address has a receiver
    sent = [send(outbox, n, f"t{n}".encode()) for n in range(3)]
    sending.pump()
    receiving.pump()
    outcomes = [Delivery.ACCEPTED, Delivery.REJECTED, Delivery.RELEASED]
    for outcome in outcomes:
        delivery, _ = take(inbox)
        delivery.update(outcome)
        delivery.settle()
    receiving.pump()
    sending.pump()
    assert [d.remote_state for d in sent] == outcomes
    assert all(d.settled for d in sent)
    stats = router.addresses()["q"]
    assert (stats["in"], stats["out"], stats["accepted"]) == (3, 3, 1)


def test_pre_settled_deliveries_leave_no_outstanding_count(router) -> None:
    """Balancing counts a delivery while it is outstanding: a pre-settled one stops
    counting once it is through (it skewed the choice between destinations for ever)."""
    receiving, sending = ClientPeer(router), ClientPeer(router)
    inbox = receiving.receiver("ps", credit=10)
    outbox = sending.sender("ps")
    for n in range(5):
        delivery = send(outbox, n, f"p{n}".encode())
        delivery.settle()
    sending.pump()
    receiving.pump()
    assert [take(inbox)[1] for _ in range(5)] == list(range(5))
    assert not router._outstanding


def test_no_receiver_no_credit_then_credit_when_one_attaches(router) -> None:
    sending = ClientPeer(router)
    outbox = sending.sender("later")
    assert outbox.credit == 0
    ClientPeer(router).receiver("later", credit=1)
    sending.pump()
    assert outbox.credit > 0


def test_deliveries_to_one_receiver_are_never_interleaved(router) -> None:
    """Two senders' big deliveries to one receiver: each arrives whole, one after another."""
    receiving = ClientPeer(router)
    inbox = receiving.receiver("big", credit=2)
    first, second = ClientPeer(router), ClientPeer(router)
    a, b = first.sender("big"), second.sender("big")
    body_a, body_b = b"a" * 700_000, b"b" * 700_000
    send(a, body_a, b"a")
    send(b, body_b, b"b")
    for _ in range(40):
        first.pump(1)
        second.pump(1)
        receiving.pump(1)
    bodies = sorted(take(inbox)[1] for _ in range(2))
    assert bodies == [body_a, body_b]


def test_a_receiver_detaching_releases_what_it_holds(router) -> None:
    receiving, sending = ClientPeer(router), ClientPeer(router)
    inbox = receiving.receiver("q", credit=5)
    outbox = sending.sender("q")
    sent = [send(outbox, n, f"t{n}".encode()) for n in range(4)]
    sending.pump()
    receiving.pump()
    take(inbox)  # received, never settled
    inbox.close()
    receiving.pump()
    sending.pump()
    assert [d.remote_state for d in sent] == [Delivery.RELEASED] * 4


def test_reserved_attach_refused_and_window_bounded(router) -> None:
    peer = ClientPeer(router)
    peer.receiver("_skupper/router/control", credit=1)
    assert len(peer.refused) == 1 and "reserved" in peer.refused[0]
    ClientPeer(router).receiver("silent", credit=0)
    outbox = peer.sender("silent")
    sent = 0
    for n in range(2 * SENDER_WINDOW):
        if outbox.credit == 0:
            break
        send(outbox, n, str(n).encode())
        sent += 1
        peer.pump(1)
    assert sent <= SENDER_WINDOW


def test_network_status_lists_the_amqp_addresses(router) -> None:
    """`skupper network status -o json` carries this site's AMQP addresses."""
    from skupper_actors.cli.network import network_data
    from skupper_actors.management import NodeStatus, RouterInfo
    from skupper_actors.management.schema import MessagingAddressInfo

    info = MessagingAddressInfo(
        address="orders", distribution="balanced", senders=1, receivers=0, remote=("b",),
        delivered_in=5, delivered_out=0, accepted=4, released=1, dropped=0,
    )
    status = NodeStatus(
        router=RouterInfo(
            id="a", instance=1, version="x", inter_router_host="127.0.0.1",
            inter_router_port=1, tls=True, started_at=0.0,
        ),
        messaging=(info,),
    )
    data = network_data(status)
    assert data["amqpAddresses"][0]["address"] == "orders"
    assert data["amqpAddresses"][0]["deliveredIn"] == 5
