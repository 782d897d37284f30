"""The AMQP endpoint as a site file (``amqp.auth``, ``client_ca``) or a RouterAccess asks."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import yaml

from skupper_actors import node
from skupper_actors.api.loader import load_resource_text
from skupper_actors.controller.desired import desired_state
from skupper_actors.node import amqp_endpoint_context
from skupper_actors.security import CertificateAuthority, CredentialsError, issue_server_cert
from skupper_actors.siteconfig import parse_site_config

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def credentials():
    return issue_server_cert(CertificateAuthority.create(), "west", ["localhost"])


def config(tmp_path: Path, amqp: str):
    text = f"site: west\ninter_router: {{tls: {{credentials: certs}}}}\namqp: {amqp}\n"
    return parse_site_config(text, base_dir=tmp_path, environ={})


def test_anonymous_keeps_the_certificate_optional_and_external_requires_it(
    tmp_path: Path, credentials
) -> None:
    anonymous = amqp_endpoint_context(config(tmp_path, "{port: 5671, tls: true}"), credentials)
    assert anonymous.verify_mode == ssl.CERT_OPTIONAL
    external = config(tmp_path, "{port: 5671, tls: true, auth: external}")
    assert amqp_endpoint_context(external, credentials).verify_mode == ssl.CERT_REQUIRED


def test_a_client_ca_file_is_read_and_checked(tmp_path: Path, credentials) -> None:
    apps = CertificateAuthority.create("apps")
    (tmp_path / "apps.crt").write_bytes(apps.cert_pem)
    (tmp_path / "junk.crt").write_text("junk")
    amqp = "{port: 5671, tls: true, auth: external, client_ca: %s}"
    context = amqp_endpoint_context(config(tmp_path, amqp % "apps.crt"), credentials)
    assert [ca["subject"] for ca in context.get_ca_certs()] == [((("commonName", "apps"),),)]
    with pytest.raises(CredentialsError) as caught:
        amqp_endpoint_context(config(tmp_path, amqp % "junk.crt"), credentials)
    assert str(caught.value) == f"amqp: client_ca: {tmp_path / 'junk.crt'}: not a PEM certificate"
    with pytest.raises(CredentialsError, match=r"^amqp: client_ca: .*missing\.crt: cannot read"):
        amqp_endpoint_context(config(tmp_path, amqp % "missing.crt"), credentials)


def test_external_where_proton_cannot_do_it_stops_the_node_with_one_line(
    tmp_path: Path, credentials, monkeypatch
) -> None:
    monkeypatch.setattr(node, "external_unavailable", lambda: "SASL EXTERNAL is not available")
    external = config(tmp_path, "{port: 5671, tls: true, auth: external}")
    with pytest.raises(CredentialsError) as caught:
        amqp_endpoint_context(external, credentials)
    assert str(caught.value) == "amqp: auth: SASL EXTERNAL is not available"


# --- namespace mode: settings.amqp-auth of a RouterAccess with a `normal` role --------------


def router_access(settings: dict[str, str]):
    document = {
        "apiVersion": "skupper.io/v2alpha1",
        "kind": "RouterAccess",
        "metadata": {"name": "clients"},
        "spec": {"roles": [{"name": "normal", "port": 5671}], "settings": settings},
    }
    return load_resource_text(yaml.safe_dump(document))


@pytest.mark.parametrize(
    ("settings", "auth", "problem"),
    [
        ({}, "anonymous", None),
        ({"amqp-auth": "external"}, "external", None),
        (
            {"amqp-auth": "kerberos"},
            None,
            "RouterAccess/clients: settings.amqp-auth: must be one of: anonymous, external",
        ),
        (
            {"amqp-auth": "external", "amqp-tls": "false"},
            None,
            "RouterAccess/clients: settings.amqp-auth: external needs amqp-tls "
            "(the client certificate)",
        ),
    ],
)
def test_router_access_amqp_auth(settings: dict[str, str], auth: str | None, problem) -> None:
    desired = desired_state(router_access(settings))
    if auth is None:
        assert "clients" not in desired.amqp  # never an endpoint weaker than asked for
        assert problem in desired.problems
    else:
        assert desired.amqp["clients"].auth == auth
        assert not [p for p in desired.problems if "amqp" in p]
