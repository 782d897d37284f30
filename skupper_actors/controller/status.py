"""A resource's status from what the running site shows: pure, matched on the classes.

`status_inputs(resource, live)` is what a resource's status is made of besides the
resource (equal inputs, same status: the controller recomputes only when they move);
`computed_status(resource, failure, live, now)` is the status itself. `live` is whatever
answers `Live` (the controller's view of routing, the data plane, the grant book and the
access points for one round); nothing here reads a file or asks an actor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol, TypeVar

from skupper_actors.api import (
    AccessGrant,
    AccessToken,
    Connector,
    Endpoint,
    Link,
    Listener,
    Resource,
    RouterAccess,
    Site,
    with_condition,
)
from skupper_actors.api.resources import required_conditions
from skupper_actors.api.status import (
    CONFIGURED,
    MATCHED,
    OPERATIONAL,
    REDEEMED,
    RESOLVED,
    RUNNING,
    AccessGrantStatus,
    AccessTokenStatus,
    ConnectorStatus,
    LinkRecord,
    LinkStatus,
    ListenerStatus,
    RouterAccessStatus,
    ServiceRecord,
    SiteRecord,
    SiteStatus,
    Status,
    derive_status,
    set_condition,
)
from skupper_actors.management import LinkInfo, SiteView
from skupper_actors.security.grants import Grant


class Live(Protocol):
    """What the running site shows, as the status of a resource needs it."""

    @property
    def network_version(self) -> int: ...
    @property
    def network(self) -> Sequence[SiteView]:
        """The reachable sites, bounded (see the omitted counts)."""

    @property
    def omitted_sites(self) -> int: ...
    @property
    def omitted_services(self) -> int: ...
    @property
    def has_access(self) -> bool:
        """The site declares an access point (it accepts links)."""

    @property
    def access_failed(self) -> tuple[str, str] | None:
        """The first RouterAccess that could not start: its name and why."""

    @property
    def grant_server_port(self) -> int | None: ...
    @property
    def advertised_host(self) -> str: ...
    def endpoints(self, access: str | None = None) -> tuple[Endpoint, ...]: ...
    def has_destination(self, routing_key: str) -> bool:
        """A connector for the key is reachable (a Listener is matched)."""

    def has_listener(self, routing_key: str) -> bool:
        """A listener for the key exists somewhere (a Connector is matched)."""

    def link(self, name: str) -> LinkInfo | None: ...
    def grant(self, name: str) -> Grant | None: ...
    def ca_pem(self) -> str: ...
    def token_redeemed(self, name: str) -> bool: ...


def status_inputs(resource: Resource, live: Live) -> object:
    """What ``resource``'s status is made of besides the resource itself."""
    match resource:
        case Site():
            return (
                live.network_version,
                live.endpoints(),
                live.has_access,
                live.access_failed,
            )
        case RouterAccess():
            return live.endpoints(resource.name)
        case Listener():
            return live.has_destination(resource.spec.routing_key)
        case Connector():
            return live.has_listener(resource.spec.routing_key)
        case Link():
            info = live.link(resource.name)
            return None if info is None else (info.state, info.peer, info.last_error)
        case AccessGrant():
            return (live.grant(resource.name), live.grant_server_port, live.advertised_host)
        case AccessToken():
            return live.token_redeemed(resource.name)
    return None


def computed_status(resource: Resource, failure: str | None, live: Live, now: float) -> Resource:
    """``resource`` with its status: Configured False with ``failure``, else from ``live``."""
    if failure is not None:
        updated = with_condition(
            resource, CONFIGURED, "False", reason="Error", message=failure, now=now
        )
        if isinstance(updated, AccessToken):
            updated = with_condition(
                updated, REDEEMED, "False", reason="Error", message=failure, now=now
            )
        return updated
    updated = with_condition(resource, CONFIGURED, "True", reason="Ready", message="OK", now=now)
    return live_status(updated, live, now)


S = TypeVar("S", bound=Status)


def _cond(resource: Resource, status: S, kind: str, ok: bool, message: str, now: float) -> S:
    """``status`` with condition ``kind`` Ready or Pending, the overall status derived."""
    state = set_condition(
        status,
        kind,
        "True" if ok else "False",
        reason="Ready" if ok else "Pending",
        message=message,
        now=now,
    )
    return derive_status(state, required_conditions(resource), now=now)


