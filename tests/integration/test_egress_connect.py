"""The egress's connect to its server without a greenlet (``PendingConnect``, ADR 0021):
real sockets on 127.0.0.1, then real nodes whose server goes away and comes back."""

from __future__ import annotations

import signal
import socket
import time

import gevent
import pytest
from harness import Mesh, free_port, wait_until
from servers import HashServer, transfer
from test_tcp import adaptor, add_connector, add_listener, wait_matched

from skupper_actors.actors.acceptpause import AcceptPause, CallbackAcceptor
from skupper_actors.actors.tcp import tcpends
from skupper_actors.actors.tcp.tcpedge import reset_on_close
from skupper_actors.actors.tcp.tcpends import PendingConnect

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def outcome_of(port: int) -> tuple[object, OSError | None]:
    told: list[tuple[object, OSError | None]] = []
    PendingConnect((socket.AF_INET, ("127.0.0.1", port)), lambda s, e: told.append((s, e)))
    with gevent.Timeout(5):
        while not told:
            gevent.sleep(0.01)
    assert len(told) == 1
    return told[0]


def test_a_connect_that_succeeds_hands_over_a_connected_socket() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        sock, error = outcome_of(listener.getsockname()[1])
        assert error is None
        accepted, _ = listener.accept()
        sock.sendall(b"ping")  # type: ignore[attr-defined]
        assert accepted.recv(4) == b"ping"
        accepted.close()
        sock.close()  # type: ignore[attr-defined]
    finally:
        listener.close()


def test_a_connect_hands_its_stopped_watcher_over_for_reading_the_socket() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        told: list[tuple[object, OSError | None]] = []
        pending = PendingConnect(
            (socket.AF_INET, listener.getsockname()), lambda s, e: told.append((s, e))
        )
        with gevent.Timeout(5):
            while not told:
                gevent.sleep(0.01)
        sock, error = told[0]
        assert error is None
        watcher = pending.take_watcher()
        assert watcher is not None and not watcher.active
        assert watcher.fd == sock.fileno()  # type: ignore[attr-defined]
        assert pending.take_watcher() is None  # handed over once
        accepted, _ = listener.accept()
        read: list[bytes] = []
        watcher.events = 1  # readable, as the connection's pump sets it
        watcher.start(lambda: read.append(sock.recv(16)))  # type: ignore[attr-defined]
        accepted.sendall(b"pong")
        with gevent.Timeout(5):
            while not read:
                gevent.sleep(0.01)
        assert read == [b"pong"]
        watcher.stop()
        watcher.close()
        accepted.close()
        sock.close()  # type: ignore[attr-defined]
    finally:
        listener.close()


def test_a_connect_on_this_host_is_settled_without_waiting_for_the_socket() -> None:
    """On loopback the kernel completes the handshake within the first connect: the
    second one answers at once, so no writable watcher is started (a loop pass, two
    epoll_ctl calls and a wake-up less per connection); its outcome comes from the next
    round of loop callbacks, never from the constructor."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        told: list[tuple[object, OSError | None]] = []
        pending = PendingConnect(
            (socket.AF_INET, listener.getsockname()), lambda s, e: told.append((s, e))
        )
        assert told == []
        assert pending._watcher is not None and not pending._watcher.active
        assert pending._timer is None
        gevent.sleep(0)
        assert len(told) == 1 and told[0][1] is None
        sock = told[0][0]
        assert sock.getpeername() == listener.getsockname()  # type: ignore[attr-defined]
        sock.close()  # type: ignore[attr-defined]
    finally:
        listener.close()


def test_a_refused_connect_says_why() -> None:
    sock, error = outcome_of(free_port())
    assert sock is None and isinstance(error, ConnectionRefusedError)


def test_a_cancelled_connect_tells_nothing_and_closes_its_socket() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        told: list[object] = []
        pending = PendingConnect(
            (socket.AF_INET, listener.getsockname()), lambda s, e: told.append((s, e))
        )
        pending.cancel()
        gevent.sleep(0.1)
        assert told == []
        accepted, _ = listener.accept()  # the kernel had completed it; we closed our end
        accepted.settimeout(2)
        assert accepted.recv(1) == b""
        accepted.close()
    finally:
        listener.close()


def test_a_connect_that_hangs_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcpends, "CONNECT_TIMEOUT", 0.3)
    # a listener that never accepts, its queue full: further SYNs are dropped, and a
    # connect waits (the kernel retries) until our timer gives up
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(2):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        time.sleep(0.2)
        started = time.monotonic()
        sock, error = outcome_of(listener.getsockname()[1])
        assert sock is None and isinstance(error, TimeoutError)
        assert 0.25 < time.monotonic() - started < 2
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


class _Log:
    def __init__(self) -> None:
        self.events: list[str] = []

    def warning(self, event: str, **_: object) -> None:
        self.events.append(event)

    info = warning


def test_the_callback_acceptor_hands_over_nonblocking_sockets_with_the_listeners_options() -> None:
    """Accepted from a watcher's callback, 64 at most per call, each a plain non-blocking
    socket that inherited Nagle off and the reset-on-close linger from the listener."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    reset_on_close(listener)
    taken: list[tuple[object, object]] = []
    pause = AcceptPause(_Log(), "t")
    acceptor = CallbackAcceptor(listener, pause, lambda c, a: taken.append((c, a)))
    clients = [socket.create_connection(listener.getsockname()) for _ in range(100)]
    try:
        with gevent.Timeout(5):
            while len(taken) < 100:
                gevent.sleep(0.01)
        for (sock, address), client in zip(taken, clients, strict=True):
            assert address == client.getsockname()
            assert sock.getblocking() is False  # type: ignore[attr-defined]
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1  # type: ignore[attr-defined]
            linger = sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)  # type: ignore[attr-defined]
            assert linger[:4] == (1).to_bytes(4, "little")
        acceptor.stop()
        late = socket.create_connection(listener.getsockname())
        gevent.sleep(0.1)
        assert len(taken) == 100  # stopped: the listener is the caller's to close
        late.close()
    finally:
        for sock, _ in taken:
            sock.close()  # type: ignore[attr-defined]
        for client in clients:
            client.close()
        listener.close()


