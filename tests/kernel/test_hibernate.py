"""Hibernating actors (one per TCP connection): no greenlet while the mailbox is empty,
and otherwise every promise an ordinary actor makes (order, asks, timers, crashes,
monitors, stops and kills, supervision)."""

from __future__ import annotations

import gevent
import pytest
from greenlet_census import live_greenlets
from helpers import Crash, Echo, Recorder, Sleep

from skupper_actors.kernel import (
    BRUTAL,
    ActorDead,
    ChildSpec,
    Crashed,
    Killed,
    ManualClock,
    Normal,
    Registry,
    Restart,
    Shutdown,
    StartFailed,
    Strategy,
    Supervisor,
    spawn,
)

pytestmark = [pytest.mark.timeout(15), pytest.mark.usefixtures("no_leaked_greenlets")]


class Sleeper(Recorder):
    hibernates = True


class Stopper(Sleeper):
    def on_receive(self, message: object) -> object:
        if message == "done":
            self.stop_self()
        return super().on_receive(message)


def test_an_idle_hibernating_actor_holds_no_greenlet() -> None:
    journal: list[tuple[str, str]] = []
    before = len(live_greenlets())
    refs = [spawn(Sleeper(journal, f"s{n}")) for n in range(50)]
    assert len(live_greenlets()) == before  # started in this greenlet, none kept
    assert [r.ask(Echo(value=n)) for n, r in enumerate(refs)] == list(range(50))
    gevent.sleep(0)
    assert len(live_greenlets()) == before  # the greenlets that answered have ended
    for ref in refs:
        assert ref.stop() == Shutdown()
    assert journal.count(("s7", "stop")) == 1


def test_messages_keep_their_order_across_hibernations() -> None:
    seen: list[object] = []

    class Collect(Sleeper):
        def on_receive(self, message: object) -> object:
            seen.append(message)
            if message == 3:
                gevent.sleep(0.01)  # a handler may block: it has its own greenlet
            return None

    ref = spawn(Collect([], "c"))
    for n in range(6):
        ref.tell(n)
    gevent.sleep(0.05)
    for n in range(6, 9):
        ref.tell(n)
    gevent.sleep(0.01)
    assert seen == list(range(9))
    ref.stop()


def test_stop_self_crash_and_monitors() -> None:
    journal: list[tuple[str, str]] = []
    watcher_journal: list[tuple[str, str]] = []
    watcher = Recorder(watcher_journal, "w")
    wref = spawn(watcher)
    stopper = spawn(Stopper(journal, "stopper"))
    crasher = spawn(Sleeper(journal, "crasher"))
    stopper.monitor(wref)
    crasher.monitor(wref)
    stopper.tell("done")
    crasher.tell(Crash(why="planted"))
    assert stopper.wait(2) == Normal()
    reason = crasher.wait(2)
    assert isinstance(reason, Crashed) and "planted" in str(reason)
    wref.ask(Echo(value=None))  # the Downs are in before this answer
    assert {type(d.reason) for d in watcher.downs} == {Normal, Crashed}
    assert ("crasher", "stop") in journal and ("stopper", "stop") in journal
    with pytest.raises(ActorDead):
        crasher.tell(Echo(value=1))
    wref.stop()


def test_timers_wake_a_hibernating_actor() -> None:
    clock = ManualClock()
    seen: list[object] = []

    class Timed(Sleeper):
        def on_receive(self, message: object) -> object:
            seen.append(message)
            return None

    actor = Timed([], "t")
    ref = spawn(actor, clock=clock)
    actor.send_after(5, "tick")
    clock.advance(4)
    gevent.sleep(0)
    assert seen == []
    clock.advance(2)
    gevent.sleep(0)
    assert seen == ["tick"]
    ref.stop()


def test_kill_while_idle_and_while_busy() -> None:
    journal: list[tuple[str, str]] = []
    idle = spawn(Sleeper(journal, "idle"))
    busy = spawn(Sleeper(journal, "busy"))
    busy.tell(Sleep(seconds=10))
    gevent.sleep(0)
    assert idle.stop(timeout=0) == Killed()
    assert busy.stop(timeout=0.05) == Killed()
    assert ("idle", "stop") in journal and ("busy", "stop") in journal


