"""Shortest paths over the link-state database, keeping every equal-cost first hop.

A link counts only when it is two-way: both routers list each other. Its cost is the
larger of the two advertised costs, so every router computes the same symmetric graph
from the same database whatever cost each end configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from heapq import heappop, heappush

from .effects import Route


def shortest_paths(
    source: str,
    lsdb: Mapping[str, Mapping[str, int]],
    first_hop_links: Mapping[str, Sequence[str]],
) -> dict[str, Route]:
    """Routes from ``source`` to every reachable router (``source`` itself excluded).

    ``lsdb`` maps a router id to its link state (neighbour id -> cost); ``first_hop_links``
    maps each of our neighbours to the link ids that reach it at the advertised cost.
    Next hops of a route are all links of every first-hop neighbour on a shortest path.
    """
    dist: dict[str, int] = {source: 0}
    # First-hop neighbours per router, shared between routers until a tie merges them.
    via: dict[str, frozenset[str]] = {}
    done: set[str] = set()
    heap: list[tuple[int, str]] = [(0, source)]
    while heap:
        d, node = heappop(heap)
        if node in done:
            continue
        done.add(node)
        links = lsdb.get(node)
        if not links:
            continue
        node_via = via.get(node)
        for peer, cost in links.items():
            if peer in done:
                continue
            peer_links = lsdb.get(peer)
            if peer_links is None:
                continue
            back = peer_links.get(node)
            if back is None:
                continue  # one-way: the peer does not list us back
            if node_via is None:
                if peer not in first_hop_links:
                    continue
                peer_via = frozenset((peer,))
            else:
                peer_via = node_via
            total = d + (cost if cost >= back else back)
            known = dist.get(peer)
            if known is None or total < known:
                dist[peer] = total
                via[peer] = peer_via
                heappush(heap, (total, peer))
            elif total == known and not peer_via <= via[peer]:
                via[peer] = via[peer] | peer_via
    hops_cache: dict[frozenset[str], tuple[str, ...]] = {}
    routes: dict[str, Route] = {}
    for router_id, neighbours in via.items():
        hops = hops_cache.get(neighbours)
        if hops is None:
            hops = tuple(sorted(link for n in neighbours for link in first_hop_links[n]))
            hops_cache[neighbours] = hops
        routes[router_id] = Route(router_id=router_id, cost=dist[router_id], next_hops=hops)
    return routes
