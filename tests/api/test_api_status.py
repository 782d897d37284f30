"""Status blocks: conditions keep their transition time, the verdict follows them, files."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from skupper_actors.api import (
    CONFIGURED,
    MATCHED,
    OPERATIONAL,
    READY,
    REDEEMED,
    RESOLVED,
    RUNNING,
    AccessGrant,
    AccessGrantStatus,
    AccessToken,
    AccessTokenSpec,
    Condition,
    Connector,
    ConnectorSpec,
    Endpoint,
    Link,
    LinkSpec,
    Listener,
    ListenerSpec,
    ListenerStatus,
    Metadata,
    Namespace,
    ResourceError,
    RouterAccess,
    RouterAccessRole,
    RouterAccessSpec,
    Site,
    SiteSpec,
    SiteStatus,
    Status,
    derive_status,
    load_resource_text,
    mark_error,
    mark_pending,
    mark_ready,
    read_status,
    read_statuses,
    remove_status,
    required_conditions,
    set_condition,
    with_condition,
    with_status,
    write_status,
)

pytestmark = pytest.mark.timeout(30)

T0 = 1_700_000_000.0
LISTENER = Listener(
    metadata=Metadata(name="backend"), spec=ListenerSpec(routing_key="backend", port=8080)
)


def test_setting_a_condition_adds_it_with_the_time_in_whole_seconds() -> None:
    status = set_condition(Status(), CONFIGURED, "True", reason="Ready", message="OK", now=T0 + 0.7)
    assert status.conditions == (
        Condition(
            type=CONFIGURED, status="True", reason="Ready", message="OK", last_transition_time=T0
        ),
    )


def test_the_transition_time_moves_only_when_the_state_changes() -> None:
    status = mark_pending(Status(), MATCHED, message="No matching connectors", now=T0)
    same = mark_pending(status, MATCHED, message="Still no connectors", now=T0 + 10)
    assert same.condition(MATCHED) == replace(
        status.condition(MATCHED),
        message="Still no connectors",  # type: ignore[type-var]
    )
    changed = mark_ready(same, MATCHED, now=T0 + 20)
    matched = changed.condition(MATCHED)
    assert matched is not None
    assert (matched.status, matched.reason, matched.last_transition_time) == (
        "True",
        "Ready",
        T0 + 20,
    )


def test_an_unchanged_condition_returns_the_same_object() -> None:
    status = mark_ready(ListenerStatus(), CONFIGURED, now=T0)
    assert mark_ready(status, CONFIGURED, now=T0 + 5) is status


def test_other_conditions_keep_their_place() -> None:
    status = mark_ready(Status(), CONFIGURED, now=T0)
    status = mark_pending(status, MATCHED, message="waiting", now=T0)
    status = mark_error(status, CONFIGURED, message="port 8080 in use", now=T0 + 1)
    assert [(c.type, c.status, c.reason) for c in status.conditions] == [
        (CONFIGURED, "False", "Error"),
        (MATCHED, "False", "Pending"),
    ]


def test_the_verdict_is_ready_only_when_every_required_condition_is_true() -> None:
    required = (CONFIGURED, MATCHED)
    status = derive_status(Status(), required, now=T0)
    assert (status.status, status.message) == ("Pending", "Not Configured")
    assert status.condition(READY) == Condition(
        type=READY,
        status="False",
        reason="Pending",
        message="Not Configured",
        last_transition_time=T0,
    )

    status = derive_status(mark_ready(status, CONFIGURED, now=T0), required, now=T0)
    assert (status.status, status.message) == ("Pending", "Not Matched")

    status = mark_pending(status, MATCHED, message="No matching connectors", now=T0)
    status = derive_status(status, required, now=T0)
    assert (status.status, status.message) == ("Pending", "No matching connectors")

    status = derive_status(mark_ready(status, MATCHED, now=T0 + 3), required, now=T0 + 3)
    assert (status.status, status.message) == ("Ready", "OK")
    assert status.is_true(READY)
    ready = status.condition(READY)
    assert ready is not None and ready.last_transition_time == T0 + 3


def test_an_error_wins_over_pending() -> None:
    status = mark_pending(Status(), MATCHED, message="No matching connectors", now=T0)
    status = mark_error(status, CONFIGURED, message="port 8080 in use", now=T0)
    status = derive_status(status, (MATCHED, CONFIGURED), now=T0)
    assert (status.status, status.message) == ("Error", "port 8080 in use")
    assert not status.is_true(READY)


def test_an_unknown_condition_is_pending() -> None:
    status = set_condition(Status(), RUNNING, "Unknown", reason="", message="", now=T0)
    assert derive_status(status, (RUNNING,), now=T0).status == "Pending"


@pytest.mark.parametrize(
    ("resource", "required"),
    [
        (Site(metadata=Metadata(name="s")), (CONFIGURED, RUNNING)),
        (
            Site(metadata=Metadata(name="s"), spec=SiteSpec(link_access="default")),
            (CONFIGURED, RUNNING, RESOLVED),
        ),
        (LISTENER, (CONFIGURED, MATCHED)),
        (
            Connector(metadata=Metadata(name="c"), spec=ConnectorSpec(routing_key="c", port=1)),
            (CONFIGURED, MATCHED),
        ),
        (
            Link(
                metadata=Metadata(name="l"),
                spec=LinkSpec(endpoints=(Endpoint(name="edge", host="h", port=1),)),
            ),
            (CONFIGURED, OPERATIONAL),
        ),
        (
            RouterAccess(
                metadata=Metadata(name="r"),
                spec=RouterAccessSpec(roles=(RouterAccessRole(name="edge", port=0),)),
            ),
            (CONFIGURED, RESOLVED),
        ),
        (AccessGrant(metadata=Metadata(name="g")), (CONFIGURED, RESOLVED)),
        (
            AccessToken(
                metadata=Metadata(name="t"),
                spec=AccessTokenSpec(url="https://h", code="c", ca="-----BEGIN CERTIFICATE-----"),
            ),
            (REDEEMED,),
        ),
    ],
)
def test_each_kind_requires_skuppers_conditions(
    resource: object, required: tuple[str, ...]
) -> None:
    assert required_conditions(resource) == required  # type: ignore[arg-type]


def test_with_condition_updates_a_resource_and_its_verdict() -> None:
    listener = with_condition(LISTENER, CONFIGURED, "True", reason="Ready", message="OK", now=T0)
    assert isinstance(listener.status, ListenerStatus)
    assert listener.status.status == "Pending"
    listener = with_status(listener, replace(listener.status, has_matching_connector=True))
    listener = with_condition(listener, MATCHED, "True", reason="Ready", message="OK", now=T0)
    assert listener.status is not None
    assert (listener.status.status, listener.status.message) == ("Ready", "OK")
    with pytest.raises(TypeError, match="Listener needs a ListenerStatus, not SiteStatus"):
        with_status(listener, SiteStatus())


def test_a_status_file_is_written_privately_and_read_back(tmp_path: Path) -> None:
    namespace = Namespace("west", tmp_path / "west")
    grant = AccessGrant(
        metadata=Metadata(name="east-token"),
        status=AccessGrantStatus(
            status="Ready",
            message="OK",
            url="https://west:9090/id",
            code="secret",
            ca="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            redemptions=1,
            expiration_time=T0 + 900,
            conditions=(
                Condition(
                    type=RESOLVED,
                    status="True",
                    reason="Ready",
                    message="OK",
                    last_transition_time=T0,
                ),
            ),
        ),
    )
    write_status(namespace, grant)
    path = tmp_path / "west" / "runtime" / "resources" / "AccessGrant-east-token.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert "expirationTime: '2023-11-14T22:28:20Z'" in text
    assert "lastTransitionTime: '2023-11-14T22:13:20Z'" in text
    assert read_status(namespace, "AccessGrant", "east-token") == grant
    assert read_status(namespace, "Listener", "backend") is None

    updated = replace(grant, status=replace(grant.status, redemptions=2))  # type: ignore[type-var]
    write_status(namespace, updated)
    write_status(
        namespace,
        with_condition(LISTENER, CONFIGURED, "True", reason="Ready", message="OK", now=T0),
    )
    assert [r.key for r in read_statuses(namespace)] == [
        ("AccessGrant", "east-token"),
        ("Listener", "backend"),
    ]
    assert read_status(namespace, "AccessGrant", "east-token") == updated
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        ["AccessGrant-east-token.yaml", "Listener-backend.yaml"]
    )  # no temporary files left behind

    assert remove_status(namespace, "AccessGrant", "east-token")
    assert not remove_status(namespace, "AccessGrant", "east-token")
    assert read_status(namespace, "AccessGrant", "east-token") is None


def test_a_status_file_holding_something_else_is_an_error(tmp_path: Path) -> None:
    namespace = Namespace("west", tmp_path).ensure_layout()
    write_status(namespace, LISTENER)
    os.replace(
        namespace.status_path("Listener", "backend"), namespace.status_path("Listener", "frontend")
    )
    with pytest.raises(ResourceError, match="does not hold exactly Listener/frontend"):
        read_status(namespace, "Listener", "frontend")
    with pytest.raises(ValueError, match="unknown kind 'Lister'"):
        read_status(namespace, "Lister", "frontend")


def test_a_kubernetes_style_status_block_is_read() -> None:
    text = """\
apiVersion: skupper.io/v2alpha1
kind: Listener
metadata: {name: backend}
spec: {routingKey: backend, port: 8080}
status:
  status: Ready
  message: OK
  hasMatchingConnector: true
  conditions:
  - type: Configured
    status: "True"
    reason: Ready
    message: OK
    observedGeneration: 1
    lastTransitionTime: 2023-11-14T22:13:20Z
"""
    (listener,) = load_resource_text(text, "kubectl.yaml")
    assert listener.status == ListenerStatus(
        status="Ready",
        message="OK",
        has_matching_connector=True,
        conditions=(
            Condition(
                type=CONFIGURED,
                status="True",
                reason="Ready",
                message="OK",
                last_transition_time=T0,
            ),
        ),
    )
    assert hash(listener) == hash(load_resource_text(text, "again.yaml")[0])
