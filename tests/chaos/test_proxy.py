"""The fault proxy actor on real sockets (no nodes): each mode does what it says."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import gevent
import gevent.socket
import pytest
from gevent.server import StreamServer

from skupper_actors.chaos import (
    Bandwidth,
    Blackhole,
    Cut,
    FaultProxy,
    Flap,
    FlipBits,
    GetProxyStatistics,
    Latency,
    Pass,
    SetMode,
)
from skupper_actors.chaos.topology import free_port
from skupper_actors.kernel import ActorRef, ChildSpec, Registry, Supervisor, spawn

pytestmark = pytest.mark.timeout(60)


class Echo:
    """Echoes everything; counts what it received."""

    def __init__(self) -> None:
        self.received = 0
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()
        self.port = self.server.server_port

    def _handle(self, sock: Any, _: object) -> None:
        try:
            while data := sock.recv(65536):
                self.received += len(data)
                sock.sendall(data)
        except OSError:
            pass


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.server.stop(timeout=1)


@pytest.fixture
def proxy(echo: Echo) -> Iterator[tuple[ActorRef, int]]:
    port = free_port()
    ref = spawn(
        FaultProxy(
            link="x", listen_host="127.0.0.1", listen_port=port, target_host="127.0.0.1",
            target_port=echo.port, seed=1,
        )
    )  # fmt: skip
    yield ref, port
    ref.stop()


def connect(port: int) -> Any:
    sock = gevent.socket.create_connection(("127.0.0.1", port), timeout=3)
    sock.settimeout(3)
    return sock


def round_trip(sock: Any, size: int = 100) -> float:
    started = time.monotonic()
    sock.sendall(b"p" * size)
    got = 0
    while got < size:
        data = sock.recv(65536)
        assert data, "connection closed"
        got += len(data)
    return time.monotonic() - started


def mode(ref: ActorRef, new: object) -> None:
    ref.ask(SetMode(mode=new))  # type: ignore[arg-type]  # answered once the mode is set


def test_pass_and_latency(proxy: tuple[ActorRef, int]) -> None:
    ref, port = proxy
    sock = connect(port)
    assert round_trip(sock) < 0.1
    mode(ref, Latency(delay=0.15))
    delayed = sorted(round_trip(sock) for _ in range(3))
    assert 0.3 <= delayed[1] < 0.6  # 150 ms each way
    mode(ref, Pass())
    assert round_trip(sock) < 0.1
    stats = ref.ask(GetProxyStatistics())
    assert stats.bytes_relayed >= 2 * 5 * 100 and stats.open_pairs == 1
    sock.close()


def test_set_mode_answers_the_counters_at_the_switch(proxy: tuple[ActorRef, int]) -> None:
    ref, port = proxy
    sock = connect(port)
    round_trip(sock)
    at_switch = ref.ask(SetMode(mode=Latency(delay=0.01)))
    assert at_switch.mode == "Pass" and at_switch.bytes_relayed >= 2 * 100
    round_trip(sock)
    back = ref.ask(SetMode(mode=Pass()))
    assert back.mode == "Latency(delay=0.01)" and back.at > at_switch.at
    assert back.bytes_relayed > at_switch.bytes_relayed
    sock.close()


def test_bandwidth_cap(proxy: tuple[ActorRef, int], echo: Echo) -> None:
    ref, port = proxy
    mode(ref, Bandwidth(rate=1 << 20))
    sock = connect(port)
    stop = False

    def write() -> None:
        while not stop:
            sock.sendall(b"b" * 65536)

    def drain() -> None:
        while sock.recv(65536):
            pass

    writer, reader = gevent.spawn(write), gevent.spawn(drain)
    gevent.sleep(0.5)
    before, started = echo.received, time.monotonic()
    gevent.sleep(2.0)
    rate = (echo.received - before) / (time.monotonic() - started)
    stop = True
    gevent.killall([writer, reader])
    sock.close()
    assert 0.75 * (1 << 20) < rate < 1.25 * (1 << 20), rate


def test_a_restore_right_after_a_cut_listens_again(proxy: tuple[ActorRef, int]) -> None:
    """A mode that closes the listener and one that reopens it, handled in one go (a
    flap's down and the fault's end did): the port is bound again, not "in use"."""
    ref, port = proxy
    for _ in range(5):
        ref.tell(SetMode(mode=Cut()))
        ref.tell(SetMode(mode=Pass()))
        assert ref.ask(GetProxyStatistics()).mode == "Pass"
    sock = connect(port)
    assert round_trip(sock) < 1.0
    sock.close()


def test_cut_resets_and_refuses_then_restores(proxy: tuple[ActorRef, int]) -> None:
    ref, port = proxy
    sock = connect(port)
    round_trip(sock)
    mode(ref, Cut())
    with pytest.raises(OSError):
        round_trip(sock)  # reset
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    mode(ref, Pass())
    assert round_trip(connect(port)) < 0.1
    transitions = [state for _, state in ref.ask(GetProxyStatistics()).transitions]
    assert transitions == ["down", "up"]


def test_blackhole_accepts_and_delivers_nothing_not_even_a_close(
    proxy: tuple[ActorRef, int], echo: Echo
) -> None:
    ref, port = proxy
    old = connect(port)
    round_trip(old)
    mode(ref, Blackhole())
    received = echo.received
    old.sendall(b"lost" * 1000)
    fresh = connect(port)  # new connections are accepted too
    fresh.sendall(b"also lost")
    fresh.settimeout(0.5)
    with pytest.raises(TimeoutError):
        fresh.recv(10)  # nothing comes back, and no close either
    assert echo.received == received
    stats = ref.ask(GetProxyStatistics())
    assert stats.bytes_dropped >= 4000 + 9
    mode(ref, Pass())  # what was held is reset: its bytes are gone for good
    with pytest.raises(OSError):
        round_trip(old)
    assert round_trip(connect(port)) < 0.1


def test_flap_alternates(proxy: tuple[ActorRef, int]) -> None:
    ref, port = proxy
    mode(ref, Flap(period=0.2))
    gevent.sleep(0.9)
    mode(ref, Pass())
    states = [state for _, state in ref.ask(GetProxyStatistics()).transitions]
    assert states[:4] == ["down", "up", "down", "up"] and states[-1] == "up"
    assert round_trip(connect(port)) < 0.1


def test_flip_bits_changes_bytes(proxy: tuple[ActorRef, int]) -> None:
    ref, port = proxy
    mode(ref, FlipBits(every=1000, seed=3))
    sock = connect(port)
    sock.sendall(bytes(20000))
    got = b""
    while len(got) < 20000:
        got += sock.recv(65536)
    assert got != bytes(20000)
    assert ref.ask(GetProxyStatistics()).bits_flipped > 10
    sock.close()


def test_a_crashed_proxy_is_restarted_on_its_port(echo: Echo) -> None:
    port = free_port()
    registry = Registry()
    start = partial(
        FaultProxy, link="x", listen_host="127.0.0.1", listen_port=port,
        target_host="127.0.0.1", target_port=echo.port,
    )  # fmt: skip
    supervisor = Supervisor([ChildSpec(id="x", start=start, registry=registry)])
    spawn(supervisor)
    try:
        first = registry.lookup("x")
        assert first is not None
        assert round_trip(connect(port)) < 0.1
        first.tell("not a message a proxy knows")  # crashes it (let it crash)
        deadline = time.monotonic() + 5
        while (registry.lookup("x") in (None, first)) and time.monotonic() < deadline:
            gevent.sleep(0.05)
        assert registry.lookup("x") not in (None, first)
        assert round_trip(connect(port)) < 0.1
        assert supervisor.ref.statistics().restarts_total == 1
    finally:
        supervisor.ref.stop()
