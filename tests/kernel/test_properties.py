"""Property tests: random supervision trees under random crash sequences."""

from __future__ import annotations

import time

import gevent
import pytest
from greenlet_census import live_greenlets
from helpers import Crash, Echo, Recorder, Sleep
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skupper_actors.kernel import (
    ActorRef,
    ChildSpec,
    KernelError,
    Restart,
    Strategy,
    Supervisor,
    spawn,
    supervisor_child,
)

ASK_TIMEOUT = 0.2

worker = st.builds(lambda r: ("worker", r), st.sampled_from(list(Restart)))
trees = st.recursive(
    worker,
    lambda kids: st.builds(
        lambda s, i, c: ("supervisor", s, i, c),
        st.sampled_from(list(Strategy)),
        st.integers(0, 4),
        st.lists(kids, min_size=1, max_size=4),
    ),
    max_leaves=10,
)
steps = st.lists(
    st.tuples(st.sampled_from(["crash", "stop", "ask", "slow_ask", "kill"]), st.integers(0, 50)),
    max_size=25,
)


def build(tree: tuple, journal: list, counter: list[int]) -> Supervisor:
    _, strategy, intensity, kids = tree
    specs = []
    for kid in kids:
        counter[0] += 1
        cid = f"n{counter[0]}"
        if kid[0] == "worker":
            specs.append(
                ChildSpec(
                    id=cid, start=lambda c=cid: Recorder(journal, c), restart=kid[1], shutdown=0.5
                )
            )
        else:
            specs.append(supervisor_child(cid, lambda k=kid: build(k, journal, counter)))
    return Supervisor(specs, strategy=strategy, intensity=intensity, period=10)


def live_workers(sup: Supervisor) -> list[ActorRef]:
    found: list[ActorRef] = []
    for child in sup._children.values():
        ref = child.ref
        if ref is None or not ref.alive:
            continue
        if isinstance(ref._actor, Supervisor):
            found.extend(live_workers(ref._actor))
        else:
            found.append(ref)
    return found


def timed_ask(ref: ActorRef, message: object) -> tuple[float, object]:
    start = time.monotonic()
    try:
        outcome: object = ref.ask(message, timeout=ASK_TIMEOUT)
    except KernelError as error:
        outcome = error
    return time.monotonic() - start, outcome


@pytest.mark.timeout(120)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees.filter(lambda t: t[0] == "supervisor"), actions=steps)
def test_random_trees_leave_no_orphans_and_asks_never_hang(tree: tuple, actions: list) -> None:
    before = {id(g) for g in live_greenlets()}
    journal: list = []
    root_actor = build(tree, journal, [0])
    root = spawn(root_actor, name="root")
    asks: list[gevent.Greenlet] = []
    for action, pick in actions:
        workers = live_workers(root_actor)
        if not root.alive or not workers:
            break
        target = workers[pick % len(workers)]
        if action == "crash":
            target.tell(Crash())
        elif action == "stop":
            target.stop(timeout=0.5)
        elif action == "kill":
            target.stop(timeout=0)
        elif action == "ask":
            asks.append(gevent.spawn(timed_ask, target, Echo(value=pick)))
        else:
            asks.append(gevent.spawn(timed_ask, target, Sleep(seconds=0.5)))
        gevent.sleep(0.001)
    gevent.joinall(asks, timeout=5)
    for ask in asks:
        assert ask.dead, "an ask hung past its timeout"
        elapsed, outcome = ask.value
        assert elapsed < ASK_TIMEOUT + 0.5
        assert isinstance(outcome, KernelError) or outcome in ("slept",) or isinstance(outcome, int)
    root.stop(timeout=None)
    gevent.sleep(0)
    leaked = [g for g in live_greenlets() if id(g) not in before]
    assert leaked == [], f"{len(leaked)} orphan greenlets"
    starts = sum(1 for _, e in journal if e == "start")
    stops = sum(1 for _, e in journal if e == "stop")
    assert starts == stops
