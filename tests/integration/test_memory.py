"""Memory under slow readers, with real nodes: the node-wide buffer budget holds, and
the resident size comes back after the burst (docs/limits.md, "Memory").

a ---- b       listener "slow" at a; connector "slow" at b to a server that reads
               each connection slowly: b's queues for the server's sockets fill.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from harness import Mesh, free_port, wait_until
from servers import Server, recv_exactly, transfer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

KiB, MiB = 1 << 10, 1 << 20
STREAMS = 20
PER_STREAM = 4 * MiB
# A budget the slow readers pass at once: b holds its acknowledgements and pauses its
# reads for most of the run, and every stream must still arrive whole.
BUDGET = 256 * KiB
WINDOW = 1 * MiB  # the default
# After a burst, a node's resident size comes back to within this of its size before
# (docs/limits.md states it; measured +7 to +12 MiB on this machine).
RSS_BOUND = 24 * MiB


class SlowHashServer(Server):
    """The hash protocol (servers.HashServer), read 16 KiB at a time every 40 ms from a
    small receive buffer: ~0.4 MiB/s per connection, slower than the nodes forward."""

    def __init__(self, pause: float = 0.04) -> None:
        self.pause = pause
        super().__init__()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * KiB)

    def handle(self, conn: socket.socket) -> None:
        (back,) = struct.unpack("!Q", recv_exactly(conn, 8))
        digest = hashlib.sha256()
        while data := conn.recv(16 * KiB):
            digest.update(data)
            time.sleep(self.pause)
        conn.sendall(digest.digest())
        conn.sendall(b"\0" * back)


def counters(mesh: Mesh, site: str) -> dict[str, int]:
    return dict(mesh[site].status().counters)


def test_slow_readers_stay_within_the_budget_and_memory_comes_back(tmp_path):
    server = SlowHashServer()
    mesh = Mesh(tmp_path, ["a", "b"])
    mesh.link("a", "b")
    port = free_port()
    mesh["a"].config["listeners"] = [
        {"name": "slow", "routing_key": "slow", "host": "127.0.0.1", "port": port}
    ]
    mesh["b"].config["connectors"] = [
        {"name": "slow", "routing_key": "slow", "host": "127.0.0.1", "port": server.port}
    ]
    mesh["b"].config["tcp_buffer_budget"] = BUDGET
    mesh["a"].config["tcp_window"] = mesh["b"].config["tcp_window"] = WINDOW
    try:
        mesh.start()
        wait_until(
            lambda: any(x.matched for x in mesh["a"].status().adaptors), 15, what="slow matched"
        )
        assert transfer(port, 64 * KiB, 0).sent_ok  # warm-up: one connection end to end
        time.sleep(3.5)  # let the first check of the memory actor pass
        before = {site: mesh[site].rss_kib() * KiB for site in ("a", "b")}
        assert counters(mesh, "b")["tcp_buffer_budget_bytes"] == BUDGET

        peaks: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peaks.append(counters(mesh, "b")["tcp_buffered_bytes"])
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        with ThreadPoolExecutor(STREAMS) as pool:
            results = list(
                pool.map(
                    lambda seed: transfer(port, PER_STREAM, 0, seed=seed, timeout=120),
                    range(1, STREAMS + 1),
                )
            )
        done.set()
        sampler.join(5)
        assert all(r.sent_ok and r.received_ok for r in results), results

        after_burst = counters(mesh, "b")
        # the budget was passed and paused b: once per episode, each told in the log
        hits = after_burst["tcp_buffer_budget_reached"]
        assert hits >= 1, after_burst
        events = [
            e for e in mesh["b"].log_events() if e.get("event") == "tcp_buffer_budget_reached"
        ]
        assert len(events) == hits and events[0]["limit"] == BUDGET, events
        # past the budget, what still arrives is what the far senders' windows had open
        # when it was passed: at most one window per stream (docs/limits.md)
        bound = BUDGET + STREAMS * WINDOW
        assert after_burst["tcp_buffered_bytes_peak"] <= bound, after_burst
        assert max(peaks) <= bound
        # every queued byte left the budget once the streams ended
        wait_until(lambda: counters(mesh, "b")["tcp_buffered_bytes"] == 0, 10, what="drained")

        def settled() -> bool:
            return all(mesh[s].rss_kib() * KiB - before[s] <= RSS_BOUND for s in ("a", "b"))

        try:
            wait_until(settled, 20, interval=0.5, what="resident sizes to come back")
        except AssertionError:
            now = {s: mesh[s].rss_kib() * KiB for s in ("a", "b")}
            raise AssertionError(f"rss before {before}, now {now}, bound {RSS_BOUND}") from None
        assert all(mesh[s].alive for s in ("a", "b"))
    finally:
        mesh.close()
        server.close()
