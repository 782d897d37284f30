"""Supervisors: strategies, intensity, start/stop order, shutdown timeouts, dynamic children."""

from __future__ import annotations

import gevent
import pytest
from helpers import Crash, Echo, Recorder, Sleep

from skupper_actors.kernel import (
    BRUTAL,
    Actor,
    ChildSpec,
    Crashed,
    Killed,
    ManualClock,
    Restart,
    Shutdown,
    StartFailed,
    Strategy,
    Supervisor,
    SupervisorGaveUp,
    spawn,
    supervisor_child,
)

pytestmark = [pytest.mark.timeout(15), pytest.mark.usefixtures("no_leaked_greenlets")]

NAMES = ["a", "b", "c", "d"]


def recorder_specs(journal: list[tuple[str, str]], names: list[str] = NAMES) -> list[ChildSpec]:
    return [ChildSpec(id=n, start=lambda n=n: Recorder(journal, n), shutdown=1.0) for n in names]


def child_ref(sup: Supervisor, child_id: str):
    ref = sup._children[child_id].ref
    assert ref is not None
    return ref


def crash_and_settle(sup: Supervisor, child_id: str) -> None:
    ref = child_ref(sup, child_id)
    ref.tell(Crash())
    ref.wait(2)
    sup.ref.which_children()  # the supervisor has handled the Down once this answers


EXPECTED = {
    # strategy, crashed child -> journal after the crash (stops in reverse, starts in order)
    (Strategy.ONE_FOR_ONE, "a"): [("a", "stop"), ("a", "start")],
    (Strategy.ONE_FOR_ONE, "b"): [("b", "stop"), ("b", "start")],
    (Strategy.ONE_FOR_ONE, "d"): [("d", "stop"), ("d", "start")],
    (Strategy.ONE_FOR_ALL, "a"): [
        ("a", "stop"), ("d", "stop"), ("c", "stop"), ("b", "stop"),
        ("a", "start"), ("b", "start"), ("c", "start"), ("d", "start"),
    ],
    (Strategy.ONE_FOR_ALL, "b"): [
        ("b", "stop"), ("d", "stop"), ("c", "stop"), ("a", "stop"),
        ("a", "start"), ("b", "start"), ("c", "start"), ("d", "start"),
    ],
    (Strategy.ONE_FOR_ALL, "d"): [
        ("d", "stop"), ("c", "stop"), ("b", "stop"), ("a", "stop"),
        ("a", "start"), ("b", "start"), ("c", "start"), ("d", "start"),
    ],
    (Strategy.REST_FOR_ONE, "a"): [
        ("a", "stop"), ("d", "stop"), ("c", "stop"), ("b", "stop"),
        ("a", "start"), ("b", "start"), ("c", "start"), ("d", "start"),
    ],
    (Strategy.REST_FOR_ONE, "b"): [
        ("b", "stop"), ("d", "stop"), ("c", "stop"),
        ("b", "start"), ("c", "start"), ("d", "start"),
    ],
    (Strategy.REST_FOR_ONE, "d"): [("d", "stop"), ("d", "start")],
}  # fmt: skip


@pytest.mark.parametrize(
    ("strategy", "crashed"), list(EXPECTED), ids=lambda v: getattr(v, "value", v)
)
def test_strategy_restarts_the_right_children_in_order(strategy: Strategy, crashed: str) -> None:
    journal: list[tuple[str, str]] = []
    sup = Supervisor(recorder_specs(journal), strategy=strategy)
    ref = spawn(sup, name="sup")
    assert journal == [(n, "start") for n in NAMES]
    before = {n: child_ref(sup, n) for n in NAMES}
    journal.clear()
    crash_and_settle(sup, crashed)
    assert journal == EXPECTED[(strategy, crashed)]
    restarted = {n for n, event in journal if event == "start"}
    for n in NAMES:
        assert (child_ref(sup, n) is not before[n]) == (n in restarted)
        assert child_ref(sup, n).alive
    assert sup.statistics().restarts_total == 1
    journal.clear()
    ref.stop()
    assert journal == [(n, "stop") for n in reversed(NAMES)]


