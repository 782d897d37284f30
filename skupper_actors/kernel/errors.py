"""Errors raised by the actor kernel."""

from __future__ import annotations


class KernelError(Exception):
    """Base class of every error the kernel raises."""


class MailboxFull(KernelError):
    """A tell found the target's mailbox at its bound; the message was not queued."""

    def __init__(self, path: str, bound: int) -> None:
        super().__init__(f"mailbox of {path} is full ({bound} messages); message not delivered")
        self.path = path
        self.bound = bound


class AskTimeout(KernelError):
    """An ask got no reply within its timeout."""

    def __init__(self, path: str, message: object, timeout: float) -> None:
        super().__init__(f"{path} did not answer {type(message).__name__} within {timeout:g} s")
        self.path = path
        self.timeout = timeout


class ActorDead(KernelError):
    """The target actor is not running (or died before it could answer)."""

    def __init__(self, path: str, reason: object = None) -> None:
        detail = f": {reason}" if reason is not None else ""
        super().__init__(f"actor {path} is dead{detail}")
        self.path = path
        self.reason = reason


class StartFailed(KernelError):
    """An actor failed (or timed out) before it signalled readiness."""

    def __init__(self, path: str, reason: object) -> None:
        super().__init__(f"actor {path} failed to start: {reason}")
        self.path = path
        self.reason = reason


class SupervisorGaveUp(KernelError):
    """A supervisor's children crashed more often than its restart intensity allows."""

    def __init__(self, path: str, restarts: int, period: float, last_child: str) -> None:
        super().__init__(
            f"supervisor {path} gave up: more than {restarts} restarts within {period:g} s "
            f"(last crash: child {last_child!r})"
        )
        self.path = path
        self.restarts = restarts
        self.period = period
        self.last_child = last_child


class NameTaken(KernelError):
    """A registry name is already held by a live actor."""
