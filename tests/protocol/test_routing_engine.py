"""One routing engine driven by hand: handshake, refusals, ordering of updates, timers."""

from __future__ import annotations

import math

import pytest

from skupper_actors.protocol.routing import (
    SEQ_MODULUS,
    AddressesChanged,
    Effect,
    Hello,
    LinkStateRequest,
    LinkStateUpdate,
    MobileAddressRequest,
    MobileAddressUpdate,
    NeighbourAdded,
    NeighbourLost,
    ProtocolRefused,
    Route,
    RouterAdded,
    RouterAdvertisement,
    RoutesChanged,
    RoutingEngine,
    RoutingSettings,
    SendControl,
    encode,
)

pytestmark = pytest.mark.timeout(10)


def sends(effects: list[Effect]) -> list[tuple[str, object]]:
    return [(e.link_id, e.message) for e in effects if isinstance(e, SendControl)]


def others(effects: list[Effect]) -> list[Effect]:
    return [e for e in effects if not isinstance(e, SendControl)]


def neighbour_up(engine: RoutingEngine, link_id: str, peer: str, now: float, instance: int = 2
                 ) -> list[Effect]:
    """Open a link and complete the HELLO handshake with ``peer`` on it."""
    engine.link_opened(link_id, 1, now)
    engine.receive(link_id, Hello(id=peer, instance=instance, seen=()), now)
    return engine.receive(link_id, Hello(id=peer, instance=instance, seen=(engine.router_id,)), now)


def test_handshake_then_routes() -> None:
    a = RoutingEngine("A", 1)
    assert a.next_deadline() == -math.inf
    assert sends(a.link_opened("l", 3, 0.0)) == [("l", Hello(id="A", instance=1, seen=()))]

    # A new neighbour gets an immediate HELLO listing it, so it can turn two-way.
    effects = a.receive("l", Hello(id="B", instance=2, seen=()), 0.001)
    assert sends(effects) == [("l", Hello(id="A", instance=1, seen=("B",)))]
    assert not a.neighbours()["l"].two_way

    effects = a.receive("l", Hello(id="B", instance=2, seen=("A",)), 0.002)
    assert others(effects) == [NeighbourAdded(link_id="l", router_id="B")]
    assert a.next_deadline() <= 0.002  # work is due at once, done by tick
    effects = a.tick(0.002)
    assert sends(effects) == [
        ("l", LinkStateUpdate(id="A", instance=1, ls_seq=1, ls={"B": 3}))
    ]
    assert a.routes() == {}  # B's link state is not known yet
    assert a.next_deadline() > 0.002

    a.receive("l", LinkStateUpdate(id="B", instance=2, ls_seq=1, ls={"A": 1}), 0.003)
    effects = a.tick(0.1)
    route = Route(router_id="B", cost=3, next_hops=("l",))
    assert others(effects) == [RoutesChanged(table={"B": route}), RouterAdded(router_id="B")]
    assert a.routes() == {"B": route}


def test_newer_protocol_version_is_refused_without_state_change() -> None:
    a = RoutingEngine("A", 1)
    neighbour_up(a, "l", "B", 0.0)
    a.tick(0.0)
    before = (a.neighbours(), a.link_state_database(), a.next_deadline())
    for message in (
        Hello(id="C", instance=5, seen=("A",), pv=2),
        LinkStateUpdate(id="C", instance=5, ls_seq=1, ls={"A": 1}, pv=2),
    ):
        effects = a.receive("l", message, 0.5)
        assert len(effects) == 1 and isinstance(effects[0], ProtocolRefused)
        assert "protocol version 2" in effects[0].reason
    assert (a.neighbours(), a.link_state_database(), a.next_deadline()) == before


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"op": "HELLO", "pv": 2, "id": "B", "instance": 1, "seen": []}, "newer than supported"),
        ({"op": "HELLO", "pv": 1, "id": "B", "instance": "x", "seen": []}, "HELLO.instance"),
        ("garbage", "must be a map"),
    ],
)
def test_bad_wire_input_becomes_a_refusal(body: object, reason: str) -> None:
    a = RoutingEngine("A", 1)
    a.link_opened("l", 1, 0.0)
    effects = a.receive_encoded("l", body, 0.1)
    assert len(effects) == 1 and isinstance(effects[0], ProtocolRefused)
    assert reason in effects[0].reason
    assert a.neighbours() == {}


def test_good_wire_input_is_received() -> None:
    a = RoutingEngine("A", 1)
    a.link_opened("l", 1, 0.0)
    a.receive_encoded("l", encode(Hello(id="B", instance=2, seen=("A",))), 0.1)
    assert a.neighbours()["l"].two_way


