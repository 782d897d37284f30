"""Simulate link-state routing on a large random mesh and report convergence figures.

Usage: python tools/bench/routing_sim.py [--routers 1000] [--seed 1] [--degree 4]

Every router runs the real ``RoutingEngine``; links deliver in order after a virtual
delay (1 ms per hop by default). Phases: initial convergence, the RA flood that
follows it, one link closed (both ends told at once) and opened again, one link gone
silent (found by HELLO max age), and a new address served somewhere. Each phase
reports, in virtual time from its start, the last route or address change anywhere
("routes") and the last LSU/LSR/MAU/MAR delivered ("floods"), and the control messages
sent by type; routes are then checked against shortest paths on the true graph.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from skupper_actors.protocol.routing import RoutingSettings
from skupper_actors.protocol.routing.simulation import SimulatedLink, SimulatedNetwork

OPS = ("HELLO", "RA", "LSU", "LSR", "MAU", "MAR")


def random_mesh(
    n: int, degree: float, max_cost: int, rng: random.Random
) -> list[tuple[str, str, int]]:
    """A connected graph: a random tree, then random extra edges up to ``degree`` on average."""
    names = [f"r{i:04d}" for i in range(n)]
    edges: set[tuple[int, int]] = set()
    for i in range(1, n):
        edges.add((rng.randrange(i), i))
    target = max(n - 1, round(n * degree / 2))
    while len(edges) < target:
        a, b = rng.sample(range(n), 2)
        edges.add((min(a, b), max(a, b)))
    return [(names[a], names[b], rng.randint(1, max_cost)) for a, b in sorted(edges)]


def check_routes(net: SimulatedNetwork) -> None:
    """Every engine's table equals shortest paths on the links still open."""
    graph: dict[str, dict[str, tuple[int, list[str]]]] = {r: {} for r in net.engines}
    seen: set[int] = set()
    for link in net.links.values():
        if id(link) in seen or link.silenced or not _is_open(net, link):
            continue
        seen.add(id(link))
        cost = max(link.cost_a, link.cost_b)
        _add_edge(graph, link.router_a, link.router_b, cost, link.link_a)
        _add_edge(graph, link.router_b, link.router_a, cost, link.link_b)
    dist = {source: _dijkstra(graph, source) for source in graph}
    bad = 0
    for source, engine in net.engines.items():
        routes = engine.routes()
        expected = {t: d for t, d in dist[source].items() if t != source}
        if {t: r.cost for t, r in routes.items()} != expected:
            bad += 1
            continue
        for target, route in routes.items():
            hops = sorted(
                link_id
                for peer, (cost, link_ids) in graph[source].items()
                if target in dist[peer] and cost + dist[peer][target] == expected[target]
                for link_id in link_ids
            )
            if list(route.next_hops) != hops:
                bad += 1
                break
    if bad:
        raise SystemExit(f"FAILED: {bad} routers disagree with the reference")


def _is_open(net: SimulatedNetwork, link: SimulatedLink) -> bool:
    return net.is_open(link.link_a) and net.is_open(link.link_b)


def _add_edge(graph: dict[str, dict[str, tuple[int, list[str]]]], a: str, b: str, cost: int,
              link_id: str) -> None:
    known = graph[a].get(b)
    if known is None or cost < known[0]:
        graph[a][b] = (cost, [link_id])
    elif cost == known[0]:
        known[1].append(link_id)


def _dijkstra(graph: dict[str, dict[str, tuple[int, list[str]]]], source: str) -> dict[str, int]:
    dist = {source: 0}
    heap = [(0, source)]
    while heap:
        d, node = heapq.heappop(heap)
        if d > dist[node]:
            continue
        for peer, (cost, _) in graph[node].items():
            if d + cost < dist.get(peer, 1 << 60):
                dist[peer] = d + cost
                heapq.heappush(heap, (d + cost, peer))
    return dist


