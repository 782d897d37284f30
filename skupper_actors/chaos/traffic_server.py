"""The server behind every connector: checks what clients send, answers with seeded content."""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable
from typing import Any

import gevent
from gevent.server import StreamServer

from .ledger import Ledger, Outcome
from .pattern import (
    DOWN,
    HEADER_SIZE,
    REQUEST,
    STREAM,
    UP,
    ExchangeHeader,
    HeaderError,
    Pattern,
    Verifier,
    connection_of,
)

READ_SIZE = 64 * 1024


class _EndOfInput(Exception):
    """The peer closed its side cleanly (EOF) before sending anything."""


class _ShortRead(Exception):
    """The peer closed its side cleanly (EOF) in the middle of something."""


def recv_exactly(sock: Any, count: int) -> bytes:
    """``count`` bytes; a clean EOF raises _EndOfInput before any byte, _ShortRead after some."""
    parts: list[bytes] = []
    remaining = count
    while remaining:
        data = sock.recv(min(remaining, READ_SIZE))
        if not data:
            if remaining == count:
                raise _EndOfInput()
            raise _ShortRead(f"clean EOF {remaining} bytes short of {count}")
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


#: how long a clean-looking EOF waits for the socket's writer to say whether it was a reset
RESET_SETTLE = 0.5


def reset_seen_by_writer(writer: Any) -> OSError | None:
    """The error that ended ``writer`` (a ``quietly`` greenlet on the same socket), if any.

    Linux hands a received reset to the first call on the socket only: when the writer's
    send takes the ECONNRESET, the reader's next recv returns b"" as if the peer had ended
    cleanly. A clean EOF before every byte is a silent truncation only if the writer did
    not meet a reset meanwhile.
    """
    writer.join(RESET_SETTLE)
    value = writer.value if writer.dead else None
    return value if isinstance(value, OSError) else None


def quietly(function: Any, *args: Any) -> OSError | None:
    """Run ``function``; return the socket error it raised instead of raising it.

    For helper greenlets, whose failures the owner inspects (gevent would print them).
    """
    try:
        function(*args)
    except OSError as error:
        return error
    return None