def test_children_start_in_order_and_a_failing_start_fails_the_supervisor() -> None:
    journal: list[tuple[str, str]] = []
    specs = [
        *recorder_specs(journal, ["a", "b"]),
        ChildSpec(id="c", start=lambda: Recorder(journal, "c", fail_start=True)),
        ChildSpec(id="d", start=lambda: Recorder(journal, "d")),
    ]
    with pytest.raises(StartFailed, match="c cannot start"):
        spawn(Supervisor(specs), name="sup")
    # a and b were started, then stopped in reverse; d never started
    assert journal == [("a", "start"), ("b", "start"), ("b", "stop"), ("a", "stop")]


@pytest.mark.parametrize("strategy", list(Strategy), ids=lambda s: s.value)
def test_intensity_n_crashes_restart_n_plus_one_escalate(strategy: Strategy) -> None:
    journal: list[tuple[str, str]] = []
    clock = ManualClock()
    inner = Supervisor(
        recorder_specs(journal, ["a", "b"]), strategy=strategy, intensity=3, period=5
    )
    outer_actor = Supervisor([supervisor_child("inner", lambda: inner)], intensity=0, period=5)
    watcher_actor = Recorder([], "w")
    watcher = spawn(watcher_actor)
    outer = spawn(outer_actor, name="node", clock=clock)
    outer.monitor(watcher)
    for _ in range(3):
        crash_and_settle(inner, "b")
        clock.advance(1)
    assert inner.ref.alive and inner.statistics().restarts_in_window == 3
    child_ref(inner, "b").tell(Crash())
    # inner gives up -> outer sees a crash of "inner" -> outer (intensity 0) gives up too
    reason = outer.wait(2)
    assert isinstance(reason, Crashed) and isinstance(reason.error, SupervisorGaveUp)
    assert "node gave up" in str(reason.error)
    assert not inner.ref.alive
    gevent.sleep(0.01)
    assert watcher_actor.downs and watcher_actor.downs[0].ref is outer
    watcher.stop()
    starts = sum(1 for _, e in journal if e == "start")
    stops = sum(1 for _, e in journal if e == "stop")
    assert starts == stops  # nothing left running


def test_crashes_spread_beyond_the_period_do_not_escalate() -> None:
    clock = ManualClock()
    sup = Supervisor(recorder_specs([], ["a"]), intensity=2, period=5)
    ref = spawn(sup, name="sup", clock=clock)
    for _ in range(10):
        crash_and_settle(sup, "a")
        clock.advance(2.6)  # at most 2 crashes in any 5 s window
    assert ref.alive
    assert sup.statistics().restarts_total == 10
    ref.stop()


def test_gave_up_is_logged() -> None:
    from structlog.testing import capture_logs

    sup = Supervisor(recorder_specs([], ["a"]), intensity=0, period=5)
    with capture_logs() as logs:
        ref = spawn(sup, name="sup")
        child_ref(sup, "a").tell(Crash())
        ref.wait(2)
    gave_up = [e for e in logs if e["event"] == "supervisor_gave_up"]
    assert gave_up and gave_up[0]["actor"] == "sup" and gave_up[0]["child"] == "a"


def test_restart_kinds() -> None:
    journal: list[tuple[str, str]] = []
    specs = [
        ChildSpec(id="perm", start=lambda: Recorder(journal, "perm"), restart=Restart.PERMANENT),
        ChildSpec(id="trans", start=lambda: Recorder(journal, "trans"), restart=Restart.TRANSIENT),
        ChildSpec(id="temp", start=lambda: Recorder(journal, "temp"), restart=Restart.TEMPORARY),
        ChildSpec(
            id="trans2", start=lambda: Recorder(journal, "trans2"), restart=Restart.TRANSIENT
        ),
    ]
    sup = Supervisor(specs, intensity=10)
    ref = spawn(sup, name="sup")
    crash_and_settle(sup, "perm")
    crash_and_settle(sup, "trans")
    crash_and_settle(sup, "temp")
    child_ref(sup, "trans2").stop()  # a normal exit of a transient child: not restarted
    ids = {c.id for c in ref.which_children()}
    assert ids == {"perm", "trans"}
    ref.stop()


