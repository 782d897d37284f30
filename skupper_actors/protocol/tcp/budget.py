"""The node-wide budget for buffered stream bytes (sans-IO).

Every byte a node holds for a local socket that has not taken it yet (a slow reader's
queue in a SocketSink, a forward stream's bytes before its connection attaches) is
counted here: one integer add when a chunk is queued, one subtract when it leaves.
Past ``limit`` the node stops taking more: its TCP reading watchers pause, and the
acknowledgements of bytes written meanwhile are held, so the far senders' windows stop
opening. Below ``resume_below`` (three quarters of the limit) everything paused resumes.
The per-stream window still bounds each stream; the budget bounds their sum.
"""

from __future__ import annotations

from collections.abc import Callable

DEFAULT_BUFFER_BUDGET = 64 << 20  # bytes


class BufferBudget:
    """Bytes buffered in all, and the readers waiting for room.

    ``on_hit(buffered, limit)`` is told once per episode (the first pause after the
    last resume); ``hits`` counts the episodes, ``peak`` the most ever buffered.
    """

    __slots__ = ("_paused", "buffered", "hits", "limit", "on_hit", "peak", "resume_below")

    def __init__(self, limit: int = DEFAULT_BUFFER_BUDGET) -> None:
        self.buffered = 0
        self.peak = 0
        self.hits = 0
        self.limit = limit
        self.resume_below = limit
        self.on_hit: Callable[[int, int], None] | None = None
        self._paused: dict[object, Callable[[], None]] = {}
        self.set_limit(limit)

    def set_limit(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("the buffer budget must be positive")
        self.limit = limit
        self.resume_below = limit - limit // 4

    @property
    def over(self) -> bool:
        return self.buffered >= self.limit

    @property
    def paused(self) -> int:
        """How many readers wait for room now."""
        return len(self._paused)

    def add(self, count: int) -> None:
        buffered = self.buffered = self.buffered + count
        if buffered > self.peak:
            self.peak = buffered

    def sub(self, count: int) -> None:
        self.buffered -= count
        if self._paused and self.buffered < self.resume_below:
            self._resume_all()

    def pause(self, key: object, resume: Callable[[], None]) -> None:
        """``key``'s reader stops until there is room again; ``resume`` is called then
        (once). A pause while under ``resume_below`` resumes at once."""
        if self.buffered < self.resume_below:
            resume()
            return
        if not self._paused:
            self.hits += 1
            if self.on_hit is not None:
                self.on_hit(self.buffered, self.limit)
        self._paused[key] = resume

    def forget(self, key: object) -> None:
        """``key`` ended: no resume for it."""
        self._paused.pop(key, None)

    def is_paused(self, key: object) -> bool:
        return key in self._paused

    def _resume_all(self) -> None:
        waiting = self._paused
        self._paused = {}
        for resume in waiting.values():
            resume()
