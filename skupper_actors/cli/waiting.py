"""Tell the node to reconcile, and wait for a resource's status to reach a state.

The node writes each resource's status to runtime/resources after every reconcile; a
status is only believed once its spec equals the spec just written, so a status file left
from before an update never ends the wait early.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from skupper_actors.api import (
    CONFIGURED,
    MATCHED,
    STATUS_ERROR,
    STATUS_READY,
    Namespace,
    Resource,
    ResourceError,
    read_status,
)
from skupper_actors.cli.errors import CliError, ExitCode
from skupper_actors.management import ManagementClient, ManagementError, NodeStatus, NodeUnreachable

WaitMode = Literal["configured", "ready", "none"]
WAIT_MODES: tuple[WaitMode, ...] = ("configured", "ready", "none")
DEFAULT_TIMEOUT = 60.0
POLL_INTERVAL = 0.2
#: Longest a single management request may take; a stale socket answers nothing.
REQUEST_TIMEOUT = 5.0


def management(namespace: Namespace, timeout: float = REQUEST_TIMEOUT) -> ManagementClient:
    return ManagementClient(namespace.runtime_dir, timeout=max(0.1, min(timeout, REQUEST_TIMEOUT)))


def node_status(namespace: Namespace, kind: str = "status", timeout: float = REQUEST_TIMEOUT) -> (
    NodeStatus
):
    """Ask the node; an unreachable node or an error reply is a CliError."""
    try:
        return management(namespace, timeout).request(kind)
    except NodeUnreachable as error:
        raise CliError(
            ExitCode.NODE_UNREACHABLE,
            f"the node of namespace {namespace.name!r} is not running ({error})",
        ) from None
    except ManagementError as error:
        raise CliError(ExitCode.FAILED, f"the node answered: {error}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadOutcome:
    """What a reload request found: a running node, or why there is none."""

    status: NodeStatus | None
    problem: str = ""
    #: False when nothing answered; True when the node answered, even with an error
    running: bool = False


def request_reload(namespace: Namespace, timeout: float = REQUEST_TIMEOUT) -> ReloadOutcome:
    """Ask the node to reconcile now (it also polls the folder about every second)."""
    try:
        return ReloadOutcome(status=management(namespace, timeout).request("reload"), running=True)
    except NodeUnreachable as error:
        return ReloadOutcome(status=None, problem=str(error))
    except ManagementError as error:
        # A node that answers with an error is running: it still picks the file up by polling.
        return ReloadOutcome(status=None, problem=f"the node answered: {error}", running=True)


def _state_line(status_resource: Resource | None, mode: WaitMode) -> str:
    """Where the resource stands, in the words of its condition messages."""
    if status_resource is None or status_resource.status is None:
        return "no status reported yet"
    status = status_resource.status
    if mode == "configured":
        condition = status.condition(CONFIGURED)
        if condition is not None and condition.message:
            return condition.message
    matched = status.condition(MATCHED)
    if mode == "ready" and matched is not None and matched.status != "True":
        return f"{matched.message or 'not matched'}: {_unmatched_hint(status_resource)}"
    return status.message or status.status


def _unmatched_hint(resource: Resource) -> str:
    """Why a Listener or Connector waits for Ready: its other half exists at no site yet."""
    key = getattr(getattr(resource, "spec", None), "routing_key", None) or resource.name
    other = "listener" if resource.kind == "Connector" else "connector"
    return f"waiting for a {other} with routing key {key!r} at a site of the network"


def failure_of(status_resource: Resource, mode: WaitMode) -> str | None:
    """The error message that ends the wait, if the status carries one."""
    status = status_resource.status
    if status is None:
        return None
    if mode == "configured":
        condition = status.condition(CONFIGURED)
        if condition is not None and condition.status == "False" and condition.reason == "Error":
            return condition.message or "not configured"
        return None
    if status.status == STATUS_ERROR:
        return status.message or "error"
    return None


def reached(status_resource: Resource, mode: WaitMode) -> bool:
    status = status_resource.status
    if status is None:
        return False
    if mode == "configured":
        return status.is_true(CONFIGURED)
    return status.status == STATUS_READY


def _spec(resource: Resource) -> object:
    return getattr(resource, "spec", None)


def wait_for_status(
    namespace: Namespace,
    resource: Resource,
    mode: WaitMode,
    timeout: float,
    *,
    also: Callable[[Resource], bool] | None = None,
    progress: Callable[[str], None] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Resource:
    """Poll the resource's status file until it reaches `mode` (and `also` holds).

    Returns the resource as the node reported it. Raises CliError FAILED with the
    condition's message on an error, TIMEOUT with the latest message after `timeout`.
    `progress` is told where the resource stands at every poll.
    """
    label = f"{resource.kind} {resource.name!r}"
    deadline = monotonic() + timeout
    current: Resource | None = None
    stale = False
    while True:
        try:
            found = read_status(namespace, resource.kind, resource.name)
        except ResourceError:
            found = None  # a status file from another version of the node: wait for a new one
        stale = found is not None and _spec(found) != _spec(resource)
        current = None if stale else found
        if current is not None:
            failure = failure_of(current, mode)
            if failure is not None:
                raise CliError(ExitCode.FAILED, f"{label}: {failure}")
            if reached(current, mode) and (also is None or also(current)):
                return current
        state = "the node has not reported the change yet" if stale else _state_line(current, mode)
        if progress is not None:
            progress(state)
        if monotonic() >= deadline:
            goal = "configured" if mode == "configured" else "ready"
            raise CliError(
                ExitCode.TIMEOUT,
                f"{label} not {goal} after {timeout:g}s: {state}",
            )
        sleep(POLL_INTERVAL)
