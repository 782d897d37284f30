"""Which router a peer certificate speaks for (ADR 0013)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from skupper_actors.security import CertificateAuthority, issue_client_cert, issue_server_cert
from skupper_actors.security.identity import UNKNOWN, peer_identity

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create(common_name="test-site-ca")


def der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


def test_a_routers_own_certificate_speaks_for_its_common_name(ca) -> None:
    identity = peer_identity(der(issue_server_cert(ca, "east", ["127.0.0.1"]).cert_pem))
    assert identity.router == "east"
    assert identity.refusal("east") is None
    assert "belongs to router 'east'" in (identity.refusal("west") or "")


def test_a_grant_certificate_speaks_for_its_redeemer(ca) -> None:
    identity = peer_identity(der(issue_client_cert(ca, "east-via-my-grant").cert_pem))
    assert identity.router == "east"
    assert identity.refusal("east") is None
    assert identity.refusal("east-via-my-grant") is not None


def test_a_redeemer_cannot_name_itself_into_another_routers_id(ca) -> None:
    # a redeemer called "west-via-x" gets "west-via-x-via-g": it is "west-via-x", not "west"
    identity = peer_identity(der(issue_client_cert(ca, "west-via-x-via-g").cert_pem))
    assert identity.router == "west-via-x"
    assert identity.refusal("west") is not None


def test_a_generated_link_certificate_is_unbound(ca) -> None:
    identity = peer_identity(der(issue_client_cert(ca, "link-west").cert_pem))
    assert identity.router is None and identity.common_name == "link-west"
    assert identity.refusal("anyone") is None


def test_no_or_unreadable_certificate_is_unknown() -> None:
    assert peer_identity(None) is UNKNOWN
    assert peer_identity(b"not a certificate") is UNKNOWN