def test_shutdown_timeout_and_brutal() -> None:
    journal: list[tuple[str, str]] = []
    specs = [
        ChildSpec(id="patient", start=lambda: Recorder(journal, "patient"), shutdown=5.0),
        ChildSpec(id="stuck", start=lambda: Recorder(journal, "stuck"), shutdown=0.1),
        ChildSpec(id="brutal", start=lambda: Recorder(journal, "brutal"), shutdown=BRUTAL),
    ]
    sup = Supervisor(specs)
    ref = spawn(sup, name="sup")
    stuck = child_ref(sup, "stuck")
    brutal = child_ref(sup, "brutal")
    patient = child_ref(sup, "patient")
    stuck.tell(Sleep(seconds=10))
    brutal.tell(Sleep(seconds=10))
    gevent.sleep(0)
    started = gevent.get_hub().loop.now()
    ref.stop(timeout=None)
    elapsed = gevent.get_hub().loop.now() - started
    assert elapsed < 2
    assert brutal.wait() == Killed()
    assert stuck.wait() == Killed()
    assert patient.wait() == Shutdown()


def test_dynamic_children() -> None:
    journal: list[tuple[str, str]] = []
    sup = Supervisor()
    ref = spawn(sup, name="conns")
    refs = [
        ref.start_child(
            ChildSpec(
                id=f"c{i}", start=lambda i=i: Recorder(journal, f"c{i}"), restart=Restart.TEMPORARY
            )
        )
        for i in range(200)
    ]
    assert [r.path for r in refs[:2]] == ["conns/c0", "conns/c1"]
    assert refs[7].ask(Echo(value="hi")) == "hi"
    with pytest.raises(ValueError, match="already has a child 'c3'"):
        ref.start_child(ChildSpec(id="c3", start=lambda: Recorder(journal, "dup")))
    with pytest.raises(StartFailed):
        ref.start_child(
            ChildSpec(id="bad", start=lambda: Recorder(journal, "bad", fail_start=True))
        )
    assert ref.terminate_child("c5") is True
    assert ref.terminate_child("c5") is False
    refs[6].tell(Crash())  # temporary: removed, not restarted
    refs[6].wait(1)
    assert len(ref.which_children()) == 198  # answered after the Down was handled
    assert sup.statistics().children == 198
    assert sup.statistics().restarts_total == 0
    ref.stop()
    assert all(not r.alive for r in refs)


def test_a_temporary_childs_exit_is_forgotten_without_waking_the_supervisor() -> None:
    """``call_on_exit``: the child is gone from the supervisor's books when its exit
    returns; no ``Down`` went through the supervisor's mailbox."""
    journal: list[tuple[str, str]] = []
    sup = Supervisor(intensity=10)
    ref = spawn(sup, name="conns")
    child = ref.start_child(
        ChildSpec(id="t", start=lambda: Recorder(journal, "t"), restart=Restart.TEMPORARY)
    )
    handled = sup.statistics().messages_handled
    child.tell(Crash())
    child.wait(1)
    assert sup.statistics().children == 0  # at once: no message to wait for
    assert sup.statistics().messages_handled == handled
    assert sup.statistics().mailbox_depth == 0
    dead = ChildSpec(id="t", start=lambda: Recorder(journal, "again"), restart=Restart.TEMPORARY)
    assert ref.start_child(dead).alive  # the id is free again
    ref.stop()


def test_nested_supervisor_subtree_stops_before_parent_siblings() -> None:
    journal: list[tuple[str, str]] = []

    def subtree() -> Supervisor:
        return Supervisor(recorder_specs(journal, ["x", "y"]))

    specs = [
        ChildSpec(id="first", start=lambda: Recorder(journal, "first")),
        supervisor_child("sub", subtree),
        ChildSpec(id="last", start=lambda: Recorder(journal, "last")),
    ]
    ref = spawn(Supervisor(specs, strategy=Strategy.REST_FOR_ONE), name="node")
    assert journal == [("first", "start"), ("x", "start"), ("y", "start"), ("last", "start")]
    journal.clear()
    ref.stop()
    assert journal == [("last", "stop"), ("y", "stop"), ("x", "stop"), ("first", "stop")]


def test_unknown_message_crashes_with_clear_error() -> None:
    class Nothing(Actor):
        pass

    ref = spawn(Nothing())
    ref.tell(Echo(value=1))
    reason = ref.wait(1)
    assert isinstance(reason, Crashed)
    assert "cannot handle Echo" in str(reason.error)
