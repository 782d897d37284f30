"""Forwarders joined by AMQP engines in memory: streams both ways, no sockets.

Each router is a ``protocol.forwarding.Forwarder``; each inter-router connection is
two real proton engines (``AmqpConnection``) whose ``LinkSession``s write to in-memory
pipes instead of sockets. The TCP ends are the test's: an ingress that follows the
attempt policy (``protocol.tcp.Attempts``) and a connector that answers each forward
stream with a reverse one. Bytes, ends (with their announced length), aborts,
refusals and acknowledgements all cross the real engines.
"""

from __future__ import annotations

import pytest

from skupper_actors.actors.links.linksession import LinkSession
from skupper_actors.protocol import amqp
from skupper_actors.protocol import routing as rt
from skupper_actors.protocol.forwarding import (
    UNROUTED_BYTES,
    UNROUTED_LIMIT,
    ConnectorBinding,
    EgressSink,
    Forwarder,
    OutStream,
    StreamRefused,
)
from skupper_actors.protocol.tcp import (
    FORWARD,
    REVERSE,
    Attempts,
    GiveUp,
    Retry,
    StreamHeader,
    forward_header,
    reverse_header,
)


class MemoryWire:
    """What a LinkSession writes: kept for the pump to hand to the other engine."""

    def __init__(self) -> None:
        self.out = bytearray()

    def write_some(self, data: memoryview) -> int:
        self.out += data
        return len(data)

    def drain(self) -> bool:
        return True

    def wait_writable(self) -> None:  # pragma: no cover - never full
        raise AssertionError("a memory wire is never full")

    def shutdown(self) -> None:
        pass


def dispatch(session: LinkSession) -> None:
    """The events of one engine, handed to its session as the link actor does."""
    for event in session.conn.events():
        if isinstance(event, amqp.StreamData):
            session.stream_data(event)
        elif isinstance(event, amqp.StreamStarted):
            session.stream_started(event)
        elif isinstance(event, amqp.StreamWhole):
            session.stream_whole(event)
        elif isinstance(event, amqp.StreamLength):
            session.stream_length(event)
        elif isinstance(event, amqp.StreamEnded):
            session.stream_ended(event)
        elif isinstance(event, amqp.LinkOpened):
            if event.remote_initiated:
                assert session.link_opened(event)
        elif isinstance(event, amqp.LinkClosed):
            session.link_closed(event)
        elif isinstance(event, amqp.MessageReceived):
            session.message_received(event)


class Mesh:
    """Routers on a line or a star; ``pump`` moves bytes until every engine is quiet."""

    def __init__(self, routers: list[str]) -> None:
        self.forwarders = {r: Forwarder(r) for r in routers}
        self.pairs: list[tuple[LinkSession, LinkSession]] = []
        self.stopped: set[str] = set()  # routers whose connections pass nothing (SIGSTOP)

    def connect(self, a: str, b: str) -> None:
        link_id = f"{a}-{b}"
        ends = []
        for me, peer, server in ((a, b, False), (b, a, True)):
            conn = amqp.AmqpConnection(me, server=server)
            session = LinkSession(MemoryWire(), conn, link_id, self.forwarders[me])  # type: ignore[arg-type]
            session.peer = peer
            conn.open()
            ends.append(session)
        self.pairs.append((ends[0], ends[1]))
        self.pump()
        for session in ends:
            session.open_links(session.dataplane.router_id)
            session.dataplane.ports[link_id] = session  # type: ignore[assignment]
        self.pump()

    def route(self, at: str, to: str, via: str | tuple[str, ...], cost: int = 1) -> None:
        fwd = self.forwarders[at]
        peers = (via,) if isinstance(via, str) else via
        hops = tuple(self.session(at, peer).link_id for peer in peers)
        routes = dict(fwd.routes)
        routes[to] = rt.Route(router_id=to, cost=cost, next_hops=hops)
        fwd.set_routes(routes)

    def session(self, at: str, peer: str) -> LinkSession:
        fwd = self.forwarders[at]
        return next(s for pair in self.pairs for s in pair if s.dataplane is fwd and s.peer == peer)

    def pump(self) -> None:
        for _ in range(1000):
            busy = False
            for a, b in self.pairs:
                if {a.dataplane.router_id, b.dataplane.router_id} & self.stopped:
                    continue
                for src, dst in ((a, b), (b, a)):
                    src.flush()
                    wire = src.wire
                    data = bytes(wire.out)  # type: ignore[attr-defined]
                    wire.out.clear()  # type: ignore[attr-defined]
                    if data:
                        busy = True
                        dst.conn.receive_data(data)
                    dispatch(dst)
                    dispatch(src)
            if not busy:
                return
        raise AssertionError("the mesh did not settle down")


