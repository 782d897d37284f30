"""A Site's settings set the limits on peer routers (docs/limits-links.md)."""

from __future__ import annotations

import pytest

from skupper_actors.actors.context import LinkLimits
from skupper_actors.api import Metadata, Site
from skupper_actors.api.meta import FrozenMap
from skupper_actors.api.resources import SiteSpec
from skupper_actors.nsnode import link_limits, routing_settings

pytestmark = pytest.mark.timeout(30)


def site(**settings: str) -> Site:
    return Site(metadata=Metadata(name="west"), spec=SiteSpec(settings=FrozenMap(settings)))


def test_defaults_when_no_setting_is_given() -> None:
    assert link_limits(site()) == LinkLimits()
    routing = routing_settings(site())
    assert (routing.max_addresses_per_router, routing.max_addresses_per_update) == (50_000, 50_000)


def test_settings_override_each_limit() -> None:
    given = site(**{
        "max-links-per-connection": "100",
        "max-frame-size": "65536",
        "max-control-entries": "2000",
        "max-message-size": "4096",
        "max-addresses-per-router": "500",
        "max-addresses-per-update": "50",
    })  # fmt: skip
    assert link_limits(given) == LinkLimits(
        max_links_per_connection=100,
        max_frame_size=65_536,
        max_control_entries=2_000,
        max_message_size=4_096,
    )
    routing = routing_settings(given)
    assert (routing.max_addresses_per_router, routing.max_addresses_per_update) == (500, 50)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("max-frame-size", "lots", "setting max-frame-size: 'lots' is not a whole number"),
        ("max-frame-size", "100", "max-frame-size must be between 512 and 16777216 bytes"),
        ("max-links-per-connection", "1", "max-links-per-connection must be at least 4"),
        ("max-addresses-per-router", "0", "address limits must be at least 1"),
    ],
)
def test_a_bad_value_names_the_setting(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        link_limits(site(**{name: value}))
        routing_settings(site(**{name: value}))