def test_other_refusals() -> None:
    a = RoutingEngine("A", 1)
    a.link_opened("l", 1, 0.0)
    cases = [
        ("nowhere", Hello(id="B", instance=2)),  # unknown link
        ("l", Hello(id="A", instance=9)),  # our own router id
        ("l", LinkStateUpdate(id="B", instance=2, ls_seq=1, ls={})),  # before any HELLO
    ]
    for link_id, message in cases:
        effects = a.receive(link_id, message, 0.1)
        assert [type(e) for e in effects] == [ProtocolRefused]


def test_bad_link_costs_and_ids() -> None:
    a = RoutingEngine("A", 1)
    with pytest.raises(ValueError, match="cost"):
        a.link_opened("l", 0, 0.0)
    a.link_opened("l", 1, 0.0)
    with pytest.raises(ValueError, match="already open"):
        a.link_opened("l", 1, 0.0)


def test_stale_duplicate_and_old_instance_updates_are_ignored() -> None:
    a = RoutingEngine("A", 1)
    neighbour_up(a, "lb", "B", 0.0)
    neighbour_up(a, "lc", "C", 0.0)
    a.tick(0.0)
    fresh = LinkStateUpdate(id="Z", instance=5, ls_seq=10, ls={"B": 1})
    assert sends(a.receive("lb", fresh, 0.1)) == [("lc", fresh)]  # flooded on, not back

    for stale in (
        LinkStateUpdate(id="Z", instance=5, ls_seq=9, ls={"C": 1}),  # older
        LinkStateUpdate(id="Z", instance=5, ls_seq=10, ls={"B": 1}),  # duplicate
        LinkStateUpdate(id="Z", instance=4, ls_seq=99, ls={"C": 1}),  # older instance
    ):
        assert a.receive("lc", stale, 0.2) == []
    assert a.link_state_database()["Z"].ls_seq == 10
    assert a.link_state_database()["Z"].ls == {"B": 1}

    restarted = LinkStateUpdate(id="Z", instance=6, ls_seq=1, ls={"C": 4})
    assert sends(a.receive("lc", restarted, 0.3)) == [("lb", restarted)]
    assert a.link_state_database()["Z"].instance == 6


def test_sequence_numbers_wrap_for_link_state_and_addresses() -> None:
    a = RoutingEngine("A", 1)
    neighbour_up(a, "lb", "B", 0.0)
    a.tick(0.0)
    top = SEQ_MODULUS - 1
    a.receive("lb", LinkStateUpdate(id="Z", instance=5, ls_seq=top, ls={"B": 1}), 0.1)
    wrapped = LinkStateUpdate(id="Z", instance=5, ls_seq=0, ls={"B": 2})
    a.receive("lb", wrapped, 0.2)
    assert a.link_state_database()["Z"].ls == {"B": 2}
    a.receive("lb", LinkStateUpdate(id="Z", instance=5, ls_seq=top, ls={"B": 1}), 0.3)
    assert a.link_state_database()["Z"].ls_seq == 0  # the pre-wrap one is stale now

    updates = [
        MobileAddressUpdate(id="B", instance=2, mobile_seq=top - 1, exist=("x",)),
        MobileAddressUpdate(id="B", instance=2, mobile_seq=top, add=("y",)),
        MobileAddressUpdate(id="B", instance=2, mobile_seq=0, delete=("x",)),
        MobileAddressUpdate(id="B", instance=2, mobile_seq=1, add=("z",)),
        MobileAddressUpdate(id="B", instance=2, mobile_seq=top, add=("x",)),  # stale
    ]
    a.receive("lb", LinkStateUpdate(id="B", instance=2, ls_seq=1, ls={"A": 1}), 0.4)
    for update in updates:
        a.receive("lb", update, 0.5)
    a.tick(0.5)
    assert a.addresses() == {"y": frozenset({"B"}), "z": frozenset({"B"})}


def test_gap_in_address_updates_asks_for_the_absolute_list() -> None:
    a = RoutingEngine("A", 1)
    neighbour_up(a, "lb", "B", 0.0)
    a.receive("lb", MobileAddressUpdate(id="B", instance=2, mobile_seq=1, add=("x",)), 0.1)
    skipped = MobileAddressUpdate(id="B", instance=2, mobile_seq=3, add=("y",))
    effects = a.receive("lb", skipped, 0.2)
    request = MobileAddressRequest(id="A", instance=1, origin="B", have_seq=1)
    assert sends(effects) == [("lb", request)]


