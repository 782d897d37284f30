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
from dataclasses import replace
from pathlib import Path
from typing import Any

from skupper_actors.api import (
    AccessGrant,
    Namespace,
    Resource,
    current_status,
    remove_status,
    with_condition,
    with_status,
    write_status,
)
from skupper_actors.api.status import (
    CONFIGURED,
    MATCHED,
    OPERATIONAL,
    REDEEMED,
    RESOLVED,
    RUNNING,
    LinkRecord,
    ServiceRecord,
    SiteRecord,
)
from skupper_actors.controller.desired import Desired
from skupper_actors.kernel import KernelError

from .grants import GrantServerInfo
from .health import run_off_loop, yield_to_loop
from .messages import GetNetworkView, GetRoutingSnapshot
from .routing import NetworkView, RoutingSnapshot

#: how long the status loop runs before it lets other greenlets (the data path) run
STATUS_SLICE = 0.003
DEFAULT_STATUS_MAX_SITES = 100
DEFAULT_STATUS_MAX_SERVICES = 100


class StatusWriter:
    """The status half of ControllerActor (a mixin: the actor holds the state)."""

    node: Any
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
        self.max_services = int(
            settings.get("status-max-services", DEFAULT_STATUS_MAX_SERVICES)
        )

    def write_statuses(self) -> None:
        self.last_status = time.monotonic()
        now = time.time()
        snapshot = self._snapshot()
        up = {info.name: info for info in snapshot.links} if snapshot else {}
        self._refresh_network()
        dp = self.node.ctx.dataplane
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
            inputs = (failure, self._inputs(resource, up, dp))
            cached = self._statuses.get(key)
            if cached is not None and cached[1] == inputs and cached[0] == resource:
                continue
            if failure is not None:
                updated = with_condition(
                    resource, CONFIGURED, "False", reason="Error", message=failure, now=now
                )
                if resource.kind == "AccessToken":
                    updated = with_condition(
                        updated, REDEEMED, "False", reason="Error", message=failure, now=now
                    )
            else:
                updated = with_condition(
                    resource, CONFIGURED, "True", reason="Ready", message="OK", now=now
                )
                updated = self._live(updated, now, up, dp)
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

    def _inputs(self, resource: Resource, links: dict[str, Any], dp: Any) -> object:
        """What a resource's status is made of besides the resource: equal inputs, same status."""
        from skupper_actors.actors.tcp import listener_address

        match resource.kind:
            case "Site":
                return (
                    self._network.version,
                    self.node.endpoints(),
                    bool(self.current.access),
                    self._access_failed(),
                )
            case "RouterAccess":
                return self.node.endpoints(resource.name)
            case "Listener":
                return dp.has_destination(resource.spec.routing_key)  # type: ignore[union-attr]
            case "Connector":
                key = resource.spec.routing_key  # type: ignore[union-attr]
                return bool(dp.remote.get(listener_address(key)))
            case "Link":
                info = links.get(resource.name)
                return None if info is None else (info.state, info.peer, info.last_error)
            case "AccessGrant":
                grant = self.node.grant_book.find(resource.name)
                return (grant, self.grant_server, self.node.advertised_host(self.current))
            case "AccessToken":
                return (self.ns.links_dir / f"Link-{resource.name}.yaml").exists()
        return None

    def _access_failed(self) -> tuple[str, str] | None:
        """The first RouterAccess that could not start (its name, why), if any."""
        failed = sorted(
            (name, why) for (kind, name), why in self.failures.items() if kind == "RouterAccess"
        )
        return failed[0] if failed else None

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

    def _live(self, resource: Resource, now: float, links: dict[str, Any], dp: Any) -> Resource:
        from skupper_actors.actors.tcp import listener_address

        def cond(res: Resource, kind: str, ok: bool, message: str) -> Resource:
            state = "True" if ok else "False"
            return with_condition(
                res, kind, state, reason="Ready" if ok else "Pending", message=message, now=now
            )

        match resource.kind:
            case "Site":
                res = cond(resource, RUNNING, True, "OK")
                access_failed = self._access_failed()
                if access_failed is not None:  # the site cannot accept links: not Ready, and why
                    name, why = access_failed
                    res = with_condition(
                        res, RESOLVED, "False", reason="Error",
                        message=f"RouterAccess {name}: {why}", now=now,
                    )
                elif self.current.access:
                    res = cond(res, RESOLVED, True, "OK")
                network = self._network
                reachable = network.sites
                status = replace(  # type: ignore[call-arg]
                    current_status(res),
                    endpoints=self.node.endpoints(),
                    sites_in_network=max(1, len(reachable) + network.omitted_sites),
                    services_omitted=network.omitted_services,
                    network=tuple(
                        SiteRecord(
                            id=view.router,
                            name=view.router,
                            links=tuple(
                                LinkRecord(
                                    name=f"{view.router}-{x.peer}",
                                    remote_site_id=x.peer,
                                    remote_site_name=x.peer,
                                    operational=True,
                                )
                                for x in view.links
                            ),
                            services=tuple(
                                ServiceRecord(
                                    routing_key=key,
                                    connectors=(view.router,) if key in view.connectors else (),
                                    listeners=(view.router,) if key in view.listeners else (),
                                )
                                for key in sorted(set(view.connectors) | set(view.listeners))
                            ),
                        )
                        for view in reachable
                    ),
                )
                return with_status(res, status)
            case "RouterAccess":
                res = cond(resource, RESOLVED, True, "OK")
                status = replace(current_status(res), endpoints=self.node.endpoints(resource.name))  # type: ignore[call-arg]
                return with_status(res, status)
            case "Listener":
                matched = dp.has_destination(resource.spec.routing_key)  # type: ignore[union-attr]
                res = cond(
                    resource, MATCHED, matched, "OK" if matched else "No matching connectors"
                )
                status = replace(current_status(res), has_matching_connector=matched)  # type: ignore[call-arg]
                return with_status(res, status)
            case "Connector":
                key = resource.spec.routing_key  # type: ignore[union-attr]
                matched = bool(dp.remote.get(listener_address(key)))
                res = cond(resource, MATCHED, matched, "OK" if matched else "No matching listeners")
                status = replace(current_status(res), has_matching_listener=matched)  # type: ignore[call-arg]
                return with_status(res, status)
            case "Link":
                info = links.get(resource.name)
                ok = info is not None and info.state == "up"
                message = (
                    "OK"
                    if ok
                    else (info.last_error if info and info.last_error else "Not operational")
                )
                res = cond(resource, OPERATIONAL, ok, message or "Not operational")
                status = replace(  # type: ignore[call-arg]
                    current_status(res),
                    remote_site_id=info.peer if ok else None,
                    remote_site_name=info.peer if ok else None,
                )
                return with_status(res, status)
            case "AccessGrant":
                return self._grant_status(resource, now)  # type: ignore[arg-type]
            case "AccessToken":
                redeemed = (self.ns.links_dir / f"Link-{resource.name}.yaml").exists()
                res = cond(resource, REDEEMED, redeemed, "OK" if redeemed else "Not redeemed yet")
                status = replace(current_status(res), redeemed=redeemed)  # type: ignore[call-arg]
                return with_status(res, status)
        return resource

    def _grant_status(self, resource: AccessGrant, now: float) -> Resource:
        grant = self.node.grant_book.find(resource.name)
        server = self.grant_server
        if grant is None or server is None:
            return with_condition(
                resource,
                RESOLVED,
                "False",
                reason="Pending",
                message="grant server starting",
                now=now,
            )
        host = self.node.advertised_host(self.current)
        res = with_condition(resource, RESOLVED, "True", reason="Ready", message="OK", now=now)
        ca = self.node.site_ca().cert_pem.decode()
        status = replace(  # type: ignore[call-arg]
            current_status(res),
            url=f"https://{host}:{server.port}/{grant.id}",
            code=grant.code,
            ca=ca,
            redemptions=grant.redemptions,
            expiration_time=grant.expires_at,
        )
        return with_status(res, status)

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
