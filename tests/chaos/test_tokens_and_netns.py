"""Namespace setup (sites from Skupper v2 resources, linked with tokens; a used token is
replayed) and namespace mode (a network namespace per site; a link cut with ip link down)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from skupper_actors.chaos import load_scenario, run_scenario
from skupper_actors.chaos.netns import NetnsUnavailable, check_netns

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SCENARIOS = Path(__file__).parent / "scenarios"


def netns_unavailable() -> str | None:
    try:
        check_netns()
    except NetnsUnavailable as error:
        return str(error)
    return None


def test_a_replayed_token_is_refused_and_links_made_with_tokens_carry_faults(
    tmp_path: Path,
) -> None:
    report = run_scenario(load_scenario(SCENARIOS / "tokens.yaml"), out=tmp_path)
    data = json.loads(report.json_path.read_text())
    replays = [f for f in data["faults"] if f["kind"] == "replay_token"]
    assert [r["target"] for r in replays] == ["b", "c"]
    for replay in replays:
        assert replay["status"] == "done"
        assert "404" in replay["detail"]["refused_with"]
        assert "used up" in replay["detail"]["refused_with"]
        assert replay["detail"]["node_alive"]
    refusals = report.data.events("b", "grant_refused")
    assert refusals and refusals[-1]["redeemer"] == "chaos-replayer"
    assert report.invariant("used_tokens_refused").passed
    # the links the tokens made run through the fault proxies: cutting one reroutes
    (cut,) = [f for f in data["faults"] if f["kind"] == "cut"]
    assert cut["effects"]["first_route_change_s"] < 1.5
    assert report.passed, [i.summary for i in report.invariants if not i.passed]


@pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable()))
def test_namespace_mode_cuts_a_veth_and_the_hello_max_age_notices(tmp_path: Path) -> None:
    report = run_scenario(load_scenario(SCENARIOS / "netns.yaml"), out=tmp_path)
    data = json.loads(report.json_path.read_text())
    (cut,) = data["faults"]
    assert [state for _, state in cut["detail"]["transitions"]] == ["down", "up"]
    effects = cut["effects"]
    # a downed veth resets nothing: only the HELLO max age (2 s) notices
    assert 1.0 <= effects["hello_timeout_after_s"] <= 3.0
    rerouted = [
        c for c in effects["route_changes"] if c["site"] == "a" and c["routes"]["c"] == [2, ["b"]]
    ]
    assert rerouted
    assert report.passed, [i.summary for i in report.invariants if not i.passed]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert len(report.data.network_namespaces) == 3
    for namespace in report.data.network_namespaces:
        assert namespace not in listed.stdout  # removed at the end
