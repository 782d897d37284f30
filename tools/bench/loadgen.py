"""The TCP benchmark's built-in servers and clients (plain sockets, no gevent).

    python tools/bench/loadgen.py serve --sink-port P --echo-port Q

The servers run in their own process, started by ``tcp_bench.py``:

- sink: one thread per connection reads (256 KiB ``recv_into`` a reused buffer) until
  EOF, then answers the byte count as 8 bytes and closes: the client learns that every
  byte arrived, and when.
- echo: one epoll loop for all connections, so 1,000 idle connections cost no threads
  and a new connection costs no thread start; it writes back what it reads, stops
  reading while a write is pending, and closes after the client's EOF.

The client functions are called by ``tcp_bench.py`` in its own process. The same
servers and clients serve every path, the direct baseline included.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import select
import signal
import socket
import statistics
import struct
import sys
import threading
import time
from dataclasses import dataclass

CHUNK = 256 * 1024
COUNT = struct.Struct("!Q")
ECHO_SIZE = 64


# -- servers --------------------------------------------------------------------------------


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    return sock


def _sink_connection(conn: socket.socket) -> None:
    buffer = bytearray(CHUNK)
    total = 0
    try:
        while True:
            count = conn.recv_into(buffer)
            if not count:
                break
            total += count
        conn.sendall(COUNT.pack(total))
    except OSError:
        pass
    finally:
        conn.close()


def serve_sink(listener: socket.socket) -> None:
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_sink_connection, args=(conn,), daemon=True).start()


class _EchoConn:
    __slots__ = ("pending", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending: memoryview | None = None


def serve_echo(listener: socket.socket) -> None:
    listener.setblocking(False)
    poller = select.epoll()
    lfd = listener.fileno()
    poller.register(lfd, select.EPOLLIN)
    conns: dict[int, _EchoConn] = {}

    def close(fd: int) -> None:
        conn = conns.pop(fd)
        poller.unregister(fd)
        conn.sock.close()

    def flush(fd: int, conn: _EchoConn) -> None:
        assert conn.pending is not None
        try:
            sent = conn.sock.send(conn.pending)
        except BlockingIOError:
            return
        except OSError:
            close(fd)
            return
        conn.pending = conn.pending[sent:] if sent < len(conn.pending) else None
        if conn.pending is None:
            poller.modify(fd, select.EPOLLIN)

    def read(fd: int, conn: _EchoConn) -> None:
        try:
            data = conn.sock.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError:
            close(fd)
            return
        if not data:
            close(fd)
            return
        try:
            sent = conn.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            close(fd)
            return
        if sent < len(data):
            conn.pending = memoryview(data)[sent:]
            poller.modify(fd, select.EPOLLOUT)

    while True:
        for fd, events in poller.poll():
            if fd == lfd:
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    except OSError:
                        time.sleep(0.01)  # e.g. out of descriptors: let the clients back off
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[sock.fileno()] = _EchoConn(sock)
                    poller.register(sock.fileno(), select.EPOLLIN)
                continue
            conn = conns.get(fd)
            if conn is None:
                continue
            if conn.pending is not None:
                if events & (select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP):
                    flush(fd, conn)
                # the peer's EOF stays in the socket until the pending bytes are out
            elif events & (select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP):
                read(fd, conn)


def serve(sink_port: int, echo_port: int) -> None:
    sink = _listen(sink_port)
    echo = _listen(echo_port)
    threading.Thread(target=serve_sink, args=(sink,), daemon=True).start()
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    serve_echo(echo)


# -- clients --------------------------------------------------------------------------------


class BenchError(RuntimeError):
    """A measurement went wrong (wrong bytes, a refused or reset connection)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Throughput:
    streams: int
    bytes: int
    seconds: float
    gbit_per_s: float
    tool: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency:
    rounds: int
    p50_us: float
    p99_us: float
    mean_us: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionRate:
    connections: int
    errors: int
    seconds: float
    per_s: float


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    # not create_connection: its getaddrinfo would cost ~15% of a loopback connection
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    parts = []
    while size:
        part = sock.recv(size)
        if not part:
            raise BenchError("connection closed early")
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def throughput(port: int, seconds: float, streams: int = 1) -> Throughput:
    """Upload for ``seconds`` on ``streams`` connections to the sink; all bytes must arrive."""
    payload = random.Random(7).randbytes(CHUNK)
    barrier = threading.Barrier(streams)
    results: list[tuple[int, float, float] | BaseException] = [ValueError("not run")] * streams

    def one(index: int) -> None:
        try:
            with connect(port) as sock:
                sock.settimeout(max(30.0, seconds * 4))
                barrier.wait(10)
                start = time.perf_counter()
                deadline = start + seconds
                sent = 0
                while time.perf_counter() < deadline:
                    sock.sendall(payload)
                    sent += CHUNK
                sock.shutdown(socket.SHUT_WR)
                (received,) = COUNT.unpack(recv_exactly(sock, COUNT.size))
                end = time.perf_counter()
                if received != sent:
                    raise BenchError(f"stream {index}: sent {sent} bytes, sink got {received}")
                results[index] = (sent, start, end)
        except BaseException as error:  # reported below, from the calling thread
            results[index] = error

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = []
    for result in results:
        if isinstance(result, BaseException):
            raise BenchError(f"throughput stream failed: {result!r}")
        done.append(result)
    total = sum(r[0] for r in done)
    elapsed = max(r[2] for r in done) - min(r[1] for r in done)
    return Throughput(
        streams=streams,
        bytes=total,
        seconds=elapsed,
        gbit_per_s=total * 8 / elapsed / 1e9,
        tool="builtin",
    )


