"""The topology launcher: certificates, site configs, traffic servers, proxies and nodes.

In proxy mode every link runs through a :class:`FaultProxy` on 127.0.0.1, under one
supervisor; in namespace mode sites live in namespaces joined by veth pairs.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Set
from functools import partial
from pathlib import Path
from typing import Any

import gevent

from skupper_actors.api import HOME_ENV
from skupper_actors.kernel import ActorRef, ChildSpec, Registry, Supervisor, SupervisorRef, spawn
from skupper_actors.management import ManagementError
from skupper_actors.security import generate_dev_mesh
from skupper_actors.siteconfig import (
    ConnectorConfig,
    InterRouterConfig,
    LinkConfig,
    ListenerConfig,
    RoutingConfig,
    SiteConfig,
    TlsConfig,
    dump_site_config,
)

from .ledger import Ledger
from .namespace_setup import NamespaceSites
from .netns import NetnsFabric, check_netns
from .nodes import NodeFailed, NodeProcess
from .proxy import FaultProxy
from .scenario import LinkSpec, Mode, Scenario, Setup
from .traffic_clients import Endpoint
from .traffic_server import TrafficServer

LOOPBACK = "127.0.0.1"
# Below Linux's ephemeral range (32768-60999), so a port stays ours across node restarts;
# apart from the integration tests' range (20000+).
_ports = itertools.count(10000 + (os.getpid() % 240) * 40)


def free_port(host: str = LOOPBACK) -> int:
    for port in _ports:
        if port > 19999:
            break
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 10000-19999")


class Topology:
    """Everything one run starts; ``close`` stops it all, in reverse order."""

    def __init__(self, scenario: Scenario, folder: Path, *, seed: int) -> None:
        self.scenario = scenario
        self.folder = folder
        self.seed = seed
        self.sites = list(scenario.site_names())
        # ZeroMQ ipc paths are limited to ~107 bytes: keep runtime folders short
        self.runtime_root = Path(tempfile.mkdtemp(prefix="skc-"))
        self.fabric = NetnsFabric(self.sites, scenario.links) if self.netns else None
        self.nodes: dict[str, NodeProcess] = {}
        self.inter_router_ports: dict[str, int] = {}
        self.servers: dict[tuple[str, str], TrafficServer] = {}
        self.listener_ports: dict[tuple[str, str], int] = {}
        self.proxy_ports: dict[str, int] = {}
        self.registry = Registry()
        self.proxies: SupervisorRef | None = None
        self.replay_targets: set[str] = set()
        #: namespace setup: the sites' folders (under the short runtime root)
        self.declared = (
            NamespaceSites(scenario, self.runtime_root)
            if scenario.setup is Setup.NAMESPACE
            else None
        )

    @property
    def netns(self) -> bool:
        return self.scenario.mode is Mode.NETNS

    # -- set-up -----------------------------------------------------------------------------
    def prepare(
        self, ledger: Ledger, now: Callable[[], float], replay_targets: Set[str] = frozenset()
    ) -> None:
        """Certificates, namespaces, servers, proxies and config files; no node runs yet."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.replay_targets = set(replay_targets)
        if self.fabric is not None:
            check_netns()
            self.fabric.setup()
        sans = ["localhost", LOOPBACK, *(self.fabric.link_target_ips() if self.fabric else [])]
        certs = None
        if not self.scenario.plaintext and self.declared is None:
            certs = generate_dev_mesh(self.folder / "certs", self.sites, sans=sans)
        for site in self.sites:
            self.inter_router_ports[site] = free_port(LOOPBACK)
        for service in self.scenario.services:
            for site in service.connectors:
                host = "0.0.0.0" if self.fabric else LOOPBACK
                server = TrafficServer(
                    ledger,
                    now,
                    host=host,
                    idle_timeout=self.scenario.traffic.idle_timeout,
                    site=site,
                )
                self.servers[(service.name, site)] = server.start()
            for site in service.listeners:
                self.listener_ports[(service.name, site)] = free_port(LOOPBACK)
        if not self.netns:
            self._start_proxies()
        for site in self.sites:
            if self.declared is not None:
                self._declare(self.declared, site)
                continue
            config = self._site_config(site, certs.site_folder(site) if certs else None)
            path = self.folder / f"{site}.yaml"
            path.write_text(dump_site_config(config))
            self.nodes[site] = NodeProcess(
                site=site,
                args=("-c", str(path)),
                runtime_dir=config.runtime_dir,
                log_path=self.folder / f"{site}.log",
                prefix=self.fabric.command_prefix(site) if self.fabric else (),
            )

    def _declare(self, declared: NamespaceSites, site: str) -> None:
        """Namespace setup: the site as resources in its namespace folder."""
        declared.write_site(
            site,
            inter_router_port=self.inter_router_ports[site],
            grant_port=free_port(LOOPBACK),
            listeners={
                service: port
                for (service, where), port in self.listener_ports.items()
                if where == site
            },
            connectors={
                service: (LOOPBACK, server.port)
                for (service, where), server in self.servers.items()
                if where == site
            },
            replay_target=site in self.replay_targets,
        )
        self.nodes[site] = NodeProcess(
            site=site,
            args=("-n", site),
            runtime_dir=declared.runtime_dir(site),
            log_path=self.folder / f"{site}.log",
            env={HOME_ENV: str(self.runtime_root)},
        )

    def _start_proxies(self) -> None:
        specs = []
        for index, link in enumerate(self.scenario.links):
            port = free_port(LOOPBACK)
            self.proxy_ports[link.name] = port
            start = partial(
                FaultProxy,
                link=link.name,
                listen_host=LOOPBACK,
                listen_port=port,
                target_host=LOOPBACK,
                target_port=self.inter_router_ports[link.target],
                seed=self.seed * 7919 + index,
            )
            specs.append(ChildSpec(id=link.name, start=start, registry=self.registry))
        supervisor = Supervisor(specs, intensity=10, period=10.0)
        spawn(supervisor, name="chaos-proxies")
        self.proxies = supervisor.ref

    def _site_config(self, site: str, credentials: Path | None) -> SiteConfig:
        fabric = self.fabric
        tls = None
        if credentials is not None:
            tls = TlsConfig(
                cert=credentials / "tls.crt", key=credentials / "tls.key", ca=credentials / "ca.crt"
            )
        links = []
        for link in self.scenario.links:
            if link.source != site:
                continue
            if fabric is not None:
                host, port = fabric.link_target_ip(link), self.inter_router_ports[link.target]
            else:
                host, port = LOOPBACK, self.proxy_ports[link.name]
            links.append(LinkConfig(name=f"to-{link.target}", host=host, port=port, cost=link.cost))
        listen_host = fabric.site_ip(site) if fabric else LOOPBACK
        listeners, connectors = [], []
        for service in self.scenario.services:
            if site in service.listeners:
                port = self.listener_ports[(service.name, site)]
                listeners.append(
                    ListenerConfig(
                        name=service.name, routing_key=service.name, host=listen_host, port=port
                    )
                )
            if site in service.connectors:
                server = self.servers[(service.name, site)]
                host = fabric.harness_ip(site) if fabric else LOOPBACK
                connectors.append(
                    ConnectorConfig(
                        name=service.name, routing_key=service.name, host=host, port=server.port
                    )
                )
        routing = self.scenario.routing
        return SiteConfig(
            site=site,
            runtime_dir=self.runtime_root / site,
            inter_router=InterRouterConfig(
                host="0.0.0.0" if fabric else LOOPBACK,
                port=self.inter_router_ports[site],
                tls=tls,
                plaintext=tls is None,
            ),
            links=tuple(links),
            routing=RoutingConfig(
                hello_interval=routing.hello_interval, hello_max_age=routing.hello_max_age
            ),
            listeners=tuple(listeners),
            connectors=tuple(connectors),
        )

    def start_nodes(self, timeout: float = 30.0) -> None:
        for node in self.nodes.values():
            node.start()
        for node in self.nodes.values():
            node.wait_ready(timeout)
        declared = self.declared
        if declared is not None:
            for link in self.scenario.links:
                declared.link(
                    link.source, link.target, cost=link.cost, port=self.proxy_ports[link.name]
                )
            for site in sorted(self.replay_targets):
                declared.use_replay_grant(site)

    def wait_converged(self, timeout: float = 30.0) -> float:
        """Wait until every site routes to every site it can reach at the least cost the
        scenario's links allow, and listeners match.

        Reachable is not enough: a route the long way round, before the direct link is
        up, would carry connections opened at once on that path for their whole life,
        and a fault on the direct link would then miss them.
        """
        started = time.monotonic()
        reachable = _least_costs(self.sites, self.scenario.links)
        last = ""
        while time.monotonic() - started < timeout:
            try:
                missing = self._unconverged(reachable)
            except (ManagementError, OSError) as error:
                missing = str(error)
            if not missing:
                return time.monotonic() - started
            last = missing
            gevent.sleep(0.1)
        raise NodeFailed(f"the topology did not converge within {timeout:g} s: {last}")

    def _unconverged(self, reachable: dict[str, dict[str, int]]) -> str:
        for site, node in self.nodes.items():
            status = node.status()
            routed = {route.router: route.cost for route in status.routers}
            if routed != reachable[site]:
                return f"{site} routes to {dict(sorted(routed.items()))}"
            for adaptor in status.adaptors:
                if adaptor.kind == "listener" and not adaptor.matched:
                    return f"listener {adaptor.name} at {site} has no connector yet"
        return ""

    # -- during the run ---------------------------------------------------------------------
    def endpoints(self) -> dict[str, list[Endpoint]]:
        result: dict[str, list[Endpoint]] = {}
        for (service, site), port in self.listener_ports.items():
            host = self.fabric.site_ip(site) if self.fabric else LOOPBACK
            result.setdefault(service, []).append(
                Endpoint(service=service, site=site, host=host, port=port)
            )
        return result

    def proxy(self, link: str) -> ActorRef[Any] | None:
        return self.registry.lookup(link)

    def inter_router_address(self, site: str) -> tuple[str, int]:
        host = self.fabric.site_ip(site) if self.fabric else LOOPBACK
        return host, self.inter_router_ports[site]

    def set_link(self, link: LinkSpec, up: bool) -> None:
        assert self.fabric is not None
        self.fabric.set_link(link, up)

    # -- tear-down --------------------------------------------------------------------------
    def close(self) -> dict[str, int | None]:
        """Stop nodes (SIGTERM, then SIGKILL), proxies, servers, namespaces; exit codes."""
        codes: dict[str, int | None] = {}
        stoppers = {
            site: gevent.spawn(node.terminate, 10.0)
            for site, node in self.nodes.items()
            if node.proc is not None
        }
        gevent.joinall(list(stoppers.values()), timeout=30)
        for site, greenlet in stoppers.items():
            codes[site] = greenlet.value
        if self.proxies is not None:
            self.proxies.stop(10)
            self.proxies = None
        for server in self.servers.values():
            server.stop()
        if self.fabric is not None:
            self.fabric.teardown()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.runtime_root)
        return codes


def _least_costs(sites: list[str], links: tuple[LinkSpec, ...]) -> dict[str, dict[str, int]]:
    """For each site, every other site it can reach over the scenario's links, at the
    least total cost (links count both ways, at their cost)."""
    neighbours: dict[str, dict[str, int]] = {site: {} for site in sites}
    for link in links:
        for a, b in ((link.source, link.target), (link.target, link.source)):
            neighbours[a][b] = min(link.cost, neighbours[a].get(b, link.cost))
    result: dict[str, dict[str, int]] = {}
    for site in sites:
        costs = {site: 0}
        todo = [(0, site)]
        while todo:
            cost, here = heapq.heappop(todo)
            if cost > costs[here]:
                continue
            for peer, step in neighbours[here].items():
                if peer not in costs or cost + step < costs[peer]:
                    costs[peer] = cost + step
                    heapq.heappush(todo, (cost + step, peer))
        del costs[site]
        result[site] = costs
    return result
