"""What the router should be running, derived from resources; and the plan to get there.

Pure: resources in, a desired state and a list of actions out (tested without a node).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from skupper_actors.api import (
    AccessGrant,
    AccessToken,
    Connector,
    Link,
    Listener,
    Resource,
    RouterAccess,
    Site,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessPoint:
    """Where this site accepts inter-router links."""

    name: str
    host: str
    port: int
    advertised_host: str  # the name peers use: the first SAN, else the bind host
    sans: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkTarget:
    name: str
    host: str
    port: int
    cost: int
    credentials: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    name: str
    routing_key: str
    host: str
    port: int
    distribution: str | None = None  # listeners: balanced (default) or closest


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientAccess:
    """Where this site accepts AMQP clients (off unless configured; docs/messaging.md)."""

    name: str
    host: str
    port: int
    tls: bool = False  # TLS with the site's certificate; clients may present one
    #: "anonymous" (SASL ANONYMOUS) or "external" (a client certificate is required and
    #: SASL EXTERNAL makes its CN the client's identity; TLS only)
    auth: str = "anonymous"


@dataclass(frozen=True, slots=True, kw_only=True)
class Desired:
    site: Site | None
    access: Mapping[str, AccessPoint] = field(default_factory=dict)
    links: Mapping[str, LinkTarget] = field(default_factory=dict)
    listeners: Mapping[str, Service] = field(default_factory=dict)
    connectors: Mapping[str, Service] = field(default_factory=dict)
    amqp: Mapping[str, ClientAccess] = field(default_factory=dict)
    grants: Mapping[str, AccessGrant] = field(default_factory=dict)
    tokens: Mapping[str, AccessToken] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


DEFAULT_ACCESS = "skupper-router"
#: RouterAccess role of the AMQP client endpoint (skupper-router's name for a client listener)
CLIENT_ROLE = "normal"


#: settings.amqp-auth of a RouterAccess with a `normal` role (docs/messaging.md)
CLIENT_AUTH = ("anonymous", "external")


def _client_access(access: RouterAccess, port: int, problems: list[str]) -> ClientAccess | None:
    """The client endpoint a RouterAccess asks for; None (and a problem) if it cannot be
    had as asked: an endpoint with weaker authentication than asked for never opens."""
    settings = access.spec.settings
    tls = settings.get("amqp-tls", "true") != "false"
    auth = settings.get("amqp-auth", "anonymous")
    where = f"RouterAccess/{access.name}: settings.amqp-auth"
    if auth not in CLIENT_AUTH:
        problems.append(f"{where}: must be one of: anonymous, external")
        return None
    if auth == "external" and not tls:
        problems.append(f"{where}: external needs amqp-tls (the client certificate)")
        return None
    host = access.spec.bind_host or "127.0.0.1"
    return ClientAccess(name=access.name, host=host, port=port, tls=tls, auth=auth)


def desired_state(resources: Iterable[Resource]) -> Desired:
    sites: list[Site] = []
    access: dict[str, AccessPoint] = {}
    links: dict[str, LinkTarget] = {}
    listeners: dict[str, Service] = {}
    connectors: dict[str, Service] = {}
    grants: dict[str, AccessGrant] = {}
    tokens: dict[str, AccessToken] = {}
    amqp: dict[str, ClientAccess] = {}
    problems: list[str] = []
    for resource in resources:
        match resource:
            case Site():
                sites.append(resource)
            case RouterAccess():
                role = resource.spec.role("inter-router")
                client_role = resource.spec.role(CLIENT_ROLE)
                if client_role is not None:
                    client = _client_access(resource, client_role.port, problems)
                    if client is not None:
                        amqp[resource.name] = client
                if role is None:
                    if client_role is None:
                        problems.append(f"RouterAccess/{resource.name}: no inter-router role")
                    continue
                host = resource.spec.bind_host or "127.0.0.1"
                sans = tuple(resource.spec.subject_alternative_names)
                access[resource.name] = AccessPoint(
                    name=resource.name,
                    host=host,
                    port=role.port,
                    advertised_host=sans[0]
                    if sans
                    else ("127.0.0.1" if host == "0.0.0.0" else host),
                    sans=sans + ((host,) if host not in ("0.0.0.0", "::") else ()),
                )
            case Link():
                endpoint = resource.spec.endpoint("inter-router")
                if endpoint is None:
                    problems.append(f"Link/{resource.name}: no inter-router endpoint")
                    continue
                links[resource.name] = LinkTarget(
                    name=resource.name,
                    host=endpoint.host,
                    port=int(endpoint.port),
                    cost=resource.spec.cost,
                    credentials=resource.spec.tls_credentials,
                )
            case Listener():
                spec = resource.spec
                distribution = spec.settings.get("distribution")
                if distribution not in (None, "balanced", "closest"):
                    problems.append(
                        f"Listener/{resource.name}: settings.distribution must be balanced or "
                        f"closest, not {distribution!r}"
                    )
                    distribution = None
                listeners[resource.name] = Service(
                    name=resource.name,
                    routing_key=spec.routing_key,
                    host=spec.host,
                    port=spec.port,
                    distribution=distribution,
                )
            case Connector():
                spec = resource.spec
                connectors[resource.name] = Service(
                    name=resource.name, routing_key=spec.routing_key, host=spec.host, port=spec.port
                )
            case AccessGrant():
                grants[resource.name] = resource
            case AccessToken():
                tokens[resource.name] = resource
    site = sites[0] if sites else None
    if len(sites) > 1:
        problems.append(f"more than one Site: {', '.join(s.name for s in sites)}")
    if site is not None and site.spec.link_access != "none" and not access:
        # linkAccess: default means "accept links" with the default inter-router port
        from skupper_actors.api import DEFAULT_INTER_ROUTER_PORT

        access[DEFAULT_ACCESS] = AccessPoint(
            name=DEFAULT_ACCESS,
            host="127.0.0.1",
            port=DEFAULT_INTER_ROUTER_PORT,
            advertised_host="127.0.0.1",
            sans=("127.0.0.1",),
        )
    return Desired(
        site=site,
        access=access,
        links=links,
        listeners=listeners,
        connectors=connectors,
        amqp=amqp,
        grants=grants,
        tokens=tokens,
        problems=tuple(problems),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Children to stop, start and adjust; stops come first."""

    stop: tuple[tuple[str, str], ...] = ()  # (group, name)
    start: tuple[tuple[str, str], ...] = ()
    cost_changes: tuple[tuple[str, int], ...] = ()  # link name, new cost

    @property
    def empty(self) -> bool:
        return not (self.stop or self.start or self.cost_changes)


