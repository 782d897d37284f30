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
