"""The sampler: node liveness and memory, traffic totals, and each site's routes over time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent

from skupper_actors.management import ManagementError

from .faults import FaultInjector
from .ledger import Ledger
from .nodes import NodeProcess
from .topology import Topology

Routes = dict[str, tuple[int, tuple[str, ...]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    at: float
    bytes_verified: int
    errors: int
    open_connections: int
    rss_kib: dict[str, int | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteChange:
    """A site's routing table as first seen at ``at`` (router -> (cost, next hops))."""

    at: float
    site: str
    routes: Routes

    def to_json(self) -> dict[str, object]:
        return {
            "at": round(self.at, 3),
            "site": self.site,
            "routes": {router: [cost, list(hops)] for router, (cost, hops) in self.routes.items()},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class UnexpectedExit:
    at: float
    site: str
    code: int | None
    log_tail: str


@dataclass(slots=True, kw_only=True)
class Observations:
    samples: list[Sample] = field(default_factory=list)
    route_changes: list[RouteChange] = field(default_factory=list)
    exits: list[UnexpectedExit] = field(default_factory=list)
    peak_rss_kib: dict[str, int] = field(default_factory=dict)
    #: each node's open TCP connections (its listeners' and connectors'), when they changed:
    #: what is still open after the drain was left behind (no client holds one any more)
    tcp_active: dict[str, list[tuple[float, int]]] = field(default_factory=dict)


class Monitor:
    """Samples every ``interval`` seconds in its own greenlet until stopped."""

    def __init__(
        self,
        topology: Topology,
        ledger: Ledger,
        injector: FaultInjector,
        now: Callable[[], float],
        *,
        interval: float = 0.25,
    ) -> None:
        self.topology = topology
        self.ledger = ledger
        self.injector = injector
        self.now = now
        self.interval = interval
        self.observed = Observations()
        self._routes: dict[str, Routes] = {}
        self._exit_seen: dict[str, int] = {}
        self._greenlet: gevent.Greenlet[[], None] | None = None
        self._route_jobs: dict[str, gevent.Greenlet[Any, Any]] = {}

    def start(self) -> None:
        self.sample()
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill()
            self._greenlet = None
        self.sample()
        jobs = list(self._route_jobs.values())
        gevent.joinall(jobs, timeout=1.0)
        gevent.killall(jobs, block=False)

    def _run(self) -> None:
        while True:
            gevent.sleep(self.interval)
            self.sample()

    def sample(self) -> None:
        now = self.now()
        rss: dict[str, int | None] = {}
        for site, node in self.topology.nodes.items():
            code = node.poll()
            if code is None:
                kib = node.rss_kib()
                rss[site] = kib
                if kib is not None:
                    self.observed.peak_rss_kib[site] = max(
                        kib, self.observed.peak_rss_kib.get(site, 0)
                    )
            else:
                rss[site] = None
                if site not in self.injector.intended_down and (
                    self._exit_seen.get(site) != node.starts
                ):
                    self._exit_seen[site] = node.starts
                    self.observed.exits.append(
                        UnexpectedExit(at=now, site=site, code=code, log_tail=node.log_tail())
                    )
        self.observed.samples.append(
            Sample(
                at=now,
                bytes_verified=self.ledger.bytes_verified,
                errors=self.ledger.errors,
                open_connections=self.ledger.open_connections,
                rss_kib=rss,
            )
        )
        self._poll_routes()

    def _poll_routes(self) -> None:
        """Ask every live node for its routes, each in its own greenlet: a node that is
        slow to answer (killed a moment ago) delays neither the samples nor the others."""
        for site, node in self.topology.nodes.items():
            job = self._route_jobs.get(site)
            if node.alive and not node.stopped and (job is None or job.dead):
                self._route_jobs[site] = gevent.spawn(self._poll_site, site, node)

    def _poll_site(self, site: str, node: NodeProcess) -> None:
        try:
            status = node.status(0.8)
        except (ManagementError, OSError):
            return
        # stamped when the answer arrives, not when the sampling round began
        routes = {route.router: (route.cost, tuple(route.next_hops)) for route in status.routers}
        if routes != self._routes.get(site):
            self._routes[site] = routes
            self.observed.route_changes.append(RouteChange(at=self.now(), site=site, routes=routes))
        active = sum(adaptor.active for adaptor in status.adaptors)
        series = self.observed.tcp_active.setdefault(site, [])
        if not series or series[-1][1] != active:
            series.append((self.now(), active))
