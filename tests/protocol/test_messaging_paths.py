"""A client delivery whose path breaks after it left the ingress whole, over real proton
engines between three routers (test_forwarder_pair.Mesh) with proton clients
(messaging_peer): it is never left unsettled while its destination stays reachable by
another path."""

from __future__ import annotations

from typing import Any

import pytest
from messaging_peer import ClientPeer
from proton import Delivery, Message
from test_forwarder_pair import Mesh, announce

from skupper_actors.protocol.messaging import MessageRouter

pytestmark = pytest.mark.timeout(30)


def triangle() -> tuple[Mesh, dict[str, MessageRouter]]:
    """a-b, b-c and a-c; a reaches c through b at first (a-c costs more)."""
    mesh = Mesh(["a", "b", "c"])
    routers = {name: MessageRouter(fwd) for name, fwd in mesh.forwarders.items()}
    for one, other in (("a", "b"), ("b", "c"), ("a", "c")):
        mesh.connect(one, other)
    mesh.route("a", "c", "b", cost=2)
    mesh.route("a", "b", "b")
    mesh.route("b", "c", "c")
    mesh.route("b", "a", "a")
    mesh.route("c", "a", "a")
    mesh.route("c", "b", "b")
    announce(mesh, "_skupper/amqp/q", frozenset({"c"}))
    return mesh, routers


def lose(mesh: Mesh, one: str, other: str) -> None:
    """The connection between two routers is gone (both ends see it)."""
    for at, peer in ((one, other), (other, one)):
        session = mesh.session(at, peer)
        mesh.forwarders[at].ports.pop(session.link_id, None)
        session.lost()
    mesh.pairs = [
        pair
        for pair in mesh.pairs
        if {pair[0].dataplane.router_id, pair[1].dataplane.router_id} != {one, other}
    ]


def send_one(client: ClientPeer, link, body: object) -> Delivery:
    delivery = link.delivery(b"d1")
    link.send(Message(body=body).encode())
    link.advance()
    client.pump()
    return delivery


def test_lost_behind_the_first_hop_the_transit_releases_it() -> None:
    """b sent the whole message on to c, which had not read it when the b-c connection
    was lost: b tells a (the message's ingress) it is released."""
    mesh, routers = triangle()
    receiving = ClientPeer(routers["c"])
    receiving.receiver("q", credit=10)
    sending = ClientPeer(routers["a"])
    outbox = sending.sender("q")
    mesh.stopped.add("c")  # a and b pass the message on; c reads nothing yet
    delivery = send_one(sending, outbox, "cut")
    mesh.pump()
    lose(mesh, "b", "c")  # b's stream to c is aborted with the connection
    mesh.route("a", "c", "c", cost=10)
    mesh.route("c", "a", "a", cost=10)
    mesh.stopped.clear()
    mesh.pump()
    sending.pump()
    assert delivery.remote_state == Delivery.RELEASED


def test_lost_with_the_first_hop_after_it_left_whole_it_is_released_not_hanging() -> None:
    """The whole message left a by the a-b connection, which is lost before b read it:
    nothing would ever come back, though c stays reachable (a-c): a releases it."""
    mesh, routers = triangle()
    receiving = ClientPeer(routers["c"])
    inbox = receiving.receiver("q", credit=10)
    sending = ClientPeer(routers["a"])
    outbox = sending.sender("q")
    mesh.stopped.add("b")  # the message waits in the a-b connection
    delivery = send_one(sending, outbox, "stuck")
    mesh.pump()
    assert delivery.remote_state == 0  # unsettled, nothing came back
    lose(mesh, "a", "b")
    mesh.route("a", "c", "c", cost=10)  # routing's new view: c straight from a
    mesh.stopped.clear()
    mesh.pump()
    sending.pump()
    assert delivery.remote_state == Delivery.RELEASED
    assert inbox.current is None  # it never reached c


def test_a_batch_of_outcomes_reaches_each_sender_delivery_unchanged() -> None:
    """c collects the outcomes of one loop pass (``defer``) and sends them to a: plain
    accepted and released ones as lists of stream ids (more than OUTCOME_BATCH accepted:
    two router messages), rejected and modified ones with their details."""
    from skupper_actors.protocol.messaging.outcomes import OUTCOME_BATCH

    mesh, routers = triangle()
    deferred: list = []
    routers["c"].defer = deferred.append
    receiving = ClientPeer(routers["c"])
    inbox = receiving.receiver("q", credit=300)
    sending = ClientPeer(routers["a"])
    outbox = sending.sender("q")
    sent: list[Delivery] = []
    while len(sent) < 240:
        assert outbox.credit > 0
        while outbox.credit and len(sent) < 240:
            sent.append(outbox.delivery(f"t{len(sent)}".encode()))
            outbox.send(Message(body=len(sent)).encode())
            outbox.advance()
        sending.pump()
        mesh.pump()
        receiving.pump()
    wanted = [
        Delivery.REJECTED if n % 20 == 0 else
        Delivery.MODIFIED if n % 20 == 1 else
        Delivery.RELEASED if n % 20 == 2 else Delivery.ACCEPTED
        for n in range(240)
    ]  # fmt: skip
    assert sum(w == Delivery.ACCEPTED for w in wanted) > OUTCOME_BATCH
    for outcome in wanted:
        delivery = inbox.current
        assert delivery is not None and not delivery.partial
        inbox.recv(delivery.pending)
        inbox.advance()
        if outcome == Delivery.MODIFIED:
            delivery.local.undeliverable = True
        delivery.update(outcome)
        delivery.settle()
    receiving.pump()
    assert len(deferred) == 1  # one send for the whole pass
    deferred.pop()()
    mesh.pump()
    sending.pump()
    assert [d.remote_state for d in sent] == wanted
    modified = [d for d, w in zip(sent, wanted, strict=True) if w == Delivery.MODIFIED]
    assert all(d.remote.undeliverable for d in modified)


