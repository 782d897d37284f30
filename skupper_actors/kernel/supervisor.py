"""Supervisors after OTP: child specs as data, three strategies, restart intensity.

A supervisor is itself an actor. It monitors its children and reacts to their ``Down``
messages in its own greenlet, so its state has one writer. A temporary child, never
restarted, is only forgotten when it exits: that is done by a call at its exit
(``call_on_exit``), with no ``Down`` and no wake-up of the supervisor (a TCP listener
has a temporary child per connection); the call never yields, so the supervisor never
sees its state half-changed. Restart intensity is counted
per supervisor: more than ``intensity`` restarts within ``period`` seconds and the
supervisor stops its children (in reverse order) and crashes with
:class:`SupervisorGaveUp`, which its own supervisor sees as a crash of that child.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from .actor import Actor, ActorRef
from .errors import ActorDead, StartFailed, SupervisorGaveUp
from .messages import Down, ExitReason, Killed, is_abnormal
from .registry import Registry


class Restart(enum.Enum):
    PERMANENT = "permanent"  #: always restarted
    TRANSIENT = "transient"  #: restarted only after an abnormal exit (crash or kill)
    TEMPORARY = "temporary"  #: never restarted; removed when it exits


class Strategy(enum.Enum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


class Kind(enum.Enum):
    WORKER = "worker"
    SUPERVISOR = "supervisor"


BRUTAL: Literal["brutal"] = "brutal"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildSpec:
    """How to start, restart and stop one child.

    ``shutdown`` is the grace period in seconds after a stop request before the child is
    killed, ``"brutal"`` to kill at once, or None to wait as long as it takes (the
    default for supervisors, whose own children have their own timeouts).
    """

    id: str
    start: Callable[[], Actor]
    restart: Restart = Restart.PERMANENT
    shutdown: float | Literal["brutal"] | None = 5.0
    kind: Kind = Kind.WORKER
    start_timeout: float = 10.0
    #: if set, the child is registered there under its id while it lives
    registry: Registry | None = None

    def stop_timeout(self) -> float | None:
        if self.shutdown == BRUTAL:
            return 0
        return self.shutdown


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildInfo:
    id: str
    path: str | None
    alive: bool
    kind: Kind
    restart: Restart


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorStatistics:
    """A snapshot of one supervisor's counters (its mailbox included)."""

    path: str
    alive: bool
    strategy: Strategy
    children: int
    restarts_total: int
    restarts_in_window: int
    mailbox_depth: int
    messages_handled: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StartChild:
    spec: ChildSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminateChild:
    id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WhichChildren:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class GetStatistics:
    pass


class _Refused:
    """Reply carrying an error for the caller (the supervisor itself carries on)."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class _Child:
    __slots__ = ("ref", "spec")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.ref: ActorRef[Any] | None = None


class SupervisorRef(ActorRef[Any]):
    """An :class:`ActorRef` with the supervisor's calls."""

    __slots__ = ()

    def start_child(self, spec: ChildSpec, timeout: float = 15.0) -> ActorRef[Any]:
        """Start a dynamic child; returns once it is ready. Raises StartFailed or ValueError."""
        reply = self.ask(StartChild(spec=spec), timeout)
        if isinstance(reply, _Refused):
            raise reply.error
        assert isinstance(reply, ActorRef)
        return reply

    def terminate_child(self, child_id: str, timeout: float = 15.0) -> bool:
        """Stop a child (honouring its shutdown) and forget it; False if there was none."""
        return bool(self.ask(TerminateChild(id=child_id), timeout))

    def which_children(self, timeout: float = 5.0) -> list[ChildInfo]:
        return list(self.ask(WhichChildren(), timeout))

    def statistics(self) -> SupervisorStatistics:
        actor = self._actor
        assert isinstance(actor, Supervisor)
        return actor.statistics()