def _error(resource: Resource, status: S, kind: str, message: str, now: float) -> S:
    state = set_condition(status, kind, "False", reason="Error", message=message, now=now)
    return derive_status(state, required_conditions(resource), now=now)


def live_status(resource: Resource, live: Live, now: float) -> Resource:
    """The conditions and fields that come from the running site."""
    match resource:
        case Site():
            return replace(resource, status=_site_status(resource, live, now))
        case RouterAccess():
            access = _cond(
                resource, resource.status or RouterAccessStatus(), RESOLVED, True, "OK", now
            )
            return replace(
                resource, status=replace(access, endpoints=live.endpoints(resource.name))
            )
        case Listener():
            matched = live.has_destination(resource.spec.routing_key)
            message = "OK" if matched else "No matching connectors"
            listener = _cond(
                resource, resource.status or ListenerStatus(), MATCHED, matched, message, now
            )
            return replace(resource, status=replace(listener, has_matching_connector=matched))
        case Connector():
            matched = live.has_listener(resource.spec.routing_key)
            message = "OK" if matched else "No matching listeners"
            connector = _cond(
                resource, resource.status or ConnectorStatus(), MATCHED, matched, message, now
            )
            return replace(resource, status=replace(connector, has_matching_listener=matched))
        case Link():
            info = live.link(resource.name)
            ok = info is not None and info.state == "up"
            why = info.last_error if info is not None and info.last_error else "Not operational"
            link = _cond(
                resource, resource.status or LinkStatus(), OPERATIONAL, ok, "OK" if ok else why, now
            )
            peer = info.peer if ok and info is not None else None
            return replace(
                resource, status=replace(link, remote_site_id=peer, remote_site_name=peer)
            )
        case AccessGrant():
            return replace(resource, status=_grant_status(resource, live, now))
        case AccessToken():
            redeemed = live.token_redeemed(resource.name)
            message = "OK" if redeemed else "Not redeemed yet"
            token = _cond(
                resource, resource.status or AccessTokenStatus(), REDEEMED, redeemed, message, now
            )
            return replace(resource, status=replace(token, redeemed=redeemed))
    return resource


def _site_status(site: Site, live: Live, now: float) -> SiteStatus:
    status = _cond(site, site.status or SiteStatus(), RUNNING, True, "OK", now)
    if live.access_failed is not None:  # the site cannot accept links: not Ready, and why
        name, why = live.access_failed
        status = _error(site, status, RESOLVED, f"RouterAccess {name}: {why}", now)
    elif live.has_access:
        status = _cond(site, status, RESOLVED, True, "OK", now)
    reachable = live.network
    return replace(
        status,
        endpoints=live.endpoints(),
        sites_in_network=max(1, len(reachable) + live.omitted_sites),
        services_omitted=live.omitted_services,
        network=tuple(_site_record(view) for view in reachable),
    )


def _site_record(view: SiteView) -> SiteRecord:
    return SiteRecord(
        id=view.router,
        name=view.router,
        links=tuple(
            LinkRecord(
                name=f"{view.router}-{x.peer}",
                remote_site_id=x.peer,
                remote_site_name=x.peer,
                operational=True,
            )
            for x in view.links
        ),
        services=tuple(
            ServiceRecord(
                routing_key=key,
                connectors=(view.router,) if key in view.connectors else (),
                listeners=(view.router,) if key in view.listeners else (),
            )
            for key in sorted(set(view.connectors) | set(view.listeners))
        ),
    )


def _grant_status(resource: AccessGrant, live: Live, now: float) -> AccessGrantStatus:
    status = resource.status or AccessGrantStatus()
    grant = live.grant(resource.name)
    port = live.grant_server_port
    if grant is None or port is None:
        return _cond(resource, status, RESOLVED, False, "grant server starting", now)
    status = _cond(resource, status, RESOLVED, True, "OK", now)
    return replace(
        status,
        url=f"https://{live.advertised_host}:{port}/{grant.id}",
        code=grant.code,
        ca=live.ca_pem(),
        redemptions=grant.redemptions,
        expiration_time=grant.expires_at,
    )
