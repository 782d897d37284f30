"""StatusWriter: the controller's status files, written only for what changed.

A resource's status is recomputed only when the resource, its failure or the live state
it shows (its *inputs*) changed, and written only when the result differs from what was
written last: a steady node writes nothing. The Site status's network list comes from
routing's bounded view (status-max-sites, status-max-services; ``servicesOmitted``
counts the rest), asked for only when its version moved. YAML runs in the hub's thread
pool and the loop over resources yields every ``STATUS_SLICE``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from skupper_actors.api import (
    Endpoint,
    Namespace,
    Resource,
    remove_status,
    with_status,
    write_status,
)
from skupper_actors.controller.desired import Desired
from skupper_actors.controller.status import computed_status, status_inputs
from skupper_actors.kernel import KernelError
from skupper_actors.management import LinkInfo, SiteView
from skupper_actors.security.grants import Grant

from ..health import run_off_loop, yield_to_loop
from ..links.routing import NetworkView, RoutingSnapshot
from ..messages import GetNetworkView, GetRoutingSnapshot
from ..tcp.dataplane import DataPlane
from .grants import GrantServerInfo
from .runningsite import RunningSite

#: how long the status loop runs before it lets other greenlets (the data path) run
STATUS_SLICE = 0.003
DEFAULT_STATUS_MAX_SITES = 100
DEFAULT_STATUS_MAX_SERVICES = 100


class StatusWriter:
    """The status half of ControllerActor (a mixin: the actor holds the state)."""

    node: RunningSite
    ns: Namespace
    log: Any
    current: Desired
    resources: dict[tuple[str, str], Resource]
    failures: dict[tuple[str, str], str]
    rejected: dict[tuple[str, str], str]
    grant_server: GrantServerInfo | None
    last_status: float

    def init_statuses(self) -> None:
        self._network = NetworkView(version=-1, sites=(), omitted_sites=0, omitted_services=0)
        # (kind, name) -> (resource, the inputs its status was computed from, the status
        # as written): a resource whose inputs did not change is not looked at again
        self._statuses: dict[tuple[str, str], tuple[Resource, object, Resource]] = {}
        self._swept = False  # stale status files of deleted resources removed since start
        settings = self.node.site.spec.settings
        self.max_sites = int(settings.get("status-max-sites", DEFAULT_STATUS_MAX_SITES))
        self.max_services = int(settings.get("status-max-services", DEFAULT_STATUS_MAX_SERVICES))

    def write_statuses(self) -> None:
        self.last_status = time.monotonic()
        now = time.time()
        snapshot = self._snapshot()
        self._refresh_network()
        live = _RoundView(
            node=self.node,
            ns=self.ns,
            current=self.current,
            view=self._network,
            links_up={info.name: info for info in snapshot.links} if snapshot else {},
            failures=self.failures,
            grant_server=self.grant_server,
            dp=self.node.ctx.dataplane,
        )
        clock = time.monotonic
        unknown = [r for key, r in self.resources.items() if key not in self._statuses]
        found = run_off_loop(_read_statuses, self.ns, unknown) if unknown else {}
        slice_ends = clock() + STATUS_SLICE
        changed: list[Resource] = []
        for key, resource in list(self.resources.items()):
            if clock() >= slice_ends:
                yield_to_loop()  # let the data path run; resumes where it was
                slice_ends = clock() + STATUS_SLICE
            failure = self.rejected.get(key) or self.failures.get(key)
            inputs = (failure, status_inputs(resource, live))
            cached = self._statuses.get(key)
            if cached is not None and cached[1] == inputs and cached[0] == resource:
                continue
            updated = computed_status(resource, failure, live, now)
            previous = cached[2] if cached is not None else found.get(key)
            if previous is not None:
                updated = self._keep_times(updated, previous)
            if updated != previous:
                changed.append(updated)
            self._statuses[key] = (resource, inputs, updated)
        if changed:
            # YAML is slow in pure Python: all of it in one go, in the thread pool
            run_off_loop(_write_statuses, self.ns, changed)
        for gone in set(self._statuses) - set(self.resources):
            del self._statuses[gone]
            remove_status(self.ns, *gone)
        if not self._swept:
            self._swept = True
            for stale in set(self._status_keys()) - set(self.resources):
                remove_status(self.ns, *stale)
        if changed:
            self.log.debug("statuses_written", count=len(changed))

    def _refresh_network(self) -> None:
        """Ask routing for the bounded network view, unless it has not changed."""
        routing = self.node.ctx.lookup("routing")
        if routing is None:
            return
        try:
            view: NetworkView | None = routing.ask(
                GetNetworkView(
                    version=self._network.version,
                    max_sites=self.max_sites,
                    max_services=self.max_services,
                ),
                timeout=2,
            )
        except KernelError:
            return
        if view is not None:
            if view.omitted_sites or view.omitted_services:
                self.log.info(
                    "site_status_truncated",
                    omitted_sites=view.omitted_sites,
                    omitted_services=view.omitted_services,
                    max_sites=self.max_sites,
                    max_services=self.max_services,
                )
            self._network = view

    def _snapshot(self) -> RoutingSnapshot | None:
        routing = self.node.ctx.lookup("routing")
        if routing is None:
            return None
        try:
            snapshot: RoutingSnapshot = routing.ask(
                GetRoutingSnapshot(addresses=False, network=False), timeout=2
            )
            return snapshot
        except KernelError:
            return None

    @staticmethod
    def _keep_times(updated: Resource, previous: Resource) -> Resource:
        """Keep each condition's transition time when its state did not change."""
        if previous.status is None or updated.status is None:
            return updated
        old = {c.type: c for c in previous.status.conditions}
        conditions = tuple(
            replace(c, last_transition_time=old[c.type].last_transition_time)
            if c.type in old and old[c.type].status == c.status
            else c
            for c in updated.status.conditions
        )
        return with_status(updated, replace(updated.status, conditions=conditions))

    def _status_keys(self) -> list[tuple[str, str]]:
        keys = []
        for path in Path(self.ns.status_dir).glob("*.yaml"):
            kind, _, name = path.stem.partition("-")
            if kind and name:
                keys.append((kind, name))
        return keys


