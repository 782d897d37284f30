"""ControllerActor: reconciles the namespace's resources into the running router.

It reads `input/resources` (and the links that redeemed tokens made, `runtime/links`)
every second and on a `reload`, keeps the last good state of any file that fails to
load, and turns differences into children started or stopped under the router's
`access`, `links` and `adaptors` supervisors: adding a Listener touches nothing else;
deleting a Connector ends only its own connections; a Link's new cost reaches routing
without dropping the connection. Then it writes the status of the resources whose
inputs changed (their resource, failure, or the live state the status shows), and only
when the status itself changed: a steady node writes nothing. The network list in the
Site status is bounded (status-max-sites, status-max-services) and rebuilt only when
routing's network view changed; the loop over resources yields every few milliseconds.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gevent

from skupper_actors.api import (
    AccessGrant,
    Namespace,
    Resource,
    current_status,
    dump_resources,
    load_resources,
    remove_status,
    resource_files,
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
from skupper_actors.controller.desired import Desired, Plan, desired_state, plan
from skupper_actors.controller.tokens import TokenRefused, redeem
from skupper_actors.kernel import Actor, ChildSpec, KernelError, StartFailed, SupervisorRef
from skupper_actors.security.grants import GrantBookError

from .grants import EnableGrants, GrantServerInfo
from .health import run_off_loop, yield_to_loop
from .messages import GetNetworkView, GetRoutingSnapshot, Reload, SetCost
from .routing import NetworkView, RoutingSnapshot

POLL_INTERVAL = 1.0
STATUS_INTERVAL = 2.0
#: how long the status loop runs before it lets other greenlets (the data path) run
STATUS_SLICE = 0.003
DEFAULT_STATUS_MAX_SITES = 100
DEFAULT_STATUS_MAX_SERVICES = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class _Poll:
    pass


class ControllerActor(Actor):
    def __init__(self, node: Any) -> None:
        super().__init__()
        self.node = node  # skupper_actors.node.NamespaceNode (children factories, ns, book)
        self.ns: Namespace = node.ns
        # what the router runs survives a restart of this actor (it is kept on the node)
        self.current: Desired = node.desired
        self.resources: dict[tuple[str, str], Resource] = {}
        self.failures: dict[tuple[str, str], str] = {}  # (kind, name) -> why it is not running
        self.fingerprint: tuple[tuple[str, float, int], ...] = ()
        self.last_status = 0.0
        self.grant_server: GrantServerInfo | None = None
        self.group_refs: dict[str, Any] = node.group_refs
        self._network = NetworkView(version=-1, sites=(), omitted_sites=0, omitted_services=0)
        # (kind, name) -> (resource, the inputs its status was computed from, the status
        # as written): a resource whose inputs did not change is not looked at again
        self._statuses: dict[tuple[str, str], tuple[Resource, object, Resource]] = {}
        self._swept = False  # stale status files of deleted resources removed since start
        settings = node.site.spec.settings
        self.max_sites = int(settings.get("status-max-sites", DEFAULT_STATUS_MAX_SITES))
        self.max_services = int(
            settings.get("status-max-services", DEFAULT_STATUS_MAX_SERVICES)
        )

    def on_start(self) -> None:
        if self._groups_restarted():
            self.current = Desired(site=self.current.site)
        # the first reconcile is a message, not part of starting: with a thousand
        # resources it takes seconds, and management (started next) must answer meanwhile
        self.ref.tell(Reload())
        self.send_after(POLL_INTERVAL, _Poll())

    def _groups_restarted(self) -> bool:
        """True if a group supervisor is not the one we filled (it was restarted)."""
        refs = {g: self.node.ctx.lookup(self.node.group_supervisor(g)) for g in _KIND}
        restarted = any(
            self.group_refs.get(g) is not None and refs[g] is not self.group_refs[g] for g in refs
        )
        self.group_refs = self.node.group_refs = refs
        return restarted

    def on_receive(self, message: object) -> Any:
        if isinstance(message, _Poll):
            if self._groups_restarted():
                self.log.warning("router_restarted_under_controller")
                self.current = Desired(site=self.current.site)
                self.reconcile()
            elif self._fingerprint() != self.fingerprint:
                self.reconcile()
            elif time.monotonic() - self.last_status >= STATUS_INTERVAL:
                self.write_statuses()
            self.send_after(POLL_INTERVAL, _Poll())
            return None
        if isinstance(message, Reload):
            self.reconcile()
            return None
        return super().on_receive(message)

    # -- reading ---------------------------------------------------------------------------
    def _fingerprint(self) -> tuple[tuple[str, float, int], ...]:
        # a stat per resource file, a thousand files every second: not on the loop
        return run_off_loop(self._stat_files)

    def _stat_files(self) -> tuple[tuple[str, float, int], ...]:
        found = []
        for folder in (self.ns.resources_dir, self.ns.links_dir):
            for path in resource_files(folder) if folder.exists() else []:
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                found.append((str(path), stat.st_mtime, stat.st_size))
        return tuple(sorted(found))

    def _load(self) -> list[Resource]:
        self.fingerprint = self._fingerprint()
        result = run_off_loop(load_resources, self.ns.resources_dir)
        for problem in result.problems:
            self.log.error("resource_invalid", problem=str(problem))
        # a file that fails keeps its last good resources: a typo never tears a site down
        self.node.last_good = result.merged_with(self.node.last_good)
        resources = [r for found in self.node.last_good.values() for r in found]
        if self.ns.links_dir.exists():
            generated = run_off_loop(load_resources, self.ns.links_dir)
            for problem in generated.problems:
                self.log.error("resource_invalid", problem=str(problem))
            resources.extend(generated.all_resources)
        return resources

    # -- reconciling -----------------------------------------------------------------------------
    def reconcile(self) -> None:
        resources = self._load()
        self.resources = {r.key: r for r in resources}
        desired = desired_state(resources)
        for problem in desired.problems:
            self.log.error("resources_inconsistent", problem=problem)
        site = desired.site
        if site is None:
            self.log.error("site_missing", namespace=self.ns.name)
            desired = replace(desired, site=self.current.site)
        elif site.name != self.node.site_name:
            self.failures[site.key] = (
                f"renaming site {self.node.site_name} to {site.name} is not supported: "
                "delete the site and create it again"
            )
            self.log.error("site_rename_refused", running=self.node.site_name, wanted=site.name)
        steps = plan(self.current, desired)
        if not steps.empty:
            self.log.info(
                "reconciling",
                stop=[f"{g}/{n}" for g, n in steps.stop],
                start=[f"{g}/{n}" for g, n in steps.start],
                cost=dict(steps.cost_changes),
            )
        self._apply(steps, desired)
        self.current = self.node.desired = desired
        self._grants(desired)
        self._forget_tokens(desired)
        self._tokens(desired)
        self._swept = False
        self.write_statuses()

    def _apply(self, steps: Plan, desired: Desired) -> None:
        for group, name in steps.stop:
            self.failures.pop((_KIND[group], name), None)
            supervisor = self._supervisor(group)
            if supervisor is not None:
                supervisor.terminate_child(self.node.child_id(group, name))
        for group, name in steps.start:
            supervisor = self._supervisor(group)
            key = (_KIND[group], name)
            if supervisor is None:
                self.failures[key] = "the router is restarting"
                continue
            try:
                spec: ChildSpec = self.node.child_spec(group, name, desired)
                supervisor.start_child(spec)
                self.failures.pop(key, None)
            except (StartFailed, ValueError, KernelError) as error:
                reason = getattr(error, "reason", error)
                self.failures[key] = str(reason)
                self.log.error("resource_not_started", kind=key[0], name=name, error=str(reason))
        for name, cost in steps.cost_changes:
            link = self.node.ctx.lookup(self.node.child_id("links", name))
            if link is not None:
                link.tell(SetCost(cost=cost))

    def _supervisor(self, group: str) -> SupervisorRef | None:
        ref = self.node.ctx.lookup(self.node.group_supervisor(group))
        return ref if isinstance(ref, SupervisorRef) else None

    # -- grants and tokens -------------------------------------------------------------------------
    def _grants(self, desired: Desired) -> None:
        book = self.node.grant_book
        now = time.time()
        wanted = set(desired.grants)
        for grant in book.list():
            if grant.name not in wanted:
                book.remove(grant.name)
        if not wanted:
            return
        server = self.node.ctx.lookup("grants")
        if server is None:
            return
        try:
            self.grant_server = server.ask(EnableGrants(), timeout=5)
        except KernelError as error:
            self.log.error("grant_server_unavailable", error=str(error))
            return
        for name, resource in desired.grants.items():
            if book.find(name) is None:
                try:
                    book.issue(
                        name,
                        redemptions_allowed=resource.spec.redemptions_allowed,
                        expiration_window=resource.spec.expiration_window,
                        now=now,
                        code=resource.spec.code,
                    )
                except (GrantBookError, ValueError) as error:
                    self.failures[resource.key] = str(error)

    def _forget_tokens(self, desired: Desired) -> None:
        """A token deleted from input takes its generated link and credentials with it."""
        if not self.ns.links_dir.exists():
            return
        for link_file in self.ns.links_dir.glob("Link-*.yaml"):
            token = link_file.stem[len("Link-") :]
            if token in desired.tokens:
                continue
            link_file.unlink()
            shutil.rmtree(self.ns.runtime_certs_dir / token, ignore_errors=True)
            self.log.info("token_forgotten", token=token)
            self.fingerprint = ()

    def _tokens(self, desired: Desired) -> None:
        for name, token in desired.tokens.items():
            link_file = self.ns.links_dir / f"Link-{name}.yaml"
            if link_file.exists():
                continue
            # http.client blocks: run it in the hub's thread pool (which would print a
            # traceback for an exception: the refusal comes back as a value)
            result = gevent.get_hub().threadpool.apply(_redeem, (token, self.node.site_name))
            if isinstance(result, TokenRefused):
                refused = result
                self.failures[token.key] = str(refused)
                self.log.warning("token_redemption_failed", token=name, error=str(refused))
                continue
            folder = self.ns.runtime_certs_dir / name
            result.credentials.save(folder)
            links = [
                replace(
                    link,
                    metadata=replace(link.metadata, name=name if i == 0 else f"{name}-{i}"),
                    spec=replace(link.spec, cost=token.spec.link_cost, tls_credentials=name),
                )
                for i, link in enumerate(result.links)
            ]
            self.ns.links_dir.mkdir(parents=True, exist_ok=True)
            tmp = link_file.with_suffix(".tmp")
            tmp.write_text(dump_resources(links))
            os.replace(tmp, link_file)
            self.failures.pop(token.key, None)
            self.log.info("token_redeemed", token=name, remote_site=result.site)
            self.fingerprint = ()  # the new link file: reconcile again at the next poll

    # -- status ------------------------------------------------------------------------------------
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
            failure = self.failures.get(key)
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
                return (self._network.version, self.node.endpoints(), bool(self.current.access))
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
                if self.current.access:
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


def _redeem(token: Any, site: str) -> Any:
    try:
        return redeem(token, site)
    except TokenRefused as refused:
        return refused


_KIND = {
    "access": "RouterAccess",
    "links": "Link",
    "listeners": "Listener",
    "connectors": "Connector",
}
