"""Sites from namespace folders: tokens, live reconcile, bad files (real nodes, real HTTPS)."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import struct
import threading
import time
import urllib.request
from dataclasses import replace

import pytest
from harness import free_port, wait_until
from servers import HashServer, pattern_digest, recv_exactly, transfer
from sites import SiteProcess

from skupper_actors.api import AccessToken, AccessTokenSpec, Metadata

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def issue_token(site: SiteProcess, grant: str, *, redemptions: int = 1, window: str = "15m",
                cost: int = 1, name: str | None = None) -> AccessToken:  # fmt: skip
    site.write(
        "AccessGrant", grant, {"redemptionsAllowed": redemptions, "expirationWindow": window}
    )
    site.reload()
    status = site.wait_condition("AccessGrant", grant, "Resolved").status
    assert status.url and status.code and status.ca  # type: ignore[union-attr]
    return AccessToken(
        metadata=Metadata(name=name or f"token-{grant}"),
        spec=AccessTokenSpec(url=status.url, code=status.code, ca=status.ca, link_cost=cost),  # type: ignore[union-attr]
    )


def redeem(site: SiteProcess, token: AccessToken) -> None:
    site.write_resource(token)
    site.reload()


def token_error(site: SiteProcess, token: str) -> str:
    def failed() -> str | None:
        found = site.status_of("AccessToken", token)
        if found is None or found.status is None or found.status.status != "Error":
            return None
        return found.status.message

    return wait_until(failed, 15, what=f"token {token} to fail at {site.name}")


@pytest.fixture
def web():
    folder = os.urandom(4).hex()
    root = f"/tmp/web-{folder}"
    os.makedirs(root)
    payload = os.urandom(3 << 20)
    with open(f"{root}/payload.bin", "wb") as f:
        f.write(payload)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=root)  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], payload
    server.shutdown()


def test_token_links_two_sites_and_http_flows(sites, web) -> None:
    web_port, payload = web
    west = sites("west", link_access=True)
    east = sites("east")
    west.write("Connector", "web", {"routingKey": "web", "host": "127.0.0.1", "port": web_port})
    listen = free_port()
    east.write("Listener", "web", {"routingKey": "web", "host": "127.0.0.1", "port": listen})
    west.start()
    east.start()
    token = issue_token(west, "for-east", cost=2)
    redeem(east, token)
    east.wait_condition("AccessToken", token.name, "Redeemed")
    link = east.wait_condition("Link", token.name, "Operational")
    assert link.status.remote_site_name == "west"  # type: ignore[union-attr]
    assert east.client.status().links[0].cost == 2
    east.wait_condition("Listener", "web", "Matched")
    west.wait_condition("Connector", "web", "Matched")
    with urllib.request.urlopen(f"http://127.0.0.1:{listen}/payload.bin", timeout=10) as r:
        fetched = r.read()
    assert hashlib.sha256(fetched).digest() == hashlib.sha256(payload).digest()
    # the credentials east got are client certificates signed by west's CA; keys are 0600
    key = east.ns.runtime_certs_dir / token.name / "tls.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_token_reuse_wrong_code_expiry_and_restart(sites) -> None:
    west = sites("west", link_access=True)
    east = sites("east")
    north = sites("north")
    west.start()
    east.start()
    north.start()
    token = issue_token(west, "once")
    redeem(east, token)
    east.wait_condition("AccessToken", token.name, "Redeemed")
    # the same token again, from another site: the grant is used up
    redeem(north, token)
    assert "404" in token_error(north, token.name)
    assert west.log_events("grant_refused")[-1]["reason"].endswith("used up")
    # a wrong code: 403, and the grant stays redeemable
    twice = issue_token(west, "twice", redemptions=2)
    wrong = replace(twice, metadata=Metadata(name="wrong"), spec=replace(twice.spec, code="x" * 32))
    redeem(north, wrong)
    assert "403" in token_error(north, "wrong")
    # an expired window: 404
    short = issue_token(west, "short", window="1s", name="late")
    time.sleep(1.5)
    redeem(north, short)
    assert "404" in token_error(north, "late")
    # grants and their counts survive a restart of west
    west.stop()
    west.start()
    again = AccessToken(metadata=Metadata(name="once-again"), spec=token.spec)
    redeem(north, again)
    assert "404" in token_error(north, "once-again")
    good = replace(twice, metadata=Metadata(name="twice-after-restart"))
    redeem(north, good)
    north.wait_condition("AccessToken", good.name, "Redeemed")


def test_live_reconcile_does_not_disturb_a_running_transfer(sites) -> None:
    server = HashServer()
    other = HashServer()
    west = sites("west", link_access=True)
    east = sites("east")
    west.write(
        "Connector", "bulk", {"routingKey": "bulk", "host": "127.0.0.1", "port": server.port}
    )
    bulk = free_port()
    east.write("Listener", "bulk", {"routingKey": "bulk", "host": "127.0.0.1", "port": bulk})
    west.start()
    east.start()
    token = issue_token(west, "for-east")
    redeem(east, token)
    east.wait_condition("Listener", "bulk", "Matched")
    result: list[object] = []
    done = threading.Event()

    def long_transfer() -> None:
        """Upload until told to stop (however fast the machine), then check every byte."""
        digest = hashlib.sha256()
        with socket.create_connection(("127.0.0.1", bulk), timeout=60) as sock:
            sock.sendall(struct.pack("!Q", 1 << 20))
            chunk = os.urandom(64 << 10)
            while not done.is_set():
                sock.sendall(chunk)
                digest.update(chunk)
                time.sleep(0.005)
            sock.shutdown(socket.SHUT_WR)
            echoed = recv_exactly(sock, 32)
            back = hashlib.sha256()
            while data := sock.recv(1 << 16):
                back.update(data)
        result.append(
            (echoed == digest.digest(), back.digest() == pattern_digest(1 << 20, 1 << 20))
        )

    worker = threading.Thread(target=long_transfer)
    worker.start()
    try:
        time.sleep(0.5)
        # add a listener and connector pair for another service, use it, remove it
        extra = free_port()
        east.write("Listener", "extra", {"routingKey": "extra", "host": "127.0.0.1", "port": extra})
        west.write(
            "Connector", "extra", {"routingKey": "extra", "host": "127.0.0.1", "port": other.port}
        )
        east.reload()
        west.reload()
        east.wait_condition("Listener", "extra", "Matched")
        assert transfer(extra, 1000, 1000) == (True, True, None)
        # change the link's cost: routing takes it, the connection stays
        link_file = east.ns.links_dir / f"Link-{token.name}.yaml"
        link_file.write_text(link_file.read_text().replace("cost: 1", "cost: 7"))
        east.reload()
        wait_until(lambda: east.client.status().links[0].cost == 7, 10, what="cost 7")
        wait_until(lambda: east.client.status().routers[0].cost == 7, 10, what="route cost 7")
        west.remove("Connector", "extra")
        east.remove("Listener", "extra")
        west.reload()
        east.reload()
        wait_until(lambda: east.status_of("Listener", "extra") is None, 10, what="status removed")
        assert worker.is_alive(), "the transfer should still be running"
    finally:
        done.set()
        worker.join(60)
        server.close()
        other.close()
    assert result == [(True, True)]
    assert len(east.log_events("link_opened")) == 1  # never reconnected


def test_bad_file_keeps_the_last_good_state_and_rename_is_refused(sites) -> None:
    server = HashServer()
    west = sites("west")
    port = free_port()
    west.write("Connector", "svc", {"routingKey": "svc", "host": "127.0.0.1", "port": server.port})
    west.write("Listener", "svc", {"routingKey": "svc", "host": "127.0.0.1", "port": port})
    west.start()
    west.wait_condition("Listener", "svc", "Matched")
    assert transfer(port, 100, 100) == (True, True, None)
    path = west.ns.resources_dir / "Listener-svc.yaml"
    path.write_text(path.read_text().replace(f"port: {port}", "port: 70000"))
    west.reload()
    problems = west.log_events("resource_invalid")
    assert any(
        "Listener/svc: spec.port: must be between 1 and 65535" in p["problem"] for p in problems
    )
    assert transfer(port, 100, 100) == (True, True, None)  # still served
    assert west.proc is not None and west.proc.poll() is None
    # renaming the site is refused with a clear status
    west.write("Site", "west", None)
    site_file = west.ns.resources_dir / "Site-west.yaml"
    site_file.write_text(site_file.read_text().replace("name: west", "name: renamed"))
    west.reload()
    status = wait_until(lambda: west.status_of("Site", "renamed"), 10, what="renamed status")
    assert status.status.status == "Error"  # type: ignore[union-attr]
    assert "not supported" in status.status.message  # type: ignore[union-attr]
    server.close()


def _accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _served_names(port: int) -> set[str]:
    """The DNS and IP names in the certificate the router access port presents."""
    import ssl

    from cryptography import x509

    pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=5)
    cert = x509.load_pem_x509_certificate(pem.encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*sans.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in sans.get_values_for_type(x509.IPAddress)
    }


def test_a_name_added_to_router_access_while_running_is_in_the_certificate(sites) -> None:
    west = sites("west", link_access=True).start()
    assert west.port is not None
    # management answers before the controller's first reconcile starts the access port
    wait_until(lambda: _accepting(west.port), 10, what="west's router access port")
    assert "west.example" not in _served_names(west.port)
    token = issue_token(west, "before")  # the grant server runs from here on
    grant_port = int(token.spec.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    assert "west.example" not in _served_names(grant_port)
    west.write(
        "RouterAccess",
        "skupper-router",
        {
            "roles": [{"name": "inter-router", "port": west.port}],
            "bindHost": "127.0.0.1",
            "subjectAlternativeNames": ["west.example"],
        },
    )
    west.reload()
    wait_until(lambda: "west.example" in _served_names(west.port), 15, what="the new name served")
    assert {"west.example", "127.0.0.1", "localhost"} <= _served_names(west.port)
    assert west.log_events("server_certificate_reissued")
    wait_until(
        lambda: "west.example" in _served_names(grant_port), 10, what="the grant port's new name"
    )
