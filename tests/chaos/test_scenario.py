"""Scenario files: the shipped ones load; every mistake is named by its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from skupper_actors.chaos import (
    FaultKind,
    Mode,
    ScenarioError,
    Setup,
    load_scenario,
    parse_scenario,
)
from skupper_actors.chaos.units import parse_duration, parse_rate, parse_size

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "config" / "chaos").glob("*.yaml"))
TEST_SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.yaml"))

MINIMAL = """
name: t
sites: [a, b]
links: [{from: a, to: b}]
services: [{name: svc, connectors: [b], listeners: [a]}]
"""


@pytest.mark.parametrize("path", SHIPPED + TEST_SCENARIOS, ids=lambda p: p.name)
def test_shipped_and_test_scenarios_load(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.sites and scenario.name


def test_smoke_and_soak_are_what_ci_and_users_expect() -> None:
    smoke = load_scenario(ROOT / "config" / "chaos" / "smoke.yaml")
    assert 30 <= smoke.duration <= 60
    assert smoke.faults and smoke.random_faults is None  # CI runs a fixed schedule
    soak = load_scenario(ROOT / "config" / "chaos" / "soak.yaml")
    assert soak.duration == 30 * 60
    assert len(soak.sites) == 5
    links = {frozenset((x.source, x.target)) for x in soak.links}
    square = {frozenset(p) for p in (("a", "b"), ("b", "c"), ("c", "d"), ("d", "a"))}
    assert square | {frozenset(("a", "c")), frozenset(("d", "e"))} == links
    assert soak.random_faults is not None and soak.setup is Setup.NAMESPACE


def test_a_full_scenario_loads_into_dataclasses() -> None:
    scenario = parse_scenario(
        MINIMAL
        + """
duration: 1m30s
seed: 42
mode: proxy
traffic:
  streams: [{service: svc, concurrency: 2, up: [1KiB, 4MiB], down: 64KiB}]
  requests: [{service: svc, rate: 10.5, connections: 2}]
  connections: [{service: svc, rate: 5, size: 512}]
faults:
  - {at: 500ms, kind: latency, link: a-b, latency: 120ms, duration: 2s}
  - {at: 3s, kind: bandwidth, link: a-b, rate: 512KiB/s, duration: 2s}
  - {at: 6s, kind: kill, site: b}
