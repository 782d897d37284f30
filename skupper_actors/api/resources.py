"""Skupper v2 resources (`apiVersion: skupper.io/v2alpha1`) as frozen dataclasses.

Field names are snake_case here and camelCase in YAML (`routing_key` is `routingKey`).
Defaults are Skupper's, for a bare-metal site. `status` is None until a controller sets it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias

from skupper_actors.api.meta import Endpoint, FrozenMap, Metadata
from skupper_actors.api.status import (
    CONFIGURED,
    MATCHED,
    OPERATIONAL,
    REDEEMED,
    RESOLVED,
    RUNNING,
    AccessGrantStatus,
    AccessTokenStatus,
    ConditionState,
    ConnectorStatus,
    LinkStatus,
    ListenerStatus,
    RouterAccessStatus,
    SiteStatus,
    Status,
    derive_status,
    set_condition,
)

API_VERSION = "skupper.io/v2alpha1"

DEFAULT_INTER_ROUTER_PORT = 55671
DEFAULT_EDGE_PORT = 45671
DEFAULT_NORMAL_PORT = 5671
DEFAULT_LINK_COST = 1
MAX_LINK_COST = 2**31 - 1
DEFAULT_REDEMPTIONS_ALLOWED = 1
DEFAULT_EXPIRATION_WINDOW = 15 * 60.0
DEFAULT_ISSUER = "skupper-site-ca"
DEFAULT_SITE_SERVER_CREDENTIALS = "skupper-site-server"
#: Skupper's bare-metal CLI binds listeners to every interface unless told otherwise.
# Skupper binds listeners to 0.0.0.0; nothing of ours listens beyond loopback unless asked.
DEFAULT_LISTENER_HOST = "127.0.0.1"
DEFAULT_CONNECTOR_HOST = "localhost"

LINK_ACCESS_VALUES = ("none", "default")
SERVICE_TYPES = ("tcp",)
OBSERVERS = ("auto", "none", "http1", "http2")
LINK_ROLES = ("inter-router", "edge")
ROUTER_ACCESS_ROLES = ("inter-router", "edge", "normal")
DEFAULT_ROLE_PORTS = {
    "inter-router": DEFAULT_INTER_ROUTER_PORT,
    "edge": DEFAULT_EDGE_PORT,
    "normal": DEFAULT_NORMAL_PORT,
}


class _ResourceBase:
    """What every resource answers: its kind, name and (kind, name) key."""

    __slots__ = ()
    kind: str
    metadata: Metadata

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.metadata.name)


# --- Site ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteSpec:
    """`link_access` "default" makes the site accept links (Skupper's RouterAccess default)."""

    link_access: str = "none"
    edge: bool = False
    ha: bool = False
    default_issuer: str = DEFAULT_ISSUER
    settings: FrozenMap = field(default_factory=FrozenMap)


@dataclass(frozen=True, slots=True, kw_only=True)
class Site(_ResourceBase):
    kind: Literal["Site"] = field(default="Site", init=False)
    metadata: Metadata
    spec: SiteSpec = field(default_factory=SiteSpec)
    status: SiteStatus | None = None


# --- Listener and Connector ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerSpec:
    """A local port whose connections go to the connectors with the same routing key."""

    routing_key: str
    port: int
    host: str = DEFAULT_LISTENER_HOST
    tls_credentials: str | None = None
    type: str = "tcp"
    observer: str = "auto"
    settings: FrozenMap = field(default_factory=FrozenMap)


@dataclass(frozen=True, slots=True, kw_only=True)
class Listener(_ResourceBase):
    kind: Literal["Listener"] = field(default="Listener", init=False)
    metadata: Metadata
    spec: ListenerSpec
    status: ListenerStatus | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorSpec:
    """A server (host, port) that receives the connections for its routing key."""

    routing_key: str
    port: int
    host: str = DEFAULT_CONNECTOR_HOST
    tls_credentials: str | None = None
    use_client_cert: bool = False
    verify_hostname: bool = False
    type: str = "tcp"
    settings: FrozenMap = field(default_factory=FrozenMap)


@dataclass(frozen=True, slots=True, kw_only=True)
class Connector(_ResourceBase):
    kind: Literal["Connector"] = field(default="Connector", init=False)
    metadata: Metadata
    spec: ConnectorSpec
    status: ConnectorStatus | None = None


# --- Link and RouterAccess -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSpec:
    """An outgoing link: one endpoint per role; `tls_credentials` names a folder in input/certs."""

    endpoints: tuple[Endpoint, ...]
    tls_credentials: str | None = None
    cost: int = DEFAULT_LINK_COST
    settings: FrozenMap = field(default_factory=FrozenMap)

    def endpoint(self, role: str) -> Endpoint | None:
        """The endpoint for that role (inter-router, edge), if any."""
        return next((e for e in self.endpoints if e.name == role), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Link(_ResourceBase):
    kind: Literal["Link"] = field(default="Link", init=False)
    metadata: Metadata
    spec: LinkSpec
    status: LinkStatus | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterAccessRole:
    """A port the router listens on for one role; port 0 asks for any free port."""

    name: str
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterAccessSpec:
    roles: tuple[RouterAccessRole, ...]
    tls_credentials: str = DEFAULT_SITE_SERVER_CREDENTIALS
    generate_tls_credentials: bool = False
    issuer: str | None = None
    bind_host: str | None = None
    subject_alternative_names: tuple[str, ...] = ()
    settings: FrozenMap = field(default_factory=FrozenMap)

    def role(self, name: str) -> RouterAccessRole | None:
        """The role of that name, if any."""
        return next((r for r in self.roles if r.name == name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterAccess(_ResourceBase):
    kind: Literal["RouterAccess"] = field(default="RouterAccess", init=False)
    metadata: Metadata
    spec: RouterAccessSpec
    status: RouterAccessStatus | None = None


# --- AccessGrant and AccessToken -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessGrantSpec:
    """Permission to redeem tokens; `expiration_window` in seconds; no `code` = random."""

    redemptions_allowed: int = DEFAULT_REDEMPTIONS_ALLOWED
    expiration_window: float = DEFAULT_EXPIRATION_WINDOW
    code: str | None = None
    issuer: str | None = None
    settings: FrozenMap = field(default_factory=FrozenMap)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessGrant(_ResourceBase):
    kind: Literal["AccessGrant"] = field(default="AccessGrant", init=False)
    metadata: Metadata
    spec: AccessGrantSpec = field(default_factory=AccessGrantSpec)
    status: AccessGrantStatus | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessTokenSpec:
    """A grant's URL, code and CA (PEM); redeeming it yields credentials and a Link."""

    url: str
    code: str
    ca: str
    link_cost: int = DEFAULT_LINK_COST
    settings: FrozenMap = field(default_factory=FrozenMap)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessToken(_ResourceBase):
    kind: Literal["AccessToken"] = field(default="AccessToken", init=False)
    metadata: Metadata
    spec: AccessTokenSpec
    status: AccessTokenStatus | None = None


Resource: TypeAlias = Site | Listener | Connector | Link | RouterAccess | AccessGrant | AccessToken

#: Every kind this project reads, by name.
KINDS: dict[str, type[Resource]] = {
    cls.__name__: cls
    for cls in (Site, Listener, Connector, Link, RouterAccess, AccessGrant, AccessToken)
}

STATUS_TYPES: dict[str, type[Status]] = {
    "Site": SiteStatus,
    "Listener": ListenerStatus,
    "Connector": ConnectorStatus,
    "Link": LinkStatus,
    "RouterAccess": RouterAccessStatus,
    "AccessGrant": AccessGrantStatus,
    "AccessToken": AccessTokenStatus,
}


def required_conditions(resource: Resource) -> tuple[str, ...]:
    """The conditions that must all be True for the resource to be Ready (as in Skupper)."""
    match resource:
        case Site():
            if resource.spec.link_access != "none":
                return (CONFIGURED, RUNNING, RESOLVED)
            return (CONFIGURED, RUNNING)
        case Listener() | Connector():
            return (CONFIGURED, MATCHED)
        case Link():
            return (CONFIGURED, OPERATIONAL)
        case RouterAccess() | AccessGrant():
            return (CONFIGURED, RESOLVED)
        case AccessToken():
            return (REDEEMED,)


def current_status(resource: Resource) -> Status:
    """The resource's status, or an empty one of the right type (Pending, no conditions)."""
    return resource.status or STATUS_TYPES[resource.kind]()


def with_condition(
    resource: Resource,
    condition_type: str,
    state: ConditionState,
    *,
    reason: str,
    message: str,
    now: float,
) -> Resource:
    """The resource with one condition set and its overall status derived again."""
    status = set_condition(
        current_status(resource), condition_type, state, reason=reason, message=message, now=now
    )
    return with_status(resource, derive_status(status, required_conditions(resource), now=now))


def with_status(resource: Resource, status: Status) -> Resource:
    """The resource with `status`, which must be the kind's status type."""
    expected = STATUS_TYPES[resource.kind]
    if type(status) is not expected:
        raise TypeError(f"{resource.kind} needs a {expected.__name__}, not {type(status).__name__}")
    return replace(resource, status=status)  # type: ignore[arg-type]