def plan(current: Desired, desired: Desired) -> Plan:
    """What changes from ``current`` to ``desired``: whole children, except link costs."""
    stop: list[tuple[str, str]] = []
    start: list[tuple[str, str]] = []
    costs: list[tuple[str, int]] = []
    groups: tuple[tuple[str, Mapping[str, object], Mapping[str, object]], ...] = (
        ("access", current.access, desired.access),
        ("links", current.links, desired.links),
        ("listeners", current.listeners, desired.listeners),
        ("connectors", current.connectors, desired.connectors),
        ("amqp", current.amqp, desired.amqp),
    )
    for group, old, new in groups:
        for name in sorted(old):
            if name not in new:
                stop.append((group, name))
        for name in sorted(new):
            if name not in old:
                start.append((group, name))
            elif old[name] != new[name]:
                before, after = old[name], new[name]
                if (
                    isinstance(before, LinkTarget)
                    and isinstance(after, LinkTarget)
                    and _same_except_cost(before, after)
                ):
                    costs.append((name, after.cost))
                else:
                    stop.append((group, name))
                    start.append((group, name))
    return Plan(stop=tuple(stop), start=tuple(start), cost_changes=tuple(costs))


def _same_except_cost(a: LinkTarget, b: LinkTarget) -> bool:
    return (a.host, a.port, a.credentials) == (b.host, b.port, b.credentials)
