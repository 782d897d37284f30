"""Status blocks: conditions, the overall Pending/Ready/Error verdict, kind-specific fields.

Pure values and functions; `status_files` writes them to the namespace folder. Timestamps are
seconds since the epoch, whole seconds (Kubernetes' `lastTransitionTime` has no fraction).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

from skupper_actors.api.meta import Endpoint

StatusValue = Literal["Pending", "Ready", "Error"]
ConditionState = Literal["True", "False", "Unknown"]

STATUS_PENDING: StatusValue = "Pending"
STATUS_READY: StatusValue = "Ready"
STATUS_ERROR: StatusValue = "Error"
STATUS_VALUES: tuple[StatusValue, ...] = (STATUS_PENDING, STATUS_READY, STATUS_ERROR)
CONDITION_STATES: tuple[ConditionState, ...] = ("True", "False", "Unknown")
#: The overall message when every required condition holds (Skupper's wording).
STATUS_OK = "OK"

CONFIGURED = "Configured"
RESOLVED = "Resolved"
RUNNING = "Running"
MATCHED = "Matched"
REDEEMED = "Redeemed"
OPERATIONAL = "Operational"
READY = "Ready"
CONDITION_TYPES = (CONFIGURED, RESOLVED, RUNNING, MATCHED, REDEEMED, OPERATIONAL, READY)


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """One observed fact; `reason` is Ready, Pending or Error by convention (as in Skupper)."""

    type: str
    status: ConditionState
    reason: str = ""
    message: str = ""
    last_transition_time: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """The block every resource carries; `status` is derived from the conditions."""

    status: StatusValue = STATUS_PENDING
    message: str = ""
    conditions: tuple[Condition, ...] = ()

    def condition(self, condition_type: str) -> Condition | None:
        """The condition of that type, if set."""
        for condition in self.conditions:
            if condition.type == condition_type:
                return condition
        return None

    def is_true(self, condition_type: str) -> bool:
        """Whether that condition is set and True."""
        condition = self.condition(condition_type)
        return condition is not None and condition.status == "True"


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkRecord:
    """A link seen in the network (Site status)."""

    name: str
    remote_site_id: str | None = None
    remote_site_name: str | None = None
    operational: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRecord:
    """A routing key and the names of its listeners and connectors at one site."""

    routing_key: str
    connectors: tuple[str, ...] = ()
    listeners: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteRecord:
    """One site of the network as this site knows it."""

    id: str
    name: str
    namespace: str | None = None
    platform: str | None = None
    version: str | None = None
    links: tuple[LinkRecord, ...] = ()
    services: tuple[ServiceRecord, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteStatus(Status):
    endpoints: tuple[Endpoint, ...] = ()
    sites_in_network: int = 0
    network: tuple[SiteRecord, ...] = ()
    #: routing keys left out of `network` (each site lists a bounded number)
    services_omitted: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerStatus(Status):
    has_matching_connector: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorStatus(Status):
    has_matching_listener: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkStatus(Status):
    remote_site_id: str | None = None
    remote_site_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterAccessStatus(Status):
    endpoints: tuple[Endpoint, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessGrantStatus(Status):
    """`code` and `ca` are what a token needs: the status file is private (0600)."""

    url: str | None = None
    code: str | None = None
    ca: str | None = None
    redemptions: int = 0
    expiration_time: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessTokenStatus(Status):
    redeemed: bool = False


AnyStatus = TypeVar("AnyStatus", bound=Status)


def set_condition(
    status: AnyStatus,
    condition_type: str,
    state: ConditionState,
    *,
    reason: str,
    message: str,
    now: float,
) -> AnyStatus:
    """`status` with that condition set; the transition time moves only if `state` changes.

    Returns `status` itself when nothing changed, so `new is old` tells whether to write.
    """
    existing = status.condition(condition_type)
    if existing is not None and existing.status == state:
        when = existing.last_transition_time
    else:
        when = float(math.floor(now))
    condition = Condition(
        type=condition_type,
        status=state,
        reason=reason,
        message=message,
        last_transition_time=when,
    )
    if existing == condition:
        return status
    if existing is None:
        conditions = (*status.conditions, condition)
    else:
        conditions = tuple(condition if c.type == condition_type else c for c in status.conditions)
    return replace(status, conditions=conditions)


def mark_ready(
    status: AnyStatus, condition_type: str, *, now: float, message: str = STATUS_OK
) -> AnyStatus:
    """Set the condition True with reason Ready."""
    return set_condition(
        status, condition_type, "True", reason=STATUS_READY, message=message, now=now
    )


def mark_pending(status: AnyStatus, condition_type: str, *, message: str, now: float) -> AnyStatus:
    """Set the condition False with reason Pending (not there yet, no fault)."""
    return set_condition(
        status, condition_type, "False", reason=STATUS_PENDING, message=message, now=now
    )


def mark_error(status: AnyStatus, condition_type: str, *, message: str, now: float) -> AnyStatus:
    """Set the condition False with reason Error (a fault the user must fix or wait out)."""
    return set_condition(
        status, condition_type, "False", reason=STATUS_ERROR, message=message, now=now
    )


def derive_status(status: AnyStatus, required: Iterable[str], *, now: float) -> AnyStatus:
    """Set the overall `status`/`message` and the Ready condition from `required` conditions.

    Error if a required condition is False with reason Error (its message wins), else Pending
    if one is missing, False or Unknown, else Ready with message "OK".
    """
    error: str | None = None
    pending: str | None = None
    for condition_type in required:
        condition = status.condition(condition_type)
        if condition is None:
            pending = pending or f"Not {condition_type}"
        elif condition.status != "True":
            if condition.reason == STATUS_ERROR:
                error = error or condition.message or f"{condition_type} failed"
            else:
                pending = pending or condition.message or f"Not {condition_type}"
    verdict: StatusValue
    if error is not None:
        verdict, message = STATUS_ERROR, error
    elif pending is not None:
        verdict, message = STATUS_PENDING, pending
    else:
        verdict, message = STATUS_READY, STATUS_OK
    state: ConditionState = "True" if verdict == STATUS_READY else "False"
    status = set_condition(status, READY, state, reason=verdict, message=message, now=now)
    if status.status == verdict and status.message == message:
        return status
    return replace(status, status=verdict, message=message)
