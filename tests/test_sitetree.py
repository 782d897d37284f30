"""Both run modes build one tree: a site file becomes the namespace mode's desired state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skupper_actors.actors.context import LinkLimits
from skupper_actors.controller.desired import DEFAULT_ACCESS, AccessPoint, LinkTarget, Service
from skupper_actors.kernel import Kind, Supervisor
from skupper_actors.node import build_node, desired_from_config
from skupper_actors.protocol.routing import RoutingSettings
from skupper_actors.siteconfig import (
    ConnectorConfig,
    InterRouterConfig,
    LimitsConfig,
    LinkConfig,
    ListenerConfig,
    RoutingConfig,
    SiteConfig,
)
from skupper_actors.sitetree import child_spec, link_limits, routing_settings, site_tree

pytestmark = pytest.mark.timeout(30)


def config(tmp_path: Path) -> SiteConfig:
    return SiteConfig(
        site="west",
        runtime_dir=tmp_path / "run",
        inter_router=InterRouterConfig(host="127.0.0.1", port=0, plaintext=True),
        links=(LinkConfig(name="to-east", host="127.0.0.1", port=55672, cost=5),),
        routing=RoutingConfig(hello_interval=0.3, hello_max_age=1.1, ra_interval=7.0),
        limits=LimitsConfig(max_addresses_per_router=300, max_frame_size=65_536),
        listeners=(
            ListenerConfig(name="web", routing_key="web", port=8080, distribution="closest"),
        ),
        connectors=(ConnectorConfig(name="db", routing_key="db", port=5432),),
    )


def shape(supervisor: Supervisor) -> dict[str, Any]:
    """The tree as nested dicts: a supervisor child maps to its own children, a worker to None."""
    found: dict[str, Any] = {}
    for cid, entry in supervisor._children.items():
        spec = entry.spec
        found[cid] = shape(spec.start()) if spec.kind is Kind.SUPERVISOR else None  # type: ignore[arg-type]
    return found


def test_a_site_file_translates_into_the_desired_state(tmp_path: Path) -> None:
    desired = desired_from_config(config(tmp_path))
    assert desired.site is not None and desired.site.name == "west"
    assert dict(desired.access) == {
        DEFAULT_ACCESS: AccessPoint(
            name=DEFAULT_ACCESS, host="127.0.0.1", port=0, advertised_host="127.0.0.1", sans=()
        )
    }
    assert dict(desired.links) == {
        "to-east": LinkTarget(
            name="to-east", host="127.0.0.1", port=55672, cost=5, credentials=None
        )
    }
    assert dict(desired.listeners) == {
        "web": Service(
            name="web", routing_key="web", host="127.0.0.1", port=8080, distribution="closest"
        )
    }
    assert dict(desired.connectors) == {
        "db": Service(name="db", routing_key="db", host="localhost", port=5432)
    }
    # the Site's settings carry the file's routing timers and limits, read as in a namespace
    assert routing_settings(desired.site) == RoutingSettings(
        hello_interval=0.3, hello_max_age=1.1, ra_interval=7.0, max_addresses_per_router=300
    )
    assert link_limits(desired.site) == LinkLimits(max_frame_size=65_536)


def test_a_default_site_file_runs_with_the_default_settings(tmp_path: Path) -> None:
    plain = SiteConfig(site="west", runtime_dir=tmp_path, inter_router=InterRouterConfig())
    desired = desired_from_config(plain)
    assert desired.site is not None
    assert routing_settings(desired.site) == RoutingSettings()
    assert link_limits(desired.site) == LinkLimits()


def test_the_site_file_mode_starts_the_shared_tree_filled(tmp_path: Path) -> None:
    node = build_node(config(tmp_path))
    assert node.ctx.limits == LinkLimits(max_frame_size=65_536)
    assert shape(node.tree()) == {
        "router": {
            "routing": None,
            "links": {"link-to-east": None},
            "access": {f"access-{DEFAULT_ACCESS}": None},
            # each adaptor supervises its connections (none yet)
            "adaptors": {"connector-db": {}, "listener-web": {}},
        },
        "control": {"management": None, "memory": None, "vanflow": None},
    }


def test_the_namespace_mode_starts_the_same_tree_empty(tmp_path: Path) -> None:
    ctx = build_node(config(tmp_path)).ctx
    assert shape(site_tree(ctx, RoutingSettings(), control=[])) == {
        "router": {"routing": None, "links": {}, "access": {}, "adaptors": {}},
        "control": {"memory": None, "vanflow": None},
    }


def test_an_unknown_group_is_refused(tmp_path: Path) -> None:
    node = build_node(config(tmp_path))
    with pytest.raises(ValueError, match="no group 'routes'"):
        child_spec(node.ctx, "routes", "x", node.desired, lambda target: None)
