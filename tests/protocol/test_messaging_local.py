"""LocalEndpoint: an internal client of the MessageRouter, against proton engines as
real clients (messaging_peer), in memory."""

from __future__ import annotations

import pytest
from messaging_peer import ClientPeer
from proton import Message

from skupper_actors.protocol.forwarding import Forwarder
from skupper_actors.protocol.messaging import AddressRefused, MessageRouter
from skupper_actors.protocol.messaging.local import LocalEndpoint

pytestmark = pytest.mark.timeout(30)


def encoded(address: str, body: object) -> bytes:
    return bytes(Message(address=address, body=body).encode())


def received(link) -> list[object]:
    bodies = []
    while link.current is not None and not link.current.partial:
        message = Message()
        message.decode(link.recv(link.current.pending))
        link.advance()
        bodies.append(message.body)
    return bodies


def test_no_consumer_nothing_sent_then_a_client_receives_multicast() -> None:
    router = MessageRouter(Forwarder("r1"))
    local = LocalEndpoint(router)
    assert not local.has_consumer("mc/sfe.all")
    client = ClientPeer(router)
    inbox = client.receiver("mc/sfe.all", credit=10)
    assert local.has_consumer("mc/sfe.all")
    assert local.send("mc/sfe.all", encoded("mc/sfe.all", "hello"))
    client.pump()
    assert received(inbox) == ["hello"]
    assert router.addresses()["mc/sfe.all"]["out"] == 1
    inbox.close()
    client.pump()
    assert not local.has_consumer("mc/sfe.all")


def test_a_client_sends_to_a_local_receiver_anycast_and_it_is_accepted() -> None:
    router = MessageRouter(Forwarder("r1"))
    local = LocalEndpoint(router)
    got: list[tuple[str, bytes]] = []
    local.receive("sfe.abc:0", lambda address, data: got.append((address, data)))
    client = ClientPeer(router)
    anonymous = client.sender(None)
    delivery = anonymous.delivery(b"t1")
    anonymous.send(encoded("sfe.abc:0", "flush"))
    anonymous.advance()
    client.pump()
    assert len(got) == 1 and got[0][0] == "sfe.abc:0"
    message = Message()
    message.decode(got[0][1])
    assert message.body == "flush"
    client.pump()
    assert delivery.remote_state == delivery.ACCEPTED


def test_local_to_local_and_limits() -> None:
    router = MessageRouter(Forwarder("r1"))
    sender, receiver = LocalEndpoint(router), LocalEndpoint(router, max_message=100)
    got: list[bytes] = []
    receiver.receive("vfcr.x:0", lambda address, data: got.append(data))
    assert sender.send("vfcr.x:0", encoded("vfcr.x:0", "co"))
    assert len(got) == 1 and receiver.stats.received == 1
    assert sender.send("vfcr.x:0", encoded("vfcr.x:0", "y" * 500))  # too large there
    assert receiver.stats.dropped_too_large == 1 and len(got) == 1
    # a sender's window: the router's credit bounds what one sender has in flight
    sent = sum(sender.send("mc/nobody", b"\x00") for _ in range(1000))
    assert sent == 1000  # nowhere to go: dropped by the router at once, credit comes back
    with pytest.raises(AddressRefused):
        sender.send("_skupper/router/control", b"x")
    receiver.close()
    assert not sender.has_consumer("vfcr.x:0")


def test_across_two_routers_the_senders_window_bounds_what_is_in_flight() -> None:
    """Real engines between two forwarders (test_forwarder_pair.Mesh): an internal
    sender at a, a receiver at b. While b passes nothing (stopped), the copies are not
    acknowledged: after one credit batch the sender has no credit (``can_send`` says so,
    ``send`` drops and counts); once b runs again, credit comes back."""
    from test_forwarder_pair import Mesh, announce

    mesh = Mesh(["a", "b"])
    routers = {name: MessageRouter(fwd) for name, fwd in mesh.forwarders.items()}
    mesh.connect("a", "b")
    mesh.route("a", "b", "b")
    mesh.route("b", "a", "a")
    got: list[bytes] = []
    LocalEndpoint(routers["b"]).receive("mc/sfe.all", lambda address, data: got.append(data))
    announce(mesh, "_skupper/amqp/mc/sfe.all", frozenset({"b"}))
    sender = LocalEndpoint(routers["a"])
    assert sender.has_consumer("mc/sfe.all")
    for n in range(60):
        assert sender.send("mc/sfe.all", encoded("mc/sfe.all", n))
        mesh.pump()
    assert len(got) == 60
    mesh.stopped.add("b")
    sent = 0
    while sender.can_send("mc/sfe.all"):
        assert sender.send("mc/sfe.all", encoded("mc/sfe.all", "x"))
        sent += 1
        mesh.pump()
    assert 0 < sent <= 250  # one sender's window at most
    assert not sender.send("mc/sfe.all", encoded("mc/sfe.all", "lost"))
    assert sender.stats.dropped_no_credit == 1
    mesh.stopped.clear()
    mesh.pump()
    assert len(got) == 60 + sent
    assert sender.can_send("mc/sfe.all")


def test_the_vanflow_outbox_holds_a_burst_past_the_window_and_sends_it_later() -> None:
    """MessagingOutbox (actors/vanflow.py) over the same two routers: a burst larger
    than the window (a FLUSH of many records) waits, bounded, and goes at the next
    tick once the far router has caught up."""
    from test_forwarder_pair import Mesh, announce

    from skupper_actors.actors.vanflow_outbox import MessagingOutbox
    from skupper_actors.protocol.vanflow import heartbeat, records_address

    mesh = Mesh(["a", "b"])
    routers = {name: MessageRouter(fwd) for name, fwd in mesh.forwarders.items()}
    mesh.connect("a", "b")
    mesh.route("a", "b", "b")
    mesh.route("b", "a", "a")
    address = records_address("src:0")
    got: list[bytes] = []
    LocalEndpoint(routers["b"]).receive(address, lambda a, data: got.append(data))
    outbox = MessagingOutbox(LocalEndpoint(routers["a"]), "src:0", backlog=200)
    assert outbox.consumers() == frozenset()  # nobody has subscribed anywhere
    outbox.send([heartbeat("src:0", 1)])
    assert outbox.waiting == 0 and outbox.dropped == 0
    announce(mesh, f"_skupper/amqp/{address}", frozenset({"b"}))
    assert outbox.consumers() == frozenset({address})
    mesh.stopped.add("b")  # b is slow: nothing comes back for a while
    outbox.send([heartbeat("src:0", n) for n in range(400)])
    mesh.pump()
    assert outbox.waiting == 200 and outbox.dropped > 0  # the backlog's bound
    first = 400 - outbox.waiting - outbox.dropped  # what the window took
    assert 0 < first <= 250
    mesh.stopped.clear()
    for _ in range(10):  # ticks
        mesh.pump()
        outbox.send([])
        mesh.pump()
    assert outbox.waiting == 0 and len(got) == first + 200
