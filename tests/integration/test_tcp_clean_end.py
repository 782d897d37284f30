"""The clean-end rule with real nodes: a connection ends with a FIN only when the far
end's stream ended cleanly *and* every byte it announced was written (ADR 0009).

a -(frame-dropping relay)- b   plaintext link; listener at a, connector at b.

The relay drops one AMQP transfer frame in the middle of a stream and passes everything
else, the end of the stream included: bytes lost on the way while the end still
arrives, the shape of every silent truncation (a hop that loses bytes but passes the
end on). Proton appends the next frames to the delivery as if nothing was missing, so
only the length announced at the end can tell.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
from harness import LinkProxy, Mesh, free_port, wait_until
from test_tcp import add_connector, add_listener, wait_matched

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CHUNK = 1000
CHUNKS = 40
# a 1000-byte chunk of a stream is one data section: descriptor, vbin32, its length
SECTION = b"\x00\x53\x75\xb0" + CHUNK.to_bytes(4, "big")


class FrameDropRelay:
    """A TCP relay for one AMQP connection that drops the ``nth`` transfer frame
    holding a whole ``SECTION`` on its way from the connecting side."""

    def __init__(self, target_port: int, nth: int) -> None:
        self.target_port = target_port
        self.nth = nth
        self.seen = 0
        self.dropped = 0
        self.port = free_port()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()  # the target is not up yet: the node retries its link
                continue
            upstream.settimeout(None)
            self._socks += [client, upstream]
            threading.Thread(target=self._frames, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._copy, args=(upstream, client), daemon=True).start()

    def _copy(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def _frames(self, source: socket.socket, sink: socket.socket) -> None:
        buffer = bytearray()
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                buffer += data
                out = bytearray()
                while True:
                    if buffer[:4] == b"AMQP":  # a protocol header (SASL's, then AMQP's)
                        if len(buffer) < 8:
                            break
                        out += buffer[:8]
                        del buffer[:8]
                        continue
                    if len(buffer) < 8:
                        break
                    size = int.from_bytes(buffer[:4], "big")
                    if len(buffer) < size:
                        break
                    frame = bytes(buffer[:size])
                    del buffer[:size]
                    body = frame[buffer_offset(frame) :]
                    if body[:3] == b"\x00\x53\x14" and SECTION in frame:
                        self.seen += 1
                        if self.seen == self.nth:
                            self.dropped += 1
                            continue
                    out += frame
                sink.sendall(out)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._server.close()
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()


def buffer_offset(frame: bytes) -> int:
    return frame[4] * 4  # data offset, in 4-byte words


class CountingServer:
    """Counts the bytes of each connection and records how it ended."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.endings: list[tuple[str, int]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        received = 0
        try:
            while data := conn.recv(65536):
                received += len(data)
            self.endings.append(("eof", received))
        except ConnectionResetError:
            self.endings.append(("reset", received))
        finally:
            conn.close()

    def close(self) -> None:
        self._server.close()


def test_a_stream_that_lost_bytes_on_the_way_ends_in_a_reset_not_an_eof(tmp_path) -> None:
    server = CountingServer()
    mesh = Mesh(tmp_path, ["a", "b"], plaintext=True)
    relay = FrameDropRelay(mesh["b"].port, nth=10)
    mesh.link("a", "b", port=relay.port)
    port = add_listener(mesh, "a", "drop")
    add_connector(mesh, "b", "drop", server.port)
    try:
        mesh.start()
        wait_matched(mesh, "a", "drop")
        with socket.create_connection(("127.0.0.1", port), timeout=20) as client:
            for index in range(CHUNKS):
                client.sendall(bytes([index]) * CHUNK)
                time.sleep(0.02)  # one chunk, one section, one transfer frame
            client.shutdown(socket.SHUT_WR)
            wait_until(lambda: server.endings, 15, what="the server to see the end")
            with contextlib.suppress(OSError):
                while client.recv(65536):
                    pass
        assert relay.dropped == 1, "the relay must drop one frame for the test to mean anything"
        ((ending, received),) = server.endings
        assert received < CHUNK * CHUNKS
        assert ending == "reset", f"a clean EOF after {received} of {CHUNK * CHUNKS} bytes"
    finally:
        relay.close()
        mesh.close()
        server.close()


class SlowAnswer:
    """Reads a request to its EOF, then answers slowly; records how the answer ended."""

    def __init__(self, chunks: int = 400) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.chunks = chunks
        self.request = 0
        self.endings: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                self.request += len(data)
            try:
                for _ in range(self.chunks):
                    conn.sendall(b"y" * 65536)
                    time.sleep(0.005)
                conn.shutdown(socket.SHUT_WR)
                self.endings.append("sent everything")
            except OSError as error:
                self.endings.append(type(error).__name__)

    def close(self) -> None:
        self._server.close()


def test_the_answer_path_lost_after_the_request_ended_cleanly_resets_the_client(
    tmp_path,
) -> None:
    """a - b -(proxy)- c: the client's request ended cleanly (its stream is over), then
    the link the answer crosses is cut: the client sees a reset, never an EOF."""
    server = SlowAnswer()
    mesh = Mesh(tmp_path, ["a", "b", "c"])
    proxy = LinkProxy(mesh["c"].port)
    mesh.link("a", "b")
    mesh.link("b", "c", port=proxy.port)
    port = add_listener(mesh, "a", "answer")
    add_connector(mesh, "c", "answer", server.port)
    try:
        mesh.start()
        wait_matched(mesh, "a", "answer")
        with socket.create_connection(("127.0.0.1", port), timeout=20) as client:
            client.sendall(b"q" * 10_000)
            client.shutdown(socket.SHUT_WR)
            received = 0
            while received < 1 << 20:
                data = client.recv(65536)
                assert data, "the answer ended before the cut"
                received += len(data)
            assert server.request == 10_000
            proxy.cut()
            with pytest.raises(ConnectionResetError):
                while client.recv(65536):
                    pass
    finally:
        proxy.close()
        mesh.close()
        server.close()
