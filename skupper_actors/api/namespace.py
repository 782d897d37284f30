"""A namespace's folder on a bare-metal host, laid out as Skupper's `system` platform does.

    <root>/input/resources   resource files the user applies
    <root>/input/certs       user-provided credentials, one folder per name (0700)
    <root>/input/issuers     user-provided CAs (0700)
    <root>/runtime/          everything the node writes (0700): certs, resources (status),
                             links, grants, state
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from marshmallow import ValidationError

from skupper_actors.api.fields import dns_label
from skupper_actors.security._files import ensure_private_dir

DEFAULT_NAMESPACE = "default"
#: Points at a folder holding `namespaces/`, so tests and demos can keep many sites apart.
HOME_ENV = "SKUPPER_ACTORS_HOME"
ROOT_NAMESPACES = Path("/var/lib/skupper/namespaces")


def namespace_root(name: str, environ: Mapping[str, str], uid: int) -> Path:
    """The folder of namespace `name` (checked as a DNS-1123 label).

    `$SKUPPER_ACTORS_HOME/namespaces/<name>` if that is set, else
    `/var/lib/skupper/namespaces/<name>` for root, else
    `${XDG_DATA_HOME:-~/.local/share}/skupper/namespaces/<name>`.
    """
    check_namespace_name(name)
    home = environ.get(HOME_ENV, "")
    if home:
        return Path(home).absolute() / "namespaces" / name
    if uid == 0:
        return ROOT_NAMESPACES / name
    data_home = environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(data_home):  # the XDG spec says to ignore relative paths
        user_home = environ.get("HOME") or str(Path.home())
        data_home = os.path.join(user_home, ".local", "share")
    return Path(data_home) / "skupper" / "namespaces" / name


def check_namespace_name(name: str) -> None:
    """Raise ValueError unless `name` is a DNS-1123 label (so it is a safe folder name)."""
    try:
        dns_label(name)
    except ValidationError as error:
        raise ValueError(f"namespace {name!r}: {' '.join(map(str, error.messages))}") from None


@dataclass(frozen=True, slots=True)
class Namespace:
    """The paths of one namespace's folder; nothing is created until `ensure_layout`."""

    name: str
    root: Path

    @classmethod
    def locate(
        cls,
        name: str = DEFAULT_NAMESPACE,
        *,
        environ: Mapping[str, str] | None = None,
        uid: int | None = None,
    ) -> Namespace:
        """The namespace where `namespace_root` puts it (default: this process's env and uid)."""
        root = namespace_root(
            name,
            os.environ if environ is None else environ,
            os.getuid() if uid is None else uid,
        )
        return cls(name, root)

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def resources_dir(self) -> Path:
        """input/resources: where the user's resource files are."""
        return self.root / "input" / "resources"

    @property
    def certs_dir(self) -> Path:
        """input/certs: user-provided credentials (`<name>/tls.crt, tls.key, ca.crt`)."""
        return self.root / "input" / "certs"

    @property
    def issuers_dir(self) -> Path:
        """input/issuers: user-provided CAs that sign this site's certificates."""
        return self.root / "input" / "issuers"

    @property
    def runtime_dir(self) -> Path:
        return self.root / "runtime"

    @property
    def runtime_certs_dir(self) -> Path:
        """runtime/certs: credentials the node generated or received by token."""
        return self.root / "runtime" / "certs"

    @property
    def status_dir(self) -> Path:
        """runtime/resources: one `<Kind>-<name>.yaml` per resource, with its status."""
        return self.root / "runtime" / "resources"

    @property
    def links_dir(self) -> Path:
        """runtime/links: Links (and their credentials) the node generated for others."""
        return self.root / "runtime" / "links"

    @property
    def grants_dir(self) -> Path:
        """runtime/grants: the access-grant book."""
        return self.root / "runtime" / "grants"

    @property
    def state_dir(self) -> Path:
        """runtime/state: anything else the node keeps across restarts (site id, ...)."""
        return self.root / "runtime" / "state"

    def status_path(self, kind: str, name: str) -> Path:
        """Where the status of resource `kind`/`name` is written."""
        return self.status_dir / f"{kind}-{name}.yaml"

    def ensure_layout(self) -> Namespace:
        """Create every folder; runtime/ and the credential folders are made (or tightened) 0700.

        The input folders the user edits keep the umask's mode.
        """
        self.resources_dir.mkdir(parents=True, exist_ok=True)
        for private in (
            self.certs_dir,
            self.issuers_dir,
            self.runtime_dir,
            self.runtime_certs_dir,
            self.status_dir,
            self.links_dir,
            self.grants_dir,
            self.state_dir,
        ):
            ensure_private_dir(private)
        return self
