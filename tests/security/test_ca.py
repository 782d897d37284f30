"""The CA, the certificates it issues, and how credentials sit on disk."""

from __future__ import annotations

import datetime
import ipaddress
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from skupper_actors.security import (
    DEV_MESH_CA_FOLDER,
    CertificateAuthority,
    Credentials,
    CredentialsError,
    generate_dev_mesh,
    issue_client_cert,
    issue_server_cert,
)

pytestmark = pytest.mark.timeout(30)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 0: a file created with default modes would be world-readable."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create()


def test_created_ca_is_a_p256_ca_named_skupper_site_ca(ca: CertificateAuthority) -> None:
    cert = ca.certificate
    assert cert.subject.rfc4514_string() == "CN=skupper-site-ca"
    assert cert.issuer == cert.subject
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=5 * 365) <= lifetime <= datetime.timedelta(days=5 * 365, hours=1)


def test_ca_save_load_round_trip(ca: CertificateAuthority, tmp_path: Path) -> None:
    folder = ca.save(tmp_path / "site-ca")
    assert sorted(p.name for p in folder.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    loaded = CertificateAuthority.load(folder)
    assert loaded.certificate == ca.certificate
    assert loaded.key_pem == ca.key_pem
    # The loaded CA can issue certificates that the original CA's peers trust.
    leaf = issue_server_cert(loaded, "west", ["localhost"])
    assert leaf.ca_pem == ca.cert_pem
    assert leaf.certificate.issuer == ca.certificate.subject
    # Skupper's layout: a CA folder is also a credential folder.
    assert Credentials.load(folder).cert_pem == ca.cert_pem


def test_ca_files_are_private_from_the_start(
    ca: CertificateAuthority, tmp_path: Path, permissive_umask: None
) -> None:
    folder = ca.save(tmp_path / "deep" / "site-ca")
    assert mode_of(folder / "tls.key") == 0o600
    assert mode_of(folder / "tls.crt") == 0o644
    assert mode_of(folder) == 0o700
    assert mode_of(folder.parent) == 0o700


def test_loading_a_leaf_as_a_ca_is_refused(ca: CertificateAuthority, tmp_path: Path) -> None:
    issue_server_cert(ca, "west", ["localhost"]).save(tmp_path / "west")
    with pytest.raises(CredentialsError, match="not a CA"):
        CertificateAuthority.load(tmp_path / "west")


def test_loading_a_ca_whose_key_does_not_match_is_refused(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    folder = ca.save(tmp_path / "site-ca")
    (folder / "tls.key").write_bytes(CertificateAuthority.create().key_pem)
    with pytest.raises(CredentialsError, match="does not match"):
        CertificateAuthority.load(folder)


def test_loading_from_a_missing_folder_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=r"nowhere/tls\.crt: cannot read"):
        CertificateAuthority.load(tmp_path / "nowhere")


def test_server_cert_carries_dns_and_ip_sans_and_both_usages(ca: CertificateAuthority) -> None:
    creds = issue_server_cert(ca, "west", ["localhost", "127.0.0.1", "::1", "west.example"])
    cert = creds.certificate
    assert creds.common_name == "west"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "west.example"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert creds.ca_pem == ca.cert_pem


def test_client_cert_is_for_clients_only(ca: CertificateAuthority) -> None:
    cert = issue_client_cert(ca, "visitor").certificate
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_validity_overrides_and_limits(ca: CertificateAuthority) -> None:
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    end = datetime.datetime(2020, 1, 2, tzinfo=datetime.UTC)
    cert = issue_client_cert(ca, "old", not_before=start, not_after=end).certificate
    assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (start, end)
    # A leaf never outlives its CA unless asked explicitly.
    long_lived = issue_client_cert(ca, "long", valid_days=100 * 365).certificate
    assert long_lived.not_valid_after_utc == ca.certificate.not_valid_after_utc
    with pytest.raises(ValueError, match="before it starts"):
        issue_client_cert(ca, "never", not_before=end, not_after=start)
    with pytest.raises(ValueError, match="at least 1"):
        issue_client_cert(ca, "never", valid_days=0)


@pytest.mark.parametrize("sans", [[], [""], [" localhost"]])
def test_server_cert_needs_proper_sans(ca: CertificateAuthority, sans: list[str]) -> None:
    with pytest.raises(ValueError):
        issue_server_cert(ca, "west", sans)


def test_credentials_round_trip_in_skupper_layout(
    ca: CertificateAuthority, tmp_path: Path, permissive_umask: None
) -> None:
    creds = issue_server_cert(ca, "west", ["localhost"])
    folder = creds.save(tmp_path / "west")
    assert sorted(p.name for p in folder.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    assert mode_of(folder / "tls.key") == 0o600
    assert mode_of(folder) == 0o700
    assert Credentials.load(folder) == creds
    assert (
        Credentials.from_files(folder / "tls.crt", folder / "tls.key", folder / "ca.crt") == creds
    )


def test_saving_over_a_readable_key_leaves_a_private_key(
    ca: CertificateAuthority, tmp_path: Path, permissive_umask: None
) -> None:
    folder = tmp_path / "west"
    folder.mkdir(mode=0o755)
    (folder / "tls.key").write_bytes(b"old")
    os.chmod(folder / "tls.key", 0o644)
    creds = issue_server_cert(ca, "west", ["localhost"])
    creds.save(folder)
    assert mode_of(folder / "tls.key") == 0o600
    assert mode_of(folder) == 0o700
    assert (folder / "tls.key").read_bytes() == creds.key_pem
    assert sorted(p.name for p in folder.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]


def test_mismatched_credentials_are_refused_on_load(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    west = issue_server_cert(ca, "west", ["localhost"]).save(tmp_path / "west")
    east = issue_server_cert(ca, "east", ["localhost"]).save(tmp_path / "east")
    with pytest.raises(CredentialsError, match="does not match"):
        Credentials.from_files(west / "tls.crt", east / "tls.key", west / "ca.crt")


def test_credentials_repr_hides_the_key(ca: CertificateAuthority) -> None:
    creds = issue_server_cert(ca, "west", ["localhost"])
    text = repr(creds)
    assert "west" in text
    assert "PRIVATE" not in text
    assert creds.key_pem.decode() not in text


def test_dev_mesh_has_one_ca_and_a_credential_folder_per_site(
    tmp_path: Path, permissive_umask: None
) -> None:
    mesh = generate_dev_mesh(tmp_path / "mesh", ["west", "east", "south"])
    assert sorted(p.name for p in mesh.folder.iterdir()) == [
        DEV_MESH_CA_FOLDER,
        "east",
        "south",
        "west",
    ]
    assert CertificateAuthority.load(mesh.folder / DEV_MESH_CA_FOLDER).certificate == (
        mesh.ca.certificate
    )
    for site in ("west", "east", "south"):
        folder = mesh.site_folder(site)
        loaded = Credentials.load(folder)
        assert loaded == mesh.credentials[site]
        assert loaded.common_name == site
        assert loaded.ca_pem == mesh.ca.cert_pem
        assert mode_of(folder / "tls.key") == 0o600
        assert mode_of(folder) == 0o700
        sans = loaded.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert sans.value.get_values_for_type(x509.DNSName) == ["localhost"]
    assert mode_of(mesh.folder) == 0o700
    with pytest.raises(KeyError):
        mesh.site_folder("north")


@pytest.mark.parametrize(
    "names", [["west", "west"], ["../west"], ["_ca"], [".hidden"], [""], ["a/b"]]
)
def test_dev_mesh_refuses_unsafe_or_duplicate_names(tmp_path: Path, names: list[str]) -> None:
    with pytest.raises(ValueError):
        generate_dev_mesh(tmp_path / "mesh", names)
    assert not (tmp_path / "mesh").exists()
