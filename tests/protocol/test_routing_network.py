"""Many routing engines on an in-memory bus, checked against a reference shortest path."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skupper_actors.protocol.routing import (
    SEQ_MODULUS,
    AddressesChanged,
    NeighbourLost,
    RoutingSettings,
)
from skupper_actors.protocol.routing.simulation import SimulatedNetwork

INF = float("inf")
Expected = dict[str, dict[str, tuple[int, tuple[str, ...]]]]


def reference_routes(net: SimulatedNetwork) -> Expected:
    """Floyd-Warshall over the links open at both ends.

    Each router rates a neighbour by its cheapest end among the links to it; a pair of
    routers costs the larger of the two ratings; the first hops are the links at the
    cheapest end (so with one link per pair: the larger of the two ends' costs).
    """
    nodes = sorted(net.engines)
    rating: dict[tuple[str, str], int] = {}
    links_at: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for link_id, link in net.links.items():
        if link_id != link.link_a or link.silenced:
            continue
        if not (net.is_open(link.link_a) and net.is_open(link.link_b)):
            continue
        if link.router_a not in net.engines or link.router_b not in net.engines:
            continue
        for a, b, end, cost in ((link.router_a, link.router_b, link.link_a, link.cost_a),
                                (link.router_b, link.router_a, link.link_b, link.cost_b)):
            rating[a, b] = min(rating.get((a, b), cost), cost)
            links_at.setdefault((a, b), []).append((cost, end))
    best = {(a, b): max(cost, rating[b, a]) for (a, b), cost in rating.items()}
    dist = {(a, b): 0.0 if a == b else float(best.get((a, b), INF)) for a in nodes for b in nodes}
    for k in nodes:
        for i in nodes:
            dik = dist[i, k]
            if dik == INF:
                continue
            for j in nodes:
                if dik + dist[k, j] < dist[i, j]:
                    dist[i, j] = dik + dist[k, j]
    expected: Expected = {}
    for s in nodes:
        table = {}
        for t in nodes:
            if t == s or dist[s, t] == INF:
                continue
            hops = sorted(
                link_id
                for (a, n), cost in best.items()
                if a == s and cost + dist[n, t] == dist[s, t]
                for c, link_id in links_at[a, n]
                if c == rating[a, n]
            )
            table[t] = (int(dist[s, t]), tuple(hops))
        expected[s] = table
    return expected


def assert_converged(
    net: SimulatedNetwork, served: dict[str, set[str]] | None = None, *, whole: bool = True
) -> None:
    """Routes match the reference; databases agree within each connected part.

    With ``whole`` False only the entries of routers in that part must agree: an update
    cut off by a partition mid-flood leaves the far side's entries for it unequal.
    """
    expected = reference_routes(net)
    for router_id, engine in net.engines.items():
        got = {t: (r.cost, r.next_hops) for t, r in engine.routes().items()}
        assert got == expected[router_id], f"routes at {router_id}"
        assert not engine.busy
    for router_id, engine in net.engines.items():
        part = {router_id, *expected[router_id]}
        mine = {k: v for k, v in engine.link_state_database().items() if whole or k in part}
        for peer in expected[router_id]:
            theirs = net.engines[peer].link_state_database()
            theirs = {k: v for k, v in theirs.items() if whole or k in part}
            assert theirs == mine, f"databases of {router_id} and {peer} differ"
    for address, routers in (served or {}).items():
        for router_id, engine in net.engines.items():
            want = {r for r in routers if r == router_id or r in expected[router_id]}
            assert engine.address_routers(address) == want, f"{address} at {router_id}"


def build(edges: Iterable[tuple[str, str, int, int]], **options: object) -> SimulatedNetwork:
    net = SimulatedNetwork(**options)  # type: ignore[arg-type]
    edges = list(edges)
    for name in sorted({r for a, b, _, _ in edges for r in (a, b)}):
        net.add_router(name, instance=100)
    for a, b, cost_a, cost_b in edges:
        net.connect(a, b, cost_a, cost_b)
    return net


@st.composite
def meshes(draw: st.DrawFn) -> tuple[list[tuple[str, str, int, int]], list[int], int]:
    """A connected graph of 5-30 routers with costs 1-20 at each end (sometimes unequal)."""
    n = draw(st.integers(5, 30))
    pairs = {(draw(st.integers(0, i - 1)), i) for i in range(1, n)}  # a random tree
    for a, b in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                              max_size=n)):
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    top = draw(st.sampled_from([2, 20]))  # small ranges make many equal-cost paths
    edges = []
    for a, b in sorted(pairs):
        cost = draw(st.integers(1, top))
        far = draw(st.one_of(st.just(cost), st.integers(1, top)))
        edges.append((f"r{a:02d}", f"r{b:02d}", cost, far))
    servers = draw(st.lists(st.integers(0, n - 1), max_size=3))
    cut = draw(st.integers(0, len(edges) - 1))
    return edges, servers, cut


@pytest.mark.timeout(60)
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(meshes())
def test_random_meshes_converge_and_reconverge_after_a_link_closes(
    mesh: tuple[list[tuple[str, str, int, int]], list[int], int],
) -> None:
    edges, servers, cut = mesh
    net = build(edges)
    served: dict[str, set[str]] = {}
    for k, index in enumerate(servers):
        router_id = f"r{index:02d}"
        net.engines[router_id].add_local_address(f"svc-{k % 2}", net.now)
        served.setdefault(f"svc-{k % 2}", set()).add(router_id)
    net.run_until_quiet()
    assert_converged(net, served)
    assert not net.refused

    a, b, _, _ = edges[cut]
    net.close(f"{a}>{b}")
    net.run_until_quiet()
    assert_converged(net, served)  # possibly split in two: each part agrees within itself


@pytest.mark.timeout(30)
def test_wire_encoding_end_to_end() -> None:
    rng = random.Random(7)
    edges = [(f"r{i}", f"r{rng.randrange(i)}", rng.randint(1, 3), rng.randint(1, 3))
             for i in range(1, 12)]
    net = build(edges, wire=True)
    net.engines["r5"].add_local_address("db", net.now)
    net.run_until_quiet()
    net.run_until(net.now + 6)  # the RA after our change goes round too
    assert_converged(net, {"db": {"r5"}})
    assert net.sent["RA"] > 0 and not net.refused


@pytest.mark.timeout(30)
def test_silent_neighbour_is_dropped_after_max_age() -> None:
    net = build([("A", "B", 1, 1), ("B", "C", 1, 1), ("A", "C", 5, 5)])
    net.run_until_quiet()
    assert net.engines["A"].routes()["C"].next_hops == ("A>B",)
    silenced_at = net.now
    net.silence("A>B")
    net.run_until(silenced_at + 2.0)
    assert "A>B" in net.engines["A"].neighbours()  # not yet
    net.run_until(silenced_at + 3.5)
    lost = [(t, r, e) for t, r, e in net.events if isinstance(e, NeighbourLost)]
    assert {(r, e.reason) for _, r, e in lost} == {("A", "hello-timeout"), ("B", "hello-timeout")}
    for t, _, _ in lost:
        assert 2.0 <= t - silenced_at <= 3.0
    net.run_until_quiet()
    assert_converged(net)
    assert net.engines["A"].routes()["C"].next_hops == ("A>C",)


@pytest.mark.timeout(30)
def test_restart_with_a_new_instance_flushes_addresses_at_once() -> None:
    net = build([("A", "B", 1, 1), ("B", "C", 1, 1)])
    net.engines["C"].add_local_address("svc", net.now)
    net.run_until_quiet()
    assert net.engines["A"].address_routers("svc") == {"C"}

    # C dies silently and comes back at once as a new instance on a new link.
    net.crash("C")
    restarted_at = net.now
    net.add_router("C", instance=101)
    net.connect("B", "C")
    net.run_until_quiet()
    assert net.now - restarted_at < 1.0  # well within HELLO max age of the old link
    for router_id in "AB":
        assert net.engines[router_id].address_routers("svc") == frozenset()
        assert net.engines[router_id].link_state_database()["C"].instance == 101
        flushed = [t for t, r, e in net.events
                   if r == router_id and e == AddressesChanged(address="svc", routers=frozenset())]
        assert flushed and flushed[0] - restarted_at < 0.1

    net.engines["C"].add_local_address("svc", net.now)
    net.run_until(net.now + 5)  # the old link to C times out meanwhile
    net.run_until_quiet()
    assert_converged(net, {"svc": {"C"}})


@pytest.mark.timeout(30)
def test_sequence_numbers_wrap_across_the_network() -> None:
    net = build(
        [("A", "B", 1, 1), ("B", "C", 1, 1)],
        settings=RoutingSettings(initial_seq=SEQ_MODULUS - 3),
    )
    net.run_until_quiet()
    for cost in (2, 3, 4, 5, 6):
        net.set_cost("A>B", cost)
        net.set_cost("B>A", cost)
        net.run_until_quiet()
    state = net.engines["C"].link_state_database()["A"]
    assert state.ls_seq < 5  # wrapped past 2**32 - 1
    assert state.ls == {"B": 6}
    assert_converged(net)
    assert net.engines["C"].routes()["A"].cost == 7


@pytest.mark.timeout(30)
def test_addresses_propagate_and_withdraw() -> None:
    net = build([("A", "B", 1, 1), ("B", "C", 1, 1), ("C", "D", 1, 1)])
    net.run_until_quiet()
    net.engines["D"].add_local_address("svc", net.now)
    net.run_until_quiet()
    assert net.sent["MAU"] == 3
    assert_converged(net, {"svc": {"D"}})
    net.engines["D"].remove_local_address("svc", net.now)
    net.run_until_quiet()
    assert_converged(net, {"svc": set()})
    changes = [e for _, r, e in net.events if r == "A" and isinstance(e, AddressesChanged)]
    assert changes == [
        AddressesChanged(address="svc", routers=frozenset({"D"})),
        AddressesChanged(address="svc", routers=frozenset()),
    ]


@pytest.mark.timeout(30)
def test_missed_address_update_triggers_a_request_and_recovers() -> None:
    net = build([("A", "B", 1, 1), ("B", "C", 1, 1)])
    net.run_until_quiet()
    dropped = []

    def drop_first_mau_to_c(sender: str, link_id: str, message: object) -> bool:
        if link_id == "B>C" and type(message).__name__ == "MobileAddressUpdate" and not dropped:
            dropped.append(message)
            return True
        return False

    net.drop = drop_first_mau_to_c
    net.engines["A"].add_local_address("x", net.now)
    net.run_until_quiet()
    assert dropped and net.engines["C"].address_routers("x") == frozenset()
    net.engines["A"].add_local_address("y", net.now)
    net.run_until_quiet()
    assert net.sent["MAR"] == 1
    assert_converged(net, {"x": {"A"}, "y": {"A"}})


@pytest.mark.timeout(30)
@pytest.mark.parametrize("after_ra", [False, True], ids=["before-ra", "after-ra"])
def test_partitions_merge(after_ra: bool) -> None:
    rng = random.Random(3)
    left = [(f"L{i}", f"L{rng.randrange(i)}", rng.randint(1, 5), rng.randint(1, 5))
            for i in range(1, 10)]
    right = [(f"R{i}", f"R{rng.randrange(i)}", rng.randint(1, 5), rng.randint(1, 5))
             for i in range(1, 10)]
    net = build(left + right + [("L3", "L7", 2, 2), ("R2", "R8", 1, 1)])
    net.engines["L4"].add_local_address("left", net.now)
    net.engines["R6"].add_local_address("right", net.now)
    net.run_until_quiet()
    if after_ra:  # both sides have seen RAs: the merge exchanges RA summaries
        net.run_until(net.now + 5)
    served = {"left": {"L4"}, "right": {"R6"}}
    assert_converged(net, served)
    net.connect("L5", "R5", 3, 3)
    net.connect("L1", "R9", 1, 4)
    net.run_until_quiet()
    assert_converged(net, served)
    assert len(net.engines["L0"].routes()) == 19


@pytest.mark.timeout(60)
def test_remote_link_state_ages_out_and_periodic_ras_keep_the_rest() -> None:
    net = build([("A", "B", 1, 1), ("B", "C", 1, 1), ("C", "D", 1, 1), ("A", "D", 1, 1)])
    net.run_until_quiet()
    net.close("C>D")
    net.crash("C")
    net.run_until(net.now + 10)
    assert "C" not in net.engines["A"].routes()
    assert "C" in net.engines["A"].link_state_database()  # kept until remote_ls_max_age
    net.run_until(net.now + net.settings.remote_ls_max_age)
    assert "C" not in net.engines["A"].link_state_database()
    net.run_until(net.now + 3 * net.settings.ra_interval)
    assert set(net.engines["A"].link_state_database()) == {"A", "B", "D"}
    assert_converged(net)


@pytest.mark.timeout(30)
def test_floods_lost_on_a_dead_parallel_link_are_repaired() -> None:
    net = build([("A", "B", 1, 1), ("A", "B", 3, 3), ("A", "C", 1, 1)])
    net.run_until_quiet()
    assert net.engines["A"].routes()["B"].next_hops == ("A>B",)
    silenced_at = net.now
    net.silence("A>B")  # carries the floods to B, and dies without a close
    net.run_until(silenced_at + 0.5)
    net.engines["C"].add_local_address("x", net.now)
    net.run_until(silenced_at + 3.1)  # past HELLO max age, well before C's next RA
    assert net.engines["B"].address_routers("x") == {"C"}
    net.run_until_quiet()
    assert_converged(net, {"x": {"C"}})


CHURN = ("close", "silence", "connect", "cost", "address", "crash", "restart", "wait")


@st.composite
def churns(draw: st.DrawFn) -> tuple[list[tuple[str, str, int, int]], list[tuple[str, int, float]]]:
    """A small random tree, then link/router/address events at random moments."""
    n = draw(st.integers(3, 12))
    edges = [(f"r{i:02d}", f"r{draw(st.integers(0, i - 1)):02d}", draw(st.integers(1, 4)),
              draw(st.integers(1, 4))) for i in range(1, n)]
    steps = draw(st.lists(
        st.tuples(st.sampled_from(CHURN), st.integers(0, 2**16),
                  st.sampled_from([0.0, 0.001, 0.002, 0.05, 1.0, 4.0, 40.0])),
        min_size=1, max_size=25,
    ))
    return edges, steps


@pytest.mark.timeout(60)
@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(churns())
def test_random_churn_settles_to_the_reference(
    churn: tuple[list[tuple[str, str, int, int]], list[tuple[str, int, float]]],
) -> None:
    """Links close, go silent and open, routers crash and restart, addresses come and go,
    mid-flood or not; once things settle every router agrees with the reference."""
    edges, steps = churn
    net = build(edges, settings=RoutingSettings(spf_hold=0.01))
    serving: dict[str, set[str]] = {r: set() for r in net.engines}
    instance = 100
    for action, pick, wait in steps:
        live = sorted(net.engines)
        usable = sorted(
            link_id for link_id, link in net.links.items()
            if link_id == link.link_a and not link.silenced
            and net.is_open(link.link_a) and net.is_open(link.link_b)
        )
        if action in ("close", "silence", "cost") and usable:
            link_id = usable[pick % len(usable)]
            if action == "close":
                net.close(link_id)
            elif action == "silence":
                net.silence(link_id)
            else:
                net.set_cost(link_id, 1 + pick % 5)
        elif action == "connect" and len(live) > 1:
            a = live[pick % len(live)]
            b = live[(pick // 7) % len(live)]
            if a != b:
                net.connect(a, b, 1 + pick % 3, 1 + pick % 4)
        elif action == "address" and live:
            router_id, address = live[pick % len(live)], f"a{pick % 3}"
            engine = net.engines[router_id]
            if address in serving[router_id]:
                serving[router_id].discard(address)
                engine.remove_local_address(address, net.now)
            else:
                serving[router_id].add(address)
                engine.add_local_address(address, net.now)
        elif action in ("crash", "restart") and len(live) > 1:
            router_id = live[pick % len(live)]
            net.crash(router_id)
            serving[router_id] = set()
            if action == "restart":
                instance += 1
                net.add_router(router_id, instance=instance)
                others = [r for r in live if r != router_id]
                net.connect(router_id, others[pick % len(others)])
        net.run_until(net.now + wait)
    net.run_until(net.now + net.settings.hello_max_age + net.settings.hello_interval)
    net.run_until_quiet()
    served: dict[str, set[str]] = {f"a{k}": set() for k in range(3)}
    for router_id in net.engines:
        for address in serving[router_id]:
            served[address].add(router_id)
    assert_converged(net, served, whole=False)
    assert not net.refused
