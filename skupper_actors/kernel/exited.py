"""What is left of an actor once it has exited: its counters (``ActorStatistics``, also
the live actor's snapshot) and, for an actor that ``releases_on_exit``, the ``Exited``
record its refs keep in its place (actor.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .actor import Actor, ActorRef


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorStatistics:
    """A snapshot of one actor's counters."""

    path: str
    alive: bool
    mailbox_depth: int
    mailbox_bound: int
    messages_handled: int


class Exited:
    """What the refs of an exited actor that ``releases_on_exit`` keep of it: enough to
    answer as a dead actor's refs do (dead, its reason, its last counters), nothing
    that leads back to the actor, so the actor and all it held go as soon as the last
    reference to them does, with no cyclic garbage for the collector to find."""

    __slots__ = (
        "_kernel_dead",
        "_kernel_exit_reason",
        "_kernel_exited",
        "_kernel_greenlet",
        "_kernel_handled",
        "_kernel_launched",
        "_kernel_monitors",
        "_kernel_queue",
        "clock",
        "mailbox_size",
        "path",
    )

    def __init__(self, actor: Actor) -> None:
        self._kernel_dead = True
        self._kernel_exit_reason = actor._kernel_exit_reason
        self._kernel_exited = actor._kernel_exited
        self._kernel_greenlet = None
        self._kernel_handled = actor._kernel_handled
        self._kernel_launched = actor._kernel_launched
        self._kernel_monitors: dict[int, ActorRef[Any]] = {}
        self._kernel_queue = actor._kernel_queue
        self.clock = actor.clock
        self.mailbox_size = actor.mailbox_size
        self.path = actor.path

    def statistics(self) -> ActorStatistics:
        return ActorStatistics(
            path=self.path,
            alive=False,
            mailbox_depth=self._kernel_queue.qsize(),
            mailbox_bound=self.mailbox_size,
            messages_handled=self._kernel_handled,
        )
