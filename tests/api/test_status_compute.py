"""controller/status.py: a resource's status from (resource, what the site shows), no node."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from skupper_actors.api import (
    AccessGrant,
    AccessToken,
    Connector,
    Endpoint,
    Link,
    Listener,
    Metadata,
    RouterAccess,
    Site,
)
from skupper_actors.api.resources import (
    AccessGrantSpec,
    AccessTokenSpec,
    ConnectorSpec,
    LinkSpec,
    ListenerSpec,
    RouterAccessRole,
    RouterAccessSpec,
    SiteSpec,
)
from skupper_actors.controller.status import Live, computed_status, status_inputs
from skupper_actors.management import LinkInfo, PeerLink, SiteView
from skupper_actors.security.grants import Grant

pytestmark = pytest.mark.timeout(30)

NOW = 1_000.0
ENDPOINT = Endpoint(name="inter-router", host="west.example", port=55671)


@dataclass(frozen=True, slots=True, kw_only=True)
class Shown:
    """What a running site shows, as plain values (the controller's round view answers
    the same questions from routing, the data plane and the grant book)."""

    network_version: int = 1
    network: Sequence[SiteView] = ()
    omitted_sites: int = 0
    omitted_services: int = 0
    has_access: bool = True
    access_failed: tuple[str, str] | None = None
    grant_server_port: int | None = None
    advertised_host: str = "west.example"
    destinations: frozenset[str] = frozenset()
    listeners: frozenset[str] = frozenset()
    links: dict[str, LinkInfo] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    redeemed: frozenset[str] = frozenset()

    def endpoints(self, access: str | None = None) -> tuple[Endpoint, ...]:
        return (ENDPOINT,)

    def has_destination(self, routing_key: str) -> bool:
        return routing_key in self.destinations

    def has_listener(self, routing_key: str) -> bool:
        return routing_key in self.listeners

    def link(self, name: str) -> LinkInfo | None:
        return self.links.get(name)

    def grant(self, name: str) -> Grant | None:
        return self.grants.get(name)

    def ca_pem(self) -> str:
        return "CA PEM"

    def token_redeemed(self, name: str) -> bool:
        return name in self.redeemed


def shown(**values: object) -> Live:
    return Shown(**values)  # type: ignore[arg-type]


def meta(name: str) -> Metadata:
    return Metadata(name=name)


def conditions(resource: object) -> dict[str, tuple[str, str, str]]:
    status = resource.status  # type: ignore[attr-defined]
    return {c.type: (c.status, c.reason, c.message) for c in status.conditions}


def test_a_listener_is_matched_only_while_a_connector_is_reachable() -> None:
    listener = Listener(metadata=meta("web"), spec=ListenerSpec(routing_key="web", port=8080))
    alone = computed_status(listener, None, shown(), NOW)
    assert isinstance(alone, Listener) and alone.status is not None
    assert alone.status.status == "Pending"
    assert alone.status.has_matching_connector is False
    assert conditions(alone)["Matched"] == ("False", "Pending", "No matching connectors")
    matched = computed_status(listener, None, shown(destinations=frozenset({"web"})), NOW)
    assert isinstance(matched, Listener) and matched.status is not None
    assert (matched.status.status, matched.status.has_matching_connector) == ("Ready", True)


def test_a_connector_is_matched_by_a_listener_anywhere() -> None:
    connector = Connector(metadata=meta("db"), spec=ConnectorSpec(routing_key="db", port=5432))
    result = computed_status(connector, None, shown(listeners=frozenset({"db"})), NOW)
    assert isinstance(result, Connector) and result.status is not None
    assert (result.status.status, result.status.has_matching_listener) == ("Ready", True)


def info(state: str, peer: str | None, last_error: str | None = None) -> LinkInfo:
    return LinkInfo(
        name="to-east", link_id="l1", direction="outgoing", peer=peer, host="h", port=1,
        cost=1, state=state, since=0.0, last_error=last_error,
    )  # fmt: skip


def test_a_link_names_its_peer_when_up_and_its_last_error_when_not() -> None:
    link = Link(metadata=meta("to-east"), spec=LinkSpec(endpoints=(ENDPOINT,)))
    up = computed_status(link, None, shown(links={"to-east": info("up", "east")}), NOW)
    assert isinstance(up, Link) and up.status is not None
    assert (up.status.status, up.status.remote_site_id) == ("Ready", "east")
    down = shown(links={"to-east": info("connecting", "east", "connection refused")})
    failed = computed_status(link, None, down, NOW)
    assert isinstance(failed, Link) and failed.status is not None
    assert failed.status.remote_site_id is None
    assert conditions(failed)["Operational"] == ("False", "Pending", "connection refused")
    missing = computed_status(link, None, shown(), NOW)
    assert conditions(missing)["Operational"] == ("False", "Pending", "Not operational")


def test_a_site_lists_the_network_and_says_why_it_cannot_accept_links() -> None:
    site = Site(metadata=meta("west"), spec=SiteSpec(link_access="default"))
    east = SiteView(
        router="east", reachable=True, links=(PeerLink(peer="west", cost=1),),
        listeners=(), connectors=("db",),
    )  # fmt: skip
    ready = computed_status(site, None, shown(network=(east,), omitted_sites=2), NOW)
    assert isinstance(ready, Site) and ready.status is not None
    assert ready.status.status == "Ready"
    assert ready.status.endpoints == (ENDPOINT,)
    assert ready.status.sites_in_network == 3
    (record,) = ready.status.network
    assert record.name == "east" and record.links[0].remote_site_id == "west"
    assert record.services[0].routing_key == "db" and record.services[0].connectors == ("east",)
    broken = computed_status(site, None, shown(access_failed=("main", "port in use")), NOW)
    assert isinstance(broken, Site) and broken.status is not None
    assert (broken.status.status, broken.status.message) == (
        "Error",
        "RouterAccess main: port in use",
    )


def test_a_router_access_shows_its_endpoints() -> None:
    access = RouterAccess(
        metadata=meta("main"),
        spec=RouterAccessSpec(roles=(RouterAccessRole(name="inter-router", port=55671),)),
    )
    result = computed_status(access, None, shown(), NOW)
    assert isinstance(result, RouterAccess) and result.status is not None
    assert (result.status.status, result.status.endpoints) == ("Ready", (ENDPOINT,))


def test_a_grant_is_pending_until_the_grant_server_runs() -> None:
    grant_resource = AccessGrant(metadata=meta("g"), spec=AccessGrantSpec())
    grant = Grant(
        id="abc", name="g", code="secret", redemptions_allowed=1, redemptions=0, expires_at=5.0
    )
    waiting = computed_status(grant_resource, None, shown(grants={"g": grant}), NOW)
    assert conditions(waiting)["Resolved"] == ("False", "Pending", "grant server starting")
    running = shown(grants={"g": grant}, grant_server_port=9090)
    result = computed_status(grant_resource, None, running, NOW)
    assert isinstance(result, AccessGrant) and result.status is not None
    assert result.status.url == "https://west.example:9090/abc"
    assert (result.status.code, result.status.ca, result.status.status) == (
        "secret",
        "CA PEM",
        "Ready",
    )


def test_a_failure_is_an_error_and_a_token_that_failed_is_not_redeemed() -> None:
    token = AccessToken(
        metadata=meta("t"), spec=AccessTokenSpec(url="https://h:1/x", code="c", ca="pem")
    )
    failed = computed_status(token, "grant refused", shown(), NOW)
    assert isinstance(failed, AccessToken) and failed.status is not None
    assert failed.status.status == "Error" and failed.status.message == "grant refused"
    assert conditions(failed)["Redeemed"] == ("False", "Error", "grant refused")
    redeemed = computed_status(token, None, shown(redeemed=frozenset({"t"})), NOW)
    assert isinstance(redeemed, AccessToken) and redeemed.status is not None
    assert (redeemed.status.status, redeemed.status.redeemed) == ("Ready", True)


def test_inputs_move_exactly_when_the_status_would() -> None:
    listener = Listener(metadata=meta("web"), spec=ListenerSpec(routing_key="web", port=8080))
    before = shown()
    assert status_inputs(listener, before) == status_inputs(listener, shown())
    assert status_inputs(listener, before) != status_inputs(
        listener, shown(destinations=frozenset({"web"}))
    )
    site = Site(metadata=meta("west"))
    assert status_inputs(site, before) != status_inputs(site, shown(network_version=2))
