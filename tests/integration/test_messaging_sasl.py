"""SASL EXTERNAL with a client certificate, against real nodes (issue 15).

Two linked sites, a - b, whose AMQP endpoints say `tls: true, auth: external`. The
clients are proton's own (BlockingConnection and a Container), with proton's TLS: a
client whose certificate the site's CA signed sends and receives across the sites as
that certificate's CN; no certificate, ANONYMOUS, or a certificate from another CA is
refused, logged in one line, and the node goes on serving the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import Mesh, expected_routes, free_port, wait_until
from messaging import receive_in_thread, url, wait_address
from proton import Message, ProtonException, SSLDomain
from proton.utils import BlockingConnection

from skupper_actors.security import CertificateAuthority, issue_client_cert
from skupper_actors.security.sitecerts import SITE_CA

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sasl")
    mesh = Mesh(folder, ["a", "b"])
    for site in ("a", "b"):
        mesh[site].config["amqp"] = {"port": free_port(), "tls": True, "auth": "external"}
    mesh.link("a", "b")
    issue_client_cert(mesh.certs.ca, "alice").save(folder / "clients" / "alice")
    stranger_ca = CertificateAuthority.create("another mesh")
    issue_client_cert(stranger_ca, "mallory").save(folder / "clients" / "mallory")
    mesh.start()
    mesh.wait_converged(expected_routes(["a", "b"], {("a", "b"): 1}))
    yield mesh
    mesh.close()


def amqps(mesh: Mesh, site: str) -> str:
    return url(mesh, site).replace("amqp://", "amqps://")


def domain(mesh: Mesh, client: str | None) -> SSLDomain:
    """Proton's client TLS: trusts the sites' CA; presents ``client``'s certificate."""
    ssl = SSLDomain(SSLDomain.MODE_CLIENT)
    ssl.set_trusted_ca_db(str(mesh.certs.site_folder("a") / "ca.crt"))
    ssl.set_peer_authentication(SSLDomain.VERIFY_PEER)  # the chain; 127.0.0.1 is no DNS name
    if client is not None:
        folder: Path = mesh.folder / "clients" / client
        ssl.set_credentials(str(folder / "tls.crt"), str(folder / "tls.key"), None)
    return ssl


def events(mesh: Mesh, site: str, name: str) -> list[dict[str, Any]]:
    return [e for e in mesh[site].log_events() if e.get("event") == name]


def test_a_client_certificate_sends_and_receives_across_the_sites(mesh) -> None:
    """Receiver at b (a Container), sender at a (BlockingConnection): both EXTERNAL."""
    options = {"ssl_domain": domain(mesh, "alice"), "allowed_mechs": "EXTERNAL"}
    receiver, thread = receive_in_thread(amqps(mesh, "b"), "orders", connect=options)
    try:
        wait_address(mesh, "a", "orders", {"b"})
        sending = BlockingConnection(
            amqps(mesh, "a"), timeout=10, ssl_domain=domain(mesh, "alice"), allowed_mechs="EXTERNAL"
        )
        sending.create_sender("orders").send(Message(body="hello from alice"), timeout=10)
        sending.close()
        wait_until(lambda: receiver.count == 1, 10, what="the message at b")
        assert receiver.messages[0].body == "hello from alice"
    finally:
        thread.stop()
    for site in ("a", "b"):
        logged = events(mesh, site, "amqp_client_authenticated")
        assert {(e["mechanism"], e["user"]) for e in logged} == {("EXTERNAL", "alice")}


@pytest.mark.parametrize(
    ("client", "mechanisms", "why"),
    [
        (None, "EXTERNAL", "no client certificate"),
        ("alice", "ANONYMOUS", "asks ANONYMOUS"),
        ("mallory", "EXTERNAL", "certificate from another CA"),
    ],
)
def test_a_client_without_a_good_certificate_or_asking_anonymous_is_refused(
    mesh, client: str | None, mechanisms: str, why: str
) -> None:
    refused_before = len(events(mesh, "a", "amqp_client_refused"))
    with pytest.raises(ProtonException) as caught:
        conn = BlockingConnection(
            amqps(mesh, "a"), timeout=10, ssl_domain=domain(mesh, client), allowed_mechs=mechanisms
        )
        conn.create_sender("orders")
    text = str(caught.value)
    if mechanisms == "ANONYMOUS":
        assert "amqp:unauthorized-access" in text, text
    else:
        assert "SSL" in text or "ssl" in text, text

    def logged() -> bool:
        return len(events(mesh, "a", "amqp_client_refused")) > refused_before

    wait_until(logged, 10, interval=0.1, what=f"amqp_client_refused ({why})")
    event = events(mesh, "a", "amqp_client_refused")[-1]
    assert "\n" not in event["error"] and "Traceback" not in str(event)
    if mechanisms == "ANONYMOUS":
        assert "EXTERNAL" in event["error"]
    elif client is None:
        assert "certificate" in event["error"]
    # the node still serves a client with a good certificate
    good = BlockingConnection(
        amqps(mesh, "a"), timeout=10, ssl_domain=domain(mesh, "alice"), allowed_mechs="EXTERNAL"
    )
    good.create_receiver("still-here", credit=1)
    good.close()
    assert mesh["a"].alive


def test_a_router_access_asks_for_external_in_a_namespace(sites, tmp_path) -> None:
    """Namespace mode: `settings: {amqp-auth: external}` on the RouterAccess. Its TLS
    context leaves the certificate optional (one context for every RouterAccess), so a
    client without one is refused after the handshake, before any AMQP."""
    site = sites("solo")
    port = free_port()
    site.write(
        "RouterAccess",
        "clients",
        {"roles": [{"name": "normal", "port": port}], "settings": {"amqp-auth": "external"}},
    )
    site.start()
    ca_folder = site.ns.runtime_certs_dir / SITE_CA
    wait_until(lambda: (ca_folder / "tls.key").exists(), 20, what="the site's CA")
    clients = tmp_path / "clients"
    issue_client_cert(CertificateAuthority.load(ca_folder), "alice").save(clients / "alice")

    def ssl(with_certificate: bool) -> SSLDomain:
        domain = SSLDomain(SSLDomain.MODE_CLIENT)
        domain.set_trusted_ca_db(str(ca_folder / "ca.crt"))
        domain.set_peer_authentication(SSLDomain.VERIFY_PEER)
        if with_certificate:
            folder = clients / "alice"
            domain.set_credentials(str(folder / "tls.crt"), str(folder / "tls.key"), None)
        return domain

    address = f"amqps://127.0.0.1:{port}"

    def attached() -> bool:
        try:
            conn = BlockingConnection(
                address, timeout=2, ssl_domain=ssl(True), allowed_mechs="EXTERNAL"
            )
        except ProtonException:
            return False
        conn.create_receiver("ns-check", credit=1)
        conn.close()
        return True

    wait_until(attached, 20, interval=0.2, what="alice at the endpoint of RouterAccess clients")
    with pytest.raises(ProtonException):
        BlockingConnection(
            address, timeout=10, ssl_domain=ssl(False), allowed_mechs="EXTERNAL"
        ).create_sender("x")

    def refused() -> list[dict[str, Any]]:
        return [e for e in site.log_events("amqp_client_refused") if "certificate" in e["error"]]

    wait_until(refused, 10, interval=0.1, what="amqp_client_refused (no certificate)")
    assert refused()[0]["error"] == "no client certificate (auth: external)"
    users = {e.get("user") for e in site.log_events("amqp_client_authenticated")}
    assert users == {"alice"}
