"""A site's certificates: its CA, its router server credentials, link credentials.

Layout under the namespace folder, after Skupper: `runtime/certs/skupper-site-ca/`
(the CA that signs this site's server certificate and the client certificates handed out
by token redemption), `runtime/certs/skupper-site-server/` (presented on the
inter-router and grant ports), and one folder per link credential (`runtime/certs/<name>/`
from a redeemed token, or `input/certs/<name>/` provided by the user).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from skupper_actors.api import Namespace
from skupper_actors.security import (
    CA_FILE,
    CertificateAuthority,
    Credentials,
    CredentialsError,
    issue_server_cert,
)

SITE_CA = "skupper-site-ca"
SITE_SERVER = "skupper-site-server"
LOOPBACK_NAMES = ("localhost", "127.0.0.1")


def ensure_site_ca(ns: Namespace) -> CertificateAuthority:
    """Load the site CA, creating it on first start (keys 0600)."""
    folder = ns.runtime_certs_dir / SITE_CA
    if (folder / CA_FILE).exists():
        return CertificateAuthority.load(folder)
    ca = CertificateAuthority.create(common_name=SITE_CA)
    ca.save(folder)
    return ca


def ensure_server_credentials(
    ns: Namespace, ca: CertificateAuthority, site: str, names: Iterable[str]
) -> Credentials:
    """The site's router server credentials, reissued when the wanted names change."""
    wanted = sorted(set(names) | set(LOOPBACK_NAMES))
    folder = ns.runtime_certs_dir / SITE_SERVER
    try:
        current = Credentials.load(folder)
        if sorted(_names_of(current)) == wanted and current.ca_pem == ca.cert_pem:
            return current
    except CredentialsError:
        pass
    credentials = issue_server_cert(ca, site, wanted)
    credentials.save(folder)
    return credentials


def _names_of(credentials: Credentials) -> list[str]:
    from cryptography import x509

    try:
        extension = credentials.certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
    except x509.ExtensionNotFound:
        return []
    names = [str(n) for n in extension.value.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in extension.value.get_values_for_type(x509.IPAddress)]
    return names


def link_credentials_folder(ns: Namespace, name: str) -> Path | None:
    """Where the credentials called ``name`` are (runtime first, then input), if anywhere."""
    for base in (ns.runtime_certs_dir, ns.certs_dir):
        folder = base / name
        if (folder / CA_FILE).exists():
            return folder
    return None
