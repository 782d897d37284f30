"""Actors and refs: mailbox bound, ask, monitors, readiness, timers, registry, statistics."""

from __future__ import annotations

import gevent
import gevent.event
import pytest
from helpers import Crash, Echo, Recorder, Sleep

from skupper_actors.kernel import (
    Actor,
    ActorDead,
    ActorName,
    AskTimeout,
    Crashed,
    Down,
    Killed,
    MailboxFull,
    ManualClock,
    NameTaken,
    Normal,
    Registry,
    Shutdown,
    StartFailed,
    spawn,
)

pytestmark = [pytest.mark.timeout(10), pytest.mark.usefixtures("no_leaked_greenlets")]


class Blocked(Actor):
    """Waits on an event inside on_receive, so its mailbox fills."""

    mailbox_size = 3

    def __init__(self) -> None:
        super().__init__()
        self.release = gevent.event.Event()
        self.seen: list[object] = []

    def on_receive(self, message: object) -> object:
        self.release.wait()
        self.seen.append(message)
        return message


def test_ask_returns_on_receive_value() -> None:
    ref = spawn(Recorder([], "a"))
    assert ref.ask(Echo(value=42)) == 42
    assert ref.stop() == Shutdown()


def test_mailbox_bound_raises_mailbox_full_and_loses_nothing_queued() -> None:
    actor = Blocked()
    ref = spawn(actor)
    ref.tell(Echo(value=0))
    gevent.sleep(0)  # the actor takes message 0 and blocks
    for i in range(1, 4):
        ref.tell(Echo(value=i))
    with pytest.raises(MailboxFull, match=r"full \(3 messages\)"):
        ref.tell(Echo(value=99))
    assert ref.statistics().mailbox_depth == 3
    actor.release.set()
    ref.stop()
    assert [m.value for m in actor.seen] == [0, 1, 2, 3]  # type: ignore[attr-defined]


def test_wait_tell_waits_for_room_then_times_out_when_none() -> None:
    actor = Blocked()
    ref = spawn(actor)
    ref.tell(Echo(value=0))
    gevent.sleep(0)
    for i in range(1, 4):
        ref.tell(Echo(value=i))
    with pytest.raises(MailboxFull):
        ref.wait_tell(Echo(value=4), timeout=0.05)
    gevent.spawn_later(0.05, actor.release.set)
    ref.wait_tell(Echo(value=4), timeout=2)
    ref.stop()
    assert len(actor.seen) == 5


def test_kernel_messages_bypass_the_bound() -> None:
    watcher_actor = Blocked()
    watcher = spawn(watcher_actor)
    watcher.tell(Echo(value=0))
    gevent.sleep(0)
    for i in range(1, 4):
        watcher.tell(Echo(value=i))
    target = spawn(Recorder([], "t"))
    target.monitor(watcher)
    target.stop()
    watcher_actor.release.set()
    watcher.stop()
    assert isinstance(watcher_actor.seen[-1], Down)


def test_ask_timeout() -> None:
    ref = spawn(Recorder([], "slow"))
    with pytest.raises(AskTimeout, match=r"did not answer Sleep within 0\.05 s"):
        ref.ask(Sleep(seconds=1), timeout=0.05)
    ref.stop(timeout=0)


def test_ask_to_dead_actor_fails_at_once() -> None:
    ref = spawn(Recorder([], "gone"))
    ref.stop()
    with gevent.Timeout(0.1), pytest.raises(ActorDead):
        ref.ask(Echo(value=1), timeout=5)
    with pytest.raises(ActorDead):
        ref.tell(Echo(value=1))


def test_ask_fails_at_once_when_the_actor_dies_while_it_waits() -> None:
    ref = spawn(Recorder([], "dies"))
    ref.tell(Sleep(seconds=0.05))
    ref.tell(Crash())
    waiting = [gevent.spawn(ref.ask, Echo(value=i), 5) for i in range(3)]
    gevent.joinall(waiting, timeout=1)
    assert all(g.dead for g in waiting)
    assert all(isinstance(g.exception, ActorDead) for g in waiting)
    assert isinstance(ref.wait(), Crashed)