def _read_statuses(
    ns: Namespace, resources: list[Resource]
) -> dict[tuple[str, str], Resource | None]:
    """The status files of ``resources`` as last written (None: none, or unreadable)."""
    from skupper_actors.api import read_status

    found: dict[tuple[str, str], Resource | None] = {}
    for resource in resources:
        try:
            found[resource.key] = read_status(ns, resource.kind, resource.name)
        except (OSError, ValueError):
            found[resource.key] = None
    return found


def _write_statuses(ns: Namespace, resources: list[Resource]) -> None:
    for resource in resources:
        write_status(ns, resource)


@dataclass(slots=True, kw_only=True)
class _RoundView:
    """One status round's view of the running site (answers `controller.status.Live`)."""

    node: RunningSite
    ns: Namespace
    current: Desired
    view: NetworkView
    links_up: Mapping[str, LinkInfo]
    failures: Mapping[tuple[str, str], str]
    grant_server: GrantServerInfo | None
    dp: DataPlane

    @property
    def network_version(self) -> int:
        return self.view.version

    @property
    def network(self) -> Sequence[SiteView]:
        return self.view.sites

    @property
    def omitted_sites(self) -> int:
        return self.view.omitted_sites

    @property
    def omitted_services(self) -> int:
        return self.view.omitted_services

    @property
    def has_access(self) -> bool:
        return bool(self.current.access)

    @property
    def access_failed(self) -> tuple[str, str] | None:
        failed = sorted(
            (name, why) for (kind, name), why in self.failures.items() if kind == "RouterAccess"
        )
        return failed[0] if failed else None

    @property
    def grant_server_port(self) -> int | None:
        return None if self.grant_server is None else self.grant_server.port

    @property
    def advertised_host(self) -> str:
        return self.node.advertised_host(self.current)

    def endpoints(self, access: str | None = None) -> tuple[Endpoint, ...]:
        return self.node.endpoints(access)

    def has_destination(self, routing_key: str) -> bool:
        return self.dp.has_destination(routing_key)

    def has_listener(self, routing_key: str) -> bool:
        from skupper_actors.actors.tcp.adaptor import listener_address

        return bool(self.dp.remote.get(listener_address(routing_key)))

    def link(self, name: str) -> LinkInfo | None:
        return self.links_up.get(name)

    def grant(self, name: str) -> Grant | None:
        return self.node.grant_book.find(name)

    def ca_pem(self) -> str:
        return self.node.site_ca().cert_pem.decode()

    def token_redeemed(self, name: str) -> bool:
        return (self.ns.links_dir / f"Link-{name}.yaml").exists()
