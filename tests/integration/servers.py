"""Real TCP servers and clients for adaptor tests (threads; the test process is not gevent).

The hash protocol checks integrity and half-close at once: the client sends an 8-byte
size N, then its payload, then shuts down its write side; the server hashes what it
received until EOF, answers with the 32-byte SHA-256 of it followed by N bytes of a
seeded pattern, and closes. Both sides compare hashes of every byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import socket
import struct
import threading
from collections.abc import Iterator
from typing import NamedTuple

CHUNK = 256 * 1024
BLOCK = 1 << 20
_blocks: dict[int, bytes] = {}


def pattern(size: int, seed: int) -> Iterator[bytes]:
    """``size`` bytes in chunks; every 1 MiB block starts with its index, so reordering shows."""
    base = _blocks.get(seed)
    if base is None:
        base = _blocks[seed] = random.Random(seed).randbytes(BLOCK)
    index = 0
    sent = 0
    while sent < size:
        block = index.to_bytes(8, "big") + base[8:]
        take = min(BLOCK, size - sent)
        view = memoryview(block)[:take]
        for start in range(0, take, CHUNK):
            yield bytes(view[start : start + CHUNK])
        sent += take
        index += 1


def pattern_digest(size: int, seed: int) -> bytes:
    digest = hashlib.sha256()
    for chunk in pattern(size, seed):
        digest.update(chunk)
    return digest.digest()


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    parts = []
    while count:
        data = sock.recv(min(count, CHUNK))
        if not data:
            raise ConnectionError(f"EOF with {count} bytes still expected")
        parts.append(data)
        count -= len(data)
    return b"".join(parts)


class Server:
    """A threaded TCP server on 127.0.0.1; subclasses implement ``handle``."""

    def __init__(self, port: int = 0, name: str = "server") -> None:
        self.name = name
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        except OSError as error:
            with self.lock:
                self.errors.append(f"{type(error).__name__}: {error}")
        finally:
            conn.close()

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with self.lock:
            for conn in self.conns:
                with contextlib.suppress(OSError):
                    conn.close()


class HashServer(Server):
    def handle(self, conn: socket.socket) -> None:
        (back,) = struct.unpack("!Q", recv_exactly(conn, 8))
        digest = hashlib.sha256()
        while data := conn.recv(CHUNK):
            digest.update(data)
        conn.sendall(digest.digest())
        for chunk in pattern(back, seed=back):
            conn.sendall(chunk)


class NameServer(Server):
    """Says its name, then holds the connection until the client closes it."""

    def handle(self, conn: socket.socket) -> None:
        conn.sendall(self.name.encode() + b"\n")
        while conn.recv(CHUNK):
            pass


class SinkServer(Server):
    """Accepts and never reads: a stalled reader."""

    def handle(self, conn: socket.socket) -> None:
        threading.Event().wait(600)


class Transfer(NamedTuple):
    sent_ok: bool
    received_ok: bool
    error: str | None = None


def transfer(port: int, send: int, back: int, seed: int = 1, timeout: float = 60) -> Transfer:
    """One hash-protocol exchange through ``port``; checks both directions' bytes."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(struct.pack("!Q", back))
            digest = hashlib.sha256()
            for chunk in pattern(send, seed):
                sock.sendall(chunk)
                digest.update(chunk)
            sock.shutdown(socket.SHUT_WR)
            echoed = recv_exactly(sock, 32)
            received = hashlib.sha256()
            remaining = back
            while remaining:
                data = sock.recv(min(CHUNK, remaining))
                if not data:
                    return Transfer(echoed == digest.digest(), False, f"EOF {remaining} short")
                received.update(data)
                remaining -= len(data)
            trailing = sock.recv(1)
            return Transfer(
                echoed == digest.digest(),
                received.digest() == pattern_digest(back, seed=back) and trailing == b"",
            )
    except OSError as error:
        return Transfer(False, False, f"{type(error).__name__}: {error}")
