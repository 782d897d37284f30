"""`skupper-node dev-certs` in a subprocess: sites, client certificates for SASL EXTERNAL,
and one-line errors (never a traceback)."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

pytestmark = pytest.mark.timeout(120)


def dev_certs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skupper_actors.node_cli", "dev-certs", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def certificate(folder: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((folder / "tls.crt").read_bytes())


def test_sites_and_clients_from_one_ca_then_more_clients_later(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    made = dev_certs("--out", str(out), "west", "--client", "alice")
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines() == [f"west: {out / 'west'}", f"client alice: {out / 'alice'}"]
    later = dev_certs("--out", str(out), "--client", "bob")
    assert later.returncode == 0, later.stderr
    ca = x509.load_pem_x509_certificate((out / "_ca" / "tls.crt").read_bytes())
    for name in ("alice", "bob"):
        cert = certificate(out / name)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        assert cert.issuer == ca.subject
        cert.verify_directly_issued_by(ca)
        assert stat.S_IMODE((out / name / "tls.key").stat().st_mode) == 0o600
        assert (out / name / "ca.crt").read_bytes() == (out / "_ca" / "tls.crt").read_bytes()
    site = certificate(out / "west")
    assert ExtendedKeyUsageOID.SERVER_AUTH in list(
        site.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--client", "alice"], "no CA in"),
        ([".hidden"], "site name '.hidden' cannot be used as a folder name"),
        (["west", "--client", "../up"], "client name '../up' cannot be used"),
        (["west", "--client", "west"], "named as site and client"),
        ([], "name at least one site or --client"),
    ],
)
def test_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = dev_certs("--out", str(tmp_path / "certs"), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_client_never_overwrites_a_site(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    assert dev_certs("--out", str(out), "west").returncode == 0
    before = (out / "west" / "tls.crt").read_bytes()
    result = dev_certs("--out", str(out), "--client", "west")
    assert result.returncode == 2
    assert "holds a site's certificate" in result.stderr
    assert (out / "west" / "tls.crt").read_bytes() == before
