"""The supervisor tree of one site and its child specs, as data, for both run modes.

    node                       rest_for_one, 3 restarts in 30 s
    ├── router                 rest_for_one
    │   ├── routing            RoutingActor: link-state database, next hops, addresses
    │   ├── links              one_for_one: a LinkActor per Link (permanent) and per
    │   │                      accepted connection (temporary)
    │   ├── access             one_for_one: an InterRouterListener per access point
    │   └── adaptors           one_for_one: a TcpListenerActor / TcpConnectorActor per
    │                          Listener / Connector, each the supervisor of its
    │                          TcpConnectionActors (temporary children)
    └── control                one_for_one
        ├── grants             GrantServerActor        (namespace mode only)
        ├── controller         ControllerActor         (namespace mode only)
        ├── management         ManagementActor: status over ZeroMQ ipc
        ├── memory             MemoryActor: the buffer budget's log, trims after bursts
        └── vanflow            VanflowActor: the node's flow records (docs/adr/0032)

Both run modes describe what the router runs as one `Desired` (controller/desired.py):
`skupper-node run -n NS` reconciles it from the namespace's resources, and
`skupper-node run -c site.yaml` translates its file into one (`desired_from_config`).
With a file the groups start filled with that state's children and stay so (a group
restarted starts them again); in a namespace they start empty and the controller fills
them, starting over when a group was restarted under it. The child specs are the same
(`child_spec`), and so are the routing settings and link limits read from the Site.

The router comes first: a crash that escapes it restarts the control plane with it,
while a crash in management never disturbs routing.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from skupper_actors import __version__
from skupper_actors.actors.context import LinkLimits, RouterContext
from skupper_actors.actors.control.memory import MemoryActor
from skupper_actors.actors.links.link import LinkActor, LinkEndpoint
from skupper_actors.actors.links.listener import InterRouterListener
from skupper_actors.actors.links.routing import RoutingActor
from skupper_actors.actors.messaging import AmqpEndpointActor
from skupper_actors.actors.tcp.adaptor import TcpConnectorActor, TcpListenerActor
from skupper_actors.actors.vanflow import VanflowActor
from skupper_actors.api import Site
from skupper_actors.api.settings import site_setting
from skupper_actors.controller.desired import Desired, LinkTarget
from skupper_actors.kernel import ChildSpec, Strategy, Supervisor, child, supervisor_child
from skupper_actors.protocol.addressing import DistributionMode
from skupper_actors.protocol.routing import RoutingSettings

#: the groups a desired state fills, and the router's supervisor that holds each
GROUP_SUPERVISOR: Mapping[str, str] = {
    "links": "links",
    "access": "access",
    "listeners": "adaptors",
    "connectors": "adaptors",
    "amqp": "adaptors",
}
CHILD_PREFIX: Mapping[str, str] = {
    "links": "link",
    "access": "access",
    "listeners": "listener",
    "connectors": "connector",
    "amqp": "amqp",
}
GROUPS = ("access", "links", "listeners", "connectors", "amqp")

#: how an outgoing link finds its client TLS context (None: the router's own)
LinkTls = Callable[[LinkTarget], ssl.SSLContext | None]


def child_id(group: str, name: str) -> str:
    return f"{CHILD_PREFIX[group]}-{name}"


def child_spec(
    ctx: RouterContext, group: str, name: str, desired: Desired, link_tls: LinkTls
) -> ChildSpec:
    """The child that runs ``desired``'s ``name`` in ``group`` (ValueError if it cannot)."""
    if group not in CHILD_PREFIX:
        raise ValueError(f"no group {group!r}")
    cid = child_id(group, name)
    if group == "access":
        point = desired.access[name]
        return child(
            cid,
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
            client_tls=link_tls(target),
        )
        return child(
            cid, lambda: LinkActor(ctx, endpoint=endpoint), registry=ctx.registry, shutdown=2.0
        )
    if group == "listeners":
        svc = desired.listeners[name]
        return supervisor_child(
            cid,
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
    if group == "amqp":
        access = desired.amqp[name]
        return supervisor_child(
            cid,
            lambda: AmqpEndpointActor(
                ctx,
                name,
                access.host,
                access.port,
                ctx.client_endpoint_tls if access.tls else None,
                auth=access.auth,
            ),
            registry=ctx.registry,
        )
    svc = desired.connectors[name]
    return supervisor_child(
        cid,
        lambda: TcpConnectorActor(ctx, name, svc.routing_key, svc.host, svc.port),
        registry=ctx.registry,
    )


def desired_children(
    ctx: RouterContext, desired: Desired, link_tls: LinkTls
) -> dict[str, list[ChildSpec]]:
    """Every child of ``desired``, by the router's group supervisor that holds it."""
    groups: dict[str, list[ChildSpec]] = {"links": [], "access": [], "adaptors": []}
    for group in GROUPS:
        names: Mapping[str, object] = getattr(desired, group)
        for name in sorted(names):
            groups[GROUP_SUPERVISOR[group]].append(child_spec(ctx, group, name, desired, link_tls))
    return groups


def site_tree(
    ctx: RouterContext,
    settings: RoutingSettings,
    *,
    control: Sequence[ChildSpec],
    children: Mapping[str, Sequence[ChildSpec]] | None = None,
) -> Supervisor:
    """The site's whole tree: the router (groups holding ``children``, else empty) and
    the ``control`` children, then the memory actor."""
    filled = children or {}
    memory = child(
        "memory", lambda: MemoryActor(ctx.dataplane.budget, ctx.memory), registry=ctx.registry
    )
    vanflow = child(
        "vanflow", lambda: VanflowActor(ctx, version=__version__), registry=ctx.registry
    )

    def group(name: str) -> ChildSpec:
        specs = list(filled.get(name, ()))
        return supervisor_child(
            name, lambda: Supervisor(specs, intensity=10, period=10), registry=ctx.registry
        )

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
                group("links"),
                group("access"),
                group("adaptors"),
            ],
            strategy=Strategy.REST_FOR_ONE,
        )

    return Supervisor(
        [
            supervisor_child("router", router),
            supervisor_child("control", lambda: Supervisor([*control, memory, vanflow])),
        ],
        strategy=Strategy.REST_FOR_ONE,
        intensity=3,
        period=30,
    )


# -- what a Site's settings set ----------------------------------------------------------------
def routing_settings(site: Site) -> RoutingSettings:
    """The Site's routing settings; an absent one keeps `RoutingSettings`' default."""
    settings = site.spec.settings
    default = RoutingSettings()
    return replace(
        default,
        hello_interval=site_setting(settings, "hello-interval", default.hello_interval),
        hello_max_age=site_setting(settings, "hello-max-age", default.hello_max_age),
        ra_interval=site_setting(settings, "ra-interval", default.ra_interval),
        max_addresses_per_router=site_setting(
            settings, "max-addresses-per-router", default.max_addresses_per_router
        ),
        max_addresses_per_update=site_setting(
            settings, "max-addresses-per-update", default.max_addresses_per_update
        ),
    )


def link_limits(site: Site) -> LinkLimits:
    """The Site's limits on inter-router connections (docs/limits-links.md)."""
    settings = site.spec.settings
    defaults = LinkLimits()
    return LinkLimits(
        max_links_per_connection=site_setting(
            settings, "max-links-per-connection", defaults.max_links_per_connection
        ),
        max_frame_size=site_setting(settings, "max-frame-size", defaults.max_frame_size),
        max_control_entries=site_setting(
            settings, "max-control-entries", defaults.max_control_entries
        ),
        max_message_size=site_setting(settings, "max-message-size", defaults.max_message_size),
    )
