"""A site run from its namespace folder (`skupper-node run -n NS`): the declarative mode.

The tree is sitetree.py's, with the grant server and the controller under `control`.
The router's groups start empty; the controller fills them from the resources (through
`child_spec`, the same specs the site-file mode starts with) and starts over whenever a
group supervisor was restarted under it.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from skupper_actors import __version__
from skupper_actors.actors.context import RouterContext
from skupper_actors.actors.control.controller import ControllerActor
from skupper_actors.actors.control.grantconn import GrantCounters, GrantLimits
from skupper_actors.actors.control.grants import GrantServerActor, ReloadCertificate
from skupper_actors.actors.control.management import ManagementActor
from skupper_actors.actors.links.listener import GetBoundAddress
from skupper_actors.api import Endpoint, Namespace, Resource, Site, load_resources
from skupper_actors.api.settings import lenient_setting
from skupper_actors.controller.desired import Desired, LinkTarget, desired_state
from skupper_actors.kernel import (
    ActorRef,
    ChildSpec,
    KernelError,
    Registry,
    Supervisor,
    child,
    spawn,
)
from skupper_actors.management import RouterInfo
from skupper_actors.protocol.tcp import DEFAULT_BUFFER_BUDGET, DEFAULT_WINDOW
from skupper_actors.security import (
    CertificateAuthority,
    Credentials,
    client_context,
    client_endpoint_context,
    load_identity,
    server_context,
)
from skupper_actors.security.grants import GrantBook
from skupper_actors.security.sitecerts import (
    SITE_SERVER,
    ensure_server_credentials,
    ensure_site_ca,
    link_credentials_folder,
)
from skupper_actors.sitetree import (
    GROUP_SUPERVISOR,
    child_id,
    child_spec,
    link_limits,
    routing_settings,
    site_tree,
)

BUFFER_BUDGET_SETTING = "tcp-buffer-budget"
WINDOW_SETTING = "tcp-window"
_log = structlog.get_logger("skupper_actors.site")


class SiteNotDeclared(Exception):
    """The namespace has no (single, valid) Site resource."""


@dataclass(slots=True)
class NamespaceNode:
    ns: Namespace
    site: Site
    ctx: RouterContext
    ca: CertificateAuthority
    grant_book: GrantBook
    server: Credentials  # what the inter-router and grant ports present now
    started_at: float = field(default_factory=time.time)
    root: ActorRef | None = None
    # the controller's memory, kept here so that a controller restart does not forget it
    desired: Desired = field(default_factory=lambda: Desired(site=None))
    group_refs: dict[str, ActorRef | None] = field(default_factory=dict)
    last_good: dict[Path, tuple[Resource, ...]] = field(default_factory=dict)
    grant_counters: GrantCounters = field(default_factory=GrantCounters)

    @property
    def site_name(self) -> str:
        return self.site.name

    def site_ca(self) -> CertificateAuthority:
        return self.ca

    # -- what the controller asks --------------------------------------------------------
    def group_supervisor(self, group: str) -> str:
        return GROUP_SUPERVISOR[group]

    def child_id(self, group: str, name: str) -> str:
        return child_id(group, name)

    def _cover_access_names(self, desired: Desired) -> None:
        """Reissue the server certificate when a RouterAccess added or changed a name.

        Peers check the name they dial against it, so a SAN added while running must be
        in the certificate before the new access point listens. The TLS context is
        shared: handshakes from now on present the new certificate, links up keep theirs.
        """
        names = _access_names(desired)
        server = ensure_server_credentials(self.ns, self.ca, self.site.name, names)
        if server.cert_pem != self.server.cert_pem and self.ctx.server_tls is not None:
            load_identity(self.ctx.server_tls, server)
            self.server = server
            _log.info("server_certificate_reissued", names=sorted(names))
            grants = self.ctx.lookup("grants")
            if grants is not None and grants.alive:
                with contextlib.suppress(KernelError):  # gone meanwhile: it reads it at start
                    grants.tell(ReloadCertificate())

    def child_spec(self, group: str, name: str, desired: Desired) -> ChildSpec:
        if group == "access":
            self._cover_access_names(desired)
        return child_spec(self.ctx, group, name, desired, self._link_tls)

    def _link_tls(self, target: LinkTarget) -> ssl.SSLContext:
        link, credentials = target.name, target.credentials
        folder = link_credentials_folder(self.ns, credentials or link)
        if folder is None:
            raise ValueError(
                f"no credentials {credentials or link!r} for link {link} "
                f"(looked in {self.ns.runtime_certs_dir} and {self.ns.certs_dir})"
            )
        return client_context(Credentials.load(folder))

    def advertised_host(self, desired: Desired) -> str:
        for _, point in sorted(desired.access.items()):
            return point.advertised_host
        return "127.0.0.1"

    def endpoints(self, access: str | None = None) -> tuple[Endpoint, ...]:
        """The inter-router endpoints peers use: advertised host, bound port."""
        found = []
        for name, point in sorted(self.desired.access.items()):
            if access is not None and name != access:
                continue
            ref = self.ctx.lookup(self.child_id("access", name))
            if ref is None:
                continue
            try:
                _, port = ref.ask(GetBoundAddress(), timeout=2)
            except KernelError:
                continue
            found.append(Endpoint(name="inter-router", host=point.advertised_host, port=port))
        return tuple(found)

    def router_info(self) -> RouterInfo:
        endpoints = self.endpoints()
        host, port = (endpoints[0].host, int(endpoints[0].port)) if endpoints else ("", 0)
        return RouterInfo(
            id=self.ctx.router_id,
            instance=self.ctx.instance,
            version=__version__,
            inter_router_host=host,
            inter_router_port=port,
            tls=True,
            started_at=self.started_at,
        )

    # -- the tree ----------------------------------------------------------------------------
    def tree(self) -> Supervisor:
        ctx = self.ctx
        settings = routing_settings(self.site)
        grants_host = self.site.spec.settings.get("grant-server-host", "127.0.0.1")
        grants_port = lenient_setting(
            self.site.spec.settings, "grant-server-port", 0, _setting_invalid, low=0, high=65535
        )
        grant_limits = GrantLimits.from_settings(self.site.spec.settings, _setting_invalid)
        ctx.dataplane.budget.set_limit(
            buffer_budget_setting(self.site.spec.settings, _setting_invalid)
        )
        server = self.ns.runtime_certs_dir / SITE_SERVER

        return site_tree(
            ctx,
            settings,
            control=[
                child(
                    "grants",
                    lambda: GrantServerActor(
                        site=self.site_name,
                        book=self.grant_book,
                        ca=self.site_ca,
                        cert_file=str(server / "tls.crt"),
                        key_file=str(server / "tls.key"),
                        host=grants_host,
                        port=grants_port,
                        endpoints=self.endpoints,
                        limits=grant_limits,
                        counters=self.grant_counters,
                    ),
                    registry=ctx.registry,
                ),
                child("controller", lambda: ControllerActor(self), registry=ctx.registry),
                child(
                    "management",
                    lambda: ManagementActor(ctx, self.ns.runtime_dir, self.router_info),
                    registry=ctx.registry,
                ),
            ],
        )

    def start(self) -> ActorRef:
        self.ctx.health.start_monitor()
        self.root = spawn(self.tree(), name=self.site_name, log_context={"site": self.site_name})
        return self.root


def _setting_invalid(key: str, value: str, problem: str) -> None:
    _log.error("site_setting_invalid", setting=key, value=value, problem=problem)


def buffer_budget_setting(
    settings: Mapping[str, str], problem: Callable[[str, str, str], None]
) -> int:
    """The node-wide buffer budget in bytes (`tcp-buffer-budget`); a bad value keeps
    the default (and is told)."""
    return lenient_setting(
        settings, BUFFER_BUDGET_SETTING, DEFAULT_BUFFER_BUDGET, problem, positive=True
    )


def window_setting(settings: Mapping[str, str], problem: Callable[[str, str, str], None]) -> int:
    """A TCP stream's window in bytes (`tcp-window`, 65536 to 1 GiB); a bad value keeps
    the default (and is told)."""
    return lenient_setting(
        settings, WINDOW_SETTING, DEFAULT_WINDOW, problem, low=64 << 10, high=1 << 30
    )


def build_namespace_node(ns: Namespace) -> NamespaceNode:
    """Read the namespace's Site and make (or load) its certificates."""
    ns.ensure_layout()
    loaded = load_resources(ns.resources_dir)
    # a bad file elsewhere must not keep the site from starting: the controller reports
    # it (and keeps it out); only a Site that cannot be read stops the start
    desired = desired_state(loaded.all_resources)
    if desired.site is None:
        problems = "".join(f"\n{p}" for p in loaded.problems)
        raise SiteNotDeclared(
            f"namespace {ns.name} declares no Site (in {ns.resources_dir}); "
            f"create one with 'skupper site create NAME'{problems}"
        )
    site = desired.site
    try:
        limits = link_limits(site)
        routing_settings(site)
    except ValueError as error:
        raise SiteNotDeclared(f"Site {site.name}: {error}") from None
    ca = ensure_site_ca(ns)
    server = ensure_server_credentials(ns, ca, site.name, _access_names(desired))
    ctx = RouterContext(
        router_id=site.name,
        instance=time.time_ns() // 1_000_000,
        registry=Registry(),
        server_tls=server_context(server),
        client_tls=None,
        client_endpoint_tls=client_endpoint_context(server),
        limits=limits,
        tcp_window=window_setting(site.spec.settings, _setting_invalid),
    )
    book = GrantBook(ns.grants_dir / "grants.json")
    return NamespaceNode(ns=ns, site=site, ctx=ctx, ca=ca, grant_book=book, server=server)


def _access_names(desired: Desired) -> set[str]:
    """The names peers may dial this site by: every RouterAccess's SANs and host."""
    return {n for point in desired.access.values() for n in (*point.sans, point.advertised_host)}
