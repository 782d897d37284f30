"""The supervisor tree of one site, as data.

    node                       rest_for_one
    ├── router                 rest_for_one
    │   ├── routing            RoutingActor: link-state database, next hops, addresses
    │   ├── links              one_for_one: a LinkActor per outgoing link (permanent)
    │   │                      and per accepted connection (temporary)
    │   ├── listener           InterRouterListener: accepts links, starts LinkActors
    │   └── adaptors           one_for_one: a TcpListenerActor / TcpConnectorActor per
    │                          listener / connector, each the supervisor of its
    │                          TcpConnectionActors (temporary children)
    └── control                one_for_one
        └── management         ManagementActor: status over ZeroMQ ipc

The router comes first: a crash that escapes it restarts the control plane with it,
while a crash in management never disturbs routing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from skupper_actors import __version__
from skupper_actors.actors.context import LinkLimits, LinkTimings, RouterContext
from skupper_actors.actors.link import LinkActor, LinkEndpoint
from skupper_actors.actors.listener import GetBoundAddress, InterRouterListener
from skupper_actors.actors.management import ManagementActor
from skupper_actors.actors.memory import MemoryActor
from skupper_actors.actors.routing import RoutingActor
from skupper_actors.actors.tcp import TcpConnectorActor, TcpListenerActor
from skupper_actors.kernel import (
    ActorRef,
    ChildSpec,
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
from skupper_actors.security import Credentials, client_context, server_context
from skupper_actors.siteconfig import ConnectorConfig, LinkConfig, ListenerConfig, SiteConfig


@dataclass(slots=True)
class Node:
    """A running site: its config, shared context and root supervisor."""

    config: SiteConfig
    ctx: RouterContext
    started_at: float = field(default_factory=time.time)
    root: ActorRef | None = None

    def router_info(self) -> RouterInfo:
        listener = self.ctx.lookup("listener")
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
        cfg = self.config
        ctx = self.ctx
        settings = RoutingSettings(
            hello_interval=cfg.routing.hello_interval,
            hello_max_age=cfg.routing.hello_max_age,
            ra_interval=cfg.routing.ra_interval,
            max_addresses_per_router=cfg.limits.max_addresses_per_router,
            max_addresses_per_update=cfg.limits.max_addresses_per_update,
        )
        links = [outgoing_link(ctx, link) for link in cfg.links]
        adaptors = [tcp_listener(ctx, lc) for lc in cfg.listeners] + [
            tcp_connector(ctx, cc) for cc in cfg.connectors
        ]
        addresses: tuple[str, ...] = ()  # connectors bind their routing keys when they start

        def router() -> Supervisor:
            return Supervisor(
                [
                    child(
                        "routing",
                        lambda: RoutingActor(
                            ctx.router_id,
                            ctx.instance,
                            settings,
                            addresses,
                            ctx.dataplane,
                            ctx.health,
                        ),
                        registry=ctx.registry,
                    ),
                    supervisor_child(
                        "links",
                        lambda: Supervisor(links, intensity=10, period=10),
                        registry=ctx.registry,
                    ),
                    child(
                        "listener",
                        lambda: InterRouterListener(
                            ctx, cfg.inter_router.host, cfg.inter_router.port
                        ),
                        registry=ctx.registry,
                    ),
                    supervisor_child(
                        "adaptors",
                        lambda: Supervisor(adaptors, intensity=10, period=10),
                        registry=ctx.registry,
                    ),
                ],
                strategy=Strategy.REST_FOR_ONE,
            )

        def control() -> Supervisor:
            return Supervisor(
                [
                    child(
                        "management",
                        lambda: ManagementActor(ctx, cfg.runtime_dir, self.router_info),
                        registry=ctx.registry,
                    ),
                    child(
                        "memory",
                        lambda: MemoryActor(ctx.dataplane.budget, ctx.memory),
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
        self.root = spawn(
            self.tree(), name=self.config.site, log_context={"site": self.config.site}
        )
        return self.root


def outgoing_link(ctx: RouterContext, link: LinkConfig) -> ChildSpec:
    endpoint = LinkEndpoint(name=link.name, host=link.host, port=link.port, cost=link.cost)
    return ChildSpec(
        id=f"link-{link.name}", start=lambda: LinkActor(ctx, endpoint=endpoint), shutdown=2.0
    )


def tcp_listener(ctx: RouterContext, cfg: ListenerConfig) -> ChildSpec:
    return supervisor_child(
        f"listener-{cfg.name}",
        lambda: TcpListenerActor(
            ctx, cfg.name, cfg.routing_key, cfg.host, cfg.port, DistributionMode(cfg.distribution)
        ),
        registry=ctx.registry,
    )


def tcp_connector(ctx: RouterContext, cfg: ConnectorConfig) -> ChildSpec:
    return supervisor_child(
        f"connector-{cfg.name}",
        lambda: TcpConnectorActor(ctx, cfg.name, cfg.routing_key, cfg.host, cfg.port),
        registry=ctx.registry,
    )


def build_node(config: SiteConfig, *, timings: LinkTimings | None = None) -> Node:
    """Load credentials and TLS contexts for ``config`` (raises CredentialsError)."""
    inter = config.inter_router
    server_tls = client_tls = None
    if not inter.plaintext:
        assert inter.tls is not None  # the schema requires tls unless plaintext
        credentials = Credentials.from_files(inter.tls.cert, inter.tls.key, inter.tls.ca)
        server_tls = server_context(credentials)
        client_tls = client_context(credentials, verify_hostname=True)
    ctx = RouterContext(
        router_id=config.site,
        instance=time.time_ns() // 1_000_000,
        registry=Registry(),
        server_tls=server_tls,
        client_tls=client_tls,
        timings=timings or LinkTimings(),
        limits=LinkLimits(
            max_links_per_connection=config.limits.max_links_per_connection,
            max_frame_size=config.limits.max_frame_size,
            max_control_entries=config.limits.max_control_entries,
            max_message_size=config.limits.max_message_size,
        ),
        tcp_window=config.tcp_window,
    )
    ctx.dataplane.budget.set_limit(config.tcp_buffer_budget)
    return Node(config=config, ctx=ctx)