class Supervisor(Actor):
    """Starts children in order, restarts them by strategy, stops them in reverse order."""

    def __init__(
        self,
        children: Iterable[ChildSpec] = (),
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: int = 3,
        period: float = 5.0,
    ) -> None:
        super().__init__()
        self.ref: SupervisorRef = SupervisorRef(self)
        self.strategy = strategy
        self.intensity = intensity
        self.period = period
        self._children: dict[str, _Child] = {}
        for spec in children:
            if spec.id in self._children:
                raise ValueError(f"duplicate child id {spec.id!r}")
            self._children[spec.id] = _Child(spec)
        self._ids: dict[ActorRef[Any], str] = {}
        self._restarts: deque[float] = deque()
        self._restarts_total = 0

    # -- lifecycle -----------------------------------------------------------------------
    def on_start(self) -> None:
        started: list[str] = []
        try:
            for child_id in list(self._children):
                self._start_one(child_id)
                started.append(child_id)
        except StartFailed:
            self._stop_ids(reversed(started))
            raise

    def on_stop(self, reason: ExitReason) -> None:
        self._stop_ids(reversed(list(self._children)), brutal=isinstance(reason, Killed))

    def on_receive(self, message: object) -> Any:
        if type(message) is Down:
            self._child_down(message)
            return None
        if isinstance(message, StartChild):
            return self._start_dynamic(message.spec)
        if isinstance(message, TerminateChild):
            child = self._children.pop(message.id, None)
            if child is None:
                return False
            self._stop_child(child)
            return True
        if isinstance(message, WhichChildren):
            return [self._info(cid, child) for cid, child in self._children.items()]
        if isinstance(message, GetStatistics):
            return self.statistics()
        return super().on_receive(message)

    def statistics(self) -> SupervisorStatistics:  # type: ignore[override]
        now = self.clock.now()
        return SupervisorStatistics(
            path=self.path,
            alive=not self._kernel_dead,
            strategy=self.strategy,
            children=len(self._children),
            restarts_total=self._restarts_total,
            restarts_in_window=sum(1 for t in self._restarts if t >= now - self.period),
            mailbox_depth=self._kernel_queue.qsize(),
            messages_handled=self._kernel_handled,
        )

    def start_child_here(self, spec: ChildSpec) -> ActorRef[Any]:
        """Start a dynamic child from this supervisor's own greenlet (a subclass's handler).

        Raises StartFailed or ValueError; other greenlets use ``ref.start_child``.
        """
        reply = self._start_dynamic(spec)
        if isinstance(reply, _Refused):
            raise reply.error
        return reply

    # -- children ------------------------------------------------------------------------
    def _start_one(self, child_id: str) -> ActorRef[Any]:
        child = self._children[child_id]
        actor = child.spec.start()
        ref = actor._launch(
            name=child_id,
            parent_path=self.path,
            clock=self.clock,
            start_timeout=child.spec.start_timeout,
            registry=child.spec.registry,
        )
        child.ref = ref
        self._ids[ref] = child_id
        if child.spec.restart is Restart.TEMPORARY:
            ref.call_on_exit(self._temporary_exited)
        else:
            ref.monitor(self.ref)
        return ref

    def _temporary_exited(self, ref: ActorRef[Any], _reason: ExitReason) -> None:
        """A temporary child's exit (called there): forgotten, as ``Down`` would."""
        child_id = self._ids.pop(ref, None)
        if child_id is not None:
            del self._children[child_id]

    def _start_dynamic(self, spec: ChildSpec) -> ActorRef[Any] | _Refused:
        if spec.id in self._children:
            return _Refused(ValueError(f"{self.path} already has a child {spec.id!r}"))
        self._children[spec.id] = _Child(spec)
        try:
            return self._start_one(spec.id)
        except StartFailed as error:
            del self._children[spec.id]
            return _Refused(error)

    def _stop_child(self, child: _Child, brutal: bool = False) -> None:
        ref = child.ref
        if ref is None:
            return
        child.ref = None
        self._ids.pop(ref, None)
        ref.demonitor(self.ref)
        ref.stop(0 if brutal else child.spec.stop_timeout())

    def _stop_ids(self, ids: Iterable[str], brutal: bool = False) -> None:
        for child_id in ids:
            child = self._children.get(child_id)
            if child is not None:
                self._stop_child(child, brutal)

    def _child_down(self, down: Down) -> None:
        child_id = self._ids.pop(down.ref, None)
        if child_id is None:
            return  # a child we already stopped or forgot
        child = self._children[child_id]
        child.ref = None
        restart = child.spec.restart
        if restart is Restart.TEMPORARY or (
            restart is Restart.TRANSIENT and not is_abnormal(down.reason)
        ):
            del self._children[child_id]
            return
        self._count_restart(child_id)
        ids = list(self._children)
        if self.strategy is Strategy.ONE_FOR_ONE:
            group = [child_id]
        elif self.strategy is Strategy.ONE_FOR_ALL:
            group = ids
        else:
            group = ids[ids.index(child_id) :]
        self._stop_ids(reversed(group))
        for cid in group:
            if self._children[cid].spec.restart is Restart.TEMPORARY:
                del self._children[cid]
                continue
            self._restart(cid, down)

    def _restart(self, child_id: str, cause: Down) -> None:
        while True:
            try:
                ref = self._start_one(child_id)
            except StartFailed as error:
                self.log.warning("child_restart_failed", child=child_id, error=str(error))
                self._count_restart(child_id)
                continue
            self.log.warning(
                "child_restarted",
                child=child_id,
                path=ref.path,
                cause=cause.ref.path,
                reason=str(cause.reason),
                strategy=self.strategy.value,
            )
            return

    def _count_restart(self, child_id: str) -> None:
        now = self.clock.now()
        self._restarts.append(now)
        self._restarts_total += 1
        while self._restarts and self._restarts[0] <= now - self.period:
            self._restarts.popleft()
        if len(self._restarts) > self.intensity:
            self.log.error(
                "supervisor_gave_up",
                child=child_id,
                intensity=self.intensity,
                period=self.period,
            )
            raise SupervisorGaveUp(self.path, self.intensity, self.period, child_id)

    @staticmethod
    def _info(child_id: str, child: _Child) -> ChildInfo:
        return ChildInfo(
            id=child_id,
            path=child.ref.path if child.ref is not None else None,
            alive=child.ref is not None and child.ref.alive,
            kind=child.spec.kind,
            restart=child.spec.restart,
        )


def child(
    child_id: str,
    start: Callable[[], Actor],
    *,
    restart: Restart = Restart.PERMANENT,
    shutdown: float | Literal["brutal"] | None = 5.0,
    start_timeout: float = 10.0,
    registry: Registry | None = None,
) -> ChildSpec:
    """A worker child spec."""
    return ChildSpec(
        id=child_id,
        start=start,
        restart=restart,
        shutdown=shutdown,
        start_timeout=start_timeout,
        registry=registry,
    )


def supervisor_child(
    child_id: str, start: Callable[[], Supervisor], *, registry: Registry | None = None
) -> ChildSpec:
    """A supervisor child spec: waits for its subtree to stop."""
    return ChildSpec(
        id=child_id, start=start, kind=Kind.SUPERVISOR, shutdown=None, registry=registry
    )


__all__ = [
    "BRUTAL",
    "ActorDead",
    "ChildInfo",
    "ChildSpec",
    "Kind",
    "Restart",
    "Strategy",
    "Supervisor",
    "SupervisorRef",
    "SupervisorStatistics",
    "child",
    "supervisor_child",
]
