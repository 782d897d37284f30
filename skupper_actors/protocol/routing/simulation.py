"""Routing engines wired together in memory on a virtual clock, for tests and benchmarks.

Each link delivers in order after ``delay`` virtual seconds. Effects are performed the
way the routing actor would: sends are queued for the engine at the other end, and a
neighbour lost to a HELLO timeout gets its link closed (the far end notices the close
after ``delay`` unless the link was silenced, as by a dead network path).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from heapq import heappop, heappush

from .effects import (
    AddressesChanged,
    Effect,
    NeighbourLost,
    ProtocolRefused,
    RoutesChanged,
    RoutingSettings,
    SendControl,
)
from .engine import RoutingEngine
from .messages import ControlMessage, Hello, RouterAdvertisement, decode, encode, op_name

DropRule = Callable[[str, str, ControlMessage], bool]  # (sender router, its link, message)


@dataclass(slots=True)
class SimulatedLink:
    """Both ends of one inter-router connection."""

    router_a: str
    link_a: str
    router_b: str
    link_b: str
    cost_a: int
    cost_b: int
    silenced: bool = False


class SimulatedNetwork:
    """Engines by router id, the links between them, and a virtual clock."""

    def __init__(
        self,
        settings: RoutingSettings | None = None,
        *,
        delay: float = 0.001,
        wire: bool = False,
        keep_events: bool = True,
    ) -> None:
        self.settings = settings or RoutingSettings()
        self.delay = delay
        self.wire = wire  # round-trip every message through encode/decode
        self.keep_events = keep_events
        self.now = 0.0
        self.engines: dict[str, RoutingEngine] = {}
        self.links: dict[str, SimulatedLink] = {}  # by the link id at either end
        self.sent: Counter[str] = Counter()  # messages sent, by op
        self.events: list[tuple[float, str, Effect]] = []  # all effects but sends
        self.refused: list[tuple[str, ProtocolRefused]] = []
        self.last_change = 0.0  # when routes or addresses last changed anywhere
        self.last_update = 0.0  # when the last LSU, LSR, MAU or MAR was delivered
        self.drop: DropRule | None = None
        self._open: set[str] = set()  # link ids whose engine end is open
        self._owner: dict[str, str] = {}  # link id -> router id
        # (due, order, router id, link id, message or None for "the far end closed")
        self._queue: list[tuple[float, int, str, str, ControlMessage | None]] = []
        self._timers: list[tuple[float, int, str]] = []
        self._scheduled: dict[str, float] = {}
        self._order = itertools.count()

    # --- building the network -------------------------------------------------------

    def add_router(self, router_id: str, instance: int = 1) -> RoutingEngine:
        """Start (or restart, with a new instance) a router; a restart forgets its links."""
        engine = RoutingEngine(router_id, instance, self.settings)
        self.engines[router_id] = engine
        self._schedule(router_id)
        return engine

    def connect(self, a: str, b: str, cost: int = 1, cost_b: int | None = None) -> SimulatedLink:
        """Open a link between two routers; ids are "a>b" at a and "b>a" at b."""
        link_a, link_b = self._free_id(f"{a}>{b}"), self._free_id(f"{b}>{a}")
        link = SimulatedLink(
            router_a=a, link_a=link_a, router_b=b, link_b=link_b,
            cost_a=cost, cost_b=cost if cost_b is None else cost_b,
        )
        for router_id, link_id, end_cost in ((a, link_a, link.cost_a), (b, link_b, link.cost_b)):
            self.links[link_id] = link
            self._owner[link_id] = router_id
            self._open.add(link_id)
            engine = self.engines[router_id]
            self._perform(router_id, engine.link_opened(link_id, end_cost, self.now))
        return link

    def set_cost(self, link_id: str, cost: int) -> None:
        """Change the cost configured at one end of a link."""
        link = self.links[link_id]
        if link_id == link.link_a:
            link.cost_a = cost
        else:
            link.cost_b = cost
        router_id = self._owner[link_id]
        self._perform(router_id, self.engines[router_id].link_cost_changed(link_id, cost, self.now))

    def close(self, link_id: str) -> None:
        """Close a link now at both ends (the engines are told ``link_closed``)."""
        link = self.links[link_id]
        for link_end in (link.link_a, link.link_b):
            self._close_end(link_end)

    def silence(self, link_id: str) -> None:
        """From now on the link delivers nothing either way, and no close is noticed."""
        self.links[link_id].silenced = True

    def crash(self, router_id: str) -> None:
        """The router's process dies: its links go silent and its engine stops."""
        for link_id, owner in self._owner.items():
            if owner == router_id and link_id in self._open:
                self.links[link_id].silenced = True
                self._open.discard(link_id)
        del self.engines[router_id]
        self._scheduled.pop(router_id, None)

    def is_open(self, link_id: str) -> bool:
        """True while the engine at this end of the link has not been told it closed."""
        return link_id in self._open

    # --- running --------------------------------------------------------------------

    def run_until(self, until: float) -> None:
        self._schedule_all()
        while self._next_time() <= until:
            self._step()
        self.now = max(self.now, until)

    def run_until_quiet(self, within: float = 60.0) -> float:
        """Run until no message is in flight and no engine is busy; returns the time.

        Raises TimeoutError if that takes more than ``within`` virtual seconds.
        """
        limit = self.now + within
        self._schedule_all()
        while self._queue or self._timer_due() or any(e.busy for e in self.engines.values()):
            if self._next_time() > limit:
                raise TimeoutError(f"network not quiet within {within} s (t={self.now})")
            self._step()
        return self.now

    # --- internals ------------------------------------------------------------------

    def _next_time(self) -> float:
        times = [self._queue[0][0]] if self._queue else []
        if self._timers:
            times.append(self._timers[0][0])
        return max(min(times), self.now) if times else float("inf")

    def _timer_due(self) -> bool:
        return bool(self._timers) and self._timers[0][0] <= self.now

    def _step(self) -> None:
        self.now = now = self._next_time()
        queue = self._queue
        while queue and queue[0][0] <= now:
            _, _, router_id, link_id, message = heappop(queue)
            engine = self.engines.get(router_id)
            if engine is None or link_id not in self._open:
                continue
            if message is None:
                self._close_end(link_id)
                continue
            if not isinstance(message, Hello | RouterAdvertisement):
                self.last_update = now
            self._perform(router_id, engine.receive(link_id, message, now))
        timers = self._timers
        while timers and timers[0][0] <= now:
            due, _, router_id = heappop(timers)
            if self._scheduled.get(router_id) != due:
                continue  # superseded by an earlier entry
            del self._scheduled[router_id]
            engine = self.engines[router_id]
            if engine.next_deadline() <= now:
                self._perform(router_id, engine.tick(now), schedule=False)
            self._schedule(router_id)

    def _perform(self, router_id: str, effects: list[Effect], *, schedule: bool = True) -> None:
        for effect in effects:
            if isinstance(effect, SendControl):
                self._send(router_id, effect)
                continue
            if self.keep_events:
                self.events.append((self.now, router_id, effect))
            if isinstance(effect, RoutesChanged | AddressesChanged):
                self.last_change = self.now
            elif isinstance(effect, ProtocolRefused):
                self.refused.append((router_id, effect))
            elif isinstance(effect, NeighbourLost) and effect.reason != "link-closed":
                self._close_end(effect.link_id)
                link = self.links[effect.link_id]
                if not link.silenced:
                    far = link.link_b if effect.link_id == link.link_a else link.link_a
                    # The far end notices the closed socket one delay later.
                    due = self.now + self.delay
                    heappush(self._queue, (due, next(self._order), self._owner[far], far, None))
        if schedule:
            self._schedule(router_id)

    def _send(self, router_id: str, effect: SendControl) -> None:
        link = self.links[effect.link_id]
        if link.silenced or effect.link_id not in self._open:
            return
        message = effect.message
        if self.drop is not None and self.drop(router_id, effect.link_id, message):
            return
        self.sent[op_name(message)] += 1
        if self.wire:
            message = decode(encode(message))
        if effect.link_id == link.link_a:
            far_router, far_link = link.router_b, link.link_b
        else:
            far_router, far_link = link.router_a, link.link_a
        heappush(
            self._queue, (self.now + self.delay, next(self._order), far_router, far_link, message)
        )

    def _close_end(self, link_id: str) -> None:
        if link_id not in self._open:
            return
        self._open.discard(link_id)
        router_id = self._owner[link_id]
        engine = self.engines.get(router_id)
        if engine is not None:
            self._perform(router_id, engine.link_closed(link_id, self.now))

    def _schedule_all(self) -> None:
        # Engines may have been called directly (add_local_address, ...) since the last run.
        for router_id in self.engines:
            self._schedule(router_id)

    def _schedule(self, key: str) -> None:
        engine = self.engines.get(key)
        if engine is None:
            return
        deadline = engine.next_deadline()
        current = self._scheduled.get(key)
        if current is None or deadline < current:
            self._scheduled[key] = deadline
            heappush(self._timers, (deadline, next(self._order), key))

    def _free_id(self, base: str) -> str:
        link_id, n = base, 1
        while link_id in self.links:
            n += 1
            link_id = f"{base}#{n}"
        return link_id
