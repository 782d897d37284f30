"""Issue 13, part A: the grant port under a flood, and bad resources contained (real nodes).

Nodes run under a 1,024 open-file limit, the usual soft limit under systemd user units
and supervisord. A TCP service through both sites carries checked bytes (SHA-256 both
ways) during and after each attack.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import resource
import selectors
import socket
import ssl
import struct
import threading
import time
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from harness import free_port, wait_until
from servers import HashServer, pattern_digest, recv_exactly, transfer
from sites import SiteProcess

from skupper_actors.api import AccessToken, AccessTokenSpec, Metadata

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

NOFILE = 1024
FLOOD = 1300  # ~1,100 would do; the margin keeps it sure on a slow machine
TIMEOUT = 10.0  # the grant server's handshake and idle timeouts here: the flood piles up


def issue_token(site: SiteProcess, grant: str, name: str | None = None) -> AccessToken:
    site.write("AccessGrant", grant, {"redemptionsAllowed": 1, "expirationWindow": "15m"})
    site.reload()
    status = site.wait_condition("AccessGrant", grant, "Resolved").status
    assert status.url and status.code and status.ca  # type: ignore[union-attr]
    return AccessToken(
        metadata=Metadata(name=name or f"token-{grant}"),
        spec=AccessTokenSpec(url=status.url, code=status.code, ca=status.ca),  # type: ignore[union-attr]
    )


def redeem(site: SiteProcess, token: AccessToken) -> None:
    site.write_resource(token)
    site.reload()


def error_of(site: SiteProcess, kind: str, name: str, timeout: float = 15) -> str:
    """The one-line message of the resource's Error status."""

    def failed() -> str | None:
        found = site.status_of(kind, name)
        if found is None or found.status is None or found.status.status != "Error":
            return None
        return found.status.message

    return wait_until(failed, timeout, what=f"{kind}/{name} to show an error at {site.name}")


def linked_pair(sites, server: HashServer, **west_settings: str):
    """west (link access, a connector) and east (a listener), linked by a redeemed token."""
    west = sites("west", link_access=True)
    east = sites("east")
    if west_settings:
        settings = {"grant-server-port": str(free_port()), **west_settings}
        west.write("Site", "west", {"linkAccess": "default", "settings": settings})
    west.write("Connector", "svc", {"routingKey": "svc", "host": "127.0.0.1", "port": server.port})
    listen = free_port()
    east.write("Listener", "svc", {"routingKey": "svc", "host": "127.0.0.1", "port": listen})
    return west, east, listen


