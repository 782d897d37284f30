"""`RunningSite`: what the controller uses of the node it runs in (nsnode.NamespaceNode).

The controller starts and stops the router's children through it, finds the grant book
and the site CA, and keeps its memory on it (the desired state, the group supervisors it
filled, the last good resources of each file), so that a restart of the controller alone
forgets nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from skupper_actors.api import Endpoint, Namespace, Resource, Site
from skupper_actors.controller.desired import Desired
from skupper_actors.kernel import ActorRef, ChildSpec
from skupper_actors.security import CertificateAuthority
from skupper_actors.security.grants import GrantBook

from ..context import RouterContext


class RunningSite(Protocol):
    ns: Namespace
    site: Site
    ctx: RouterContext
    grant_book: GrantBook
    #: the controller's memory, kept on the node
    desired: Desired
    group_refs: dict[str, ActorRef | None]
    last_good: dict[Path, tuple[Resource, ...]]

    @property
    def site_name(self) -> str: ...

    def site_ca(self) -> CertificateAuthority: ...

    def group_supervisor(self, group: str) -> str:
        """The router's supervisor that holds ``group``'s children."""
        ...

    def child_id(self, group: str, name: str) -> str: ...

    def child_spec(self, group: str, name: str, desired: Desired) -> ChildSpec:
        """The child running ``name`` of ``group`` (ValueError, OSError if it cannot)."""
        ...

    def advertised_host(self, desired: Desired) -> str: ...

    def endpoints(self, access: str | None = None) -> tuple[Endpoint, ...]:
        """The inter-router endpoints peers use (of one access point, or all)."""
        ...