def test_advertisement_of_newer_state_triggers_requests_and_is_not_flooded_yet() -> None:
    a = RoutingEngine("A", 1)
    neighbour_up(a, "lb", "B", 0.0)
    neighbour_up(a, "lc", "C", 0.0)
    ra = RouterAdvertisement(id="Z", instance=5, ls_seq=4, mobile_seq=2, ra_seq=1)
    assert sends(a.receive("lb", ra, 0.1)) == [
        ("lb", LinkStateRequest(id="A", instance=1, origin="Z")),
        ("lb", MobileAddressRequest(id="A", instance=1, origin="Z", have_seq=0)),
    ]
    # Once we hold what it announces, the next RA floods on.
    a.receive("lb", LinkStateUpdate(id="Z", instance=5, ls_seq=4, ls={"B": 1}), 0.2)
    a.receive("lb", MobileAddressUpdate(id="Z", instance=5, mobile_seq=2, exist=("q",)), 0.2)
    ra2 = RouterAdvertisement(id="Z", instance=5, ls_seq=4, mobile_seq=2, ra_seq=2)
    assert sends(a.receive("lb", ra2, 0.3)) == [("lc", ra2)]
    assert a.receive("lc", ra2, 0.3) == []  # duplicate


def test_requests_are_answered_from_the_database() -> None:
    a = RoutingEngine("A", 1)
    neighbour_up(a, "lb", "B", 0.0)
    a.add_local_address("svc", 0.0)
    a.tick(0.0)
    lsu = sends(a.receive("lb", LinkStateRequest(id="B", instance=2, origin="A"), 0.1))
    assert lsu == [("lb", LinkStateUpdate(id="A", instance=1, ls_seq=1, ls={"B": 1}))]
    request = MobileAddressRequest(id="B", instance=2, origin="A", have_seq=0)
    mau = sends(a.receive("lb", request, 0.1))
    assert mau == [("lb", MobileAddressUpdate(id="A", instance=1, mobile_seq=1, exist=("svc",)))]
    assert a.receive("lb", LinkStateRequest(id="B", instance=2, origin="nobody"), 0.1) == []


def test_local_addresses_are_batched_into_one_update_per_tick() -> None:
    a = RoutingEngine("A", 1)
    neighbour_up(a, "lb", "B", 0.0)
    a.tick(0.0)
    a.add_local_address("x", 0.1)
    a.add_local_address("y", 0.1)
    a.add_local_address("gone", 0.1)
    a.remove_local_address("gone", 0.1)
    effects = a.tick(0.1)
    update = MobileAddressUpdate(id="A", instance=1, mobile_seq=1, add=("x", "y"))
    assert sends(effects) == [("lb", update)]
    assert AddressesChanged(address="x", routers=frozenset({"A"})) in effects
    assert a.address_routers("y") == {"A"}
    assert a.local_addresses() == {"x", "y"}


def test_bytes_on_a_link_keep_its_neighbour_alive_while_its_hello_waits() -> None:
    """A busy router reads a backlog from a neighbour in order: the HELLO behind the
    data arrives late, but the bytes before it prove the neighbour alive."""
    settings = RoutingSettings()
    a = RoutingEngine("A", 1, settings)
    neighbour_up(a, "lb", "B", 0.0)
    neighbour_up(a, "lc", "C", 0.0)
    a.tick(0.0)
    a.link_active("lb", 2.5)  # data, no HELLO
    a.link_active("lc", 1.0)
    lost = [e for e in a.tick(settings.hello_max_age + 0.1) if isinstance(e, NeighbourLost)]
    assert lost == []  # C was last active at 1.0: not yet 3 s ago
    lost = [e for e in a.tick(4.1) if isinstance(e, NeighbourLost)]
    assert lost == [NeighbourLost(link_id="lc", router_id="C", reason="hello-timeout")]
    lost = [e for e in a.tick(5.6) if isinstance(e, NeighbourLost)]
    assert lost == [NeighbourLost(link_id="lb", router_id="B", reason="hello-timeout")]
    # bytes never make a neighbour of a link that was not heard (or was lost)
    a.link_active("lb", 6.0)
    assert "lb" not in a.neighbours()


