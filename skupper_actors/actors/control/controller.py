"""ControllerActor: reconciles the namespace's resources into the running router.

It reads `input/resources` (and the links that redeemed tokens made, `runtime/links`)
every second and on a `reload`, keeps the last good state of any file that fails to
load, and turns differences into children started or stopped under the router's
`access`, `links` and `adaptors` supervisors: adding a Listener touches nothing else;
deleting a Connector ends only its own connections; a Link's new cost reaches routing
without dropping the connection. Then it writes the statuses that changed (see
``statuses.StatusWriter``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import gevent

from skupper_actors.api import (
    Namespace,
    Resource,
    dump_resources,
    load_resources,
    resource_files,
)
from skupper_actors.controller.applycheck import (
    RESERVED_CREDENTIALS,
    apply_problem,
    is_resource_name,
)
from skupper_actors.controller.desired import Desired, Plan, desired_state, plan
from skupper_actors.kernel import (
    Actor,
    ActorRef,
    ChildSpec,
    KernelError,
    StartFailed,
    SupervisorRef,
)
from skupper_actors.security.grants import GrantBookError
from skupper_actors.security.redeem import TokenRefused, redeem

from ..health import run_off_loop
from ..messages import Reload, SetCost
from .grants import EnableGrants, GrantServerInfo
from .runningsite import RunningSite
from .statuses import StatusWriter

POLL_INTERVAL = 1.0
STATUS_INTERVAL = 2.0
#: a resource that did not start (its port taken, say) is tried again after this long,
#: doubling after each failure up to ``RETRY_MAX`` (the first try after a change is at once)
RETRY_FIRST = 2.0
RETRY_MAX = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class _Poll:
    pass


class ControllerActor(StatusWriter, Actor):
    def __init__(self, node: RunningSite) -> None:
        super().__init__()
        self.node = node
        self.ns: Namespace = node.ns
        # what the router runs survives a restart of this actor (it is kept on the node)
        self.current: Desired = node.desired
        self.resources: dict[tuple[str, str], Resource] = {}
        self.failures: dict[tuple[str, str], str] = {}  # (kind, name) -> why it is not running
        self.rejected: dict[tuple[str, str], str] = {}  # (kind, name) -> why it cannot apply
        self._step_failures = 0  # OSErrors in a row (see _guarded)
        self._retry_delay = RETRY_FIRST
        self._retry_at = 0.0
        self.fingerprint: tuple[tuple[str, float, int], ...] = ()
        self.last_status = 0.0
        self.grant_server: GrantServerInfo | None = None
        self.group_refs: dict[str, ActorRef | None] = node.group_refs
        self.init_statuses()

    def on_start(self) -> None:
        if self._groups_restarted():
            self.current = Desired(site=self.current.site)
        # the first reconcile is part of starting: when management answers, every
        # listener and access point of the site is bound and every status written
        self._guarded(self.reconcile)
        self.send_after(POLL_INTERVAL, _Poll())

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run a reconcile or status step; an OSError (out of descriptors, a full disk)
        keeps the last good state and is tried again at the next poll."""
        try:
            step()
        except OSError as error:
            self.fingerprint = ()  # read everything again next time
            if self._step_failures == 0:  # once per episode, not once a second
                self.log.error(
                    "controller_step_failed",
                    step=step.__name__,
                    error=error.strerror or str(error),
                    errno=error.errno,
                )
            self._step_failures += 1
            return
        if self._step_failures:
            self.log.info("controller_step_recovered", failed_attempts=self._step_failures)
            self._step_failures = 0

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
            self._guarded(self._poll)
            self.send_after(POLL_INTERVAL, _Poll())
            return None
        if isinstance(message, Reload):
            self._guarded(self.reconcile)
            return None
        return super().on_receive(message)

    def _poll(self) -> None:
        if self._groups_restarted():
            self.log.warning("router_restarted_under_controller")
            self.current = Desired(site=self.current.site)
            self.reconcile()
        elif self._fingerprint() != self.fingerprint:
            self.reconcile()
        elif self.failures and time.monotonic() >= self._retry_at:
            self._retry_failed()
        elif time.monotonic() - self.last_status >= STATUS_INTERVAL:
            self.write_statuses()

    def _retry_failed(self) -> None:
        """Start again what did not start (a Listener whose port another process held):
        it runs once the cause is gone, without an edit of its resource."""
        groups = {kind: group for group, kind in _KIND.items()}
        retried = [(groups[kind], name) for kind, name in self.failures if kind in groups]
        for group, name in retried:
            if self._start(group, name, self.current):
                self.log.info("resource_started_on_retry", kind=_KIND[group], name=name)
        if self.failures:
            self._retry_at = time.monotonic() + self._retry_delay
            self._retry_delay = min(RETRY_MAX, self._retry_delay * 2)
        self.write_statuses()

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
        rejected = {r.key: p for r in resources if (p := apply_problem(r)) is not None}
        for (kind, name), problem in sorted(rejected.items()):
            if self.rejected.get((kind, name)) != problem:
                self.log.error("resource_rejected", kind=kind, name=name, problem=problem)
        self.rejected = rejected
        desired = desired_state(r for r in resources if r.key not in rejected)
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
            self._start(group, name, desired)
        if self.failures:
            self._retry_delay = RETRY_FIRST
            self._retry_at = time.monotonic() + RETRY_FIRST
        for name, cost in steps.cost_changes:
            link = self.node.ctx.lookup(self.node.child_id("links", name))
            if link is not None:
                link.tell(SetCost(cost=cost))

    def _start(self, group: str, name: str, desired: Desired) -> bool:
        """Start one resource's child; on failure, say why in ``failures`` (its status)."""
        supervisor = self._supervisor(group)
        key = (_KIND[group], name)
        if supervisor is None:
            self.failures[key] = "the router is restarting"
            return False
        try:
            spec: ChildSpec = self.node.child_spec(group, name, desired)
            supervisor.start_child(spec)
        except (StartFailed, ValueError, KernelError, OSError) as error:
            reason = getattr(error, "reason", error)
            why = _where(group, name, desired) + str(reason)
            if self.failures.get(key) != why:
                self.log.error("resource_not_started", kind=key[0], name=name, error=str(reason))
            self.failures[key] = why
            return False
        self.failures.pop(key, None)
        return True

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
            # the name comes from a file name: never '' (the whole certs folder), '..',
            # or the site's own CA or server credentials
            if is_resource_name(token) and token not in RESERVED_CREDENTIALS:
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


def _where(group: str, name: str, desired: Desired) -> str:
    """ "host:port: " for an access point or listener that could not start (the bind's
    error names no address)."""
    point = (
        desired.access.get(name)
        if group == "access"
        else (desired.listeners.get(name) if group == "listeners" else None)
    )
    return f"{point.host}:{point.port}: " if point is not None else ""


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
    "amqp": "RouterAccess",
}
