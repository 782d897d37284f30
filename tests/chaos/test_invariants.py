"""The invariant checkers and the report writer, on run data made by hand."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from skupper_actors.chaos import FaultKind, FaultRecord, Ledger, Outcome, parse_scenario
from skupper_actors.chaos.invariants import check_invariants
from skupper_actors.chaos.monitor import Observations, Sample, UnexpectedExit
from skupper_actors.chaos.report import write_report
from skupper_actors.chaos.rundata import RunData
from skupper_actors.chaos.schedule import FaultEvent

SCENARIO = parse_scenario(
    """
name: unit
duration: 60s
sites: [a, b, c]
links: [{from: a, to: b}, {from: b, to: c}]
services: [{name: svc, connectors: [c], listeners: [a]}]
invariants: {recovery_within: 5s, memory_limit: 100MiB}
"""
)


def run_with(ledger: Ledger, faults: list[FaultRecord] = ()) -> RunData:  # type: ignore[assignment]
    run = RunData(scenario=SCENARIO, seed=1, duration=60, ledger=ledger, ended_at=60)
    run.faults = list(faults)
    run.schedule = tuple(f.event for f in run.faults)
    run.observed = Observations(
        samples=[
            Sample(
                at=float(t),
                bytes_verified=t * 1000,
                errors=0,
                open_connections=2,
                rss_kib={"a": (50 << 10) + t, "b": None},
            )
            for t in range(61)
        ],
        peak_rss_kib={"a": 50 << 10, "b": 60 << 10, "c": 70 << 10},
    )
    return run


def probe(ledger: Ledger, at: float, outcome: Outcome, verified: int = 512) -> None:
    record = ledger.open(kind="probe", service="svc", site="a", started=at, up=512, down=512)
    record.verified = verified
    ledger.close(record, outcome, at + 0.01, None if outcome is Outcome.INTACT else "boom")
    ledger.server_verdict(record.id, Outcome.INTACT, at, verified=512)


def results(run: RunData) -> dict[str, bool]:
    return {r.name: r.passed for r in check_invariants(run)}


def healthy_ledger() -> Ledger:
    ledger = Ledger()
    for second in range(60):
        probe(ledger, second + 0.5, Outcome.INTACT)
    ledger.bytes_verified = 60 * 512
    return ledger


def test_a_healthy_run_passes_everything() -> None:
    assert all(results(run_with(healthy_ledger())).values())


def test_a_corrupted_delivery_fails_no_corrupted_bytes() -> None:
    ledger = healthy_ledger()
    record = ledger.open(kind="stream", service="svc", site="a", started=3, up=10, down=10)
    record.first_bad = 4
    ledger.close(record, Outcome.CORRUPTED, 3.5, "byte 4 differs")
    outcome = results(run_with(ledger))
    assert outcome["no_corrupted_bytes"] is False
    assert outcome["no_silent_truncation"] is True


def test_silent_truncation_at_either_end_fails_but_a_refused_connection_does_not() -> None:
    ledger = healthy_ledger()
    unserved = ledger.open(kind="stream", service="svc", site="a", started=4, up=10, down=10)
    ledger.close(unserved, Outcome.TRUNCATED, 4.1, "clean EOF after 0 of 10 bytes")
    assert results(run_with(ledger))["no_silent_truncation"] is True
    server_side = ledger.open(kind="stream", service="svc", site="a", started=5, up=10, down=10)
    ledger.close(server_side, Outcome.ERROR, 5.1, "reset")
    ledger.server_verdict(server_side.id, Outcome.TRUNCATED, 5.1, verified=3, error="EOF")
    assert results(run_with(ledger))["no_silent_truncation"] is False


def test_an_end_cut_short_by_its_own_node_being_killed_is_told_apart() -> None:
    kill = FaultEvent(index=0, at=9, kind=FaultKind.KILL, target="a", duration=2)
    record = FaultRecord(event=kill, started=9.0, ended=11.0, status="done")
    ledger = healthy_ledger()
    stream = ledger.open(kind="stream", service="svc", site="a", started=8, up=10, down=10)
    stream.verified = 4
    ledger.close(stream, Outcome.TRUNCATED, 9.05, "clean EOF after 4 of 10 bytes")
    verdict = {r.name: r for r in check_invariants(run_with(ledger, [record]))}
    truncation = verdict["no_silent_truncation"]
    assert truncation.passed and truncation.evidence["ended_with_their_killed_node"] == 1
    assert results(run_with(ledger))["no_silent_truncation"] is False  # no kill: a violation


def test_recovery_is_judged_only_where_a_path_remains() -> None:
    cut = FaultEvent(index=0, at=10, kind=FaultKind.CUT, target="b-c", duration=20)
    record = FaultRecord(event=cut, started=10.0, ended=30.0, status="done")
    ledger = healthy_ledger()
    probe(ledger, 20.2, Outcome.ERROR)  # b-c is the only way to c: no path, not judged
    assert results(run_with(ledger, [record]))["new_connections_recover"] is True
    probe(ledger, 40.2, Outcome.ERROR)  # ten seconds after the link came back: judged
    verdict = {r.name: r for r in check_invariants(run_with(ledger, [record]))}
    recover = verdict["new_connections_recover"]
    assert recover.passed is False
    assert recover.evidence["failures"][0]["at"] == 40.2


def test_exits_memory_supervisors_and_replays() -> None:
    run = run_with(healthy_ledger())
    run.observed.exits.append(UnexpectedExit(at=12, site="b", code=-11, log_tail="segfault"))
    run.observed.peak_rss_kib["c"] = 150 << 10
    run.node_events = {"a": [{"event": "supervisor_gave_up", "t": 3.0, "actor": "a/router"}]}
    replay = FaultEvent(index=0, at=5, kind=FaultKind.REPLAY_TOKEN, target="b")
    run.faults = [
        FaultRecord(event=replay, started=5, ended=5.1, status="failed", detail={"accepted": True})
    ]
    outcome = results(run)
    assert outcome["no_unexpected_exits"] is False
    assert outcome["memory_bound"] is False
    assert outcome["supervisor_restarts_within_intensity"] is False
    assert outcome["used_tokens_refused"] is False
    assert outcome["faults_injected"] is False


def test_no_traffic_is_not_a_pass() -> None:
    assert results(run_with(Ledger()))["traffic_flowed"] is False


def test_the_report_has_json_summary_and_a_timeline(tmp_path: Path) -> None:
    cut = FaultEvent(index=0, at=10, kind=FaultKind.CUT, target="b-c", duration=5)
    kill = FaultEvent(index=1, at=20, kind=FaultKind.KILL, target="b", duration=3)
    faults = [
        FaultRecord(event=cut, started=10.0, ended=15.0, status="done"),
        FaultRecord(event=kill, started=20.0, ended=24.0, status="done"),
    ]
    run = run_with(healthy_ledger(), faults)
    report = write_report(run, check_invariants(run), tmp_path)
    assert report.passed
    data = json.loads(report.json_path.read_text())
    assert data["passed"] is True and data["seed"] == 1
    assert [f["kind"] for f in data["faults"]] == ["cut", "kill"]
    assert data["connections"]["totals"]["probe"] == {"intact": 60}
    assert len(data["connections"]["records"]) == 60
    summary = report.summary_path.read_text()
    assert "unit (seed 1" in summary and "PASSED" in summary and "cut b-c" in summary
    svg = ET.parse(report.timeline_path).getroot()
    assert svg.tag.endswith("svg")
    namespace = "{http://www.w3.org/2000/svg}"
    lines = svg.findall(f"{namespace}polyline")
    assert len(lines) == 4  # throughput, errors, connections, and a's memory (b was down)
    assert data["nodes"]["a"]["rss_mib"][0] == [0.0, 50.0]
    marks = [t.text for t in svg.iter(f"{namespace}title")]
    assert any(m and m.startswith("cut b-c") for m in marks)
    assert any(m and m.startswith("kill b") for m in marks)


def test_truncations_and_corruptions_are_counted_in_the_report_and_fail_it(
    tmp_path: Path,
) -> None:
    ledger = healthy_ledger()
    reset = ledger.open(kind="stream", service="svc", site="a", started=6, up=10, down=10)
    reset.verified = 3
    ledger.close(reset, Outcome.ERROR, 6.2, "ConnectionResetError: [Errno 104]")
    report = write_report(run_with(ledger), check_invariants(run_with(ledger)), tmp_path)
    stalled = ledger.open(kind="stream", service="svc", site="a", started=6, up=10, down=10)
    ledger.close(stalled, Outcome.INTACT, 6.3)  # the client sent and read all, then the
    ledger.server_verdict(stalled.id, Outcome.TIMEOUT, 21.3, verified=4)  # server waited
    report = write_report(run_with(ledger), check_invariants(run_with(ledger)), tmp_path)
    assert report.passed  # a reset is what a broken connection must look like
    counts = json.loads(report.json_path.read_text())["integrity"]
    assert counts["silent_truncations"] == counts["corrupted_deliveries"] == 0
    assert counts["unconfirmed_uploads"] == counts["unconfirmed_stalled"] == 1
    assert "(1 unconfirmed uploads, 1 of them stalled" in report.summary_path.read_text()
    for started in (7, 8):  # a clean EOF mid-stream at the client, then at the server
        cut = ledger.open(kind="stream", service="svc", site="a", started=started, up=9, down=9)
        cut.verified = 4
        ledger.close(cut, Outcome.TRUNCATED, started + 0.5, "clean EOF after 4 of 9 bytes")
    server = ledger.open(kind="stream", service="svc", site="a", started=9, up=9, down=9)
    ledger.close(server, Outcome.INTACT, 9.5)
    ledger.server_verdict(server.id, Outcome.TRUNCATED, 9.4, verified=2, error="clean EOF")
    bad = ledger.open(kind="stream", service="svc", site="a", started=10, up=9, down=9)
    bad.first_bad = 5
    ledger.close(bad, Outcome.CORRUPTED, 10.5, "byte 5 differs")
    run = run_with(ledger)
    report = write_report(run, check_invariants(run), tmp_path)
    assert report.passed is False
    data = json.loads(report.json_path.read_text())
    assert data["passed"] is False
    assert data["integrity"]["silent_truncations"] == 3
    assert data["integrity"]["corrupted_deliveries"] == 1
    summary = report.summary_path.read_text()
    assert "integrity: 3 silent truncations, 1 corrupted deliveries" in summary
    assert "FAIL  no_silent_truncation: 3 connection ends saw a clean EOF" in summary


def _rss_run(rss: dict[str, list[int | None]]) -> RunData:
    """A healthy run whose nodes' resident sizes (MiB, None = down) are ``rss``, one
    sample a second."""
    run = run_with(healthy_ledger())
    run.observed.samples = [
        Sample(
            at=float(t),
            bytes_verified=t * 1000,
            errors=0,
            open_connections=2,
            rss_kib={site: None if v[t] is None else v[t] << 10 for site, v in rss.items()},
        )
        for t in range(61)
    ]
    return run


def test_memory_not_growing_after_warm_up() -> None:
    scenario_limit = SCENARIO.invariants.memory_growth_mib  # the default: 48 MiB
    flat = [60 + (30 if 14 <= t <= 16 else 0) for t in range(61)]  # warm-up, a burst: flat
    growing = [60 + t * 2 for t in range(61)]  # 2 MiB a second
    restarted: list[int | None] = [
        60 + t * 2 if t < 40 else (None if t < 42 else 55) for t in range(61)
    ]
    verdict = {r.name: r for r in check_invariants(_rss_run({"a": flat, "b": restarted}))}
    passed = verdict["memory_not_growing"]
    assert passed.passed is True, passed.evidence
    # b's longest stretch after warm-up (15 s on) is before its restart: ~+35 MiB, under
    assert passed.evidence["sites"]["b"]["to"] == 39.0
    verdict = {r.name: r for r in check_invariants(_rss_run({"a": flat, "c": growing}))}
    failed = verdict["memory_not_growing"]
    assert failed.passed is False
    assert failed.evidence["sites"]["c"]["growth_mib"] > scenario_limit
    assert "c +" in failed.summary and "a +" not in failed.summary
