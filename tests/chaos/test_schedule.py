"""Fault schedules: the same seed gives the same schedule, always inside the run."""

from __future__ import annotations

import io
import itertools
from dataclasses import replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from skupper_actors.chaos import FaultKind, load_scenario, parse_scenario, plan_schedule
from skupper_actors.chaos.cli import ProgressDisplay, main
from skupper_actors.chaos.runner import Progress
from skupper_actors.chaos.scenario import LINK_FAULTS
from skupper_actors.chaos.schedule import INSTANT

ROOT = Path(__file__).resolve().parents[2]
SOAK = ROOT / "config" / "chaos" / "soak.yaml"


def test_same_seed_same_schedule_and_another_seed_another() -> None:
    soak = load_scenario(SOAK)
    first = plan_schedule(soak, seed=7, duration=soak.duration)
    again = plan_schedule(load_scenario(SOAK), seed=7, duration=soak.duration)
    assert first == again
    assert len(first) > 50  # a fault every 8-20 s for 30 minutes
    other = plan_schedule(soak, seed=8, duration=soak.duration)
    assert [e.to_json() for e in other] != [e.to_json() for e in first]


def test_the_cli_prints_the_same_plan_twice() -> None:
    outputs = []
    for _ in range(2):
        out = io.StringIO()
        assert main(["plan", str(SOAK), "--seed", "3", "--duration", "5m"], stdout=out) == 0
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]
    assert outputs[0].count("[random]") > 10


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**63), minutes=st.integers(1, 40))
def test_random_schedules_are_deterministic_ordered_and_inside_the_run(
    seed: int, minutes: int
) -> None:
    soak = load_scenario(SOAK)
    duration = minutes * 60.0
    events = plan_schedule(soak, seed=seed, duration=duration)
    assert events == plan_schedule(soak, seed=seed, duration=duration)
    assert [e.index for e in events] == list(range(len(events)))
    assert [e.at for e in events] == sorted(e.at for e in events)
    sites = set(soak.site_names())
    links = {link.name for link in soak.links}
    spec = soak.random_faults
    assert spec is not None
    for event in events:
        assert event.kind in spec.kinds
        assert event.at >= spec.start
        assert (event.end or event.at) < duration
        assert event.target in (links if event.kind in LINK_FAULTS else sites)
        assert (event.duration is None) == (event.kind in INSTANT)
    for before, after in itertools.pairwise(events):
        assert after.at >= (before.end or before.at) + spec.gap[0] - 1e-6  # one at a time


def test_stated_faults_come_first_at_equal_times_and_late_ones_are_dropped() -> None:
    scenario = parse_scenario(
        """
name: t
duration: 60s
sites: [a, b]
links: [{from: a, to: b}]
faults:
  - {at: 5s, kind: kill, site: b, duration: 2s}
  - {at: 40s, kind: cut, link: a-b}
random_faults: {kinds: [stop], start: 5s, gap: 10s, duration: 1s}
"""
    )
    events = plan_schedule(scenario, seed=1, duration=30)
    assert events[0].kind is FaultKind.KILL and events[0].origin == "scenario"
    assert events[1].kind is FaultKind.STOP and events[1].origin == "random"
    assert events[1].at == events[0].at == 5.0
    assert all(e.at < 30 for e in events)
    assert not any(e.kind is FaultKind.CUT for e in events)  # at 40 s, after a 30 s run


def test_progress_display_redraws_one_line_on_a_terminal_and_prints_lines_otherwise() -> None:
    progress = Progress(
        at=12.5, duration=40, phase="running", faults_done=2, faults_total=6,
        active_faults=("cut a-b for 2s",), intact=120, errors=3, open_connections=5,
        bytes_verified=3 << 20, nodes_up=3, nodes=4, messages=("+12.0s active cut a-b",),
    )  # fmt: skip
    terminal = io.StringIO()
    ProgressDisplay(terminal, interactive=True)(progress)
    text = terminal.getvalue()
    assert text.startswith("\r\x1b[K+12.0s active cut a-b\n[running]   12.5/40s")
    assert "nodes up 3/4" in text and "active: cut a-b for 2s" in text and "\n" not in text[-5:]
    log = io.StringIO()
    display = ProgressDisplay(log, interactive=False)
    display(progress)
    display(replace(progress, at=13.0, messages=()))  # within 10 s: no second status line
    assert log.getvalue().count("[running]") == 1
