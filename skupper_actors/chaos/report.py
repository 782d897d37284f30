"""The report in DIR: ``report.json`` (all of it), ``summary.txt`` (for people), the picture."""

from __future__ import annotations

import datetime
import json
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .effects import fault_effects
from .invariants import InvariantResult
from .rundata import RunData
from .timeline import memory_series, render_timeline
from .units import format_bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RunReport:
    """The verdict of one run and where its files are."""

    passed: bool
    invariants: tuple[InvariantResult, ...]
    out: Path
    data: RunData

    def invariant(self, name: str) -> InvariantResult:
        for result in self.invariants:
            if result.name == name:
                return result
        raise KeyError(name)

    @property
    def json_path(self) -> Path:
        return self.out / "report.json"

    @property
    def summary_path(self) -> Path:
        return self.out / "summary.txt"

    @property
    def timeline_path(self) -> Path:
        return self.out / "timeline.svg"


def latency_summary(run: RunData) -> dict[str, Any]:
    ok = sorted(latency for _, latency, good in run.ledger.latencies if good)
    failed = sum(1 for _, _, good in run.ledger.latencies if not good)
    summary: dict[str, Any] = {"ok": len(ok), "failed": failed}
    if ok:
        quantiles = statistics.quantiles(ok, n=100) if len(ok) > 1 else [ok[0]] * 99
        summary["latency_ms"] = {
            "p50": round(quantiles[49] * 1000, 2),
            "p90": round(quantiles[89] * 1000, 2),
            "p99": round(quantiles[98] * 1000, 2),
            "max": round(ok[-1] * 1000, 2),
        }
    return summary


def integrity(results: list[InvariantResult]) -> dict[str, int]:
    """The counts a run is first judged by, as the invariants found them."""
    evidence = {r.name: r.evidence for r in results}
    truncation = evidence.get("no_silent_truncation", {})
    corruption = evidence.get("no_corrupted_bytes", {})
    return {
        "silent_truncations": truncation.get("silent_truncations", 0),
        "corrupted_deliveries": corruption.get("corrupted_deliveries", 0),
        "bytes_verified": corruption.get("bytes_verified", 0),
        # not violations (docs/chaos.md says why), but uploads no one can vouch for; the
        # stalled ones ended only by the server's idle timeout, never by a reset
        "unconfirmed_uploads": truncation.get("unconfirmed_uploads", 0),
        "unconfirmed_stalled": truncation.get("unconfirmed_by_server_outcome", {}).get(
            "timeout", 0
        ),
    }


def open_at_end(run: RunData) -> dict[str, int]:
    """Per node, the TCP connections it still held when last asked (after the drain)."""
    return {site: series[-1][1] for site, series in run.observed.tcp_active.items() if series}


def build_json(run: RunData, results: list[InvariantResult]) -> dict[str, Any]:
    scenario = run.scenario
    records = list(run.ledger.records.values())
    memory = memory_series(run.observed.samples)
    return {
        "scenario": {
            "name": scenario.name,
            "description": scenario.description,
            "mode": scenario.mode.value,
            "plaintext": scenario.plaintext,
            "sites": list(scenario.site_names()),
            "links": [{"name": x.name, "cost": x.cost} for x in scenario.links],
            "services": [
                {"name": s.name, "connectors": list(s.connectors), "listeners": list(s.listeners)}
                for s in scenario.services
            ],
        },
        "seed": run.seed,
        "duration": run.duration,
        "started_at": datetime.datetime.fromtimestamp(run.started_wall, datetime.UTC).isoformat(),
        "passed": all(r.passed for r in results),
        "integrity": integrity(results),
        "timings": {key: round(value, 3) for key, value in run.timings.items()},
        "schedule": [event.to_json() for event in run.schedule],
        "faults": [
            {**record.to_json(), "effects": fault_effects(run, record)} for record in run.faults
        ],
        "invariants": [result.to_json() for result in results],
        "connections": {
            "totals": {
                kind: dict(
                    Counter(
                        r.outcome.value if r.outcome else "open" for r in records if r.kind == kind
                    )
                )
                for kind in ("stream", "requests", "probe")
            },
            "bytes_verified": run.ledger.bytes_verified,
            "records": [record.to_json() for record in records],
        },
        "requests": latency_summary(run),
        "nodes": {
            site: {
                "peak_rss_mib": round(run.observed.peak_rss_kib.get(site, 0) / 1024, 1),
                "exit_code": run.exit_codes.get(site),
                "rss_mib": [[round(at, 2), round(mib, 1)] for at, mib in memory.get(site, [])],
                "tcp_active": [
                    [round(at, 2), n] for at, n in run.observed.tcp_active.get(site, [])
                ],
                "tcp_active_at_end": open_at_end(run).get(site),
            }
            for site in scenario.site_names()
        },
        "proxies": {
            name: {
                "mode_at_end": stats.mode,
                "accepted": stats.accepted,
                "bytes_relayed": stats.bytes_relayed,
                "bytes_dropped": stats.bytes_dropped,
                "bits_flipped": stats.bits_flipped,
                "frames_corrupted": stats.frames_corrupted,
                "transitions": [[round(t, 3), s] for t, s in run.transitions.get(name, [])],
            }
            for name, stats in run.proxies.items()
        },
        "route_changes": [change.to_json() for change in run.observed.route_changes],
        "samples": [
            [round(s.at, 3), s.bytes_verified, s.errors, s.open_connections]
            for s in run.observed.samples
        ],
    }


