"""Wires: the byte pipe under an inter-router connection, plain TCP or TLS.

A wire reads in large batches and writes without ever blocking its caller: ``write_some``
takes what the kernel (or, for TLS, the encryptor) takes now and says how much; the
caller waits for ``wait_writable`` only when it has nothing better to do.

TLS runs through memory BIOs, not a TLS socket: one ``recv`` of up to 256 KiB feeds
every record it holds to the decryptor, and the encrypted output of a whole write leaves
in one ``send``. A TLS socket reads one 16 KiB record per call (two syscalls each) and
writes each record with its own syscall, which cost this data path a third of its CPU.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from typing import Any, Final

import gevent
import gevent.socket

READ_SIZE: Final = 256 * 1024
#: plaintext encrypted per call, and the ciphertext a TLS wire holds before it refuses more
TLS_WRITE_CHUNK: Final = 256 * 1024


class HandshakeFailed(Exception):
    """A peer did not complete the TLS handshake (refused, garbage, timeout)."""


def describe_ssl_error(error: ssl.SSLError) -> str:
    reason = getattr(error, "reason", None) or ""
    if isinstance(error, ssl.SSLEOFError) or reason == "UNEXPECTED_EOF_WHILE_READING":
        return "connection lost during TLS handshake (the peer hung up)"
    verify = getattr(error, "verify_message", None)
    if verify:
        return f"TLS handshake refused: {verify}"
    if reason:
        return f"TLS handshake refused: {reason.lower().replace('_', ' ')}"
    return f"TLS handshake refused: {error}"


class _SocketWire:
    """What both wires do with the TCP socket itself."""

    __slots__ = ("_buffer", "_emptied", "_raw", "_view", "sock")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self._raw = sock._sock  # gevent's socket wraps a non-blocking stdlib socket
        self._buffer = bytearray(READ_SIZE)
        self._view = memoryview(self._buffer)
        self._emptied = False  # the last read did not fill the buffer

    def _recv_into(self, buffer: bytearray) -> int:
        """Read into ``buffer``, waiting for bytes. After a read that did not fill the
        buffer the kernel most likely holds nothing more: wait for the socket to be
        readable before asking (a ``recv`` that fails with EAGAIN is a system call and
        an exception for nothing, once per read otherwise)."""
        sock = self.sock
        if self._emptied:
            sock._wait(sock._read_event)  # gevent's own wait: timeouts, close, as recv's
        while True:
            try:
                # the raw socket's: gevent's recv_into is this, in Python, around it
                count: int = self._raw.recv_into(buffer)
                break
            except (BlockingIOError, InterruptedError):
                sock._wait(sock._read_event)
        self._emptied = count < len(buffer)
        return count

    def _recv_now(self, buffer: bytearray) -> int | None:
        """Read into ``buffer`` without waiting: None when the kernel holds nothing."""
        try:
            count: int = self._raw.recv_into(buffer)
        except (BlockingIOError, InterruptedError):
            return None
        self._emptied = count < len(buffer)
        return count

    def fileno(self) -> int:
        return int(self._raw.fileno())

    @property
    def emptied(self) -> bool:
        """The last read did not fill the buffer: the kernel most likely holds nothing
        more (after a full one, a bulk sender's next bytes are most likely there)."""
        return self._emptied

    def wait_writable(self) -> None:
        gevent.socket.wait_write(self._raw.fileno())

    def shutdown(self) -> None:
        self._raw.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


class PlainWire(_SocketWire):
    """A TCP socket (gevent's, for waiting; its raw non-blocking socket, for writing)."""

    __slots__ = ()

    def read(self) -> memoryview:
        """Wait for bytes; empty at end of file. Valid until the next ``read``."""
        count = self._recv_into(self._buffer)
        return self._view[:count]

    def read_now(self) -> memoryview | None:
        """``read`` without waiting: None when nothing has arrived."""
        count = self._recv_now(self._buffer)
        return None if count is None else self._view[:count]

    def buffered(self) -> bool:
        return False  # what the kernel holds is the kernel's

    def write_some(self, data: memoryview) -> int:
        try:
            sent: int = self._raw.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        return sent

    def drain(self) -> bool:
        return True  # nothing is held above the kernel


class TlsWire(_SocketWire):
    """TLS over a TCP socket through memory BIOs (after ``tls_handshake``)."""

    __slots__ = ("_cipher", "_cipher_view", "_incoming", "_outgoing", "_pending", "_ssl", "_tls")

    def __init__(
        self, sock: Any, tls: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO
    ) -> None:
        super().__init__(sock)
        self._cipher = bytearray(READ_SIZE)  # ciphertext read, before the decryptor takes it
        self._cipher_view = memoryview(self._cipher)
        self._tls = tls
        # the C object under ssl.SSLObject, whose read, write and pending are Python
        # calls around these (several per record on this path)
        self._ssl: Any = tls._sslobj  # type: ignore[attr-defined]
        self._incoming = incoming
        self._outgoing = outgoing
        self._pending = memoryview(b"")  # ciphertext the kernel has not taken yet

    @property
    def tls(self) -> ssl.SSLObject:
        return self._tls

    def read(self) -> memoryview:
        """Decrypt every whole record received; wait for more only when there is none.

        The decryptor is asked only while it has ciphertext (or plaintext) left, or the
        end to report: asking it with none raises SSLWantReadError, an exception per
        read twice over (before the ``recv`` and after the last record)."""
        while True:
            view = self._decrypt()
            if view is not None:
                return view
            got = self._recv_into(self._cipher)
            if not got:
                self._incoming.write_eof()
            else:
                self._incoming.write(self._cipher_view[:got])

    def read_now(self) -> memoryview | None:
        """``read`` without waiting: None when no whole record has arrived yet."""
        view = self._decrypt()
        if view is not None:
            return view
        got = self._recv_now(self._cipher)
        if got is None:
            return None
        if not got:
            self._incoming.write_eof()
        else:
            self._incoming.write(self._cipher_view[:got])
        return self._decrypt()

    def buffered(self) -> bool:
        """Ciphertext or plaintext held above the kernel (a whole record, maybe)."""
        return bool(self._incoming.pending or self._ssl.pending())

    def _decrypt(self) -> memoryview | None:
        """Every whole record held, decrypted (empty: the peer's end); None: none held."""
        tls = self._ssl
        incoming = self._incoming
        if not (incoming.pending or incoming.eof or tls.pending()):
            return None
        view = self._view
        count = 0
        try:
            while count < READ_SIZE:
                got = tls.read(READ_SIZE - count, view[count:])
                if not got:
                    return view[:count]  # the peer's close_notify
                count += got
                if not incoming.pending and not tls.pending():
                    return view[:count]
            return view
        except ssl.SSLWantReadError:
            return view[:count] if count else None
        except ssl.SSLEOFError:
            return view[:count]  # the connection ended without close_notify

    def write_some(self, data: memoryview) -> int:
        """Encrypt up to one chunk if the last one's ciphertext has left; 0 if not."""
        if (self._pending or self._outgoing.pending) and not self.drain():
            return 0
        tls = self._ssl
        size = len(data)
        if size <= TLS_WRITE_CHUNK:
            taken: int = tls.write(data)  # most writes: one record or a few, one send
            self.drain()
            return taken
        taken = 0
        while taken < size:
            taken += tls.write(data[taken : taken + TLS_WRITE_CHUNK])
            if not self.drain():
                break
        return taken

    def drain(self) -> bool:
        """Send held ciphertext without blocking; True when none is left."""
        while True:
            pending = self._pending
            if not pending:
                if not self._outgoing.pending:
                    return True
                pending = memoryview(self._outgoing.read())
            try:
                sent = self._raw.send(pending)
            except (BlockingIOError, InterruptedError):
                self._pending = pending
                return False
            self._pending = pending[sent:]
            if self._pending:
                return False


Wire = PlainWire | TlsWire


def tls_handshake(
    context: ssl.SSLContext,
    sock: Any,
    *,
    server_side: bool,
    server_hostname: str | None = None,
    timeout: float = 10.0,
) -> TlsWire:
    """Complete a TLS handshake over ``sock`` within ``timeout``; raise HandshakeFailed.

    The socket is closed on failure. Certificate checks are the context's own.
    """
    incoming = ssl.MemoryBIO()
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(
        incoming, outgoing, server_side=server_side, server_hostname=server_hostname
    )
    try:
        with gevent.Timeout(timeout, HandshakeFailed(f"no TLS handshake within {timeout:g} s")):
            while True:
                try:
                    tls.do_handshake()
                except ssl.SSLWantReadError:
                    if outgoing.pending:
                        sock.sendall(outgoing.read())
                    data = sock.recv(READ_SIZE)
                    if not data:
                        raise HandshakeFailed(
                            "connection lost during TLS handshake (the peer hung up)"
                        ) from None
                    incoming.write(data)
                    continue
                if outgoing.pending:
                    sock.sendall(outgoing.read())
                break
    except ssl.SSLError as error:
        _send_alert(sock, outgoing)
        sock.close()
        raise HandshakeFailed(describe_ssl_error(error)) from None
    except HandshakeFailed:
        sock.close()
        raise
    except OSError as error:
        sock.close()
        raise HandshakeFailed(f"connection lost during TLS handshake: {error}") from None
    return TlsWire(sock, tls, incoming, outgoing)


def _send_alert(sock: Any, outgoing: ssl.MemoryBIO) -> None:
    """Tell the peer why (the alert OpenSSL wrote), if the socket takes it at once."""
    if outgoing.pending:
        with contextlib.suppress(OSError):
            sock._sock.send(outgoing.read())


__all__ = ["READ_SIZE", "HandshakeFailed", "PlainWire", "TlsWire", "Wire", "tls_handshake"]
