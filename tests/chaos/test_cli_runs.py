"""``skupper-chaos run`` as CI runs it: the smoke scenario passes (exit 0); a planted
violation fails (exit 1) with the evidence in the report."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).parent / "scenarios"


def chaos(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skupper_actors.chaos.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.timeout(150)
def test_the_smoke_scenario_passes(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    result = chaos("run", "config/chaos/smoke.yaml", "--out", str(out), timeout=140)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "smoke (seed 1, 40 s, proxy mode): PASSED" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is True
    assert all(invariant["passed"] for invariant in report["invariants"])
    assert (
        [f["status"] for f in report["faults"]] == ["done"] * len(report["faults"]) == ["done"] * 6
    )
    assert report["connections"]["bytes_verified"] > 50 << 20
    svg = ET.parse(out / "timeline.svg").getroot()
    titles = [t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    kinds = ("cut ", "kill ", "stop ", "garbage ", "flip_bits ", "latency ")
    marks = [title for title in titles if title.startswith(kinds)]
    assert len(marks) == 6 and any(mark.startswith("kill d") for mark in marks)
    assert {"a", "b", "c", "d"} <= set(titles)  # one memory line per node
    assert (out / "summary.txt").read_text() in result.stdout
    assert sorted(p.name for p in (out / "nodes").glob("*.log")) == [
        "a.log", "b.log", "c.log", "d.log",
    ]  # fmt: skip


@pytest.mark.timeout(90)
def test_a_planted_violation_fails_the_run_with_evidence(tmp_path: Path) -> None:
    out = tmp_path / "planted"
    result = chaos("run", str(SCENARIOS / "planted_violation.yaml"), "--out", str(out), timeout=80)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FAIL  no_corrupted_bytes" in result.stdout
    report = json.loads((out / "report.json").read_text())
    verdicts = {i["name"]: i for i in report["invariants"]}
    corrupted = verdicts["no_corrupted_bytes"]
    assert corrupted["passed"] is False
    assert corrupted["evidence"]["corruptions"], corrupted
    assert report["integrity"]["corrupted_deliveries"] > 0  # a count, and exit status 1
    (planted,) = report["faults"]
    assert planted["detail"]["proxy"]["frames_corrupted"] > 0
    # every corruption was seen while the planted fault was on (plus delivery lag)
    for corruption in corrupted["evidence"]["corruptions"]:
        assert planted["started"] <= corruption["at"] <= planted["ended"] + 2.0
    assert verdicts["no_unexpected_exits"]["passed"]  # the nodes themselves were fine


def test_a_bad_scenario_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsites: [a]\nfaults: [{at: 1s, kind: cut, link: a-b}]\n")
    result = chaos("run", str(bad), "--out", str(tmp_path / "out"), timeout=30)
    assert result.returncode == 2
    assert f"{bad}: faults[0].link: cut needs a known link" in result.stderr