def test_silent_link_times_out_and_closed_link_is_lost_at_once() -> None:
    settings = RoutingSettings()
    a = RoutingEngine("A", 1, settings)
    neighbour_up(a, "lb", "B", 0.0)
    neighbour_up(a, "lc", "C", 0.0)
    a.tick(0.0)
    deadline = a.next_deadline()
    assert deadline == pytest.approx(settings.hello_interval)
    # B keeps talking, C falls silent.
    now = 0.0
    lost: list[Effect] = []
    while now < 10:
        now = a.next_deadline()
        a.receive("lb", Hello(id="B", instance=2, seen=("A",)), now)
        lost += [e for e in a.tick(now) if isinstance(e, NeighbourLost)]
        if lost:
            break
    assert lost == [NeighbourLost(link_id="lc", router_id="C", reason="hello-timeout")]
    assert now == pytest.approx(settings.hello_max_age)
    assert set(a.neighbours()) == {"lb"}
    assert a.link_closed("lb", now) == [
        NeighbourLost(link_id="lb", router_id="B", reason="link-closed")
    ]
    assert a.link_closed("lc", now) == []  # already reported


def test_link_that_never_says_hello_is_reported() -> None:
    a = RoutingEngine("A", 1)
    a.link_opened("l", 1, 0.0)
    effects = a.tick(a.next_deadline())
    assert a.next_deadline() <= 3.0
    effects = a.tick(3.0)
    assert NeighbourLost(link_id="l", router_id=None, reason="no-hello") in effects
    assert not [e for e in a.tick(10.0) if isinstance(e, NeighbourLost)]


def test_neighbour_restart_on_the_same_link_flushes_its_state() -> None:
    a = RoutingEngine("A", 1)
    neighbour_up(a, "lb", "B", 0.0, instance=2)
    a.receive("lb", MobileAddressUpdate(id="B", instance=2, mobile_seq=1, add=("x",)), 0.0)
    a.receive("lb", LinkStateUpdate(id="B", instance=2, ls_seq=1, ls={"A": 1}), 0.0)
    a.tick(0.0)
    assert a.address_routers("x") == {"B"}
    effects = a.receive("lb", Hello(id="B", instance=3, seen=()), 0.5)
    assert sends(effects) == [("lb", Hello(id="A", instance=1, seen=("B",)))]
    effects = a.tick(0.5)
    assert AddressesChanged(address="x", routers=frozenset()) in effects
    assert "B" not in a.link_state_database()


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        RoutingSettings(hello_interval=3.0, hello_max_age=3.0)
    with pytest.raises(ValueError):
        RoutingSettings(ra_interval=90.0)


def test_new_neighbour_gets_our_link_state_even_when_it_did_not_change() -> None:
    a = RoutingEngine("A", 1)
    neighbour_up(a, "l1", "B", 0.0, instance=2)
    a.tick(0.0)
    # B restarts and reconnects before our next tick: our link state looks the same.
    a.link_closed("l1", 0.5)
    neighbour_up(a, "l2", "B", 0.5, instance=3)
    effects = a.tick(0.5)
    assert ("l2", LinkStateUpdate(id="A", instance=1, ls_seq=1, ls={"B": 1})) in sends(effects)


def test_a_newer_instance_drops_links_to_the_old_one_at_once() -> None:
    a = RoutingEngine("A", 1)
    neighbour_up(a, "old", "B", 0.0, instance=2)
    a.link_opened("new", 1, 0.5)
    effects = a.receive("new", Hello(id="B", instance=3, seen=()), 0.5)
    assert NeighbourLost(link_id="old", router_id="B", reason="router-restarted") in effects
    assert set(a.neighbours()) == {"new"}
    # The old instance, still talking on some link, is refused while the new one lives.
    a.link_opened("stale", 1, 0.6)
    effects = a.receive("stale", Hello(id="B", instance=2, seen=("A",)), 0.6)
    assert [type(e) for e in effects] == [ProtocolRefused]
    assert "older instance" in effects[0].reason


def test_losing_one_of_two_links_resynchronises_over_the_other() -> None:
    a = RoutingEngine("A", 1)
    neighbour_up(a, "l1", "B", 0.0)
    neighbour_up(a, "l2", "B", 0.0)
    a.receive("l1", RouterAdvertisement(id="Z", instance=5, ls_seq=1, mobile_seq=0, ra_seq=1), 0.1)
    a.receive("l1", LinkStateUpdate(id="Z", instance=5, ls_seq=1, ls={"B": 1}), 0.1)
    a.tick(0.1)
    effects = a.link_closed("l1", 0.2)
    summary = RouterAdvertisement(id="Z", instance=5, ls_seq=1, mobile_seq=0, ra_seq=1)
    assert ("l2", summary) in sends(effects)
    assert ("l2", LinkStateUpdate(id="A", instance=1, ls_seq=1, ls={"B": 1})) in sends(a.tick(0.2))
