"""The node's loop-stall monitor (actors/health.py) on a real gevent loop: it measures a
stall that holds the loop, and an idle loop wakes for it at the quiet rate only."""

from __future__ import annotations

import time

import gevent

from skupper_actors.actors.health import STALL_TICK, STALL_TICK_QUIET, NodeHealth


def hold_loop(seconds: float) -> None:
    """Keep the loop's thread busy on the CPU (no yield) for ``seconds``."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_stall_that_holds_the_loop_is_measured_busy() -> None:
    health = NodeHealth()
    health.start_monitor()
    try:
        gevent.sleep(0.1)
        assert health.ticks >= 2
        hold_loop(0.08)
        gevent.sleep(0.1)
        # a stall longer than the quiet tick straddles one of its due times: measured
        # at least that much shorter, and the time was the loop thread's own
        assert health.longest_stall >= 0.08 - STALL_TICK_QUIET
        assert health.longest_busy >= 0.08 - STALL_TICK_QUIET
        second, stall, busy = health.stalls()[-1]
        assert abs(second - time.time()) < 2
        assert stall >= busy >= 0
    finally:
        health.stop_monitor()


def test_an_idle_loop_ticks_at_the_quiet_rate_and_a_busy_one_at_the_short() -> None:
    health = NodeHealth()
    health.start_monitor()
    try:
        gevent.sleep(0.5)
        idle = health.ticks
        assert 0.5 / STALL_TICK_QUIET * 0.5 <= idle <= 0.5 / STALL_TICK_QUIET + 2
        # busy: work in slices that yield to the loop (no stall, but a busy thread)
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            hold_loop(0.002)
            gevent.sleep(0)
            gevent.idle()
        busy = health.ticks - idle
        assert busy > 0.5 / STALL_TICK_QUIET + 2  # more often than quiet ticks come
        assert busy <= 0.5 / STALL_TICK + 2
        assert health.longest_busy < 0.05  # slices, not stalls
    finally:
        health.stop_monitor()
    ticks = health.ticks
    gevent.sleep(0.1)
    assert health.ticks == ticks  # stopped: no more ticks