def echo_latency(
    port: int, rounds: int, warmup: int = 200, max_seconds: float | None = None
) -> Latency:
    """Sequential 64-byte round trips on one persistent connection.

    Stops early after ``max_seconds`` (if given) with the rounds done by then.
    """
    filler = random.Random(11).randbytes(ECHO_SIZE - 8)
    samples: list[float] = []
    clock = time.perf_counter_ns
    deadline = None if max_seconds is None else time.perf_counter() + max_seconds
    with connect(port) as sock:
        for i in range(warmup + rounds):
            if deadline is not None and samples and i % 64 == 0 and time.perf_counter() > deadline:
                break
            message = struct.pack("!Q", i) + filler
            start = clock()
            sock.sendall(message)
            answer = recv_exactly(sock, ECHO_SIZE)
            elapsed = clock() - start
            if answer != message:
                raise BenchError(f"echo round {i}: wrong bytes back")
            if i >= warmup:
                samples.append(elapsed / 1000)
    if not samples:
        raise BenchError("echo: no round trip within the time allowed")
    samples.sort()
    return Latency(
        rounds=len(samples),
        p50_us=samples[len(samples) // 2],
        p99_us=samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        mean_us=statistics.fmean(samples),
    )


def connection_rate(port: int, seconds: float) -> ConnectionRate:
    """Sequential connect, one 64-byte echo, close; as many as fit in ``seconds``."""
    message = random.Random(13).randbytes(ECHO_SIZE)
    done = errors = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        try:
            with connect(port, timeout=10) as sock:
                sock.sendall(message)
                if recv_exactly(sock, ECHO_SIZE) != message:
                    raise BenchError("connection echo: wrong bytes back")
            done += 1
        except (OSError, BenchError):
            errors += 1
            if errors > 100 and errors > done:
                raise BenchError(f"connection rate: {errors} failures, {done} successes") from None
    elapsed = time.perf_counter() - start
    return ConnectionRate(connections=done, errors=errors, seconds=elapsed, per_s=done / elapsed)


def open_idle(port: int, count: int) -> list[socket.socket]:
    """``count`` connections, each proven end to end by one echo, left open and idle."""
    socks: list[socket.socket] = []
    try:
        for i in range(count):
            sock = connect(port)
            socks.append(sock)
            message = struct.pack("!Q", i)
            sock.sendall(message)
            if recv_exactly(sock, len(message)) != message:
                raise BenchError(f"idle connection {i}: wrong bytes back")
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()
    socks.clear()


def integrity(port: int, mib: int) -> int:
    """Send ``mib`` MiB of random bytes through the echo server; the same bytes must return.

    Returns the byte count verified.
    """
    rng = random.Random(17)
    chunks = [rng.randbytes(CHUNK - 1 - i) for i in range(8)]  # odd sizes, varied boundaries
    sent_hash = hashlib.sha256()
    got_hash = hashlib.sha256()
    target = mib << 20
    failure: list[BaseException] = []
    with connect(port, timeout=30) as sock:

        def writer() -> None:
            sent = 0
            try:
                while sent < target:
                    chunk = chunks[(sent // CHUNK) % len(chunks)]
                    sock.sendall(chunk)
                    sent_hash.update(chunk)
                    sent += len(chunk)
                sock.shutdown(socket.SHUT_WR)
            except OSError as error:
                failure.append(error)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        received = 0
        while True:
            data = sock.recv(CHUNK)
            if not data:
                break
            got_hash.update(data)
            received += len(data)
        thread.join()
    if failure:
        raise BenchError(f"integrity: writer failed: {failure[0]!r}")
    if got_hash.digest() != sent_hash.digest():
        raise BenchError(f"integrity: {received} bytes came back and differ from what was sent")
    return received


# -- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve_p = sub.add_parser("serve", help="run the sink and echo servers until killed")
    serve_p.add_argument("--sink-port", type=int, required=True)
    serve_p.add_argument("--echo-port", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.sink_port, args.echo_port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