def test_a_failing_start_fails_the_spawn() -> None:
    with pytest.raises(StartFailed, match="cannot start"):
        spawn(Sleeper([], "bad", fail_start=True))


@pytest.mark.parametrize("strategy", list(Strategy), ids=lambda s: s.value)
def test_supervised_hibernating_children_restart_and_stop(strategy: Strategy) -> None:
    journal: list[tuple[str, str]] = []
    specs = [
        ChildSpec(id=n, start=lambda n=n: Sleeper(journal, n), shutdown=1.0) for n in "abc"
    ]
    sup = Supervisor(specs, strategy=strategy)
    ref = spawn(sup, name="sup")
    child = sup._children["b"].ref
    assert child is not None
    child.tell(Crash())
    child.wait(2)
    ref.which_children()
    restarted = sup._children["b"].ref
    assert restarted is not None and restarted is not child
    assert restarted.ask(Echo(value="again")) == "again"
    assert ("b", "start") in journal[3:]
    first = sup._children["a"].ref
    assert first is not None
    ref.stop(timeout=None)
    assert not restarted.alive and not first.alive


def test_shutdown_kills_a_stuck_hibernating_child() -> None:
    journal: list[tuple[str, str]] = []
    specs = [
        ChildSpec(id="stuck", start=lambda: Sleeper(journal, "stuck"), shutdown=0.1),
        ChildSpec(id="brutal", start=lambda: Sleeper(journal, "brutal"), shutdown=BRUTAL),
        ChildSpec(
            id="idle", start=lambda: Sleeper(journal, "idle"), restart=Restart.TEMPORARY
        ),
    ]
    sup = Supervisor(specs)
    ref = spawn(sup, name="sup")
    stuck = sup._children["stuck"].ref
    brutal = sup._children["brutal"].ref
    idle = sup._children["idle"].ref
    assert stuck is not None and brutal is not None and idle is not None
    stuck.tell(Sleep(seconds=10))
    brutal.tell(Sleep(seconds=10))
    gevent.sleep(0)
    ref.stop(timeout=None)
    assert stuck.wait() == Killed()
    assert brutal.wait() == Killed()
    assert idle.wait() == Shutdown()


class Inline(Sleeper):
    wakes_inline = True


def test_an_inline_actor_handles_messages_with_no_greenlet() -> None:
    seen: list[object] = []
    spawned: list[object] = []

    class Collect(Inline):
        def on_receive(self, message: object) -> object:
            seen.append(message)
            spawned.append(gevent.getcurrent() is gevent.get_hub())
            return message.value if isinstance(message, Echo) else None

    ref = spawn(Collect([], "c"))
    for n in range(5):
        ref.tell(n)
    assert ref.ask(Echo(value="x")) == "x"  # after the five, in order
    for n in range(5, 8):
        ref.tell(n)
    gevent.sleep(0)
    assert seen[:5] == list(range(5)) and seen[6:] == [5, 6, 7]
    assert all(spawned)  # every message was handled in the hub's callbacks
    assert ref.stop() == Shutdown()


def test_an_inline_actor_stops_itself_is_killed_and_monitored() -> None:
    journal: list[tuple[str, str]] = []
    watcher_journal: list[tuple[str, str]] = []
    watcher = Recorder(watcher_journal, "w")
    wref = spawn(watcher)

    class InlineStopper(Inline):
        def on_receive(self, message: object) -> object:
            if message == "done":
                self.stop_self()
            return super().on_receive(message)

    stopper = spawn(InlineStopper(journal, "stopper"))
    killed = spawn(Inline(journal, "killed"))
    stopper.monitor(wref)
    killed.monitor(wref)
    stopper.tell("done")
    assert stopper.wait(2) == Normal()
    killed.tell(Echo(value=1))  # a wake-up is pending when the kill comes
    assert killed.stop(timeout=0) == Killed()
    gevent.sleep(0.01)  # the pending callback finds it dead and does nothing
    wref.ask(Echo(value=None))
    assert {type(d.reason) for d in watcher.downs} == {Normal, Killed}
    assert journal.count(("killed", "stop")) == 1
    wref.stop()


def test_an_inline_actor_whose_handler_blocks_crashes_and_says_so() -> None:
    journal: list[tuple[str, str]] = []

    class Blocks(Inline):
        def on_receive(self, message: object) -> object:
            gevent.sleep(0.01)  # the hub cannot wait: a mistake, reported as a crash
            return None

    ref = spawn(Blocks(journal, "b"))
    ref.tell("x")
    reason = ref.wait(2)
    assert isinstance(reason, Crashed)
    assert ("b", "stop") in journal