def render_summary(run: RunData, results: list[InvariantResult]) -> str:
    scenario = run.scenario
    passed = all(r.passed for r in results)
    records = list(run.ledger.records.values())
    outcomes = Counter(r.outcome.value for r in records if r.outcome)
    streams = sum(1 for r in records if r.kind == "stream")
    lines = [
        f"skupper-chaos: {scenario.name} (seed {run.seed}, {run.duration:g} s, "
        f"{scenario.mode.value} mode{', plaintext' if scenario.plaintext else ''}): "
        + ("PASSED" if passed else "FAILED"),
        f"sites: {' '.join(scenario.site_names())}    links: "
        + " ".join(f"{x.name}({x.cost})" for x in scenario.links),
        f"traffic: {len(records)} connections ({streams} long streams): "
        + ", ".join(f"{count} {name}" for name, count in sorted(outcomes.items()))
        + f"; {format_bytes(run.ledger.bytes_verified)} verified byte by byte",
    ]
    counts = integrity(results)
    lines.append(
        f"integrity: {counts['silent_truncations']} silent truncations, "
        f"{counts['corrupted_deliveries']} corrupted deliveries"
        + (
            f" ({counts['unconfirmed_uploads']} unconfirmed uploads, "
            f"{counts['unconfirmed_stalled']} of them stalled until the server's idle timeout)"
            if counts["unconfirmed_uploads"]
            else ""
        )
    )
    left = {site: n for site, n in sorted(open_at_end(run).items()) if n}
    if left:
        lines.append(
            "left open at the nodes after the drain: "
            + ", ".join(f"{site} {n}" for site, n in left.items())
            + " TCP connections"
        )
    latency = latency_summary(run)
    if latency["ok"] or latency["failed"]:
        text = f"requests: {latency['ok']} ok, {latency['failed']} failed"
        if "latency_ms" in latency:
            ms = latency["latency_ms"]
            text += f"; latency p50 {ms['p50']} ms, p99 {ms['p99']} ms, max {ms['max']} ms"
        lines.append(text)
    lines.append(f"faults ({len(run.faults)}):")
    for record in run.faults:
        effects = fault_effects(run, record)
        notes = [record.status]
        if "error" in record.detail:
            notes.append(str(record.detail["error"]))
        if "first_route_change_s" in effects:
            notes.append(f"routes changed after {effects['first_route_change_s']:g} s")
        if "hello_timeout_after_s" in effects:
            notes.append(f"HELLO max age tripped after {effects['hello_timeout_after_s']:g} s")
        proxy = record.detail.get("proxy", {})
        for key, label in (
            ("bits_flipped", "bits flipped"),
            ("frames_corrupted", "frames corrupted"),
            ("bytes_dropped", "bytes dropped"),
        ):
            if proxy.get(key):
                notes.append(f"{proxy[key]} {label}")
        if "refused_with" in record.detail:
            notes.append(f"refused: {record.detail['refused_with']}")
        if "restart_ready_s" in record.detail:
            notes.append(f"back up in {record.detail['restart_ready_s']:g} s")
        at = record.started if record.started is not None else record.event.at
        lines.append(f"  +{at:7.2f}s  {record.event.describe():40s} {'; '.join(notes)}")
    lines.append("invariants:")
    for result in results:
        lines.append(f"  {'PASS' if result.passed else 'FAIL'}  {result.name}: {result.summary}")
    lines.append("files: report.json (everything), timeline.svg, nodes/<site>.log")
    return "\n".join(lines) + "\n"


def write_report(run: RunData, results: list[InvariantResult], out: Path) -> RunReport:
    out.mkdir(parents=True, exist_ok=True)
    report = RunReport(
        passed=all(r.passed for r in results), invariants=tuple(results), out=out, data=run
    )
    report.json_path.write_text(json.dumps(build_json(run, results), indent=1, default=str))
    report.summary_path.write_text(render_summary(run, results))
    title = f"{run.scenario.name}, seed {run.seed}: " + ("passed" if report.passed else "FAILED")
    report.timeline_path.write_text(
        render_timeline(
            run.observed.samples, run.faults, end=run.ended_at + run.scenario.drain, title=title
        )
    )
    return report
