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


def _check_folder_name(name: str) -> None:
    # The name becomes a folder: refuse anything that could escape or hide in `folder`.
    if (
        not name
        or name.startswith((".", "_"))
        or "/" in name
        or "\\" in name
        or "\0" in name
        or name != name.strip()
    ):
        raise ValueError(f"site name {name!r} cannot be used as a folder name")
