"""The links of one router and the neighbours heard on them (the HELLO protocol)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .effects import Neighbour, NeighbourLost
from .messages import MAX_COST, Hello


@dataclass(slots=True)
class _Link:
    link_id: str
    cost: int
    opened: float
    router_id: str | None = None
    instance: int = 0
    last_heard: float | None = None  # None: never heard, or lost since
    two_way: bool = False
    lost_reported: bool = False

    @property
    def heard(self) -> bool:
        return self.last_heard is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class HelloOutcome:
    fresh: bool  # a new neighbour (or a new identity) on this link: answer with a HELLO
    replaced: str | None  # the router id this link carried before, if it changed
    became_two_way: bool
    lost_two_way: bool


class NeighbourTable:
    """Links by id, with views of them that routing asks for often, cached.

    A neighbour is heard while its HELLOs keep coming within ``max_age``; it is two-way
    when its HELLO lists us. Only two-way links carry routes and floods.
    """

    def __init__(self, own_id: str, max_age: float) -> None:
        self._own_id = own_id
        self._max_age = max_age
        self._links: dict[str, _Link] = {}
        self._views: _Views | None = None
        self._expiry: tuple[float | None] | None = None  # cached next_expiry()

    def __contains__(self, link_id: str) -> bool:
        return link_id in self._links

    def link_ids(self) -> list[str]:
        return list(self._links)

    def router_on(self, link_id: str) -> str | None:
        """The router heard on a link, or None."""
        link = self._links.get(link_id)
        return link.router_id if link is not None and link.heard else None

    def open(self, link_id: str, cost: int, now: float) -> None:
        if link_id in self._links:
            raise ValueError(f"link {link_id!r} is already open")
        self._links[link_id] = _Link(link_id=link_id, cost=_checked(cost), opened=now)
        self._views = None
        self._expiry = None

    def set_cost(self, link_id: str, cost: int) -> bool:
        """Change a link's cost; True when it matters to routing (the link is two-way)."""
        link = self._links[link_id]
        link.cost = _checked(cost)
        self._views = None
        return link.two_way

    def close(self, link_id: str) -> NeighbourLost | None:
        link = self._links.pop(link_id, None)
        self._views = None
        self._expiry = None
        if link is None or not link.heard:
            return None
        return NeighbourLost(link_id=link_id, router_id=link.router_id, reason="link-closed")

    def hear(self, link_id: str, hello: Hello, now: float) -> HelloOutcome:
        link = self._links[link_id]
        same = link.heard and link.router_id == hello.id and link.instance == hello.instance
        replaced = link.router_id if link.heard and link.router_id != hello.id else None
        was_two_way = link.two_way
        two_way = self._own_id in hello.seen
        if not same or two_way != was_two_way:
            self._views = None
        link.router_id = hello.id
        link.instance = hello.instance
        link.last_heard = now
        self._expiry = None
        link.lost_reported = False
        link.two_way = two_way
        return HelloOutcome(
            fresh=not same,
            replaced=replaced,
            became_two_way=two_way and (not was_two_way or not same),
            lost_two_way=was_two_way and (not two_way or not same),
        )

    def newest_instance(self, router_id: str, *, except_link: str) -> int | None:
        """The newest instance of a router heard on links other than ``except_link``."""
        return max(
            (
                link.instance
                for link in self._links.values()
                if link.heard and link.router_id == router_id and link.link_id != except_link
            ),
            default=None,
        )

    def drop_older_instances(self, router_id: str, instance: int) -> list[NeighbourLost]:
        """A router restarted: links still heard from its old instance are dead, drop them."""
        lost: list[NeighbourLost] = []
        for link in self._links.values():
            if link.heard and link.router_id == router_id and link.instance < instance:
                lost.append(NeighbourLost(
                    link_id=link.link_id, router_id=router_id, reason="router-restarted"
                ))
                self._forget(link)
        return lost

    def active(self, link_id: str, when: float) -> None:
        """Bytes arrived from the link's neighbour at ``when``: a neighbour already heard
        is alive even if its HELLO still waits behind them (a busy receiver reads a
        backlog of data in order, and must not drop the link it is reading from)."""
        link = self._links.get(link_id)
        if link is not None and link.last_heard is not None and when > link.last_heard:
            link.last_heard = when
            self._expiry = None

    def expire(self, now: float) -> list[NeighbourLost]:
        """Drop neighbours silent for ``max_age``; report links never heard at all."""
        lost: list[NeighbourLost] = []
        self._expiry = None
        for link in self._links.values():
            if link.last_heard is not None:
                if now >= link.last_heard + self._max_age:  # the same sum as next_expiry
                    lost.append(NeighbourLost(
                        link_id=link.link_id, router_id=link.router_id, reason="hello-timeout"
                    ))
                    self._forget(link)
            elif not link.lost_reported and now >= link.opened + self._max_age:
                lost.append(NeighbourLost(link_id=link.link_id, router_id=None, reason="no-hello"))
                link.lost_reported = True
        return lost

    def _forget(self, link: _Link) -> None:
        """Stop counting a neighbour on this link; reported, so expiry leaves it alone."""
        link.last_heard = None
        link.two_way = False
        link.lost_reported = True
        self._views = None
        self._expiry = None

    def next_expiry(self) -> float | None:
        """When ``expire`` next has something to do, if ever."""
        if self._expiry is None:
            self._expiry = (self._compute_expiry(),)
        return self._expiry[0]

    def _compute_expiry(self) -> float | None:
        times = [
            link.last_heard + self._max_age
            if link.last_heard is not None
            else link.opened + self._max_age
            for link in self._links.values()
            if link.last_heard is not None or not link.lost_reported
        ]
        return min(times, default=None)

    # --- cached views ---------------------------------------------------------------

    def seen(self) -> tuple[str, ...]:
        """Router ids heard recently on any link, for our HELLO."""
        return self._cached().seen

    def link_state(self) -> dict[str, int]:
        """Two-way neighbour id -> lowest cost of a two-way link to it."""
        return dict(self._cached().link_state)

    def first_hop_links(self) -> dict[str, tuple[str, ...]]:
        """Two-way neighbour id -> the two-way links to it at that lowest cost, sorted."""
        return self._cached().first_hops

    def flood_links(self, except_router: str | None = None) -> list[str]:
        """One link per two-way neighbour (the first first-hop link), skipping one router."""
        return [
            link_id
            for router_id, link_id in self._cached().flood
            if router_id != except_router
        ]

    def flood_link(self, router_id: str) -> str | None:
        """The link that carries floods to a two-way neighbour, if it is one."""
        links = self._cached().first_hops.get(router_id)
        return links[0] if links else None

    def two_way_link_count(self, router_id: str) -> int:
        return sum(
            1 for link in self._links.values() if link.two_way and link.router_id == router_id
        )

    def neighbours(self) -> dict[str, Neighbour]:
        return {
            link.link_id: Neighbour(
                link_id=link.link_id,
                router_id=link.router_id,
                instance=link.instance,
                cost=link.cost,
                two_way=link.two_way,
            )
            for link in self._links.values()
            if link.router_id is not None and link.heard
        }

    def _cached(self) -> _Views:
        if self._views is None:
            self._views = _Views.build(self._links.values())
        return self._views