def test_a_server_that_goes_away_is_refused_then_served_again(tmp_path) -> None:
    server = HashServer()
    port = server.port
    mesh = Mesh(tmp_path, ["a", "b"])
    mesh.link("a", "b")
    listener = add_listener(mesh, "a", "k")
    add_connector(mesh, "b", "k", port)
    try:
        mesh.start()
        wait_matched(mesh, "a", "k")
        assert transfer(listener, 1000, 1000) == (True, True, None)  # address now known
        server.close()
        started = time.monotonic()
        result = transfer(listener, 10, 10, timeout=10)
        assert result.sent_ok is False and result.received_ok is False
        assert time.monotonic() - started < 2.0
        assert adaptor(mesh, "b", "connector", "k").refused >= 1
        server = HashServer(port=port)
        for seed in range(5):
            assert transfer(listener, 5000, 5000, seed=seed) == (True, True, None)
    finally:
        mesh.close()
        server.close()


def test_an_attempt_with_no_answer_gives_up_after_the_accept_timeout(tmp_path) -> None:
    """The far router holds its route but says nothing (stopped; HELLOs may age for 60 s):
    the ingress's attempt times out (``ACCEPT_TIMEOUT``, a timer since ADR 0021), and
    with no other destination the client is reset, never left waiting."""
    server = HashServer()
    mesh = Mesh(tmp_path, ["a", "b"], hello_interval=1.0, hello_max_age=60.0)
    mesh.link("a", "b")
    listener = add_listener(mesh, "a", "k")
    add_connector(mesh, "b", "k", server.port)
    try:
        mesh.start()
        wait_matched(mesh, "a", "k")
        assert transfer(listener, 100, 100) == (True, True, None)
        mesh["b"].signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            result = transfer(listener, 10, 10, timeout=30)
            waited = time.monotonic() - started
            assert result.sent_ok is False and result.received_ok is False
            assert tcpends.ACCEPT_TIMEOUT - 1 < waited < tcpends.ACCEPT_TIMEOUT + 5
            assert adaptor(mesh, "a", "listener", "k").refused >= 1
        finally:
            mesh["b"].signal(signal.SIGCONT)
        for seed in range(3):
            assert transfer(listener, 1000, 1000, seed=seed) == (True, True, None)
    finally:
        mesh.close()
        server.close()


def test_a_listener_out_of_descriptors_pauses_and_serves_again(tmp_path) -> None:
    """The TCP listener accepts from a loop callback (``CallbackAcceptor``, ADR 0021):
    with its descriptors used up it pauses (once logged), loses nothing it took, and
    accepts again when clients leave."""
    server = HashServer()
    mesh = Mesh(tmp_path, ["a", "b"])
    mesh.link("a", "b")
    listener = add_listener(mesh, "a", "k")
    add_connector(mesh, "b", "k", server.port)
    mesh["a"].nofile = 160
    clients: list[socket.socket] = []
    try:
        mesh.start()
        wait_matched(mesh, "a", "k")
        assert transfer(listener, 1000, 1000) == (True, True, None)
        for _ in range(300):  # more than a's descriptors: the rest wait in the backlog
            client = socket.create_connection(("127.0.0.1", listener), timeout=5)
            clients.append(client)
        wait_until(
            lambda: any(e["event"] == "accept_paused" for e in mesh["a"].log_events()),
            20,
            what="a's listener to run out of descriptors",
        )
        paused = [e for e in mesh["a"].log_events() if e["event"] == "accept_paused"]
        assert len(paused) == 1 and paused[0]["listener"] == "tcp-k"
        assert paused[0]["errno"] == 24  # EMFILE
        for client in clients:
            client.close()
        clients.clear()
        wait_until(
            lambda: any(e["event"] == "accept_resumed" for e in mesh["a"].log_events()),
            20,
            what="a's listener to accept again",
        )
        for seed in range(3):
            assert transfer(listener, 5000, 5000, seed=seed) == (True, True, None)
        assert mesh["a"].proc is not None and mesh["a"].proc.poll() is None
    finally:
        for client in clients:
            client.close()
        mesh.close()
        server.close()
