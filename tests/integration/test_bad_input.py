"""Bad input on the inter-router port: each case is refused with a log event and the node
keeps routing (its link to a good peer stays up and its management keeps answering)."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import time

import pytest
from harness import Mesh, wait_until

from skupper_actors.protocol.amqp import AmqpConnection
from skupper_actors.security import (
    CertificateAuthority,
    Credentials,
    client_context,
    issue_server_cert,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HANDSHAKE_TIMEOUT = 5.0  # LinkTimings.handshake_timeout


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    mesh = Mesh(tmp_path_factory.mktemp("bad-input"), ["a", "b"])
    mesh.link("b", "a")
    mesh.serve("b", "svc-b")
    mesh.start()
    wait_until(lambda: mesh["a"].routes() == {"b": (1, ("b",))}, 15, what="a-b link")
    yield mesh
    mesh.close()


def refusals(mesh: Mesh) -> list[dict]:
    return [e for e in mesh["a"].log_events() if e.get("event") == "link_refused"]


def wait_refused(mesh: Mesh, before: int, text: str, timeout: float = 10) -> dict:
    def found():
        new = refusals(mesh)[before:]
        return next((e for e in new if text in e.get("error", "")), None)

    return wait_until(found, timeout, what=f"a link_refused event mentioning {text!r}")


def assert_still_routing(mesh: Mesh) -> None:
    assert mesh["a"].alive
    assert mesh["a"].routes() == {"b": (1, ("b",))}
    addresses = {x.address: x.routers for x in mesh["a"].status().addresses}
    assert addresses["svc-b"] == ("b",)


def connection_closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def tls_client(mesh: Mesh, credentials: Credentials | None) -> ssl.SSLContext:
    ca = Credentials.load(mesh.certs.site_folder("a")).ca_pem
    if credentials is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=ca.decode())
        return context
    return client_context(credentials)


def tls_attempt(mesh: Mesh, context: ssl.SSLContext) -> None:
    """Handshake (TLS 1.3 reports a refused client certificate after it) and read."""
    raw = socket.create_connection(("127.0.0.1", mesh["a"].port), timeout=5)
    try:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"AMQP\x00\x01\x00\x00")
            tls.recv(1024)
    except (ssl.SSLError, OSError):
        pass


def test_random_bytes(pair) -> None:
    before = len(refusals(pair))
    with socket.create_connection(("127.0.0.1", pair["a"].port)) as sock:
        sock.sendall(os.urandom(4096))
        assert connection_closed_by_peer(sock, 5)
    event = wait_refused(pair, before, "TLS handshake refused")
    assert event["peer_address"].startswith("127.0.0.1:")
    assert_still_routing(pair)


def test_silent_tcp_client_is_dropped_after_handshake_timeout(pair) -> None:
    before = len(refusals(pair))
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", pair["a"].port)) as sock:
        assert connection_closed_by_peer(sock, HANDSHAKE_TIMEOUT + 5)
    assert time.monotonic() - started >= HANDSHAKE_TIMEOUT - 0.5
    wait_refused(pair, before, "no TLS handshake within")
    assert_still_routing(pair)


def test_truncated_tls_handshake(pair) -> None:
    before = len(refusals(pair))
    # capture a real ClientHello from an in-memory TLS client, send half of it, hang up
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    hello_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client = hello_ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    hello = outgoing.read()
    with socket.create_connection(("127.0.0.1", pair["a"].port)) as sock:
        sock.sendall(hello[: len(hello) // 2])
    wait_refused(pair, before, "connection lost during TLS handshake")
    assert_still_routing(pair)


def test_client_without_certificate(pair) -> None:
    before = len(refusals(pair))
    tls_attempt(pair, tls_client(pair, None))
    event = wait_refused(pair, before, "TLS handshake refused")
    assert "certificate" in event["error"]
    assert_still_routing(pair)


def test_client_with_certificate_from_another_ca(pair) -> None:
    before = len(refusals(pair))
    other = CertificateAuthority.create(common_name="some-other-ca")
    stranger = issue_server_cert(other, "stranger", ["127.0.0.1"])
    # trust a's CA (so the client gets far enough to present its own certificate)
    ca_pem = Credentials.load(pair.certs.site_folder("a")).ca_pem
    tls_attempt(pair, client_context(Credentials(stranger.cert_pem, stranger.key_pem, ca_pem)))
    event = wait_refused(pair, before, "TLS handshake refused")
    assert "certificate" in event["error"]
    assert_still_routing(pair)


def test_client_with_expired_certificate(pair) -> None:
    before = len(refusals(pair))
    now = datetime.datetime.now(datetime.UTC)
    expired = issue_server_cert(
        pair.certs.ca,
        "expired",
        ["127.0.0.1"],
        not_before=now - datetime.timedelta(days=10),
        not_after=now - datetime.timedelta(days=1),
    )
    tls_attempt(pair, client_context(expired))
    event = wait_refused(pair, before, "TLS handshake refused")
    assert "expired" in event["error"]
    assert_still_routing(pair)


def test_valid_certificate_but_not_a_router(pair) -> None:
    """TLS is fine (same CA) but the AMQP open frame does not name a router."""
    before = len(refusals(pair))
    creds = issue_server_cert(pair.certs.ca, "intruder", ["127.0.0.1"])
    raw = socket.create_connection(("127.0.0.1", pair["a"].port), timeout=5)
    with client_context(creds).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        conn = AmqpConnection("intruder", server=False, properties={"product": "not-a-router"})
        conn.open()
        tls.sendall(conn.data_to_send())
        tls.settimeout(5)
        while data := tls.recv(65536):
            conn.receive_data(data)
    wait_refused(pair, before, "not a skupper router")
    assert_still_routing(pair)


def test_peer_with_a_newer_protocol_version(pair) -> None:
    before = len(refusals(pair))
    creds = issue_server_cert(pair.certs.ca, "future", ["127.0.0.1"])
    raw = socket.create_connection(("127.0.0.1", pair["a"].port), timeout=5)
    with client_context(creds).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        conn = AmqpConnection(
            "future",
            server=False,
            properties={"skupper.router-id": "future", "skupper.instance": 1, "skupper.pv": 99},
        )
        conn.open()
        tls.sendall(conn.data_to_send())
        tls.settimeout(5)
        while data := tls.recv(65536):
            conn.receive_data(data)
    wait_refused(pair, before, "protocol version 99")
    assert_still_routing(pair)