def test_ask_being_handled_fails_when_handler_crashes() -> None:
    ref = spawn(Recorder([], "c"))
    with pytest.raises(ActorDead, match="crashed: RuntimeError: planted crash"):
        ref.ask(Crash(), timeout=5)


def test_ask_to_self_is_refused() -> None:
    class SelfAsker(Actor):
        def on_receive(self, message: object) -> object:
            return self.ref.ask(Echo(value=1))

    ref = spawn(SelfAsker())
    with pytest.raises(ActorDead, match="asked itself"):
        ref.ask(Echo(value=0))


def test_monitor_delivers_down_with_reason() -> None:
    journal: list[tuple[str, str]] = []
    watcher_actor = Recorder(journal, "w")
    watcher = spawn(watcher_actor)
    crashing = spawn(Recorder(journal, "x"))
    stopping = spawn(Recorder(journal, "y"))
    killed = spawn(Recorder(journal, "z"))
    for ref in (crashing, stopping, killed):
        ref.monitor(watcher)
    crashing.tell(Crash())
    stopping.stop()
    killed.stop(timeout=0)
    gevent.sleep(0.01)
    reasons = {d.ref.path: d.reason for d in watcher_actor.downs}
    assert isinstance(reasons[crashing.path], Crashed)
    assert reasons[stopping.path] == Shutdown()
    assert reasons[killed.path] == Killed()
    # monitoring an actor that is already dead delivers Down at once
    crashing.monitor(watcher)
    gevent.sleep(0.01)
    assert len(watcher_actor.downs) == 4
    watcher.stop()


def test_demonitor_stops_delivery() -> None:
    watcher_actor = Recorder([], "w")
    watcher = spawn(watcher_actor)
    target = spawn(Recorder([], "t"))
    target.monitor(watcher)
    target.demonitor(watcher)
    target.stop()
    gevent.sleep(0.01)
    assert watcher_actor.downs == []
    watcher.stop()


def test_readiness_failure_fails_the_start() -> None:
    journal: list[tuple[str, str]] = []
    with pytest.raises(StartFailed, match="b cannot start"):
        spawn(Recorder(journal, "b", fail_start=True))
    assert journal == []  # on_stop does not run for an actor that never started


def test_start_timeout_kills_a_slow_starter() -> None:
    class Slow(Actor):
        def on_start(self) -> None:
            gevent.sleep(5)

    with pytest.raises(StartFailed, match=r"no readiness within 0\.05 s"):
        spawn(Slow(), start_timeout=0.05)


def test_stop_self_exits_normally() -> None:
    class Quitter(Actor):
        def on_receive(self, message: object) -> object:
            self.stop_self()
            return None

    ref = spawn(Quitter())
    ref.tell(Echo(value=1))
    assert ref.wait(1) == Normal()


def test_stop_kills_after_timeout_when_actor_is_busy() -> None:
    ref = spawn(Recorder([], "busy"))
    ref.tell(Sleep(seconds=5))
    gevent.sleep(0)
    assert ref.stop(timeout=0.05) == Killed()


def test_send_after_with_manual_clock() -> None:
    clock = ManualClock()
    journal: list[tuple[str, str]] = []
    actor = Recorder(journal, "t")
    ref = spawn(actor, clock=clock)
    watcher = spawn(Recorder([], "w"))
    actor.send_after(10, Crash())
    ref.monitor(watcher)
    clock.advance(9.9)
    assert ref.alive
    clock.advance(0.2)
    assert isinstance(ref.wait(1), Crashed)
    watcher.stop()


def test_cancelled_timer_does_not_fire() -> None:
    clock = ManualClock()
    actor = Recorder([], "t")
    ref = spawn(actor, clock=clock)
    actor.send_after(1, Crash()).cancel()
    clock.advance(2)
    assert ref.alive
    ref.stop()
    assert clock.pending_timers == 0


