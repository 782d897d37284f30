"""`skupper-node run -c site.yaml`: one site from one file.

The file is translated into the desired state the namespace mode reconciles
(`desired_from_config`: a Site whose settings carry the routing timers and limits, one
access point, and the links, listeners and connectors), and that state runs through the
same tree and child specs (sitetree.py). There is no controller: the router's groups
start filled and stay so. See docs/adr/0016-two-run-modes-share-one-site-tree.md.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field

from cryptography import x509

from skupper_actors import __version__
from skupper_actors.actors.context import LinkTimings, RouterContext
from skupper_actors.actors.control.management import ManagementActor
from skupper_actors.actors.links.listener import GetBoundAddress
from skupper_actors.api import FrozenMap, Metadata, Site, SiteSpec
from skupper_actors.controller.desired import (
    DEFAULT_ACCESS,
    AccessPoint,
    ClientAccess,
    Desired,
    LinkTarget,
    Service,
)
from skupper_actors.kernel import ActorRef, Registry, Supervisor, child, spawn
from skupper_actors.management import RouterInfo
from skupper_actors.protocol.amqp.client import external_unavailable
from skupper_actors.security import (
    Credentials,
    CredentialsError,
    client_context,
    client_endpoint_context,
    server_context,
)
from skupper_actors.siteconfig import SiteConfig
from skupper_actors.sitetree import (
    child_id,
    desired_children,
    link_limits,
    routing_settings,
    site_tree,
)


@dataclass(slots=True)
class Node:
    """A running site: its config, the desired state made of it, shared context and root."""

    config: SiteConfig
    desired: Desired
    ctx: RouterContext
    started_at: float = field(default_factory=time.time)
    root: ActorRef | None = None

    @property
    def site(self) -> Site:
        assert self.desired.site is not None  # desired_from_config always makes one
        return self.desired.site

    def router_info(self) -> RouterInfo:
        listener = self.ctx.lookup(child_id("access", DEFAULT_ACCESS))
        host, port = self.config.inter_router.host, self.config.inter_router.port
        if listener is not None:
            host, port = listener.ask(GetBoundAddress(), timeout=2)
        return RouterInfo(
            id=self.ctx.router_id,
            instance=self.ctx.instance,
            version=__version__,
            inter_router_host=host,
            inter_router_port=port,
            tls=self.ctx.tls,
            started_at=self.started_at,
        )

    def tree(self) -> Supervisor:
        ctx = self.ctx
        management = child(
            "management",
            lambda: ManagementActor(ctx, self.config.runtime_dir, self.router_info),
            registry=ctx.registry,
        )
        return site_tree(
            ctx,
            routing_settings(self.site),
            control=[management],
            children=desired_children(ctx, self.desired, _router_tls),
        )

    def start(self) -> ActorRef:
        self.ctx.health.start_monitor()
        self.root = spawn(
            self.tree(), name=self.config.site, log_context={"site": self.config.site}
        )
        return self.root


def _router_tls(target: LinkTarget) -> ssl.SSLContext | None:
    """Links of a site file present the router's own certificate (None: ctx.client_tls)."""
    return None


def desired_from_config(config: SiteConfig) -> Desired:
    """What ``config`` asks the router to run, as the namespace mode would declare it."""
    routing, limits = config.routing, config.limits
    settings = {
        "hello-interval": repr(routing.hello_interval),
        "hello-max-age": repr(routing.hello_max_age),
        "ra-interval": repr(routing.ra_interval),
        "max-addresses-per-router": str(limits.max_addresses_per_router),
        "max-addresses-per-update": str(limits.max_addresses_per_update),
        "max-links-per-connection": str(limits.max_links_per_connection),
        "max-frame-size": str(limits.max_frame_size),
        "max-control-entries": str(limits.max_control_entries),
        "max-message-size": str(limits.max_message_size),
    }
    inter = config.inter_router
    return Desired(
        site=Site(
            metadata=Metadata(name=config.site),
            spec=SiteSpec(link_access="default", settings=FrozenMap(settings)),
        ),
        access={
            DEFAULT_ACCESS: AccessPoint(
                name=DEFAULT_ACCESS,
                host=inter.host,
                port=inter.port,
                advertised_host=inter.host,
                sans=(),
            )
        },
        links={
            link.name: LinkTarget(
                name=link.name, host=link.host, port=link.port, cost=link.cost, credentials=None
            )
            for link in config.links
        },
        listeners={
            lc.name: Service(
                name=lc.name,
                routing_key=lc.routing_key,
                host=lc.host,
                port=lc.port,
                distribution=lc.distribution,
            )
            for lc in config.listeners
        },
        connectors={
            cc.name: Service(name=cc.name, routing_key=cc.routing_key, host=cc.host, port=cc.port)
            for cc in config.connectors
        },
        amqp={}
        if config.amqp is None
        else {
            "amqp": ClientAccess(
                name="amqp",
                host=config.amqp.host,
                port=config.amqp.port,
                tls=config.amqp.tls,
                auth=config.amqp.auth,
            )
        },
    )


def amqp_endpoint_context(config: SiteConfig, credentials: Credentials) -> ssl.SSLContext:
    """The AMQP endpoint's TLS context: the site's certificate; a client certificate from
    ``amqp.client_ca`` (else the site's CA), required with ``auth: external``."""
    amqp = config.amqp
    if amqp is None:
        return client_endpoint_context(credentials)
    external = amqp.auth == "external"
    if external:
        unavailable = external_unavailable()
        if unavailable is not None:
            raise CredentialsError(f"amqp: auth: {unavailable}")
    client_ca = None
    if amqp.client_ca is not None:
        where = f"amqp: client_ca: {amqp.client_ca}"
        try:
            client_ca = amqp.client_ca.read_bytes()
        except OSError as error:
            raise CredentialsError(f"{where}: cannot read ({error.strerror or error})") from None
        try:
            x509.load_pem_x509_certificates(client_ca)
        except ValueError:
            raise CredentialsError(f"{where}: not a PEM certificate") from None
    return client_endpoint_context(
        credentials, require_client_cert=external, client_ca_pem=client_ca
    )


def build_node(config: SiteConfig, *, timings: LinkTimings | None = None) -> Node:
    """Load credentials and TLS contexts for ``config`` (raises CredentialsError)."""
    desired = desired_from_config(config)
    assert desired.site is not None
    inter = config.inter_router
    server_tls = client_tls = endpoint_tls = None
    if not inter.plaintext:
        assert inter.tls is not None  # the schema requires tls unless plaintext
        credentials = Credentials.from_files(inter.tls.cert, inter.tls.key, inter.tls.ca)
        server_tls = server_context(credentials)
        client_tls = client_context(credentials, verify_hostname=True)
        endpoint_tls = amqp_endpoint_context(config, credentials)
    ctx = RouterContext(
        router_id=config.site,
        instance=time.time_ns() // 1_000_000,
        registry=Registry(),
        server_tls=server_tls,
        client_tls=client_tls,
        timings=timings or LinkTimings(),
        limits=link_limits(desired.site),
        tcp_window=config.tcp_window,
        client_endpoint_tls=endpoint_tls,
    )
    ctx.dataplane.budget.set_limit(config.tcp_buffer_budget)
    return Node(config=config, desired=desired, ctx=ctx)