def abort(sock: Any) -> None:
    """Close with a reset (SO_LINGER 0), so the far end sees an error and not a clean end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class TrafficServer:
    """A gevent TCP server on ``host``; every verdict goes to the shared ledger."""

    def __init__(
        self,
        ledger: Ledger,
        now: Callable[[], float],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        idle_timeout: float = 20.0,
        site: str = "",
    ) -> None:
        self.ledger = ledger
        #: the connector's site: the node whose connections this server receives
        self.site = site
        self.now = now
        self.idle_timeout = idle_timeout
        self._server = StreamServer((host, port), self._handle, backlog=1024)
        self.host = host
        self.port = port
        self.accepted = 0

    def start(self) -> TrafficServer:
        self._server.start()
        self.port = self._server.server_port
        return self

    def stop(self) -> None:
        self._server.stop(timeout=1)

    def _handle(self, sock: Any, _address: object) -> None:
        self.accepted += 1
        sock.settimeout(self.idle_timeout)
        try:
            raw = recv_exactly(sock, HEADER_SIZE)
            header = ExchangeHeader.decode(raw)
        except HeaderError as error:
            self.ledger.server_verdict(
                0, Outcome.CORRUPTED, self.now(), verified=0, error=str(error)
            )
            abort(sock)
            return
        except _ShortRead as short:
            # a clean end inside the header: silent truncation, of a connection we cannot name
            self.ledger.server_verdict(
                0, Outcome.TRUNCATED, self.now(), verified=0, error=str(short)
            )
            abort(sock)
            return
        except (_EndOfInput, OSError):
            abort(sock)
            return
        if header.kind == STREAM:
            self._stream(sock, header)
        elif header.kind == REQUEST:
            self._requests(sock, header)

    def _verdict(
        self, header: ExchangeHeader, outcome: Outcome, verifier: Verifier, error: str | None
    ) -> None:
        self.ledger.server_verdict(
            connection_of(header.stream_id),
            outcome,
            self.now(),
            verified=verifier.verified,
            error=error,
            first_bad=verifier.first_bad,
            site=self.site,
        )

    def _stream(self, sock: Any, header: ExchangeHeader) -> None:
        pattern = Pattern(header.pool_seed)
        verifier = Verifier(pattern, header.stream_id, UP, header.up)
        writer = gevent.spawn(
            quietly, _send_all, sock, pattern.chunks(header.stream_id, DOWN, header.down)
        )
        outcome, error = Outcome.INTACT, None
        try:
            while True:
                data = sock.recv(READ_SIZE)
                if not data:
                    break
                if not verifier.feed(data):
                    break
        except TimeoutError:
            outcome, error = Outcome.TIMEOUT, "no bytes for the idle timeout"
        except OSError as error_:
            outcome, error = Outcome.ERROR, f"{type(error_).__name__}: {error_}"
        if verifier.first_bad is not None:
            outcome, error = Outcome.CORRUPTED, f"byte {verifier.first_bad} differs"
        elif outcome is Outcome.INTACT and not verifier.complete:
            reset = reset_seen_by_writer(writer)
            if reset is not None:
                outcome, error = Outcome.ERROR, f"{type(reset).__name__}: {reset} (writing)"
            else:
                outcome = Outcome.TRUNCATED
                error = f"clean EOF after {verifier.received} of {header.up} bytes"
        if outcome is not Outcome.INTACT:
            writer.kill()
            abort(sock)
        else:
            writer.join()
            if writer.value is not None:
                outcome, error = Outcome.ERROR, f"writing: {writer.value}"
                abort(sock)
            else:
                sock.close()
        self._verdict(header, outcome, verifier, error)

    def _requests(self, sock: Any, header: ExchangeHeader | None) -> None:
        first = header
        assert first is not None
        verifier = Verifier(Pattern(first.pool_seed), first.stream_id, UP, first.up)
        outcome, error = Outcome.INTACT, None
        try:
            while header is not None:
                pattern = Pattern(header.pool_seed)
                verifier = Verifier(pattern, header.stream_id, UP, header.up)
                remaining = header.up
                while remaining:
                    data = sock.recv(min(remaining, READ_SIZE))
                    if not data:
                        raise _Truncated(verifier.received, header.up)
                    remaining -= len(data)
                    if not verifier.feed(data):
                        raise _Corrupted()
                _send_all(sock, pattern.chunks(header.stream_id, DOWN, header.down), end=False)
                try:
                    header = ExchangeHeader.decode(recv_exactly(sock, HEADER_SIZE))
                except _EndOfInput:
                    header = None
        except (_Truncated, _ShortRead) as truncated:
            outcome, error = Outcome.TRUNCATED, str(truncated)
        except (_Corrupted, HeaderError) as bad:
            outcome, error = Outcome.CORRUPTED, str(bad) or f"byte {verifier.first_bad} differs"
        except TimeoutError:
            outcome, error = Outcome.TIMEOUT, "no bytes for the idle timeout"
        except OSError as error_:
            outcome, error = Outcome.ERROR, f"{type(error_).__name__}: {error_}"
        if outcome is Outcome.INTACT:
            sock.close()
        else:
            abort(sock)
        self._verdict(first if header is None else header, outcome, verifier, error)


class _Truncated(Exception):
    def __init__(self, received: int, expected: int) -> None:
        super().__init__(f"clean EOF after {received} of {expected} bytes")


class _Corrupted(Exception):
    pass


def _send_all(sock: Any, chunks: Any, end: bool = True) -> None:
    """Send every chunk; with ``end``, then half-close (EOF marks the end of the direction)."""
    for chunk in chunks:
        sock.sendall(chunk)
    if end:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
