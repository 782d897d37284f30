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