class LongTransfer:
    """One connection through both sites, sending until stopped, then checked both ways."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sent = 0
        self.result: tuple[bool, bool] | str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        digest = hashlib.sha256()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
                sock.sendall(struct.pack("!Q", 1 << 20))
                chunk = os.urandom(16 << 10)
                while not self._stop.is_set():
                    sock.sendall(chunk)
                    digest.update(chunk)
                    self.sent += len(chunk)
                    time.sleep(0.01)
                sock.shutdown(socket.SHUT_WR)
                echoed = recv_exactly(sock, 32)
                back = hashlib.sha256()
                while data := sock.recv(1 << 16):
                    back.update(data)
            pattern_ok = back.digest() == pattern_digest(1 << 20, 1 << 20)
            self.result = (echoed == digest.digest(), pattern_ok)
        except OSError as error:
            self.result = f"{type(error).__name__}: {error}"

    def finish(self) -> tuple[bool, bool] | str | None:
        self._stop.set()
        self._thread.join(60)
        return self.result


def raise_own_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"the test process may open only {hard} files")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def open_idle(port: int, sources: list[str], each: int, batch: int = 100) -> list[socket.socket]:
    """`each` connections from every source address that send nothing.

    Opened `batch` at a time, each batch given up to a second to connect, so that the
    listen backlog does not overflow while the node still accepts (an overflow makes the
    kernel answer with SYN cookies: connects the node never sees).
    """
    opened: list[socket.socket] = []
    targets = [source for source in sources for _ in range(each)]
    for start in range(0, len(targets), batch):
        selector = selectors.DefaultSelector()
        for source in targets[start : start + batch]:
            sock = socket.socket()
            sock.setblocking(False)
            sock.bind((source, 0))
            sock.connect_ex(("127.0.0.1", port))
            opened.append(sock)
            selector.register(sock, selectors.EVENT_WRITE)
        pending = len(selector.get_map())
        deadline = time.monotonic() + 1.0
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.1):
                selector.unregister(key.fileobj)
                pending -= 1
        selector.close()
    return opened


def count_closed(socks: list[socket.socket], wait: float) -> int:
    """How many of `socks` the peer closed (EOF or reset), watching for `wait` seconds."""
    selector = selectors.DefaultSelector()  # epoll: more than 1,024 descriptors
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
    closed = 0
    deadline = time.monotonic() + wait
    try:
        while closed < len(socks) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj
                try:
                    data = sock.recv(4096)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""  # a reset is a close too
                if not data:
                    selector.unregister(sock)
                    closed += 1
    finally:
        selector.close()
    return closed


def open_fds(site: SiteProcess) -> int:
    assert site.proc is not None
    return len(os.listdir(f"/proc/{site.proc.pid}/fd"))


def closed_at_once(port: int, source: str) -> bool:
    """Connect from `source`: True if the node closes the connection within 2 s."""
    with socket.socket() as sock:
        sock.bind((source, 0))
        sock.settimeout(2)
        try:
            sock.connect(("127.0.0.1", port))  # the reset may come before this returns
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def grant_answer(token: AccessToken, path: str) -> int:
    """POST a wrong code to the grant server at `path`: the HTTP status it answers."""
    url = urlsplit(token.spec.url)
    context = ssl.create_default_context(cadata=token.spec.ca)
    connection = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=5)
    try:
        connection.request("POST", path, body=b"wrong", headers={"skupper-site-name": "probe"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_flood_of_idle_sockets_to_the_grant_port_under_1024_descriptors(sites) -> None:
    raise_own_file_limit(FLOOD + 500)
    server = HashServer()
    west, east, listen = linked_pair(
        sites,
        server,
        **{
            # the total cap above the descriptor limit: the flood exhausts descriptors
            "grant-server-max-connections": "4000",
            "grant-server-max-connections-per-peer": "20",
            "grant-server-handshake-timeout": str(TIMEOUT),
            "grant-server-idle-timeout": str(TIMEOUT),
        },
    )
    west.start(nofile=NOFILE)
    east.start(nofile=NOFILE)
    token = issue_token(west, "for-east")
    port = urlsplit(token.spec.url).port
    assert port is not None
    redeem(east, token)
    east.wait_condition("Listener", "svc", "Matched")
    assert transfer(listen, 1 << 20, 1 << 20) == (True, True, None)
    during = LongTransfer(listen)
    held: list[socket.socket] = []
    flood: list[socket.socket] = []
    try:
        # one address past its cap: refused at once, with a log event
        held = open_idle(port, ["127.0.0.9"], 20)
        wait_until(
            lambda: (west.client.status().counters or {}).get(
                "grant_server_connections_accepted", 0
            )
            >= 20,
            10,
            what="the 20 held connections to be accepted",
        )
        assert closed_at_once(port, "127.0.0.9")
        refused = west.log_events("grant_connection_refused")
        assert refused and refused[-1]["reason"] == "max_connections_per_peer"
        assert refused[-1]["peer"] == "127.0.0.9"
        # 1,300 idle sockets from 69 addresses (19 each: under the per-peer cap)
        baseline = open_fds(west) - len(held)
        flood = open_idle(port, [f"127.0.1.{i}" for i in range(1, 70)], 19)
        assert len(flood) >= FLOOD
        wait_until(
            lambda: west.log_events("accept_paused"), 30, what="the grant server to run out"
        )
        sent_before = during.sent
        time.sleep(1.0)
        assert during.sent > sent_before, "the transfer through both sites stalled"
        assert west.proc is not None and west.proc.poll() is None
        # every connection the node took is closed by the handshake timeout, however long
        # it waited in the backlog: the node holds its usual descriptors again. (Some
        # connects of the flood never reach the node: with the backlog full the kernel
        # answers with SYN cookies and forgets them; they cost the node nothing.)
        wait_until(
            lambda: open_fds(west) <= baseline + 5, 60, what="west's descriptors to come back"
        )
        accepted = west.client.status().counters["grant_server_connections_accepted"]
        assert accepted >= NOFILE - baseline  # the flood did fill the descriptor table
        assert count_closed(flood + held, 5) >= accepted - 1  # all but the token's own
    finally:
        for sock in flood + held:
            sock.close()
        result = during.finish()
    assert result == (True, True), result
    # after: the node and its link are up, new connections carry checked bytes again
    assert west.proc.poll() is None and east.proc is not None and east.proc.poll() is None
    assert transfer(listen, 1 << 20, 1 << 20) == (True, True, None)
    assert east.client.status().links[0].state == "up"
    assert len(east.log_events("link_opened")) == 1  # never reconnected
    assert grant_answer(token, "/no-such-grant") == 404  # the grant server serves again
    counters = west.client.status().counters
    assert counters["grant_server_refused_max_connections_per_peer"] >= 1
    assert counters["grant_server_closed_handshake_timeout"] >= accepted - 1
    assert counters["grant_server_accept_paused"] >= 1
    paused = west.log_events("accept_paused")
    assert paused[0]["listener"] == "grant-server"
    assert west.log_events("accept_resumed")
    # the controller could not list input/resources meanwhile: it kept its state, retried
    assert west.log_events("controller_step_failed")[0]["errno"] == 24  # EMFILE
    assert west.log_events("controller_step_recovered")
    server.close()


def test_bad_resources_are_contained_and_the_nodes_start_again_with_them(sites) -> None:
    server = HashServer()
    west, east, listen = linked_pair(sites, server)
    west.start(nofile=NOFILE)
    east.start(nofile=NOFILE)
    token = issue_token(west, "for-east")
    redeem(east, token)
    east.wait_condition("Listener", "svc", "Matched")
    site_ca = east.ns.runtime_certs_dir / "skupper-site-ca"
    ca_files = {p.name: p.read_bytes() for p in site_ca.iterdir()}
    # a grant whose window ends in year 13434
    west.write("AccessGrant", "forever", {"expirationWindow": "99999999h"})
    # a file of 5,000 nested '['
    (west.ns.resources_dir / "deep.yaml").write_text("[" * 5000)
    west.reload()
    assert error_of(west, "AccessGrant", "forever") == (
        "expirationWindow must be at most 87840h (10 years), not 99999999h"
    )
    assert west.status_of("AccessGrant", "forever").status.url is None  # type: ignore[union-attr]
    assert any("nested too deeply" in e["problem"] for e in west.log_events("resource_invalid"))
    # a token named after the site CA's folder, a link reading the site's server key
    second = issue_token(west, "second")
    redeem(east, replace(second, metadata=Metadata(name="skupper-site-ca")))
    east.write(
        "Link",
        "sneaky",
        {
            "endpoints": [{"name": "inter-router", "host": "127.0.0.1", "port": str(west.port)}],
            "tlsCredentials": "skupper-site-server",
        },
    )
    east.reload()
    reserved = "is reserved for the site's own certificates"
    assert reserved in error_of(east, "AccessToken", "skupper-site-ca")
    assert reserved in error_of(east, "Link", "sneaky")
    assert {p.name: p.read_bytes() for p in site_ca.iterdir()} == ca_files
    assert west.status_of("AccessGrant", "second").status.redemptions == 0  # type: ignore[union-attr]
    assert transfer(listen, 1 << 20, 1 << 20) == (True, True, None)
    for site in (west, east):
        assert site.proc is not None and site.proc.poll() is None
        for event in ("resource_rejected", "resource_invalid"):
            for record in site.log_events(event):
                assert "\n" not in str(record.get("problem", ""))
    # both start again with every bad resource still there
    for site in (west, east):
        site.stop()
        site.start(nofile=NOFILE)
    east.wait_condition("Listener", "svc", "Matched", timeout=20)
    assert transfer(listen, 1 << 20, 1 << 20) == (True, True, None)
    assert "at most 87840h" in error_of(west, "AccessGrant", "forever")
    assert reserved in error_of(east, "AccessToken", "skupper-site-ca")
    assert reserved in error_of(east, "Link", "sneaky")
    deep = [e for e in west.log_events("resource_invalid") if "nested too deeply" in e["problem"]]
    assert len(deep) >= 2  # at the first load and again at the start
    assert {p.name: p.read_bytes() for p in site_ca.iterdir()} == ca_files
    server.close()


def test_a_deep_file_present_at_the_first_start(sites) -> None:
    west = sites("west")
    (west.ns.resources_dir / "deep.json").write_text("[" * 5000)
    west.start(nofile=NOFILE)
    wait_until(
        lambda: any(
            "nested too deeply" in e["problem"] for e in west.log_events("resource_invalid")
        ),
        10,
        what="the deep file to be reported",
    )
    west.wait_condition("Site", "west", "Running")
    assert west.proc is not None and west.proc.poll() is None


def test_a_site_with_a_long_name_redeems_and_the_token_is_not_burned(sites) -> None:
    long_name = "east-" + "x" * 35  # 40 characters
    west = sites("west", link_access=True)
    east = sites("east")
    east.remove("Site", "east")
    east.write("Site", long_name, {"settings": {"grant-server-port": str(free_port())}})
    east.name = long_name
    west.start()
    east.start()
    token = issue_token(west, "for-the-long-named-site")  # the common name would be 68 long
    redeem(east, token)
    east.wait_condition("AccessToken", token.name, "Redeemed")
    link = east.wait_condition("Link", token.name, "Operational")
    assert link.status.remote_site_name == "west"  # type: ignore[union-attr]
    redeemed = west.log_events("grant_redeemed")
    assert [(r["redeemer"], r["redemptions"]) for r in redeemed] == [(long_name, 1)]
    cert = (east.ns.runtime_certs_dir / token.name / "tls.crt").read_bytes()
    from cryptography import x509

    common_name = x509.load_pem_x509_certificate(cert).subject.rfc4514_string()
    assert common_name.startswith(f"CN={long_name}-via-") and len(common_name) == 3 + 64


def tls_to_grant_port(token: AccessToken) -> ssl.SSLSocket:
    url = urlsplit(token.spec.url)
    context = ssl.create_default_context(cadata=token.spec.ca)
    raw = socket.create_connection((url.hostname, url.port), timeout=10)
    return context.wrap_socket(raw, server_hostname=url.hostname)


def ended(sock: socket.socket) -> bool:
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, ssl.SSLError):
        pass
    return True


def test_the_grant_server_closes_idle_and_oversized_connections_and_caps_a_peer(sites) -> None:
    west = sites("west", link_access=True)
    west.write(
        "Site",
        "west",
        {
            "linkAccess": "default",
            "settings": {
                "grant-server-port": str(free_port()),
                "grant-server-idle-timeout": "1",
                "grant-server-max-request-bytes": "2048",
            },
        },
    )
    west.start(nofile=NOFILE)
    token = issue_token(west, "probe")
    # idle after the handshake: closed after the idle timeout
    started = time.monotonic()
    with tls_to_grant_port(token) as idle:
        assert ended(idle)
    assert 0.8 <= time.monotonic() - started < 5
    # a request larger than the budget: cut there, and the code is never read
    with tls_to_grant_port(token) as big:
        big.sendall(b"POST /x HTTP/1.1\r\nHost: w\r\nX-Pad: " + b"p" * 4096 + b"\r\n\r\n")
        answer = big.recv(4096)
        assert not answer.startswith(b"HTTP/1.1 200") and ended(big)
    wait_until(  # logged just after the close
        lambda: {"idle_timeout", "request_too_large"}
        <= {e["reason"] for e in west.log_events("grant_connection_closed")},
        5,
        what="both closes to be logged",
    )
    # the default per-peer cap: 8 connections from one address, the 9th is refused
    url = urlsplit(token.spec.url)
    assert url.port is not None
    held = [socket.create_connection(("127.0.0.1", url.port), timeout=5) for _ in range(8)]
    try:
        wait_until(
            lambda: west.client.status().counters["grant_server_connections_accepted"] >= 10,
            10,
            what="the 8 held connections to be accepted",
        )
        assert closed_at_once(url.port, "127.0.0.1")
    finally:
        for sock in held:
            sock.close()
    counters = west.client.status().counters
    assert counters["grant_server_refused_max_connections_per_peer"] == 1
    assert counters["grant_server_closed_idle_timeout"] == 1
    assert counters["grant_server_closed_request_too_large"] == 1
    assert grant_answer(token, "/no-such-grant") == 404  # and it still serves
