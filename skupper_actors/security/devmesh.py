"""One CA and a credential set per site, on disk, to set up several nodes quickly."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from skupper_actors.security._files import ensure_private_dir
from skupper_actors.security.ca import (
    DEFAULT_CERT_VALID_DAYS,
    CertificateAuthority,
    issue_client_cert,
    issue_server_cert,
)
from skupper_actors.security.credentials import Credentials

# Site names never start with "_" (they are DNS-label-like), so this cannot collide.
DEV_MESH_CA_FOLDER = "_ca"


@dataclass(frozen=True, slots=True, kw_only=True)
class DevMesh:
    """What `generate_dev_mesh` wrote: the CA, and each site's credentials and folder."""

    folder: Path
    ca: CertificateAuthority
    credentials: Mapping[str, Credentials]

    def site_folder(self, site: str) -> Path:
        """The folder holding `site`'s `tls.crt`, `tls.key` and `ca.crt`."""
        if site not in self.credentials:
            raise KeyError(site)
        return self.folder / site


def generate_dev_mesh(
    folder: str | os.PathLike[str],
    site_names: Iterable[str],
    sans: Iterable[str] = ("localhost", "127.0.0.1"),
    valid_days: int = DEFAULT_CERT_VALID_DAYS,
) -> DevMesh:
    """Create one CA (saved in `folder/_ca/`) and one router credential set per site.

    Each site gets a certificate with CN = its name, valid for `sans` as server and as
    client, saved in `folder/<site>/` (`tls.crt`, `tls.key` 0600, `ca.crt`).
    """
    root = Path(folder)
    names = list(site_names)
    for name in names:
        _check_folder_name(name)
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate site names in {names}")
    san_list = list(sans)
    ensure_private_dir(root)
    ca = CertificateAuthority.create()
    ca.save(root / DEV_MESH_CA_FOLDER)
    issued: dict[str, Credentials] = {}
    for name in names:
        credentials = issue_server_cert(ca, name, san_list, valid_days)
        credentials.save(root / name)
        issued[name] = credentials
    return DevMesh(folder=root, ca=ca, credentials=MappingProxyType(issued))


def issue_dev_clients(
    folder: str | os.PathLike[str],
    client_names: Iterable[str],
    valid_days: int = DEFAULT_CERT_VALID_DAYS,
) -> dict[str, Path]:
    """Issue client certificates (CN = the name, clientAuth only) from the CA in
    `folder/_ca/`, for AMQP clients that log in with SASL EXTERNAL; each saved in
    `folder/<name>/` like a site's. Raises FileNotFoundError when there is no CA there,
    ValueError for a name that is no folder name or is taken by a site's credentials."""
    root = Path(folder)
    names = list(client_names)
    for name in names:
        _check_folder_name(name, "client")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate client names in {names}")
    ca_folder = root / DEV_MESH_CA_FOLDER
    if not (ca_folder / "tls.key").exists():
        raise FileNotFoundError(f"no CA in {ca_folder}: make one with sites first")
    ca = CertificateAuthority.load(ca_folder)
    saved: dict[str, Path] = {}
    for name in names:
        target = root / name
        existing = target / "tls.crt"
        if existing.exists() and not _is_client_cert(existing):
            raise ValueError(f"{target} holds a site's certificate, not a client's")
        issue_client_cert(ca, name, valid_days).save(target)
        saved[name] = target
    return saved


def _is_client_cert(path: Path) -> bool:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def _check_folder_name(name: str, kind: str = "site") -> None:
    # The name becomes a folder: refuse anything that could escape or hide in `folder`.
    if (
        not name
        or name.startswith((".", "_"))
        or "/" in name
        or "\\" in name
        or "\0" in name
        or name != name.strip()
    ):
        raise ValueError(f"{kind} name {name!r} cannot be used as a folder name")