def test_a_whole_message_stream_with_a_bad_header_closes_only_its_pooled_link() -> None:
    """A peer's pooled message link carries a complete stream (one StreamWhole) whose
    header is not a stream header: that link is closed with amqp:invalid-field, the
    connection and the next message are fine."""
    from skupper_actors.actors.links.linksession import POOL_PREFIX, POOL_TARGET
    from skupper_actors.protocol import amqp

    mesh, routers = triangle()
    a_to_b = mesh.session("a", "b")
    rogue = a_to_b.conn.open_sender(f"{POOL_PREFIX}99", POOL_TARGET, streaming=True)
    mesh.pump()
    delivery = a_to_b.conn.start_stream(rogue, amqp.MessageHeader(to="q"))  # no stream props
    a_to_b.conn.write_stream(delivery, b"body")
    a_to_b.conn.end_stream(delivery, 4)
    mesh.pump()
    assert rogue not in a_to_b.conn._links.by_id  # closed by b
    assert not a_to_b.conn.failed and not mesh.session("b", "a").conn.failed
    receiving = ClientPeer(routers["c"])
    inbox = receiving.receiver("q", credit=10)
    sending = ClientPeer(routers["a"])
    outbox = sending.sender("q")
    delivery = send_one(sending, outbox, "after")
    mesh.pump()
    receiving.pump()
    assert inbox.current is not None and not inbox.current.partial


def one_held_at_c(
    mesh: Mesh, routers: dict[str, MessageRouter], body: object
) -> tuple[ClientPeer, Any, ClientPeer, Delivery]:
    """A message from a client at a, whole and unsettled in a receiver's hands at c:
    (the receiving client, its link, the sending client, the sender's delivery)."""
    receiving = ClientPeer(routers["c"])
    inbox = receiving.receiver("q", credit=10)
    sending = ClientPeer(routers["a"])
    delivery = send_one(sending, sending.sender("q"), body)
    mesh.pump()
    receiving.pump()
    assert inbox.current is not None and not inbox.current.partial
    return receiving, inbox, sending, delivery


def test_an_outcome_waits_for_the_egress_to_have_a_route_to_the_ingress() -> None:
    """a-b-c in a line; c's route back to a lags a's route to c (link state reaches
    routers at different times): the receiver's outcome waits at c until the route is
    there, and the sender gets it (it was dropped, and the sender waited for ever)."""
    mesh = Mesh(["a", "b", "c"])
    routers = {name: MessageRouter(fwd) for name, fwd in mesh.forwarders.items()}
    mesh.connect("a", "b")
    mesh.connect("b", "c")
    mesh.route("a", "c", "b", cost=2)
    mesh.route("b", "c", "c")
    mesh.route("b", "a", "a")
    announce(mesh, "_skupper/amqp/q", frozenset({"c"}))
    receiving, inbox, sending, delivery = one_held_at_c(mesh, routers, "early")
    inbox.current.update(Delivery.ACCEPTED)
    inbox.current.settle()
    receiving.pump()
    mesh.pump()
    sending.pump()
    assert delivery.remote_state == 0  # no route from c to a yet
    assert mesh.forwarders["c"].unrouted() == 1
    mesh.route("c", "a", "b", cost=2)
    mesh.pump()
    sending.pump()
    assert delivery.remote_state == Delivery.ACCEPTED


def test_an_outcome_lost_with_its_connection_goes_again_by_another_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """c's receiver held the message for a minute (long past the time a connection's
    loss releases what it carried) and accepts it; the outcome dies in the b-c
    connection's buffers with that connection. c sends it again over c-a, and the
    sender gets accepted (it waited for ever)."""
    from skupper_actors.actors.links import recent

    clock = [1000.0]
    monkeypatch.setattr(recent.time, "monotonic", lambda: clock[0])
    mesh, routers = triangle()
    mesh.route("c", "a", "b", cost=2)  # c answers a through b, as a reaches c
    receiving, inbox, sending, delivery = one_held_at_c(mesh, routers, "slow")
    clock[0] += 60
    mesh.stopped.add("b")  # b reads nothing more: the outcome stays in c's connection
    inbox.current.update(Delivery.ACCEPTED)
    inbox.current.settle()
    receiving.pump()
    mesh.pump()
    lose(mesh, "b", "c")
    mesh.stopped.clear()
    mesh.route("c", "a", "a", cost=10)
    mesh.route("a", "c", "c", cost=10)
    mesh.pump()
    sending.pump()
    assert delivery.remote_state == Delivery.ACCEPTED
