"""Mailbox: an actor's FIFO of messages, read by the actor's one greenlet.

gevent's queues keep three deques each (items, waiting getters, waiting putters), about
2.3 KiB per actor even when empty; a node holds an actor per TCP connection. This one
holds nothing while empty (the deque comes and goes with the messages) and at most one
waiter, since only the actor's own greenlet reads it. The bound on user messages is the
ActorRef's business, not the mailbox's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from gevent import get_hub
from gevent.hub import Waiter


class Mailbox:
    """Unbounded FIFO: ``put_nowait`` from any greenlet (or the hub), ``get`` by one."""

    __slots__ = ("_items", "_waiter", "wake")

    def __init__(self) -> None:
        self._items: deque[object] | None = None
        self._waiter: Any = None  # the reader's Waiter while it waits
        #: called (once, then cleared) by the next put when no reader waits: how a
        #: hibernating actor, which keeps no greenlet while idle, gets one back
        self.wake: Callable[[], None] | None = None

    def qsize(self) -> int:
        items = self._items
        return len(items) if items is not None else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: object) -> None:
        items = self._items
        if items is None:
            items = self._items = deque()
        items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            # a Waiter is switched to from the hub: the putter never yields
            get_hub().loop.run_callback(waiter.switch, None)
        elif self.wake is not None:
            wake, self.wake = self.wake, None
            wake()

    def put_lazy(self, item: object) -> None:
        """Queue ``item`` without waking the reader: it is read with the next message
        that does wake it (``put_nowait``), in order."""
        items = self._items
        if items is None:
            items = self._items = deque()
        items.append(item)

    def get_nowait(self) -> Any:
        """The oldest message; IndexError when there is none."""
        items = self._items
        if not items:
            raise IndexError("the mailbox is empty")
        item = items.popleft()
        if not items:
            self._items = None
        return item

    def get(self) -> Any:
        """The oldest message, waiting for one if need be (only one reader may wait)."""
        while not self._items:
            waiter: Any = Waiter()
            self._waiter = waiter
            try:
                waiter.get()
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        return self.get_nowait()
