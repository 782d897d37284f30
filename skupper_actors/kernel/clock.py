"""Clocks: the real one and a manual one for tests."""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

import gevent
import gevent.event


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Time source for the kernel and actors; tests swap in :class:`ManualClock`."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancellable: ...


class _GeventTimer:
    __slots__ = ("_timer",)

    def __init__(self, seconds: float, callback: Callable[[], None]) -> None:
        self._timer = gevent.get_hub().loop.timer(max(seconds, 0.0))
        self._timer.start(callback)

    def cancel(self) -> None:
        self._timer.close()


class RealClock:
    """Monotonic time and the gevent hub's timers."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        gevent.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancellable:
        return _GeventTimer(seconds, callback)


class _ManualTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when a test calls :meth:`advance`.

    Sleepers and timers whose deadline has passed run during ``advance``, in deadline order.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._seq = itertools.count()
        self._timers: list[tuple[float, int, _ManualTimer]] = []

    def now(self) -> float:
        return self._now

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancellable:
        timer = _ManualTimer(callback)
        heapq.heappush(self._timers, (self._now + max(seconds, 0.0), next(self._seq), timer))
        return timer

    def sleep(self, seconds: float) -> None:
        woken = gevent.event.Event()
        self.call_later(seconds, woken.set)
        woken.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward, running due timers, and let woken greenlets run."""
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            deadline, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, deadline)
            if not timer.cancelled:
                timer.callback()
                gevent.sleep(0)
        self._now = target
        gevent.sleep(0)

    @property
    def pending_timers(self) -> int:
        return sum(1 for _, _, t in self._timers if not t.cancelled)


REAL_CLOCK = RealClock()
