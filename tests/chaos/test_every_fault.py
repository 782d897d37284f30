"""Each fault kind, proved to have happened, in one run of real nodes (scenarios/every_fault.yaml).

a-c (cost 1) carries all the traffic; a-b-c (cost 2) is the way round. Each test reads
the report a user would read: the fault's record, its effects, the traffic it hurt.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skupper_actors.chaos import RunReport, load_scenario, plan_schedule, run_scenario

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

SCENARIO = Path(__file__).parent / "scenarios" / "every_fault.yaml"
MiB = 1 << 20


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunReport, dict[str, Any]]]:
    report = run_scenario(load_scenario(SCENARIO), out=tmp_path_factory.mktemp("every-fault"))
    yield report, json.loads(report.json_path.read_text())


def fault(data: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [f for f in data["faults"] if f["kind"] == kind]
    assert found["status"] == "done", found
    return found


def verified_rate(report: RunReport, start: float, end: float) -> float:
    """Verified bytes per second between two run times (from the monitor's samples)."""
    samples = report.data.observed.samples
    first = min(samples, key=lambda s: abs(s.at - start))
    last = min(samples, key=lambda s: abs(s.at - end))
    return (last.bytes_verified - first.bytes_verified) / (last.at - first.at)


def node_ready_count(report: RunReport, site: str) -> int:
    return len(report.data.events(site, "node_ready"))


def test_the_schedule_is_the_seeds_and_every_fault_was_injected(run) -> None:
    report, data = run
    scenario = load_scenario(SCENARIO)
    planned = plan_schedule(scenario, seed=scenario.seed, duration=scenario.duration)
    assert report.data.schedule == planned
    assert [f["kind"] for f in data["faults"]] == [e.kind.value for e in planned]
    for name in ("faults_injected", "no_corrupted_bytes", "no_unexpected_exits", "memory_bound"):
        assert report.invariant(name).passed, report.invariant(name)


def test_latency_really_adds_latency(run) -> None:
    report, data = run
    fault(data, "latency")
    latencies = report.data.ledger.latencies
    before = [lat for at, lat, ok in latencies if ok and 0.5 <= at < 2.0]
    during = [lat for at, lat, ok in latencies if ok and 2.5 <= at < 4.7]
    assert before and during
    added = statistics.median(during) - statistics.median(before)
    assert 0.27 <= added < 1.0, (statistics.median(before), statistics.median(during))


def test_a_bandwidth_cap_caps(run) -> None:
    report, data = run
    record = fault(data, "bandwidth")
    before = verified_rate(report, 0.5, 2.0)
    during = verified_rate(report, 6.8, 9.0)
    assert before > 12 * MiB  # so the cap is what slowed it
    assert during < 2 * 2 * MiB * 1.3  # 2 MiB/s each way
    proxy = record["detail"]["proxy"]
    assert 2.9 <= proxy["seconds"] < 4.0, proxy  # the 3 s fault, as the proxy saw it
    # while capped: 2 MiB/s each way, plus the one burst (rate / 10) each bucket may hold
    # and the 64 KiB read each of the link's connections had in hand at the switch
    bound = proxy["seconds"] * 2 * 2 * MiB + 2 * 0.2 * MiB + 0.5 * MiB
    assert proxy["bytes_relayed"] < bound * 1.05, proxy


def lost_neighbours(effects: dict[str, Any]) -> list[dict[str, Any]]:
    return [q for q in effects.get("quoted", ()) if q["event"] == "neighbour_lost"]


def test_a_cut_link_is_really_cut_routes_change_at_once(run) -> None:
    _, data = run
    effects = fault(data, "cut")["effects"]
    assert effects["first_route_change_s"] < 1.0  # noticed on socket close
    lost = lost_neighbours(effects)
    assert lost and all(q["reason"] == "link-closed" and q["at"] < 0.5 for q in lost), lost
    rerouted = [
        change
        for change in effects["route_changes"]
        if change["site"] == "a" and change["routes"].get("c") == [2, ["b"]]
    ]
    assert rerouted, effects["route_changes"]
    assert [state for _, state in effects["proxy_transitions"]][:2] == ["down", "up"]


def test_a_blackhole_is_silent_so_the_hello_max_age_trips(run) -> None:
    _, data = run
    record = fault(data, "blackhole")
    effects = record["effects"]
    assert record["detail"]["proxy"]["bytes_dropped"] > 0
    # nothing was closed: only the HELLO max age (2 s, hellos every 0.5 s) can notice
    assert 1.0 <= effects["hello_timeout_after_s"] <= 3.0
    lost = lost_neighbours(effects)
    assert min(q["at"] for q in lost) >= 1.0, lost


def test_a_flapping_link_goes_down_and_up_repeatedly(run) -> None:
    _, data = run
    effects = fault(data, "flap")["effects"]
    states = [state for _, state in effects["proxy_transitions"]]
    assert states.count("down") >= 2 and states.count("up") >= 2


def test_flipped_bits_on_a_tls_link_are_rejected_never_delivered(run) -> None:
    report, data = run
    record = fault(data, "flip_bits")
    assert record["detail"]["proxy"]["bits_flipped"] > 0
    reasons = [
        q.get("reason", "") for q in record["effects"]["quoted"] if q["event"] == "link_closed"
    ]
    assert any("SSL" in reason for reason in reasons), reasons  # TLS refused the record
    assert report.invariant("no_corrupted_bytes").passed


def test_a_stopped_node_stalls_silently_until_the_hello_max_age_trips(run) -> None:
    _, data = run
    effects = fault(data, "stop")["effects"]
    assert 1.0 <= effects["hello_timeout_after_s"] <= 3.0
    lost_b = [
        c
        for c in effects["route_changes"]
        if c["site"] == "a" and c["routes"].get("b") != [1, ["b"]]
    ]
    assert lost_b


def test_kill_minus_nine_then_restart(run) -> None:
    report, data = run
    record = fault(data, "kill")
    assert record["detail"]["exit_code"] == -9
    assert record["detail"]["restart_ready_s"] > 0
    assert record["effects"]["first_route_change_s"] < 1.0  # neighbours saw the sockets close
    assert node_ready_count(report, "b") == 2


def test_graceful_restart(run) -> None:
    report, data = run
    record = fault(data, "restart")
    assert record["detail"]["exit_code"] == 0
    assert node_ready_count(report, "c") == 2


def test_garbage_to_a_nodes_port_is_refused_and_the_node_keeps_running(run) -> None:
    report, data = run
    record = fault(data, "garbage")
    results = [attempt["result"] for attempt in record["detail"]["attempts"]]
    assert len(results) == 7
    assert all(r.startswith(("closed by the node", "reset by the node")) for r in results), results
    assert record["detail"]["node_alive"] and record["detail"]["management_answered"]
    assert record["effects"]["log_events"].get("b:link_refused", 0) >= 6
    assert report.invariant("no_unexpected_exits").passed
