"""TCP streams on pooled streaming links (ADR 0021), across real proton engines in memory.

A stream direction is one delivery on a link kept attached between streams; a refusal is
a router message naming the stream (id and direction), never the link, which may carry
a later stream by the time the refusal arrives.
"""

from __future__ import annotations

import pytest
from test_forwarder_pair import (
    Connector,
    Ingress,
    Mesh,
    Owner,
    announce,
    pair,
    transit_line,
)

from skupper_actors.actors.links import linksession
from skupper_actors.protocol.tcp import forward_header

pytestmark = pytest.mark.timeout(30)


def one_connection(mesh: Mesh, connector: Connector, payload: bytes) -> None:
    ingress = Ingress(mesh, "a", "k")
    assert ingress.connect()
    assert ingress.out is not None
    ingress.out.write(payload)
    ingress.out.end(len(payload))
    mesh.pump()
    egress_sink, reverse_out, _, header = connector.streams[-1]
    assert egress_sink.whole and bytes(egress_sink.received) == payload
    reverse_out.write(payload[::-1])
    reverse_out.end(len(payload))
    mesh.pump()
    assert ingress.reverse.whole and bytes(ingress.reverse.received) == payload[::-1]
    for forwarder in mesh.forwarders.values():
        forwarder.forget_stream(header.stream_id)


def test_connections_one_after_another_reuse_one_link_each_way() -> None:
    mesh, connector = pair()
    a_to_b, b_to_a = mesh.session("a", "b"), mesh.session("b", "a")
    for n in range(20):
        one_connection(mesh, connector, bytes([n]) * (100 + n))
    # one pooled link each way, attached once, carried all forty streams
    assert len(a_to_b.pooled_out) == 1 and a_to_b.idle_out == list(a_to_b.pooled_out)
    assert len(b_to_a.pooled_out) == 1 and b_to_a.idle_out == list(b_to_a.pooled_out)
    assert len(b_to_a.pooled_in) == 1 and len(a_to_b.pooled_in) == 1
    assert not a_to_b.out_streams and not b_to_a.out_streams and not a_to_b.owners


def test_a_refusal_reaches_the_owner_and_frees_the_link() -> None:
    mesh, _connector = pair()
    a_to_b = mesh.session("a", "b")
    owner = Owner()
    header = forward_header("a/1", "a", "b", "nobody-serves-this")
    out = mesh.forwarders["a"].open_stream(header, owner)
    out.write(b"bytes for nobody")
    mesh.pump()
    assert owner.closed is not None and owner.closed[0] == "skupper:no-connector"
    # the stream was aborted at the sender: its link is idle again, still attached
    assert a_to_b.idle_out == list(a_to_b.pooled_out) and len(a_to_b.pooled_out) == 1
    assert not a_to_b.out_streams and not a_to_b.owners
    out.write(b"written after the refusal")  # goes nowhere, and harms nothing
    mesh.pump()
    one_connection(mesh, _connector, b"the next stream takes the same link")
    assert len(a_to_b.pooled_out) == 1


def test_a_late_refusal_of_an_earlier_stream_leaves_the_link_s_next_stream_alone() -> None:
    """b refuses stream X after X ended and its link went on to carry stream Y: Y goes
    on, and X's sender, whose stream is over, ignores the refusal."""
    mesh, connector = pair()
    b_to_a = mesh.session("b", "a")
    one_connection(mesh, connector, b"first")  # X: its forward stream ended cleanly
    _, _, _, first_header = connector.streams[0]
    ingress = Ingress(mesh, "a", "k")  # Y, on the same pooled link
    assert ingress.connect()
    assert ingress.out is not None
    ingress.out.write(b"second, still open")
    mesh.pump()
    (link,) = b_to_a.pooled_in
    b_to_a.refuse_stream(link, "skupper:connection-failed", "late", first_header)
    mesh.pump()
    assert ingress.owner.closed is None  # Y was not refused
    egress_sink, _, _, _ = connector.streams[1]
    ingress.out.write(b" and more")
    ingress.out.end(len(b"second, still open and more"))
    mesh.pump()
    assert bytes(egress_sink.received) == b"second, still open and more"
    assert egress_sink.whole


def test_a_transit_router_passes_a_refusal_back_hop_by_hop() -> None:
    mesh = transit_line()
    Connector(mesh, "b", "k", refuse_first=1)
    announce(mesh, "k", frozenset({"b"}))
    owner = Owner()
    header = forward_header("a/9", "a", "b", "k")
    out = mesh.forwarders["a"].open_stream(header, owner)
    out.write(b"to be refused at b")
    mesh.pump()
    assert owner.closed == ("skupper:busy", "busy")
    for at, peer in (("a", "t"), ("t", "b")):
        session = mesh.session(at, peer)
        assert not session.out_streams and session.idle_out == list(session.pooled_out)


def test_links_freed_past_the_idle_bound_are_detached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linksession, "POOL_IDLE_MAX", 3)
    mesh, connector = pair()
    a_to_b, b_to_a = mesh.session("a", "b"), mesh.session("b", "a")
    ingresses = []
    for _ in range(8):  # eight connections open at once: eight links each way
        ingress = Ingress(mesh, "a", "k")
        assert ingress.connect()
        ingresses.append(ingress)
    assert len(a_to_b.pooled_out) == 8 and len(b_to_a.pooled_in) == 8
    for ingress, (_, reverse_out, _, _) in zip(ingresses, connector.streams, strict=True):
        assert ingress.out is not None
        ingress.out.end(0)
        reverse_out.end(0)
    mesh.pump()
    assert len(a_to_b.idle_out) == 3 and len(a_to_b.pooled_out) == 3
    assert len(b_to_a.pooled_in) == 3  # the peer saw the other five detached
    one_connection(mesh, connector, b"still works")


def test_a_refusal_naming_no_stream_of_ours_is_ignored() -> None:
    mesh, connector = pair()
    b_to_a = mesh.session("b", "a")
    b_to_a.send_router_message("a", {"k": "sr", "s": "a/404", "d": "f", "c": "x", "t": "y"})
    b_to_a.send_router_message("a", {"k": "sr", "s": 7, "d": None})  # malformed: logged
    mesh.pump()
    one_connection(mesh, connector, b"unharmed")



def test_with_no_way_to_name_the_stream_the_refusal_closes_the_link() -> None:
    """A receiver that cannot send the neighbour a router message (no message link)
    refuses as before pooled links: the link is detached with the condition."""
    mesh = Mesh(["a", "b"])
    mesh.connect("a", "b")
    mesh.route("a", "b", via="b")
    mesh.route("b", "a", via="a")
    Connector(mesh, "b", "k", refuse_first=1)
    announce(mesh, "k", frozenset({"b"}))
    a_to_b, b_to_a = mesh.session("a", "b"), mesh.session("b", "a")
    b_to_a.message_sender = None
    owner = Owner()
    out = mesh.forwarders["a"].open_stream(forward_header("a/7", "a", "b", "k"), owner)
    out.write(b"refused")
    mesh.pump()
    assert owner.closed == ("skupper:busy", "busy")
    assert not a_to_b.pooled_out and not b_to_a.pooled_in  # that link is gone