class Phase:
    def __init__(self, net: SimulatedNetwork, name: str) -> None:
        self.net, self.name = net, name
        self.start = net.now
        self.sent_before = Counter(net.sent)
        self.wall = time.perf_counter()
        net.last_change = net.last_update = net.now

    def finish(self) -> dict[str, object]:
        net = self.net
        sent = net.sent - self.sent_before
        row: dict[str, object] = {
            "phase": self.name,
            "routes_s": net.last_change - self.start,
            "floods_s": net.last_update - self.start,
            "messages": sum(sent.values()),
            "non_hello": sum(v for k, v in sent.items() if k != "HELLO"),
            "wall_s": time.perf_counter() - self.wall,
        }
        row.update({op: sent.get(op, 0) for op in OPS})
        return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--degree", type=float, default=4.0, help="average degree")
    parser.add_argument("--max-cost", type=int, default=10, help="link costs are 1..N")
    parser.add_argument("--delay", type=float, default=0.001, help="virtual seconds per hop")
    parser.add_argument("--addresses", type=int, default=20, help="addresses served at start")
    parser.add_argument("--spf-hold", type=float, default=RoutingSettings().spf_hold,
                        help="least virtual seconds between two shortest-path runs")
    parser.add_argument("--no-check", action="store_true", help="skip the reference check")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    started = time.perf_counter()
    settings = RoutingSettings(spf_hold=args.spf_hold)
    net = SimulatedNetwork(settings, delay=args.delay, keep_events=False)
    edges = random_mesh(args.routers, args.degree, args.max_cost, rng)
    names = sorted({r for a, b, _ in edges for r in (a, b)})
    for i, name in enumerate(names):
        net.add_router(name, instance=1000 + i)
    rows = []

    def verify() -> None:
        if not args.no_check:
            check_routes(net)

    phase = Phase(net, "initial convergence")
    for a, b, cost in edges:
        net.connect(a, b, cost)
    for k in range(args.addresses):
        net.engines[rng.choice(names)].add_local_address(f"svc-{k}", net.now)
    net.run_until_quiet(within=60.0)
    rows.append(phase.finish())
    verify()

    # Let the RA after the initial churn go by (ra_interval_flux), then fail things.
    phase = Phase(net, "RA flood after the churn")
    net.run_until(net.now + net.settings.ra_interval_flux + 1.0)
    net.run_until_quiet(within=10.0)
    rows.append(phase.finish())

    a, b, cost = rng.choice(edges)
    phase = Phase(net, f"link closed {a}-{b}")
    net.close(f"{a}>{b}")
    net.run_until_quiet(within=10.0)
    rows.append(phase.finish())
    verify()

    phase = Phase(net, f"link re-opened {a}-{b}")
    net.connect(a, b, cost)
    net.run_until_quiet(within=10.0)
    rows.append(phase.finish())
    verify()

    a, b, _ = rng.choice([e for e in edges if net.is_open(f"{e[0]}>{e[1]}")])
    phase = Phase(net, f"link silent {a}-{b}")
    net.silence(f"{a}>{b}")
    net.run_until(net.now + settings.hello_max_age + settings.hello_interval + args.delay * 2)
    net.run_until_quiet(within=10.0)
    rows.append(phase.finish())
    verify()

    phase = Phase(net, "address added")
    net.engines[rng.choice(names)].add_local_address("svc-new", net.now)
    net.run_until_quiet(within=10.0)
    rows.append(phase.finish())
    reachable = sum(1 for e in net.engines.values() if e.address_routers("svc-new"))
    if reachable != len(names):
        raise SystemExit(f"FAILED: svc-new known at {reachable}/{len(names)} routers")

    delay_ms = args.delay * 1000
    print(f"routers={len(names)} links={len(edges)} seed={args.seed} delay={delay_ms:g} ms/hop")
    header = f"{'phase':<28}{'routes':>9}{'floods':>9}{'messages':>10}{'non-HELLO':>11}"
    header += "".join(f"{op:>9}" for op in OPS) + f"{'wall':>9}"
    print(header)
    for row in rows:
        line = f"{row['phase']!s:<28}{row['routes_s']:>8.3f}s{row['floods_s']:>8.3f}s"
        line += f"{row['messages']:>10}"
        line += f"{row['non_hello']:>11}" + "".join(f"{row[op]:>9}" for op in OPS)
        line += f"{row['wall_s']:>8.1f}s"
        print(line)
    wall = time.perf_counter() - started
    print(f"total wall-clock {wall:.1f} s; routes checked against reference: {not args.no_check}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
