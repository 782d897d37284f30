"""A stream's flow must not hang on a router its data does not cross (issue 12, found by the
ring5-chord chaos run: uploads stalled until the server's idle timeout, never reset).

    a ---- b        a dials b, e dials a, b dials d, d dials e: a reaches d over a-b-d and
    |      |        a-e-d at equal cost, and the two ends list those next hops in opposite
    e ---- d        orders (by link id: a has [incoming from e, to-b], d [incoming from b, to-e])

The ingress at a picks the forward stream's next hop by a hash of the stream id over its
list, and the egress at d sends that direction's acknowledgements by the same hash over
its own list: over the other transit router. Stopping e then stopped the acknowledgements
of every stream whose data goes through b; their windows stayed full and nothing reset
them, because their data path was intact. Acknowledgements now go back hop by hop along
the links of the stream they acknowledge (ADR 0009, addendum), so this test guards that.
"""

from __future__ import annotations

import signal
import socket
import threading
import time

import pytest
from harness import Mesh, free_port, wait_until
from servers import CHUNK, Server

pytestmark = [pytest.mark.integration]

CONNECTIONS = 12
QUIET = 3.0  # no byte taken for this long, and no error: stalled


class DrainServer(Server):
    """Reads and discards everything."""

    def handle(self, conn: socket.socket) -> None:
        while conn.recv(CHUNK):
            pass


class Uploader:
    """One client connection sending paced chunks until stopped; it records when the
    socket last took bytes and the error that ended it, if any."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.settimeout(0.5)
        self.sent = 0
        self.last_progress = time.monotonic()
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        chunk = b"x" * (64 << 10)
        while not self._stop.is_set():
            try:
                count = self.sock.send(chunk)
            except TimeoutError:
                continue
            except OSError as error:
                self.error = f"{type(error).__name__}: {error}"
                return
            self.sent += count
            self.last_progress = time.monotonic()
            self._stop.wait(0.02)

    def state(self, now: float) -> str:
        if self.error is not None:
            return "reset"
        return "flowing" if now - self.last_progress < QUIET else "stalled"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.mark.timeout(90)
def test_stopping_a_router_off_the_data_path_does_not_stall_an_upload(tmp_path) -> None:
    server = DrainServer()
    mesh = Mesh(tmp_path, ["a", "b", "d", "e"], hello_interval=1.0, hello_max_age=3.0)
    mesh.link("a", "b")
    mesh.link("e", "a")
    mesh.link("b", "d")
    mesh.link("d", "e")
    port = free_port()
    mesh["a"].config["listeners"] = [
        {"name": "up", "routing_key": "up", "host": "127.0.0.1", "port": port}
    ]
    mesh["d"].config["connectors"] = [
        {"name": "up", "routing_key": "up", "host": "127.0.0.1", "port": server.port}
    ]
    uploads: list[Uploader] = []
    try:
        mesh.start()

        def both_ways() -> bool:
            return mesh["a"].routes().get("d") == mesh["d"].routes().get("a") == (2, ("b", "e"))

        wait_until(both_ways, 15, what="two equal paths between a and d")
        wait_until(lambda: all(x.matched for x in mesh["a"].status().adaptors), 15, what="match")
        uploads = [Uploader(port) for _ in range(CONNECTIONS)]
        time.sleep(1.5)
        assert all(u.state(time.monotonic()) == "flowing" for u in uploads)
        mesh["e"].signal(signal.SIGSTOP)
        # e is dropped after the HELLO max age; then every stream through e must have been
        # reset, and every stream through b must still flow
        wait_until(lambda: mesh["a"].routes().get("d") == (2, ("b",)), 10, what="e dropped")
        time.sleep(QUIET + 1.0)
        now = time.monotonic()
        states = [u.state(now) for u in uploads]
        through_b = states.count("flowing") + states.count("stalled")
        assert through_b, f"no stream took b ({states}): the hash sent all through e"
        assert states.count("stalled") == 0, (
            f"{states.count('stalled')} of {CONNECTIONS} uploads stalled with no reset, "
            f"{states.count('flowing')} flowing, {states.count('reset')} reset"
        )
    finally:
        mesh["e"].signal(signal.SIGCONT)
        for upload in uploads:
            upload.close()
        mesh.close()
        server.close()
