"""Messages the kernel itself delivers to actors, and exit reasons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from .actor import ActorRef


@dataclass(frozen=True, slots=True)
class Normal:
    """The actor returned from its loop by itself (for example by calling ``stop_self``)."""

    def __str__(self) -> str:
        return "normal"


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The actor was asked to stop and did so in time."""

    def __str__(self) -> str:
        return "shutdown"


@dataclass(frozen=True, slots=True)
class Killed:
    """The actor was killed (brutal shutdown, or its stop timed out)."""

    def __str__(self) -> str:
        return "killed"


@dataclass(frozen=True, slots=True)
class Crashed:
    """The actor raised; ``error`` is the exception."""

    error: BaseException

    def __str__(self) -> str:
        return f"crashed: {type(self.error).__name__}: {self.error}"


ExitReason: TypeAlias = Normal | Shutdown | Killed | Crashed


def is_abnormal(reason: ExitReason) -> bool:
    """True for exits that a transient child is restarted after."""
    return isinstance(reason, Crashed | Killed)


@dataclass(frozen=True, slots=True, kw_only=True)
class Down:
    """A monitored actor has exited."""

    ref: ActorRef[Any]
    reason: ExitReason