def test_stop_soon_ends_an_inline_actor_from_a_callback_after_what_is_queued() -> None:
    journal: list[tuple[str, str]] = []
    seen: list[object] = []

    class Soon(Inline):
        def on_receive(self, message: object) -> object:
            seen.append(message)
            if message == Echo(value="end"):
                self.stop_soon()  # from its handler: it ends at the loop's next pass
            return super().on_receive(message)

    # nothing queued: it ends in a loop callback, no message through its mailbox
    idle = Soon(journal, "idle")
    ref = spawn(idle)
    idle.stop_soon()
    assert ref.alive  # not yet: at the loop's next pass
    assert ref.wait(2) == Normal()
    assert ("idle", "stop") in journal and ref.statistics().messages_handled == 0

    # queued before its end: handled; told once it is over: refused
    busy = Soon(journal, "busy")
    bref = spawn(busy)
    for value in (1, "end", 2):
        bref.tell(Echo(value=value))
    assert bref.wait(2) == Normal()
    assert seen == [Echo(value=1), Echo(value="end"), Echo(value=2)]
    assert journal.count(("busy", "stop")) == 1
    with pytest.raises(ActorDead):
        bref.tell(Echo(value=3))


def test_stop_soon_ends_an_ordinary_actor_after_its_queued_messages() -> None:
    journal: list[tuple[str, str]] = []
    seen: list[object] = []

    class Counting(Recorder):
        def on_receive(self, message: object) -> object:
            seen.append(message)
            return super().on_receive(message)

    actor = Counting(journal, "r")
    ref = spawn(actor)
    ref.tell(Echo(value=1))
    actor.stop_soon()
    ref.tell(Echo(value=2))  # behind the stop: never handled
    assert ref.wait(2) == Normal()
    assert seen == [Echo(value=1)]
    assert journal.count(("r", "stop")) == 1


class Released(Stopper):
    releases_on_exit = True
    wakes_inline = True


@pytest.mark.parametrize("how", ["stop", "stop_self", "kill"])
def test_an_actor_that_releases_on_exit_is_freed_without_the_collector(how: str) -> None:
    """Its refs let it go at its exit: with the cyclic collector off, the actor (and
    what it held) is gone once the caller drops it; its refs still answer as a dead
    actor's do. (A crash's reason keeps its traceback, and with it the actor.)"""
    import gc
    import weakref

    journal: list[tuple[str, str]] = []
    registry = Registry()
    watcher = spawn(Recorder(journal, "w"))
    actor = Released(journal, "r")
    held = weakref.ref(actor)
    ref = spawn(actor, name="released", registry=registry)
    ref.monitor(watcher)
    assert ref.ask(Echo(value=1)) == 1
    del actor
    gc.disable()
    try:
        if how == "stop":
            assert ref.stop() == Shutdown()
        elif how == "stop_self":
            ref.tell("done")
        else:
            assert ref.stop(timeout=0) == Killed()
        reason = ref.wait(5)
        gevent.sleep(0.01)
        assert held() is None, gc.get_referrers(held()) if held() else ""
    finally:
        gc.enable()
    assert reason == {"stop": Shutdown(), "stop_self": Normal(), "kill": Killed()}[how]
    assert not ref.alive and ref.stop() == reason
    assert registry.lookup("released") is None
    with pytest.raises(ActorDead):
        ref.tell(Echo(value=2))
    with pytest.raises(ActorDead):
        ref.ask(Echo(value=2))
    stats = ref.statistics()
    assert not stats.alive and stats.messages_handled >= 1
    late = spawn(Recorder(journal, "late"))
    ref.monitor(late)  # a dead actor's Down comes at once
    ref.call_on_exit(lambda r, why: journal.append(("exit-call", str(why))))
    assert ("exit-call", str(reason)) in journal
    gevent.sleep(0.01)
    assert [d.reason for d in watcher._actor.downs] == [reason]  # type: ignore[attr-defined]
    assert [d.reason for d in late._actor.downs] == [reason]  # type: ignore[attr-defined]
    watcher.stop()
    late.stop()
