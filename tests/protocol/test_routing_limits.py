"""Limits on what a peer router may advertise, and address work spread over ticks."""

from __future__ import annotations

import pytest
from test_routing_engine import neighbour_up

from skupper_actors.protocol.routing import (
    AddressesChanged,
    ControlMessageTooLarge,
    LimitExceeded,
    LinkStateUpdate,
    MobileAddressUpdate,
    RoutingEngine,
    RoutingSettings,
    decode,
    encode,
)

pytestmark = pytest.mark.timeout(10)


def reachable_b(settings: RoutingSettings) -> RoutingEngine:
    """A with neighbour B on link "l", B's link state known (so B is reachable)."""
    a = RoutingEngine("A", 1, settings)
    neighbour_up(a, "l", "B", 0.0)
    a.tick(0.0)
    a.receive("l", LinkStateUpdate(id="B", instance=2, ls_seq=1, ls={"A": 1}), 0.0)
    a.tick(0.1)
    assert "B" in a.routes()
    return a


def names(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{n:05d}" for n in range(count))


def limits(effects: list) -> list[LimitExceeded]:
    return [e for e in effects if isinstance(e, LimitExceeded)]


def test_an_update_listing_more_than_allowed_is_refused_and_changes_nothing() -> None:
    a = reachable_b(RoutingSettings(max_addresses_per_update=10))
    update = MobileAddressUpdate(id="B", instance=2, mobile_seq=1, add=names("s", 11))
    [refused] = limits(a.receive("l", update, 0.2))
    assert refused.limit == "max-addresses-per-update"
    assert refused.neighbour and refused.origin == "B" and refused.link_id == "l"
    assert "11 addresses" in refused.detail
    a.tick(0.3)
    assert a.addresses() == {}


def test_a_router_growing_past_its_address_limit_is_refused_at_the_limit() -> None:
    a = reachable_b(RoutingSettings(max_addresses_per_router=25, max_addresses_per_update=10))
    for seq in (1, 2):
        update = MobileAddressUpdate(
            id="B", instance=2, mobile_seq=seq, add=names(f"s{seq}-", 10)
        )
        assert limits(a.receive("l", update, 0.2)) == []
    third = MobileAddressUpdate(id="B", instance=2, mobile_seq=3, add=names("s3-", 10))
    [refused] = limits(a.receive("l", third, 0.2))
    assert refused.limit == "max-addresses-per-router" and refused.neighbour
    a.tick(0.3)
    assert len(a.addresses()) == 20  # what B had before the refused update


def test_a_relayed_update_past_the_limit_does_not_blame_the_neighbour() -> None:
    a = reachable_b(RoutingSettings(max_addresses_per_update=5))
    relayed = MobileAddressUpdate(id="C", instance=3, mobile_seq=1, add=names("c", 6))
    [refused] = limits(a.receive("l", relayed, 0.2))
    assert refused.origin == "C" and not refused.neighbour


def test_decode_refuses_an_oversized_list_before_validating_it() -> None:
    body = encode(MobileAddressUpdate(id="B", instance=2, mobile_seq=1, exist=names("x", 100)))
    body["exist"].append(17)  # an invalid entry that validation would have reported
    with pytest.raises(ControlMessageTooLarge) as caught:
        decode(body, max_entries=99)
    assert caught.value.origin == "B" and caught.value.field == "exist"
    assert "101 entries" in str(caught.value)
    body["exist"].pop()
    assert decode(body, max_entries=100) == decode(body)


def test_a_burst_of_addresses_is_reported_over_several_ticks() -> None:
    a = reachable_b(RoutingSettings(max_address_changes_per_tick=100))
    a.receive("l", MobileAddressUpdate(id="B", instance=2, mobile_seq=1, exist=names("b", 350)),
              0.2)  # fmt: skip
    reported = 0
    ticks = 0
    now = 0.2
    while True:
        changed = [e for e in a.tick(now) if isinstance(e, AddressesChanged)]
        assert len(changed) <= 100
        reported += len(changed)
        ticks += 1
        if not a.busy:
            break
        assert a.next_deadline() <= now  # the rest is due at once
        now += 0.001
    assert reported == 350 and ticks == 4
    assert set(a.addresses()) == set(names("b", 350))
