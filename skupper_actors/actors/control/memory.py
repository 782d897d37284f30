"""The node's memory: the buffer budget's log and counters, and giving memory back.

A burst of stream bytes (slow readers, a stalled path) passes through hundreds of
256 KiB chunks; CPython frees them to glibc, which keeps the freed pages in its heap
(only what is at the top of the heap is returned by itself). ``MemoryActor`` looks every
few seconds: when the process's resident size grew by ``TRIM_GROWTH`` since it last
looked and the buffers are nearly empty again, it calls ``malloc_trim(0)``, which hands
every free page back to the system. The check is one read of /proc/self/statm; the trim
runs only after a burst, never per chunk.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
from dataclasses import dataclass
from typing import Any

from skupper_actors.kernel import Actor
from skupper_actors.protocol.tcp import BufferBudget

CHECK_INTERVAL = 3.0  # seconds
TRIM_GROWTH = 8 << 20  # bytes of resident growth since the last look that call for a trim
QUIET_BUFFERED = 1 << 20  # trim only once buffers hold less than this

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """This process's resident size (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _load_malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc (musl has no malloc_trim)
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_malloc_trim = _load_malloc_trim()


@dataclass(slots=True, kw_only=True)
class MemoryCounters:
    trims: int = 0
    trimmed_bytes: int = 0


def memory_counters(budget: BufferBudget, memory: MemoryCounters | None = None) -> dict[str, int]:
    """The budget's state for the management status (`counters`)."""
    counters = {
        "tcp_buffer_budget_bytes": budget.limit,
        "tcp_buffered_bytes": budget.buffered,
        "tcp_buffered_bytes_peak": budget.peak,
        "tcp_buffer_budget_reached": budget.hits,
        "tcp_buffer_budget_paused": budget.paused,
        "process_rss_bytes": rss_bytes(),
    }
    if memory is not None:
        counters["memory_trims"] = memory.trims
        counters["memory_trimmed_bytes"] = memory.trimmed_bytes
    return counters


@dataclass(frozen=True, slots=True, kw_only=True)
class _Check:
    pass


class MemoryActor(Actor):
    """Logs the budget's episodes and gives memory back after bursts."""

    def __init__(self, budget: BufferBudget, counters: MemoryCounters) -> None:
        super().__init__()
        self.budget = budget
        self.counters = counters
        self._baseline = 0

    def on_start(self) -> None:
        self.budget.on_hit = self._reached
        self._baseline = rss_bytes()
        self.send_after(CHECK_INTERVAL, _Check())

    def on_stop(self, reason: object) -> None:
        if self.budget.on_hit == self._reached:
            self.budget.on_hit = None

    def _reached(self, buffered: int, limit: int) -> None:
        # called on the data path (a reader pausing): logging only, once per episode
        self.log.warning("tcp_buffer_budget_reached", buffered=buffered, limit=limit)

    def on_receive(self, message: object) -> Any:
        if isinstance(message, _Check):
            self.check()
            self.send_after(CHECK_INTERVAL, _Check())
            return None
        return super().on_receive(message)

    def check(self) -> None:
        rss = rss_bytes()
        if rss < self._baseline:
            self._baseline = rss
        quiet = self.budget.buffered < QUIET_BUFFERED
        if _malloc_trim is None or not quiet or rss - self._baseline < TRIM_GROWTH:
            return
        started = time.monotonic()
        _malloc_trim(0)
        after = rss_bytes()
        self.counters.trims += 1
        self.counters.trimmed_bytes += max(0, rss - after)
        self._baseline = after
        self.log.info(
            "memory_trimmed",
            rss_before=rss,
            rss_after=after,
            ms=round((time.monotonic() - started) * 1000, 2),
        )
