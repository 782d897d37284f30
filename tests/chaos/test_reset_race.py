"""A reset the writer's send takes first reads as a clean EOF at the reader (Linux hands a
received RST to one call only): the harness must not count that as a silent truncation.

Found by the ten-minute ring5-chord run: a server end logged "clean EOF after 360448 of
1479974 bytes" 0.4 ms after its router reset the connection (a transit router killed).
"""

from __future__ import annotations

import socket
import struct

import gevent
import gevent.socket
import pytest

from skupper_actors.chaos.traffic_server import quietly, reset_seen_by_writer

pytestmark = pytest.mark.timeout(20)


def _send_forever(sock: socket.socket) -> None:
    chunk = b"x" * 65536
    while True:
        sock.sendall(chunk)


def _pair() -> tuple[socket.socket, socket.socket]:
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    peer = gevent.socket.create_connection(listener.getsockname())
    ours, _ = listener.accept()
    listener.close()
    return ours, peer


def test_a_reset_taken_by_the_writer_is_seen_and_the_reader_reads_an_eof() -> None:
    ours, peer = _pair()
    writer = gevent.spawn(quietly, _send_forever, ours)
    gevent.sleep(0.3)  # the writer fills the buffers and blocks in send
    assert not writer.dead
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()  # a reset
    writer.join(5)
    assert isinstance(writer.value, OSError)  # the writer took the reset...
    assert ours.recv(65536) == b""  # ...so the reader sees what looks like a clean end
    assert isinstance(reset_seen_by_writer(writer), OSError)
    ours.close()


def test_a_clean_end_with_the_writer_still_sending_is_a_clean_end() -> None:
    ours, peer = _pair()
    drain = gevent.spawn(lambda: [None for _ in iter(lambda: peer.recv(65536), b"")])
    writer = gevent.spawn(quietly, _send_forever, ours)
    peer.shutdown(socket.SHUT_WR)  # a FIN: the peer still reads
    assert ours.recv(65536) == b""
    assert reset_seen_by_writer(writer) is None  # still sending: a clean end, not a reset
    writer.kill()
    drain.kill()
    ours.close()
    peer.close()
