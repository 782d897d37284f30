"""The site CA and the certificates it issues to routers.

Keys are EC P-256: key generation takes well under a millisecond (RSA-2048 takes tens to
hundreds), every TLS 1.2/1.3 stack speaks ECDSA P-256, and the signature is small. A CA
made elsewhere with an RSA or Ed25519 key can still be loaded and used to issue.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from skupper_actors.security._files import (
    PRIVATE_FILE_MODE,
    PUBLIC_FILE_MODE,
    ensure_private_dir,
    write_file_atomically,
)
from skupper_actors.security.credentials import (
    CA_FILE,
    CERT_FILE,
    KEY_FILE,
    Credentials,
    CredentialsError,
)

DEFAULT_CA_COMMON_NAME = "skupper-site-ca"
DEFAULT_CA_VALID_DAYS = 5 * 365
DEFAULT_CERT_VALID_DAYS = 5 * 365
# Certificates start a little in the past so a peer whose clock lags ours accepts them.
CLOCK_SKEW_ALLOWANCE = datetime.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A self-signed CA certificate and its signing key.

    Saved in the layout of Skupper's CA secrets: `tls.crt`, `tls.key` (0600) and `ca.crt`
    (the CA certificate again), so a CA folder also loads as `Credentials`.
    """

    certificate: x509.Certificate
    private_key: CertificateIssuerPrivateKeyTypes = field(repr=False)

    @classmethod
    def create(
        cls,
        common_name: str = DEFAULT_CA_COMMON_NAME,
        valid_days: int = DEFAULT_CA_VALID_DAYS,
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> CertificateAuthority:
        """Generate a new P-256 CA key and its self-signed certificate."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        start, end = _validity(valid_days, not_before, not_after)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            # path_length=0: this CA signs routers only, never another CA.
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                _key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        return cls(builder.sign(key, hashes.SHA256()), key)

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> CertificateAuthority:
        """Read a CA saved by `save` (or any Skupper CA secret folder)."""
        source = Path(folder)
        credentials = Credentials.from_files(
            source / CERT_FILE, source / KEY_FILE, source / CERT_FILE
        )
        certificate = credentials.certificate
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            raise CredentialsError(f"{source}: certificate is not a CA") from None
        if not constraints.value.ca:
            raise CredentialsError(f"{source}: certificate is not a CA")
        key = serialization.load_pem_private_key(credentials.key_pem, password=None)
        if not isinstance(
            key,
            ec.EllipticCurvePrivateKey
            | rsa.RSAPrivateKey
            | ed25519.Ed25519PrivateKey
            | ed448.Ed448PrivateKey,
        ):
            raise CredentialsError(f"{source}: a {type(key).__name__} cannot sign certificates")
        return cls(certificate, key)

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write the CA into `folder` (made 0700), the key with mode 0600; return the folder."""
        target = Path(folder)
        ensure_private_dir(target)
        write_file_atomically(target / KEY_FILE, self.key_pem, mode=PRIVATE_FILE_MODE)
        write_file_atomically(target / CERT_FILE, self.cert_pem, mode=PUBLIC_FILE_MODE)
        write_file_atomically(target / CA_FILE, self.cert_pem, mode=PUBLIC_FILE_MODE)
        return target

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate, PEM: what peers put in their `ca.crt`."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The CA key, unencrypted PKCS#8 PEM."""
        return _private_pem(self.private_key)


def issue_server_cert(
    ca: CertificateAuthority,
    common_name: str,
    sans: Iterable[str],
    valid_days: int = DEFAULT_CERT_VALID_DAYS,
    *,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Credentials:
    """Issue a router certificate for `sans` (DNS names and IP addresses).

    It carries both serverAuth and clientAuth, because a router uses one credential set
    for the links it accepts and the links it opens.
    """
    names = [_general_name(san) for san in sans]
    if not names:
        raise ValueError("a server certificate needs at least one subject alternative name")
    return _issue(
        ca,
        common_name,
        names,
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        _validity(valid_days, not_before, not_after, ca=ca),
    )


#: X.509's upper bound on a common name (RFC 5280, ub-common-name).
MAX_COMMON_NAME = 64


def client_common_name(redeemer: str, grant: str) -> str:
    """`<redeemer>-via-<grant>`, or when longer than X.509 allows, its first characters
    and a hash of the whole (so two long names stay apart): never more than 64."""
    name = f"{redeemer}-via-{grant}"
    if len(name) <= MAX_COMMON_NAME:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]
    return f"{name[: MAX_COMMON_NAME - len(digest) - 1]}-{digest}"


def issue_client_cert(
    ca: CertificateAuthority,
    common_name: str,
    valid_days: int = DEFAULT_CERT_VALID_DAYS,
    *,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Credentials:
    """Issue a client-only certificate (clientAuth), e.g. for a site that only opens links."""
    return _issue(
        ca,
        common_name,
        [],
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        _validity(valid_days, not_before, not_after, ca=ca),
    )


def _issue(
    ca: CertificateAuthority,
    common_name: str,
    names: list[x509.GeneralName],
    usages: list[x509.ObjectIdentifier],
    validity: tuple[datetime.datetime, datetime.datetime],
) -> Credentials:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_identifier(ca), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    certificate = builder.sign(ca.private_key, _signature_hash(ca.private_key))
    return Credentials(
        certificate.public_bytes(serialization.Encoding.PEM), _private_pem(key), ca.cert_pem
    )


def _authority_key_identifier(ca: CertificateAuthority) -> x509.AuthorityKeyIdentifier:
    # OpenSSL matches a certificate to its issuer by AKI == the issuer's SKI, so copy the
    # CA's own SKI when it has one (a CA made elsewhere may have computed it differently).
    try:
        ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def _validity(
    valid_days: int,
    not_before: datetime.datetime | None,
    not_after: datetime.datetime | None,
    *,
    ca: CertificateAuthority | None = None,
) -> tuple[datetime.datetime, datetime.datetime]:
    if valid_days < 1 and not_after is None:
        raise ValueError(f"valid_days must be at least 1, not {valid_days}")
    now = datetime.datetime.now(datetime.UTC)
    start = not_before if not_before is not None else now - CLOCK_SKEW_ALLOWANCE
    if not_after is not None:
        end = not_after
    else:
        end = now + datetime.timedelta(days=valid_days)
        if ca is not None:
            # A certificate outliving its CA would fail verification anyway; say so in it.
            end = min(end, ca.certificate.not_valid_after_utc)
    if end <= start:
        raise ValueError(f"certificate would expire ({end}) before it starts ({start})")
    return start, end


def _general_name(san: str) -> x509.GeneralName:
    if not san or san != san.strip():
        raise ValueError(f"invalid subject alternative name {san!r}")
    try:
        return x509.IPAddress(ipaddress.ip_address(san))
    except ValueError:
        return x509.DNSName(san)


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _signature_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    # EdDSA signs the whole message itself; cryptography wants no hash for it.
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


def _private_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
