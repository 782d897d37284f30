"""A certificate, its private key and the CA that signs peers, in Skupper's secret layout."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from skupper_actors.security._files import (
    PRIVATE_FILE_MODE,
    PUBLIC_FILE_MODE,
    ensure_private_dir,
    write_file_atomically,
)

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
CA_FILE = "ca.crt"


class CredentialsError(ValueError):
    """Certificates or keys that are missing, unreadable, malformed or do not belong together."""


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """PEM bytes of one identity: its certificate, its private key, and the CA it trusts.

    The CA is the trust anchor for peers (this project's mesh trusts only its own CA,
    never the system store).
    """

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes

    def __repr__(self) -> str:
        # Never the key; the PEMs are long, so name the certificate instead.
        try:
            expiry = self.not_valid_after.isoformat()
            return f"Credentials(common_name={self.common_name!r}, not_valid_after={expiry!r})"
        except CredentialsError:
            return "Credentials(<unparsable certificate>)"

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write `tls.crt`, `tls.key` (0600) and `ca.crt` into `folder` (made 0700); return it."""
        target = Path(folder)
        ensure_private_dir(target)
        write_file_atomically(target / KEY_FILE, self.key_pem, mode=PRIVATE_FILE_MODE)
        write_file_atomically(target / CERT_FILE, self.cert_pem, mode=PUBLIC_FILE_MODE)
        write_file_atomically(target / CA_FILE, self.ca_pem, mode=PUBLIC_FILE_MODE)
        return target

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Credentials:
        """Read `tls.crt`, `tls.key` and `ca.crt` from `folder`."""
        source = Path(folder)
        return cls.from_files(source / CERT_FILE, source / KEY_FILE, source / CA_FILE)

    @classmethod
    def from_files(
        cls,
        cert: str | os.PathLike[str],
        key: str | os.PathLike[str],
        ca: str | os.PathLike[str],
    ) -> Credentials:
        """Read the three PEM files from wherever they are; check they parse and belong together."""
        credentials = cls(_read(Path(cert)), _read(Path(key)), _read(Path(ca)))
        credentials.check()
        return credentials

    def check(self) -> None:
        """Raise `CredentialsError` unless the PEMs parse and the key matches the certificate."""
        certificate = self.certificate
        try:
            key = serialization.load_pem_private_key(self.key_pem, password=None)
        except (ValueError, TypeError) as error:
            raise CredentialsError(f"private key: not an unencrypted PEM key ({error})") from None
        if key.public_key() != certificate.public_key():
            raise CredentialsError("private key does not match the certificate")
        try:
            x509.load_pem_x509_certificates(self.ca_pem)
        except ValueError as error:
            raise CredentialsError(f"CA: not a PEM certificate ({error})") from None

    @property
    def certificate(self) -> x509.Certificate:
        """The parsed leaf certificate (the first one in `cert_pem`)."""
        try:
            return x509.load_pem_x509_certificates(self.cert_pem)[0]
        except ValueError as error:
            raise CredentialsError(f"certificate: not a PEM certificate ({error})") from None

    @property
    def common_name(self) -> str | None:
        """The certificate subject's CN, or None when it has none."""
        return common_name_of(self.certificate)

    @property
    def not_valid_after(self) -> datetime.datetime:
        """When the certificate expires (UTC, timezone-aware)."""
        return self.certificate.not_valid_after_utc


def common_name_of(certificate: x509.Certificate) -> str | None:
    """The subject CN of `certificate`, or None."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    value = names[0].value
    return value if isinstance(value, str) else value.decode()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CredentialsError(f"{path}: cannot read ({error.strerror or error})") from None
