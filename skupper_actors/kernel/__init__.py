"""The actor runtime: actors, refs, monitors, supervisors, clocks. Knows nothing of networks."""

from __future__ import annotations

from .actor import (
    DEFAULT_MAILBOX_SIZE,
    Actor,
    ActorRef,
    set_debug_logging,
    spawn,
)
from .clock import REAL_CLOCK, Cancellable, Clock, ManualClock, RealClock
from .errors import (
    ActorDead,
    AskTimeout,
    KernelError,
    MailboxFull,
    NameTaken,
    StartFailed,
    SupervisorGaveUp,
)
from .exited import ActorStatistics
from .messages import Crashed, Down, ExitReason, Killed, Normal, Shutdown, is_abnormal
from .registry import ActorName, Registry
from .supervisor import (
    BRUTAL,
    ChildInfo,
    ChildSpec,
    Kind,
    Restart,
    Strategy,
    Supervisor,
    SupervisorRef,
    SupervisorStatistics,
    child,
    supervisor_child,
)

__all__ = [
    "BRUTAL",
    "DEFAULT_MAILBOX_SIZE",
    "REAL_CLOCK",
    "Actor",
    "ActorDead",
    "ActorName",
    "ActorRef",
    "ActorStatistics",
    "AskTimeout",
    "Cancellable",
    "ChildInfo",
    "ChildSpec",
    "Clock",
    "Crashed",
    "Down",
    "ExitReason",
    "KernelError",
    "Killed",
    "Kind",
    "MailboxFull",
    "ManualClock",
    "NameTaken",
    "Normal",
    "RealClock",
    "Registry",
    "Restart",
    "Shutdown",
    "StartFailed",
    "Strategy",
    "Supervisor",
    "SupervisorGaveUp",
    "SupervisorRef",
    "SupervisorStatistics",
    "child",
    "is_abnormal",
    "set_debug_logging",
    "spawn",
    "supervisor_child",
]