class Sink:
    """A stream's receiving end: its bytes and how it ended."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.ended: bool | None = None  # False: ended cleanly, True: aborted
        self.length: int | None = None
        self.accepted = False

    def data(self, chunk: bytes) -> None:
        self.received += chunk

    def end(self, aborted: bool, length: int | None = None) -> None:
        if self.ended is None:
            self.ended, self.length = aborted, length

    def started(self, refuse: object = None) -> None:
        self.accepted = True

    @property
    def whole(self) -> bool:
        return self.ended is False and self.length == len(self.received)


class Owner:
    def __init__(self) -> None:
        self.closed: tuple[str | None, str | None] | None = None

    def link_closed(self, condition: str | None, description: str | None) -> None:
        self.closed = (condition, description)


class Connector:
    """Serves a key at one router: answers each forward stream with a reverse one."""

    def __init__(self, mesh: Mesh, router: str, key: str, refuse_first: int = 0) -> None:
        self.fwd = mesh.forwarders[router]
        self.refuse_first = refuse_first
        self.streams: list[tuple[Sink, OutStream, Owner, StreamHeader]] = []
        self.binding = ConnectorBinding(name=f"{key}@{router}", routing_key=key, accept=self.accept)
        self.fwd.bind(self.binding)

    def accept(self, header: StreamHeader, egress: EgressSink) -> None:
        if self.refuse_first:
            self.refuse_first -= 1
            raise StreamRefused("skupper:busy", "busy")
        sink, owner = Sink(), Owner()
        egress.attach(sink)
        out = self.fwd.open_stream(reverse_header(header), owner, via=egress.via)
        self.streams.append((sink, out, owner, header))


def announce(mesh: Mesh, key: str, routers: frozenset[str]) -> None:
    for fwd in mesh.forwarders.values():
        fwd.set_address_routers(key, routers)


class Ingress:
    """The ingress end of one connection, following the attempt policy."""

    def __init__(self, mesh: Mesh, router: str, key: str) -> None:
        self.mesh, self.fwd, self.key = mesh, mesh.forwarders[router], key
        self.attempts = Attempts()
        self.acks: list[int] = []
        self.out: OutStream | None = None
        self.reverse = Sink()
        self.owner = Owner()
        self.header: StreamHeader | None = None

    def connect(self) -> bool:
        """Attempt after attempt until one is accepted (True) or the policy gives up."""
        while True:
            dest = self.fwd.select(self.key, self.attempts.excluded)
            if dest is None or not self.attempts.may_start():
                return False
            number = self.attempts.start(dest.router_id)
            self.header = forward_header(
                self.fwd.new_stream_id(), self.fwd.router_id, dest.router_id, self.key
            )
            self.reverse, self.owner = Sink(), Owner()
            self.fwd.expect_reverse(self.header.stream_id, self.reverse)
            self.fwd.on_ack(self.header.stream_id, FORWARD, lambda _s, o: self.acks.append(o))
            self.out = self.fwd.open_stream(self.header, self.owner)
            self.mesh.pump()
            if self.reverse.accepted and self.owner.closed is None:
                return True
            condition = self.owner.closed[0] if self.owner.closed else None
            self.out.abort()
            self.fwd.forget_stream(self.header.stream_id)
            decision = self.attempts.refused(number, condition)
            if isinstance(decision, GiveUp):
                return False
            assert isinstance(decision, Retry)


def pair(key: str = "k") -> tuple[Mesh, Connector]:
    """a - b, each routing to the other, and a connector for ``key`` at b."""
    mesh = Mesh(["a", "b"])
    mesh.connect("a", "b")
    mesh.route("a", "b", via="b")
    mesh.route("b", "a", via="a")
    connector = Connector(mesh, "b", key)
    announce(mesh, key, frozenset({"b"}))
    return mesh, connector


def test_a_stream_both_ways_with_half_closes_and_acknowledgements() -> None:
    mesh, connector = pair("echo")
    ingress = Ingress(mesh, "a", "echo")
    assert ingress.connect()
    assert ingress.attempts.tried == ("b",)
    ((egress_sink, reverse_out, _owner, header),) = connector.streams
    # the client speaks and half-closes: the stream's end announces its length
    request = b"GET / " * 5000
    assert ingress.out is not None
    ingress.out.write(request)
    mesh.pump()
    # the egress acknowledges what it wrote; the ack reaches the ingress's handler
    mesh.forwarders["b"].send_ack("a", header.stream_id, FORWARD, len(request))
    mesh.pump()
    assert ingress.acks == [len(request)]
    ingress.out.end(len(request))
    mesh.pump()
    assert egress_sink.whole and bytes(egress_sink.received) == request
    # the server answers, then half-closes: whole at the ingress
    answer = bytes(range(256)) * 1000
    reverse_out.write(answer[:100_000])
    reverse_out.write(answer[100_000:])
    reverse_out.end(len(answer))
    mesh.pump()
    assert ingress.reverse.whole and bytes(ingress.reverse.received) == answer
    for forwarder in mesh.forwarders.values():
        forwarder.forget_stream(header.stream_id)


def test_an_abort_reaches_the_far_end_as_an_abort() -> None:
    mesh = Mesh(["a", "b"])
    mesh.connect("a", "b")
    mesh.route("a", "b", via="b")
    mesh.route("b", "a", via="a")
    connector = Connector(mesh, "b", "k")
    announce(mesh, "k", frozenset({"b"}))
    ingress = Ingress(mesh, "a", "k")
    assert ingress.connect()
    assert ingress.out is not None
    ingress.out.write(b"partial")
    ingress.out.abort()
    mesh.pump()
    ((egress_sink, reverse_out, _, _),) = connector.streams
    assert egress_sink.ended is True and not egress_sink.whole
    reverse_out.abort()
    mesh.pump()
    assert ingress.reverse.ended is True


def transit_line() -> Mesh:
    """a - t - b: a and b reach each other through the transit router t."""
    mesh = Mesh(["a", "t", "b"])
    mesh.connect("a", "t")
    mesh.connect("t", "b")
    mesh.route("a", "b", via="t", cost=2)
    mesh.route("t", "b", via="b")
    mesh.route("t", "a", via="a")
    mesh.route("b", "a", via="t", cost=2)
    return mesh


def test_a_transit_router_passes_the_end_and_its_length_on() -> None:
    mesh = transit_line()
    connector = Connector(mesh, "b", "k")
    announce(mesh, "k", frozenset({"b"}))
    ingress = Ingress(mesh, "a", "k")
    assert ingress.connect()
    assert ingress.out is not None
    ingress.out.write(b"x" * 70_000)
    ingress.out.end(70_000)
    mesh.pump()
    ((egress_sink, reverse_out, _, _),) = connector.streams
    assert egress_sink.whole and egress_sink.length == 70_000
    reverse_out.end(0)
    mesh.pump()
    assert ingress.reverse.whole and ingress.reverse.length == 0


def test_refused_by_a_busy_destination_retries_at_the_next() -> None:
    """b is the cheaper destination but refuses (busy): the retry excludes it and c
    takes the connection; the bytes go to c only."""
    mesh = Mesh(["a", "b", "c"])
    mesh.connect("a", "b")
    mesh.connect("a", "c")
    mesh.route("a", "b", via="b", cost=1)
    mesh.route("a", "c", via="c", cost=5)
    mesh.route("b", "a", via="a")
    mesh.route("c", "a", via="a")
    busy = Connector(mesh, "b", "k", refuse_first=1)
    served = Connector(mesh, "c", "k")
    announce(mesh, "k", frozenset({"b", "c"}))
    ingress = Ingress(mesh, "a", "k")
    assert ingress.connect()
    assert ingress.attempts.tried == ("b", "c")
    assert ingress.attempts.excluded == frozenset({"b"})
    assert not busy.streams and len(served.streams) == 1
    assert ingress.out is not None
    ingress.out.write(b"hello")
    ingress.out.end(5)
    mesh.pump()
    assert served.streams[0][0].whole


def test_refused_everywhere_gives_up_after_every_destination() -> None:
    mesh = Mesh(["a", "b"])
    mesh.connect("a", "b")
    mesh.route("a", "b", via="b")
    mesh.route("b", "a", via="a")
    Connector(mesh, "b", "k", refuse_first=10)
    announce(mesh, "k", frozenset({"b"}))
    ingress = Ingress(mesh, "a", "k")
    assert not ingress.connect()
    assert ingress.attempts.tried == ("b",)
    assert ingress.attempts.no_destination() == GiveUp(reset=True)


def test_a_reverse_stream_for_a_forgotten_stream_is_refused() -> None:
    mesh = Mesh(["a", "b"])
    mesh.connect("a", "b")
    mesh.route("a", "b", via="b")
    mesh.route("b", "a", via="a")
    owner = Owner()
    header = forward_header("a/0/99", "a", "b", "k")
    out = mesh.forwarders["b"].open_stream(reverse_header(header), owner)
    mesh.pump()
    assert owner.closed is not None and owner.closed[0] == "skupper:stream-gone"
    out.abort()


@pytest.mark.parametrize("direction", [FORWARD, REVERSE])
def test_acknowledgements_go_to_their_direction_only(direction: str) -> None:
    fwd = Forwarder("a")
    seen: list[tuple[str, int]] = []
    fwd.on_ack("s", direction, lambda s, o: seen.append((s, o)))
    fwd.router_message("a", {"k": "ack", "s": "s", "d": FORWARD, "o": 10})
    fwd.router_message("a", {"k": "ack", "s": "s", "d": REVERSE, "o": 20})
    fwd.router_message("a", {"k": "ack", "s": "s", "d": direction, "o": "bad"})
    assert seen == [("s", 10 if direction == FORWARD else 20)]
    fwd.forget_stream("s")
    fwd.router_message("a", {"k": "ack", "s": "s", "d": direction, "o": 30})
    assert len(seen) == 1


def diamond() -> Mesh:
    """a reaches d over b and over e at equal cost; a lists b only (its hash's choice),
    d lists both, in the order by which its hash sends a's streams by e."""
    mesh = Mesh(["a", "b", "d", "e"])
    for x, y in (("a", "b"), ("b", "d"), ("d", "e"), ("e", "a")):
        mesh.connect(x, y)
    mesh.route("a", "d", via="b", cost=2)
    mesh.route("b", "d", via="d")
    mesh.route("b", "a", via="a")
    mesh.route("d", "a", via=("b", "e"), cost=2)
    mesh.route("e", "a", via="a")
    mesh.route("e", "d", via="d")
    return mesh


def test_acknowledgements_go_back_along_the_links_of_the_stream_they_acknowledge() -> None:
    """d's hash would send to a by e, but the forward stream came by b: its acks go
    d-b-a, so a stopped e stops nothing the stream needs."""
    mesh = diamond()
    connector = Connector(mesh, "d", "k")
    announce(mesh, "k", frozenset({"d"}))
    ingress = Ingress(mesh, "a", "k")
    assert ingress.connect()
    ((egress_sink, reverse_out, _, header),) = connector.streams
    # the way d would take to a by its own routes is by e
    assert mesh.forwarders["d"].next_hop("a", header.stream_id) is mesh.session("d", "e")
    mesh.stopped.add("e")
    assert ingress.out is not None
    ingress.out.write(b"x" * 1000)
    mesh.pump()
    assert bytes(egress_sink.received) == b"x" * 1000
    mesh.forwarders["d"].send_ack("a", header.stream_id, FORWARD, 600)
    mesh.forwarders["d"].send_ack("a", header.stream_id, FORWARD, 1000)
    mesh.pump()
    assert ingress.acks == [600, 1000]
    # the reverse direction came back by b too (the egress answers the way the forward
    # stream came): a's acks of it go a-b-d
    reverse_acks: list[int] = []
    mesh.forwarders["d"].on_ack(header.stream_id, REVERSE, lambda _s, o: reverse_acks.append(o))
    reverse_out.write(b"y" * 500)
    mesh.pump()
    assert bytes(ingress.reverse.received) == b"y" * 500
    mesh.forwarders["a"].send_ack("d", header.stream_id, REVERSE, 500)
    mesh.pump()
    assert reverse_acks == [500]


def test_no_way_back_is_kept_once_a_stream_ends_or_its_connection_is_lost() -> None:
    mesh = diamond()
    connector = Connector(mesh, "d", "k")
    announce(mesh, "k", frozenset({"d"}))
    first, second = Ingress(mesh, "a", "k"), Ingress(mesh, "a", "k")
    assert first.connect() and second.connect()
    # a: 2 reverse directions; b: 2 forward and 2 reverse passing; d: 2 forward
    assert [mesh.forwarders[r].crossing() for r in "abde"] == [2, 4, 2, 0]
    assert first.out is not None
    first.out.end(0)
    connector.streams[0][1].end(0)
    mesh.pump()
    assert [mesh.forwarders[r].crossing() for r in "abde"] == [1, 2, 1, 0]
    # the b-d connection is lost: what crossed it is forgotten at both of its ends
    mesh.session("b", "d").lost()
    mesh.session("d", "b").lost()
    # (b also refused the forward direction toward a at once, and aborted the reverse)
    assert [mesh.forwarders[r].crossing() for r in "bd"] == [0, 0]
    mesh.pump()
    assert [mesh.forwarders[r].crossing() for r in "abde"] == [0, 0, 0, 0]
    assert second.owner.closed is not None and second.reverse.ended is True


def test_a_reverse_stream_goes_back_through_the_transit_routers_of_its_forward_stream() -> None:
    """t reaches a over x and over y at equal cost, and its hash would send the reverse
    stream by y; it goes by x, the way the forward stream came, so a stopped y stops
    neither direction nor their acknowledgements."""
    mesh = Mesh(["a", "x", "y", "t", "d"])
    for one, other in (("a", "x"), ("a", "y"), ("x", "t"), ("y", "t"), ("t", "d")):
        mesh.connect(one, other)
    mesh.route("a", "d", via="x", cost=3)
    for middle in "xy":
        mesh.route(middle, "d", via="t", cost=2)
        mesh.route(middle, "a", via="a")
    mesh.route("t", "d", via="d")
    mesh.route("t", "a", via=("x", "y"), cost=2)
    mesh.route("d", "a", via="t", cost=3)
    assert mesh.forwarders["t"].next_hop("a", "a/0/0") is mesh.session("t", "y")
    connector = Connector(mesh, "d", "k")
    announce(mesh, "k", frozenset({"d"}))
    mesh.stopped.add("y")
    ingress = Ingress(mesh, "a", "k")
    assert ingress.connect()
    ((_, reverse_out, _, header),) = connector.streams
    assert header.stream_id == "a/0/0"
    reverse_acks: list[int] = []
    mesh.forwarders["d"].on_ack(header.stream_id, REVERSE, lambda _s, o: reverse_acks.append(o))
    reverse_out.write(b"y" * 300)
    mesh.pump()
    assert bytes(ingress.reverse.received) == b"y" * 300
    mesh.forwarders["a"].send_ack("d", header.stream_id, REVERSE, 300)
    mesh.pump()
    assert reverse_acks == [300]
    assert mesh.forwarders["y"].crossing() == 0


def outcomes_at(mesh: Mesh, router: str) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    mesh.forwarders[router].message_outcome = seen.append
    return seen


def test_a_router_message_waits_for_a_route_to_its_router() -> None:
    # c's route to a lags (as a new neighbour's route can): its outcomes wait, then go
    mesh = Mesh(["a", "b", "c"])
    mesh.connect("a", "b")
    mesh.connect("b", "c")
    mesh.route("b", "a", via="a")
    seen = outcomes_at(mesh, "a")
    body = {"k": "mo", "a": ["a/0/1", "a/0/2"]}
    mesh.forwarders["c"].router_message("a", body)
    mesh.pump()
    assert seen == [] and mesh.forwarders["c"].unrouted() == 1
    mesh.route("c", "b", via="b")  # a route, but not to a: still waiting
    mesh.pump()
    assert seen == [] and mesh.forwarders["c"].unrouted() == 1
    mesh.route("c", "a", via="b", cost=2)
    mesh.pump()
    assert seen == [body] and mesh.forwarders["c"].unrouted() == 0


def test_a_router_message_goes_to_a_neighbour_with_no_route_yet() -> None:
    mesh = Mesh(["a", "b"])
    mesh.connect("a", "b")
    seen = outcomes_at(mesh, "a")
    mesh.forwarders["b"].router_message("a", {"k": "mo", "r": ["a/0/7"]})
    mesh.pump()
    assert seen == [{"k": "mo", "r": ["a/0/7"]}]
    assert mesh.forwarders["b"].unrouted() == 0


def test_router_messages_waiting_for_a_route_are_bounded() -> None:
    fwd = Forwarder("x")
    drops: list[tuple[str, int]] = []
    fwd.on_unrouted_drop = lambda router, count: drops.append((router, count))
    for n in range(UNROUTED_LIMIT + 3):
        fwd.router_message(f"r{n % 2}", {"k": "mo", "a": [f"r/0/{n}"]})
    assert fwd.unrouted() == UNROUTED_LIMIT
    assert drops == [("r0", 1), ("r1", 2), ("r0", 3)]  # the oldest went first
    assert fwd.unrouted_dropped == 3


def test_router_messages_waiting_for_a_route_are_bounded_in_size_too() -> None:
    fwd = Forwarder("x")
    big = "s" * (UNROUTED_BYTES // 3)
    for n in range(4):
        fwd.router_message("nowhere", {"k": "mo", "a": [f"{big}{n}"]})
    assert fwd.unrouted() == 2 and fwd.unrouted_dropped == 2
    fwd.router_message("nowhere", {"k": "mo", "a": ["s" * UNROUTED_BYTES]})
    assert fwd.unrouted() == 0  # larger than the bound alone: nothing else stays either


def test_only_a_routers_own_outcomes_are_remembered_by_the_connection_they_leave_by() -> None:
    # a peer's router messages pass through: they could be as large as a link takes
    mesh = Mesh(["a", "b", "c"])
    mesh.connect("a", "b")
    mesh.connect("b", "c")
    mesh.route("c", "a", via="b", cost=2)
    mesh.route("b", "a", via="a")
    seen = outcomes_at(mesh, "a")
    mesh.forwarders["c"].router_message("a", {"k": "mo", "a": ["a/0/1"]}, ours=True)
    mesh.pump()
    assert seen == [{"k": "mo", "a": ["a/0/1"]}]
    assert [to for _, to, _ in mesh.session("c", "b").recent.outcomes] == ["a"]
    assert not mesh.session("b", "a").recent.outcomes  # passed on by b: not b's own