@dataclass(frozen=True, slots=True)
class _Views:
    seen: tuple[str, ...]
    link_state: dict[str, int]
    first_hops: dict[str, tuple[str, ...]]
    flood: tuple[tuple[str, str], ...]

    @staticmethod
    def build(links: Iterable[_Link]) -> _Views:
        seen: set[str] = set()
        best: dict[str, int] = {}
        hops: dict[str, list[str]] = {}
        for link in links:
            if link.router_id is None or not link.heard:
                continue
            seen.add(link.router_id)
            if not link.two_way:
                continue
            cost = best.get(link.router_id)
            if cost is None or link.cost < cost:
                best[link.router_id] = link.cost
                hops[link.router_id] = [link.link_id]
            elif link.cost == cost:
                hops[link.router_id].append(link.link_id)
        first_hops = {router_id: tuple(sorted(ids)) for router_id, ids in hops.items()}
        return _Views(
            seen=tuple(sorted(seen)),
            link_state=best,
            first_hops=first_hops,
            flood=tuple(sorted((r, ids[0]) for r, ids in first_hops.items())),
        )


def _checked(cost: int) -> int:
    if isinstance(cost, bool) or not isinstance(cost, int) or not 1 <= cost <= MAX_COST:
        raise ValueError(f"link cost must be an integer from 1 to {MAX_COST}, not {cost!r}")
    return cost
