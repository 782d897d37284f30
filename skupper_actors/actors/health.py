"""NodeHealth: the node's limit counters and its event loop's measured stalls.

Every actor of a node shares one gevent loop, the one that forwards bytes. A repeating
loop timer notes how late each of its ticks comes: that lateness is the longest time the
loop did not come round (a *stall*, wall-clock). Part of it can be the operating system
running other processes; the part the loop's own thread spent on the CPU
(``time.thread_time``) is the time our code held the loop (*busy*). Each second's
longest of both is kept for ``STALL_WINDOW`` seconds, so a test or an operator reads
what the loop did during a given minute rather than at start-up.

The tick is ``STALL_TICK`` while the loop was busy at least half of the last interval
and ``STALL_TICK_QUIET`` otherwise. A tick that wakes an idle loop costs the process a
wake-up (tens of microseconds of kernel time on a VM): at 200 a second that was 2% of a
core for an idle node and 7-10% of the CPU of each small request. A stall straddles a
quiet tick's due time, and is measured, whenever it is longer than the tick; one
shorter than ``STALL_TICK_QUIET`` may go unseen while the loop is mostly idle.
"""

from __future__ import annotations

import gc
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import gevent

STALL_TICK = 0.005  #: while the loop is busy (no wake-up to pay for: it is awake)
STALL_TICK_QUIET = 0.025  #: while it is mostly idle
#: the share of an interval the loop's thread was on the CPU from which ticks are short
BUSY_SHARE = 0.5
STALL_WINDOW = 120  # seconds of per-second maxima kept


def yield_to_loop() -> None:
    """Let the event loop run a whole iteration (I/O, timers) before going on.

    ``gevent.sleep(0)`` only lets runnable greenlets run: a socket with data waiting
    would not be read until the caller blocks. Any positive sleep waits for the loop.
    """
    gevent.sleep(1e-6)


def close_watcher(watcher: Any) -> None:
    """Stop a loop watcher or timer and free it; None: nothing to do."""
    if watcher is not None:
        watcher.stop()
        watcher.close()


T = TypeVar("T")


def run_off_loop(function: Callable[..., T], *args: Any) -> T:
    """Run CPU-heavy work with no I/O of the loop's (YAML of status files) in the hub's
    thread pool; the calling greenlet waits, the loop goes on (the GIL passes every 5 ms).

    An exception is raised again here, in the caller, not printed by the pool.
    """

    def run() -> tuple[bool, Any]:
        try:
            return True, function(*args)
        except Exception as error:  # handed back to the caller, who raises it again
            return False, error

    ok, value = gevent.get_hub().threadpool.apply(run)
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


class NodeHealth:
    """Counters of refusals past a limit, and the loop's stall history."""

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.longest_stall = 0.0  # seconds, since the monitor started
        self.longest_busy = 0.0
        self._seconds: deque[tuple[int, float, float]] = deque(maxlen=STALL_WINDOW)
        self._monitor: Any = None  # the loop timer ticking now (busy or quiet)
        self._timers: tuple[Any, Any] | None = None  # (busy, quiet) repeating loop timers
        self._due = 0.0  # when the running timer's next tick is due (monotonic)
        self._last = 0.0  # when the last tick ran
        self._cpu_at = 0.0  # the thread's CPU time then
        self.ticks = 0  # ticks so far
        self.longest_gc = 0.0  # the longest cyclic garbage collection, in seconds
        self._gc_started = 0.0

    def count(self, name: str, amount: int = 1) -> int:
        """Add to a counter (names are the limits' setting names); returns the new value."""
        self.counters[name] += amount
        return self.counters[name]

    def snapshot(self) -> Mapping[str, int]:
        return dict(self.counters)

    # -- loop stalls --------------------------------------------------------------------
    def start_monitor(self) -> None:
        if self._monitor is None:
            # loop timers and a callback, no greenlet: no switch there and back and no
            # timer made per tick; ref=False: they keep no loop running
            loop = gevent.get_hub().loop
            self._timers = (
                loop.timer(STALL_TICK, STALL_TICK, ref=False),
                loop.timer(STALL_TICK_QUIET, STALL_TICK_QUIET, ref=False),
            )
            self._last = time.monotonic()
            self._cpu_at = time.thread_time()
            self._run(self._timers[1], STALL_TICK_QUIET, self._last)
            gc.callbacks.append(self._collecting)

    def stop_monitor(self) -> None:
        if self._monitor is not None:
            for timer in self._timers or ():
                close_watcher(timer)
            self._monitor = self._timers = None
            if self._collecting in gc.callbacks:
                gc.callbacks.remove(self._collecting)

    def _run(self, timer: Any, period: float, now: float) -> None:
        if self._monitor is not None:
            self._monitor.stop()
        self._monitor = timer
        timer.start(self._tick, update=True)
        self._due = now + period

    def _collecting(self, phase: str, info: dict[str, int]) -> None:
        # a garbage collection holds the loop too: how long the longest one took
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self.longest_gc = max(self.longest_gc, time.perf_counter() - self._gc_started)

    def _tick(self) -> None:
        now = time.monotonic()
        cpu = time.thread_time()
        stall = now - self._due
        used = cpu - self._cpu_at
        self.note_stall(stall, min(stall, used), time.time())
        self.ticks += 1
        timers = self._timers
        if timers is None:
            return
        busy = used >= BUSY_SHARE * (now - self._last)
        self._last = now
        self._cpu_at = cpu
        timer = timers[0] if busy else timers[1]
        if timer is self._monitor:
            # libev's next time for a repeating timer: a period on, or at once if that
            # passed already
            due = self._due + (STALL_TICK if busy else STALL_TICK_QUIET)
            self._due = due if due > now else now
        else:
            self._run(timer, STALL_TICK if busy else STALL_TICK_QUIET, now)

    def note_stall(self, stall: float, busy: float, now: float) -> None:
        stall = max(0.0, stall)
        busy = max(0.0, busy)
        self.longest_stall = max(self.longest_stall, stall)
        self.longest_busy = max(self.longest_busy, busy)
        second = int(now)
        seconds = self._seconds
        if seconds and seconds[-1][0] == second:
            _, worst, busiest = seconds[-1]
            seconds[-1] = (second, max(worst, stall), max(busiest, busy))
        else:
            seconds.append((second, stall, busy))

    def stalls(self) -> tuple[tuple[int, float, float], ...]:
        """(unix second, longest stall, longest busy stall) in seconds, for the last
        ``STALL_WINDOW`` seconds."""
        return tuple(self._seconds)


__all__ = [
    "STALL_TICK",
    "STALL_TICK_QUIET",
    "STALL_WINDOW",
    "NodeHealth",
    "close_watcher",
    "run_off_loop",
    "yield_to_loop",
]
