"""new_connections_recover when one fault starts inside the recovery window of the one before."""

from __future__ import annotations

from skupper_actors.chaos import FaultKind, FaultRecord, Ledger, Outcome, parse_scenario
from skupper_actors.chaos.invariants import InvariantResult, check_invariants
from skupper_actors.chaos.recovery import fault_timeline
from skupper_actors.chaos.rundata import RunData
from skupper_actors.chaos.schedule import FaultEvent

#   a --- b --- c --- e     a reaches the connector at c over a-b-c (cost 2);
#    \         /            a-d-c (cost 4) is the way round; e is a spur no path to c needs
#     d ------
SCENARIO = parse_scenario(
    """
name: overlap
duration: 60s
sites: [a, b, c, d, e]
links:
  - {from: a, to: b}
  - {from: b, to: c}
  - {from: a, to: d, cost: 2}
  - {from: d, to: c, cost: 2}
  - {from: c, to: e}
services: [{name: svc, connectors: [c], listeners: [a]}]
invariants: {recovery_within: 5s, memory_limit: 100MiB, min_intact_streams: 0}
"""
)


def fault(index: int, at: float, kind: FaultKind, target: str, duration: float) -> FaultRecord:
    event = FaultEvent(index=index, at=at, kind=kind, target=target, duration=duration)
    return FaultRecord(event=event, started=at, ended=at + duration, status="done")


def probe(ledger: Ledger, at: float, outcome: Outcome) -> None:
    record = ledger.open(kind="probe", service="svc", site="a", started=at, up=512, down=512)
    record.verified = 512 if outcome is Outcome.INTACT else 0
    ledger.close(record, outcome, at + 0.01, None if outcome is Outcome.INTACT else "reset")


def recover(faults: list[FaultRecord], failing: tuple[float, ...]) -> InvariantResult:
    """The verdict with a probe every half second, those at ``failing`` failed."""
    ledger = Ledger()
    for tenth in range(0, 600, 5):
        at = tenth / 10 + 0.1
        probe(ledger, at, Outcome.ERROR if round(at, 1) in failing else Outcome.INTACT)
    run = RunData(scenario=SCENARIO, seed=1, duration=60, ledger=ledger, ended_at=60)
    run.faults = faults
    run.schedule = tuple(f.event for f in faults)
    verdicts = {r.name: r for r in check_invariants(run)}
    return verdicts["new_connections_recover"]


def test_a_fault_elsewhere_does_not_hide_an_earlier_faults_failed_recovery() -> None:
    # the cut of a-b is over at 15 s: from 20 s new connections must work. The spur's node
    # is killed at 18 s, inside that window; it is on no path from a to c, so the probes
    # at 20-23 s still judge the cut's recovery (they used to go unjudged).
    faults = [
        fault(0, 10, FaultKind.CUT, "a-b", 5),
        fault(1, 18, FaultKind.KILL, "e", 12),
    ]
    verdict = recover(faults, failing=(20.1, 21.1, 22.1))
    assert verdict.passed is False
    failures = verdict.evidence["failures"]
    assert [f["at"] for f in failures] == [20.1, 21.1, 22.1]
    assert failures[0]["recovery_of"] == ["#0 cut a-b for 5s"]
    cut, kill = verdict.evidence["faults"]
    assert cut["judged"] and cut["first_judged_at"] == 20.1 and cut["failed"] == 3
    assert "waited_for" not in cut
    assert kill["deadline"] == 35.0 and kill["failed"] == 0


def test_the_same_probes_pass_once_new_connections_recovered_in_time() -> None:
    faults = [fault(0, 10, FaultKind.CUT, "a-b", 5), fault(1, 18, FaultKind.KILL, "e", 12)]
    verdict = recover(faults, failing=(15.1, 16.1, 17.1, 18.1, 19.1))  # inside the window
    assert verdict.passed, verdict.evidence.get("failures")
    assert verdict.evidence["faults"][0]["probes"] >= 9


def test_a_later_fault_on_the_probes_path_excuses_them_and_is_named() -> None:
    # b is stopped at 18 s, inside the cut's window: a-b-c was the least-cost path, so
    # the probes wait for the stop's own window (a path remains, round by d): the cut is
    # judged from 23 s, with the stop named; the stop's end excuses 24-29 s again
    faults = [fault(0, 10, FaultKind.CUT, "a-b", 5), fault(1, 18, FaultKind.STOP, "b", 6)]
    verdict = recover(faults, failing=(20.1, 21.1, 25.1, 28.1))
    assert verdict.passed, verdict.evidence.get("failures")
    cut, stop = verdict.evidence["faults"]
    assert cut["first_judged_at"] == 23.1 and cut["waited_for"] == ["#1 stop b for 6s"]
    assert stop["deadline"] == 29.0 and stop["first_judged_at"] == 29.1
    verdict = recover(faults, failing=(23.1, 29.1))
    assert verdict.passed is False
    first, second = verdict.evidence["failures"]
    assert first["recovery_of"] == ["#0 cut a-b for 5s"]
    assert second["recovery_of"] == ["#1 stop b for 6s"]


def test_a_fault_whose_window_outlasts_the_run_is_reported_unjudged() -> None:
    faults = [fault(0, 10, FaultKind.CUT, "a-b", 5), fault(1, 50, FaultKind.KILL, "b", 8)]
    verdict = recover(faults, failing=())
    assert verdict.passed
    assert verdict.evidence["faults_not_judged"] == ["#1 kill b for 8s"]
    assert "1 of 2 faults' recovery judged" in verdict.summary


def test_least_cost_elements_follow_the_faults() -> None:
    timeline = fault_timeline(
        RunData(
            scenario=SCENARIO,
            seed=1,
            duration=60,
            ended_at=60,
            faults=[fault(0, 10, FaultKind.CUT, "b-c", 5)],
        )
    )
    assert timeline.least_cost_elements(5, "a", ("c",)) == {"a", "b", "c", "a-b", "b-c"}
    assert timeline.least_cost_elements(12, "a", ("c",)) == {"a", "d", "c", "a-d", "d-c"}
    assert timeline.least_cost_elements(12, "e", ("c",)) == {"e", "c", "c-e"}
