"""Destination selection: balanced, closest and multicast."""

from __future__ import annotations

from collections import Counter

import pytest

from skupper_actors.protocol.addressing import AddressTable, Destination, DistributionMode

pytestmark = pytest.mark.timeout(10)

BALANCED, CLOSEST, MULTICAST = (
    DistributionMode.BALANCED,
    DistributionMode.CLOSEST,
    DistributionMode.MULTICAST,
)


def local(connector_id: str) -> Destination:
    return Destination(router_id="here", connector_id=connector_id)


def remote(router_id: str) -> Destination:
    return Destination(router_id=router_id)


def table(costs: dict[str, int], remote_routers: dict[str, list[str]]) -> AddressTable:
    t = AddressTable("here")
    t.set_route_costs(costs)
    for address, routers in remote_routers.items():
        t.set_remote_routers(address, routers)
    return t


def run(t: AddressTable, address: str, n: int, mode: DistributionMode = BALANCED,
        ) -> Counter[Destination]:
    """Select ``n`` times, each connection staying open (outstanding grows)."""
    outstanding: Counter[Destination] = Counter()
    for _ in range(n):
        chosen = t.select(address, mode, outstanding)
        assert chosen is not None
        outstanding[chosen] += 1
    return outstanding


def test_balanced_picks_local_first() -> None:
    t = table({"near": 1}, {"svc": ["near"]})
    assert t.bind_local("svc", "c1") is True
    assert t.bind_local("svc", "c2") is False
    counts = run(t, "svc", 10)
    assert counts == {local("c1"): 5, local("c2"): 5}


def test_balanced_prefers_lower_cost_when_idle() -> None:
    t = table({"near": 2, "far": 9}, {"svc": ["far", "near"]})
    assert t.select("svc") == remote("near")
    assert t.destinations("svc") == (remote("near"), remote("far"))


def test_balanced_spreads_load_over_equal_costs_and_then_over_cost() -> None:
    t = table({"b": 3, "c": 3, "d": 5}, {"svc": ["b", "c", "d"]})
    assert run(t, "svc", 6) == {remote("b"): 3, remote("c"): 3}
    # Scored by outstanding + cost, d (cost 5) gets a turn once b and c carry 3 each.
    assert run(t, "svc", 9) == {remote("b"): 4, remote("c"): 4, remote("d"): 1}


def test_balanced_skips_full_local_destinations_then_goes_remote() -> None:
    t = table({"b": 4}, {"svc": ["b"]})
    t.bind_local("svc", "small", capacity=1)
    t.bind_local("svc", "big", capacity=2)
    counts = run(t, "svc", 5)
    assert counts == {local("small"): 1, local("big"): 2, remote("b"): 2}


def test_nothing_to_select() -> None:
    t = table({}, {"svc": ["unreachable"]})
    assert t.select("svc") is None
    assert t.select("unknown") is None
    t.bind_local("full", "c", capacity=1)
    assert t.select("full", outstanding={local("c"): 1}) is None


def test_closest_takes_lowest_cost_round_robin() -> None:
    t = table({"b": 2, "c": 2, "d": 1}, {"svc": ["b", "c"], "near": ["b", "c", "d"]})
    picks = [t.select("svc", CLOSEST) for _ in range(4)]
    assert picks == [remote("b"), remote("c"), remote("b"), remote("c")]
    assert {t.select("near", CLOSEST) for _ in range(3)} == {remote("d")}
    t.bind_local("near", "c1")
    assert t.select("near", CLOSEST) == local("c1")


def test_closest_follows_route_changes() -> None:
    t = table({"b": 2, "c": 5}, {"svc": ["b", "c"]})
    assert t.select("svc", CLOSEST) == remote("b")
    t.set_route_costs({"c": 5})  # b became unreachable
    assert t.select("svc", CLOSEST) == remote("c")
    t.set_route_costs({"b": 9, "c": 5})
    assert t.select("svc", CLOSEST) == remote("c")


def test_multicast_returns_all_and_is_the_default_for_mc_addresses() -> None:
    t = table({"b": 2, "c": 1}, {"mc/flows": ["b", "c", "here"]})
    t.bind_local("mc/flows", "observer")
    assert AddressTable.mode_for("mc/flows") is MULTICAST
    assert AddressTable.mode_for("svc") is BALANCED
    assert t.select_all("mc/flows") == (local("observer"), remote("c"), remote("b"))
    with pytest.raises(ValueError, match="select_all"):
        t.select("mc/flows")
    with pytest.raises(ValueError, match="select_all"):
        t.select("svc", MULTICAST)


def test_bindings_come_and_go() -> None:
    t = table({"b": 1}, {})
    assert t.bind_local("svc", "c1", capacity=3)
    assert t.local_addresses() == {"svc"}
    assert not t.unbind_local("svc", "nope")
    assert t.unbind_local("svc", "c1")  # last local binding gone: withdraw the address
    assert t.addresses() == frozenset()
    t.set_remote_routers("svc", ["b", "here"])  # our own id is not a remote destination
    assert t.destinations("svc") == (remote("b"),)
    assert t.cost(remote("b")) == 1 and t.cost(local("x")) == 0 and t.cost(remote("z")) is None
    t.set_remote_routers("svc", [])
    assert t.addresses() == frozenset()
    with pytest.raises(ValueError, match="capacity"):
        t.bind_local("svc", "c", capacity=0)


def test_excluded_routers_are_skipped_local_included() -> None:
    table = AddressTable("me")
    table.bind_local("svc", "c1")
    table.set_remote_routers("svc", ["near", "far"])
    table.set_route_costs({"near": 1, "far": 5})
    assert table.select("svc").local
    assert table.select("svc", exclude=frozenset({"me"})).router_id == "near"
    assert table.select("svc", exclude=frozenset({"me", "near"})).router_id == "far"
    assert table.select("svc", exclude=frozenset({"me", "near", "far"})) is None
    closest = DistributionMode.CLOSEST
    assert table.select("svc", closest, exclude=frozenset({"me"})).router_id == "near"
