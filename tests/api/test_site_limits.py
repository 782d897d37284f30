"""A Site's settings set the limits on peer routers (docs/limits-links.md)."""

from __future__ import annotations

import pytest

from skupper_actors.actors.context import LinkLimits
from skupper_actors.api import Metadata, Site
from skupper_actors.api.meta import FrozenMap
from skupper_actors.api.resources import SiteSpec
from skupper_actors.chaos.scenario import RoutingSpec
from skupper_actors.protocol.routing import RoutingSettings
from skupper_actors.siteconfig import LimitsConfig, RoutingConfig
from skupper_actors.sitetree import link_limits, routing_settings

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
        ("hello-interval", "soon", "setting hello-interval: 'soon' is not a number"),
        ("hello-max-age", "0.5", "need 0 < hello_interval < hello_max_age"),
    ],
)
def test_a_bad_value_names_the_setting(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        link_limits(site(**{name: value}))
        routing_settings(site(**{name: value}))


def test_routing_defaults_are_those_of_routing_settings() -> None:
    """Every run mode (Site settings, site.yaml, chaos scenarios) reads them from one place."""
    default = RoutingSettings()
    assert routing_settings(site()) == default
    config, limits, spec = RoutingConfig(), LimitsConfig(), RoutingSpec()
    assert (config.hello_interval, config.hello_max_age, config.ra_interval) == (
        default.hello_interval,
        default.hello_max_age,
        default.ra_interval,
    )
    assert (limits.max_addresses_per_router, limits.max_addresses_per_update) == (
        default.max_addresses_per_router,
        default.max_addresses_per_update,
    )
    assert (spec.hello_interval, spec.hello_max_age) == (
        default.hello_interval,
        default.hello_max_age,
    )


def test_routing_settings_override_the_timers() -> None:
    given = routing_settings(
        site(**{"hello-interval": "0.25", "hello-max-age": "1", "ra-interval": "10"})
    )
    assert (given.hello_interval, given.hello_max_age, given.ra_interval) == (0.25, 1.0, 10.0)


def test_one_reader_for_every_numeric_setting() -> None:
    from skupper_actors.api.settings import SettingInvalid, lenient_setting, site_setting

    assert site_setting({}, "tcp-window", 7) == 7
    assert site_setting({"x": "2.5"}, "x", 1.0) == 2.5
    with pytest.raises(SettingInvalid, match=r"setting x: 'inf' is not greater than 0"):
        site_setting({"x": "inf"}, "x", 1.0, positive=True)
    with pytest.raises(SettingInvalid, match=r"setting port: '70000' is not from 0 to 65535"):
        site_setting({"port": "70000"}, "port", 0, low=0, high=65535)
    told: list[tuple[str, str, str]] = []
    assert lenient_setting({"port": "web"}, "port", 0, lambda *p: told.append(p)) == 0
    assert told == [("port", "web", "is not a whole number")]
