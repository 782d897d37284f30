"""NodeHealth: the node's limit counters and its event loop's measured stalls.

Every actor of a node shares one gevent loop, the one that forwards bytes. A greenlet
sleeps ``STALL_TICK`` at a time and notes how late it wakes: that lateness is the
longest time anything held the loop without yielding. Each second's longest stall is
kept for ``STALL_WINDOW`` seconds, so a test or an operator reads what the loop did
during a given minute rather than at start-up.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

import gevent

STALL_TICK = 0.005
STALL_WINDOW = 120  # seconds of per-second maxima kept


def yield_to_loop() -> None:
    """Let the event loop run a whole iteration (I/O, timers) before going on.

    ``gevent.sleep(0)`` only lets runnable greenlets run: a socket with data waiting
    would not be read until the caller blocks. Any positive sleep waits for the loop.
    """
    gevent.sleep(1e-6)


class NodeHealth:
    """Counters of refusals past a limit, and the loop's stall history."""

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.longest_stall = 0.0  # seconds, since the monitor started
        self._seconds: deque[tuple[int, float]] = deque(maxlen=STALL_WINDOW)
        self._monitor: gevent.Greenlet[Any, Any] | None = None

    def count(self, name: str, amount: int = 1) -> int:
        """Add to a counter (names are the limits' setting names); returns the new value."""
        self.counters[name] += amount
        return self.counters[name]

    def snapshot(self) -> Mapping[str, int]:
        return dict(self.counters)

    # -- loop stalls --------------------------------------------------------------------
    def start_monitor(self) -> None:
        if self._monitor is None or self._monitor.dead:
            self._monitor = gevent.spawn(self._watch)

    def stop_monitor(self) -> None:
        if self._monitor is not None:
            self._monitor.kill(block=False)
            self._monitor = None

    def _watch(self) -> None:
        clock = time.monotonic
        sleep = gevent.sleep
        while True:
            before = clock()
            sleep(STALL_TICK)
            self.note_stall(clock() - before - STALL_TICK, time.time())

    def note_stall(self, stall: float, now: float) -> None:
        stall = max(0.0, stall)
        self.longest_stall = max(self.longest_stall, stall)
        second = int(now)
        seconds = self._seconds
        if seconds and seconds[-1][0] == second:
            if stall > seconds[-1][1]:
                seconds[-1] = (second, stall)
        else:
            seconds.append((second, stall))

    def stalls(self) -> tuple[tuple[int, float], ...]:
        """(unix second, longest stall in it in seconds) for the last ``STALL_WINDOW`` s."""
        return tuple(self._seconds)


__all__ = ["STALL_TICK", "STALL_WINDOW", "NodeHealth", "yield_to_loop"]