random_faults: {kinds: [cut, stop], gap: [1s, 2s], duration: 3s}
invariants: {recovery_within: 8s, memory_limit: 300MiB, min_intact_streams: 3}
"""
    )
    assert scenario.duration == 90 and scenario.seed == 42 and scenario.mode is Mode.PROXY
    streams = scenario.traffic.streams[0]
    assert (streams.up.low, streams.up.high, streams.down.low) == (1024, 4 << 20, 64 << 10)
    latency, bandwidth, kill = scenario.faults
    assert latency.kind is FaultKind.LATENCY and latency.latency == pytest.approx(0.12)
    assert latency.at == pytest.approx(0.5) and latency.target == "a-b"
    assert bandwidth.rate == 512 << 10
    assert kill.target == "b" and kill.duration is None
    assert scenario.random_faults is not None
    assert scenario.random_faults.duration == (3.0, 3.0)
    assert scenario.invariants.memory_limit_mib == 300


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("faults: [{at: 1s, kind: explode, link: a-b}]", "faults[0].kind: must be one of: kill"),
        ("faults: [{at: 1s, kind: cut, site: a}]", "faults[0].site: cut is a link fault"),
        ("faults: [{at: 1s, kind: kill, link: a-b}]", "faults[0].link: kill is a site fault"),
        ("faults: [{at: 1s, kind: cut, link: b-a}]", "faults[0].link: cut needs a known link"),
        ("faults: [{at: 1s, kind: kill, site: z}]", "faults[0].site: kill needs a known site"),
        ("faults: [{at: 1s, kind: latency, link: a-b}]", "faults[0].latency: required for"),
        ("faults: [{at: 1s, kind: flap, link: a-b}]", "faults[0].period: required for flap"),
        ("faults: [{at: 1s, kind: cut, link: a-b, rate: 5}]", "faults[0].rate: only bandwidth"),
        ("faults: [{at: 2m, kind: cut, link: a-b}]", "faults[0].at: at or after the end"),
        ("faults: [{at: soon, kind: cut, link: a-b}]", "faults[0].at: must be a duration"),
        (
            "faults: [{at: 1s, kind: garbage, site: a, duration: 1s}]",
            "faults[0].duration: garbage faults are instantaneous",
        ),
        (
            "faults: [{at: 1s, kind: corrupt_after_tls, link: a-b}]",
            "faults[0].kind: corrupt_after_tls needs 'plaintext: true'",
        ),
        (
            "faults: [{at: 1s, kind: replay_token, site: b}]",
            "faults[0].kind: replay_token needs 'setup: namespace'",
        ),
        (
            "traffic: {streams: [{service: nope, concurrency: 1, up: 1, down: 1}]}",
            "traffic.streams[0].service: unknown service 'nope'",
        ),
        (
            "traffic: {streams: [{service: svc, concurrency: 0, up: 1, down: 1}]}",
            "traffic.streams[0].concurrency: must be at least 1",
        ),
        (
            "traffic: {streams: [{service: svc, concurrency: 1, up: [2MiB, 1MiB], down: 1}]}",
            "traffic.streams[0].up: low must not be greater than high",
        ),
        ("traffic: {requests: [{service: svc, rate: 0}]}", "traffic.requests[0].rate: must be"),
        ("routing: {hello_interval: 2s, hello_max_age: 1s}", "routing.hello_max_age: must be"),
        ("mode: vpn", "mode: must be one of: proxy, netns"),
        ("plaintext: yes-please", "plaintext: must be true or false"),
        ("random_faults: {kinds: [cut], sites: [q]}", "random_faults.sites: unknown site 'q'"),
        ("colour: blue", "colour: unknown field"),
    ],
)
def test_each_mistake_is_named_by_its_field(extra: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(MINIMAL + "duration: 1m\n" + extra + "\n", source="s.yaml")
    assert f"s.yaml: {expected}" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sites: [a, a]", "sites[1]: duplicate site 'a'"),
        ("sites: [A]", "sites[0]: must be lowercase"),
        ("sites: [a, b]\nlinks: [{from: a, to: c}]", "links[0].to: unknown site 'c'"),
        (
            "sites: [a, b]\nlinks: [{from: a, to: b}, {from: b, to: a}]",
            "links[1]: b and a are already linked",
        ),
        ("sites: [a]\nlinks: [{from: a, to: a}]", "links[0].to: a link must join two"),
        ("sites: [a]\nlinks: [{from: a, to: b, cost: 0}]", "links[0].cost: must be at least 1"),
        ("sites: []", "sites: must name at least one site"),
        (
            "sites: [a]\nservices: [{name: s, connectors: [], listeners: [a]}]",
            "services[0].connectors: must name at least one site",
        ),
        ("sites: [a]\nmode: netns\nsetup: namespace", "setup: namespace setup runs in mode"),
    ],
)
def test_topology_mistakes(text: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario("name: t\n" + text + "\n", source="s.yaml")
    assert f"s.yaml: {expected}" in str(caught.value)


def test_several_mistakes_are_all_reported_with_the_file_name() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario("name: t\nsites: [a, a]\nlinks: [{from: a, to: x}]\n", source="bad.yaml")
    lines = str(caught.value).splitlines()
    assert lines == [
        "bad.yaml: sites[1]: duplicate site 'a'",
        "bad.yaml: links[0].to: unknown site 'x'",
    ]


def test_not_yaml_and_not_a_mapping() -> None:
    with pytest.raises(ScenarioError, match=r"x.yaml: line 1, column \d+: invalid YAML"):
        parse_scenario("name: [unclosed", source="x.yaml")
    with pytest.raises(ScenarioError, match="top level: must be a mapping"):
        parse_scenario("- a\n- b\n")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario("/nonexistent/scenario.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("3s", 3.0), ("2m", 120.0), ("1m30s", 90.0), ("1h", 3600.0), (7, 7.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64KiB", 65536),
        ("4MiB", 4 << 20),
        ("10MB", 10**7),
        ("1G", 1 << 30),
        (512, 512),
        ("1.5KiB", 1536),
    ],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


def test_rates_and_bad_units() -> None:
    assert parse_rate("512KiB/s") == 512 << 10
    assert parse_rate(1000) == 1000
    for bad in ("3 parsecs", "-1s", True, [1]):
        with pytest.raises(ValueError):
            parse_duration(bad)
    with pytest.raises(ValueError):
        parse_size("lots")
    with pytest.raises(ValueError):
        parse_rate("fast")


def test_convergence_waits_for_least_cost_routes_not_just_reachability() -> None:
    # a-c direct (cost 1) and a-b-c (cost 2): "c reachable from a" holds as soon as a-b
    # and b-c are up; the run must wait for the direct link, or connections opened at
    # once stay on the long path and a fault on a-c misses them.
    from skupper_actors.chaos.scenario import LinkSpec
    from skupper_actors.chaos.topology import _least_costs

    links = (
        LinkSpec(source="a", target="c"),
        LinkSpec(source="a", target="b"),
        LinkSpec(source="b", target="c", cost=5),
    )
    assert _least_costs(["a", "b", "c", "d"], links) == {
        "a": {"b": 1, "c": 1},
        "b": {"a": 1, "c": 2},  # via a, not the direct cost-5 link
        "c": {"a": 1, "b": 2},
        "d": {},  # reaches nobody
    }