def test_registry_finds_live_actors_and_forgets_dead_ones() -> None:
    registry = Registry()
    ref = spawn(Recorder([], "r"), name="routing", registry=registry)
    assert registry.lookup("routing") is ref
    with pytest.raises(NameTaken):
        spawn(Recorder([], "r2"), name="routing", registry=registry)
    ref.stop()
    assert registry.lookup("routing") is None
    assert registry.names() == []


def test_registry_looks_up_typed_names_and_strings_alike() -> None:
    registry = Registry()
    name = ActorName[Echo]("echo")
    ref = spawn(Recorder([], "t"), name=name.name, registry=registry)
    assert registry.lookup(name) is ref
    assert registry.lookup("echo") is ref
    ref.stop()
    assert registry.lookup(name) is None


def test_statistics_is_an_immutable_snapshot() -> None:
    ref = spawn(Recorder([], "s"), name="stats")
    for i in range(5):
        ref.ask(Echo(value=i))
    snap = ref.statistics()
    assert snap.messages_handled == 5
    assert snap.path == "stats"
    assert snap.alive
    with pytest.raises(AttributeError):
        snap.messages_handled = 0  # type: ignore[misc]
    ref.stop()
    assert snap.alive and not ref.statistics().alive


def test_crash_is_logged_with_path_and_exception() -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        ref = spawn(Recorder([], "l"), name="logged")
        ref.tell(Crash(why="visible"))
        ref.wait(1)
    events = {e["event"]: e for e in logs}
    assert events["actor_started"]["actor"] == "logged"
    crashed = events["actor_crashed"]
    assert crashed["actor"] == "logged"
    assert isinstance(crashed["exc_info"], RuntimeError)
    assert events["actor_stopped"]["reason"] == "crashed: RuntimeError: visible"


def test_subclass_private_names_do_not_clash_with_the_kernel() -> None:
    """Kernel internals are prefixed _kernel_: an actor may use _run, _loop, _queue..."""

    class Busy(Actor):
        def __init__(self) -> None:
            super().__init__()
            self._queue: list[object] = []
            self._dead = "not the kernel's"
            self._timers = 0

        def _run(self) -> None:
            raise AssertionError("the kernel must not call this")

        def _loop(self) -> None:
            raise AssertionError("the kernel must not call this")

        def on_receive(self, message: object) -> object:
            self._queue.append(message)
            return len(self._queue)

    ref = spawn(Busy())
    assert ref.ask(Echo(value=1)) == 1
    assert ref.ask(Echo(value=2)) == 2
    assert ref.stop() == Shutdown()


class _Log(Recorder):
    def on_receive(self, message: object) -> object:
        if isinstance(message, str):
            self.journal.append((self.label, message))
            return None
        return super().on_receive(message)


def test_a_lazy_tell_waits_for_the_next_wake_up_and_keeps_its_order() -> None:
    journal: list[tuple[str, str]] = []
    ref = spawn(_Log(journal, "a"))
    ref.tell_lazy("first")
    ref.tell_lazy("second")
    gevent.sleep(0.05)
    assert journal == [("a", "start")]  # not woken
    assert ref.statistics().mailbox_depth == 2
    ref.tell("third")
    gevent.sleep(0.05)
    assert journal == [("a", "start"), ("a", "first"), ("a", "second"), ("a", "third")]
    ref.stop()
    with pytest.raises(ActorDead):
        ref.tell_lazy("late")


class _Quiet(Recorder):
    lifecycle_log_level = "debug"


def test_debug_lifecycle_events_are_skipped_when_the_process_logs_no_debug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not even handed to structlog (whose lazy logger binds one to drop it)."""
    from skupper_actors.kernel import actor as actor_module
    from skupper_actors.kernel import set_debug_logging

    told: list[str] = []

    class _Spy:
        def debug(self, event: str, **_: object) -> None:
            told.append(event)

    monkeypatch.setattr(actor_module, "_LOG", _Spy())
    journal: list[tuple[str, str]] = []
    try:
        set_debug_logging(False)
        spawn(_Quiet(journal, "q")).stop()
        assert told == []
        set_debug_logging(True)
        spawn(_Quiet(journal, "l")).stop()
    finally:
        set_debug_logging(True)
    assert told == ["actor_started", "actor_stopped"]
