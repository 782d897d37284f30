"""A site run from its namespace folder (`skupper-node run -n NS`): the declarative mode.

    node                       rest_for_one
    ├── router                 rest_for_one
    │   ├── routing            RoutingActor
    │   ├── links              one_for_one, dynamic: LinkActor per Link (and per accepted link)
    │   ├── access             one_for_one, dynamic: InterRouterListener per RouterAccess
    │   └── adaptors           one_for_one, dynamic: TcpListener/TcpConnector per resource
    └── control                one_for_one
        ├── grants             GrantServerActor (HTTPS; idle until a grant exists)
        ├── controller         ControllerActor: resources -> children of the router
        └── management         ManagementActor

The router's groups start empty; the controller fills them from the resources and
starts over whenever a group supervisor was restarted under it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from skupper_actors import __version__
from skupper_actors.actors.context import LinkLimits, RouterContext
from skupper_actors.actors.controller import ControllerActor
from skupper_actors.actors.grantconn import GrantCounters, GrantLimits
from skupper_actors.actors.grants import GrantServerActor, ReloadCertificate
from skupper_actors.actors.link import LinkActor, LinkEndpoint
from skupper_actors.actors.listener import GetBoundAddress, InterRouterListener
from skupper_actors.actors.management import ManagementActor
from skupper_actors.actors.routing import RoutingActor
from skupper_actors.actors.tcp import TcpConnectorActor, TcpListenerActor
from skupper_actors.api import Endpoint, Namespace, Resource, Site, load_resources
from skupper_actors.controller.desired import Desired, desired_state
from skupper_actors.controller.site import (
    SITE_SERVER,
    ensure_server_credentials,
    ensure_site_ca,
    link_credentials_folder,
)
from skupper_actors.kernel import (
    ActorRef,
    ChildSpec,
    KernelError,
    Registry,
    Strategy,
    Supervisor,
    child,
    spawn,
    supervisor_child,
)
from skupper_actors.management import RouterInfo
from skupper_actors.protocol.addressing import DistributionMode
from skupper_actors.protocol.routing import RoutingSettings
from skupper_actors.security import (
    CertificateAuthority,
    Credentials,
    client_context,
    load_identity,
    server_context,
)
from skupper_actors.security.grants import GrantBook

_log = structlog.get_logger("skupper_actors.site")

GROUP_SUPERVISOR = {
    "links": "links",
    "access": "access",
    "listeners": "adaptors",
    "connectors": "adaptors",
}
CHILD_PREFIX = {
    "links": "link",
    "access": "access",
    "listeners": "listener",
    "connectors": "connector",
}


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
    group_refs: dict[str, object] = field(default_factory=dict)
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
        return f"{CHILD_PREFIX[group]}-{name}"

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
        ctx = self.ctx
        child_id = self.child_id(group, name)
        if group == "access":
            self._cover_access_names(desired)
            point = desired.access[name]
            return child(
                child_id,
                lambda: InterRouterListener(ctx, point.host, point.port),
                registry=ctx.registry,
                shutdown=2.0,
            )
        if group == "links":
            target = desired.links[name]
            endpoint = LinkEndpoint(
                name=name,
                host=target.host,
                port=target.port,
                cost=target.cost,
                client_tls=self._link_tls(name, target.credentials),
            )
            return child(
                child_id,
                lambda: LinkActor(ctx, endpoint=endpoint),
                registry=ctx.registry,
                shutdown=2.0,
            )
        if group == "listeners":
            svc = desired.listeners[name]
            return supervisor_child(
                child_id,
                lambda: TcpListenerActor(
                    ctx,
                    name,
                    svc.routing_key,
                    svc.host,
                    svc.port,
                    DistributionMode(svc.distribution) if svc.distribution else None,
                ),
                registry=ctx.registry,
            )
        svc = desired.connectors[name]
        return supervisor_child(
            child_id,
            lambda: TcpConnectorActor(ctx, name, svc.routing_key, svc.host, svc.port),
            registry=ctx.registry,
        )

    def _link_tls(self, link: str, credentials: str | None) -> object:
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
        grants_port = int(self.site.spec.settings.get("grant-server-port", "0"))
        grant_limits = GrantLimits.from_settings(self.site.spec.settings, _setting_invalid)
        server = self.ns.runtime_certs_dir / SITE_SERVER

        def group() -> Supervisor:
            return Supervisor(intensity=10, period=10)

        def router() -> Supervisor:
            return Supervisor(
                [
                    child(
                        "routing",
                        lambda: RoutingActor(
                            ctx.router_id, ctx.instance, settings, (), ctx.dataplane, ctx.health
                        ),
                        registry=ctx.registry,
                    ),
                    supervisor_child("links", group, registry=ctx.registry),
                    supervisor_child("access", group, registry=ctx.registry),
                    supervisor_child("adaptors", group, registry=ctx.registry),
                ],
                strategy=Strategy.REST_FOR_ONE,
            )

        def control() -> Supervisor:
            return Supervisor(
                [
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
                ]
            )

        return Supervisor(
            [supervisor_child("router", router), supervisor_child("control", control)],
            strategy=Strategy.REST_FOR_ONE,
            intensity=3,
            period=30,
        )

    def start(self) -> ActorRef:
        self.ctx.health.start_monitor()
        self.root = spawn(self.tree(), name=self.site_name, log_context={"site": self.site_name})
        return self.root


def _setting_invalid(key: str, value: str, problem: str) -> None:
    _log.error("site_setting_invalid", setting=key, value=value, problem=problem)


def routing_settings(site: Site) -> RoutingSettings:
    """The Site's routing settings; an absent one keeps `RoutingSettings`' default."""
    settings = site.spec.settings
    default = RoutingSettings()
    return replace(
        default,
        hello_interval=_number(settings, "hello-interval", default.hello_interval),
        hello_max_age=_number(settings, "hello-max-age", default.hello_max_age),
        ra_interval=_number(settings, "ra-interval", default.ra_interval),
        max_addresses_per_router=_whole(
            settings, "max-addresses-per-router", default.max_addresses_per_router
        ),
        max_addresses_per_update=_whole(
            settings, "max-addresses-per-update", default.max_addresses_per_update
        ),
    )


def _number(settings: Mapping[str, str], name: str, default: float) -> float:
    value = settings.get(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"setting {name}: {value!r} is not a number") from None


def _whole(settings: Mapping[str, str], name: str, default: int) -> int:
    value = settings.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"setting {name}: {value!r} is not a whole number") from None


def link_limits(site: Site) -> LinkLimits:
    """The Site's limits on inter-router connections (docs/limits-links.md)."""
    settings = site.spec.settings
    defaults = LinkLimits()
    return LinkLimits(
        max_links_per_connection=_whole(
            settings, "max-links-per-connection", defaults.max_links_per_connection
        ),
        max_frame_size=_whole(settings, "max-frame-size", defaults.max_frame_size),
        max_control_entries=_whole(
            settings, "max-control-entries", defaults.max_control_entries
        ),
        max_message_size=_whole(settings, "max-message-size", defaults.max_message_size),
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
        limits=limits,
    )
    book = GrantBook(ns.grants_dir / "grants.json")
    return NamespaceNode(ns=ns, site=site, ctx=ctx, ca=ca, grant_book=book, server=server)


def _access_names(desired: Desired) -> set[str]:
    """The names peers may dial this site by: every RouterAccess's SANs and host."""
    return {n for point in desired.access.values() for n in (*point.sans, point.advertised_host)}
