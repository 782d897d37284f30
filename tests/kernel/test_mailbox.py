"""The actor mailbox: FIFO, one waiting reader, puts from greenlets and from the hub."""

from __future__ import annotations

import tracemalloc

import gevent
import pytest

from skupper_actors.kernel.mailbox import Mailbox


def test_fifo_and_sizes() -> None:
    box = Mailbox()
    assert box.empty() and box.qsize() == 0
    for i in range(100):
        box.put_nowait(i)
    assert box.qsize() == 100 and not box.empty()
    assert [box.get() for _ in range(100)] == list(range(100))
    assert box.empty()
    with pytest.raises(IndexError):
        box.get_nowait()


def test_a_waiting_reader_wakes_for_puts_from_greenlets_and_from_the_hub() -> None:
    box = Mailbox()
    got: list[object] = []

    def reader() -> None:
        for _ in range(4):
            got.append(box.get())

    greenlet = gevent.spawn(reader)
    gevent.sleep(0)  # the reader waits
    box.put_nowait("from a greenlet")
    gevent.sleep(0.01)
    gevent.get_hub().loop.run_callback(box.put_nowait, "from the hub")
    gevent.sleep(0.01)
    box.put_nowait("two")
    box.put_nowait("at once")
    greenlet.join(timeout=2)
    assert greenlet.dead
    assert got == ["from a greenlet", "from the hub", "two", "at once"]


def test_a_reader_killed_while_waiting_leaves_the_mailbox_usable() -> None:
    box = Mailbox()
    first = gevent.spawn(box.get)
    gevent.sleep(0)
    first.kill(block=True, timeout=2)
    box.put_nowait("after the kill")  # must not resurrect or break anything
    gevent.sleep(0.01)
    second = gevent.spawn(box.get)
    assert second.get(timeout=2) == "after the kill"


def test_an_empty_mailbox_holds_next_to_no_memory() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        boxes = [Mailbox() for _ in range(1000)]
        for box in boxes:
            box.put_nowait(1)
            box.get()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown / len(boxes) < 200  # bytes per empty mailbox (gevent's queues: ~2.3 KiB)
