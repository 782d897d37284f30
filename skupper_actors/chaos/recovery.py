"""Whether new connections recover after each fault: the ``new_connections_recover`` invariant.

A fault's *recovery window* runs from its start to ``recovery_within`` after its last
change (its end, or a flap's last transition); new connections started after that, while
a path remains, must succeed. Faults often start inside the window of the one before, so
a probe is excused only by a change that touched a least-cost path of its own (see
``FaultTimeline.touches_paths``): a fault elsewhere in the network does not stop it from
judging an earlier fault's recovery. When a later fault does touch the probes' paths, the
earlier fault is judged by the first probes after both windows, and its record says which
faults it waited for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .faults import FaultRecord
from .ledger import ConnectionRecord, Outcome
from .paths import Change, FaultTimeline
from .rundata import RunData
from .verdict import EXAMPLES, InvariantResult


def fault_timeline(run: RunData) -> FaultTimeline:
    timeline = FaultTimeline(scenario=run.scenario)
    for record in run.faults:
        if record.started is None or record.status == "failed":
            continue
        end = record.ended if record.ended is not None else run.ended_at + run.scenario.drain
        target, index = record.event.target, record.event.index
        timeline.add(record.event.kind, target, record.started, end, fault=index)
        for at, _state in record.detail.get("transitions", ()):
            timeline.add_change(at, target, fault=index)
    for link, changes in run.transitions.items():
        for at, _state in changes:
            timeline.add_change(at, link, fault=_fault_at(run.faults, link, at))
    return timeline


def _fault_at(faults: list[FaultRecord], target: str, at: float) -> int | None:
    """The fault on ``target`` under way at ``at`` (a proxy's transition is one's doing)."""
    for record in faults:
        if record.event.target == target and record.started is not None:
            ended = record.ended if record.ended is not None else float("inf")
            if record.started - 0.5 <= at <= ended + 0.5:
                return record.event.index
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Judged:
    """A probe the invariant judged, or the changes that excused it."""

    probe: ConnectionRecord
    excused_by: tuple[Change, ...] = ()


def judge_probes(run: RunData, timeline: FaultTimeline) -> list[Judged]:
    """Every ended probe with a path left and no degraded link, in start order; ``excused_by``
    holds the recent changes on its paths (empty: it is judged)."""
    within = run.scenario.invariants.recovery_within
    out = []
    probes = [
        r
        for r in run.ledger.records.values()
        if r.kind == "probe" and r.outcome not in (None, Outcome.ABANDONED)
    ]
    for record in sorted(probes, key=lambda r: r.started):
        start, end = record.started, record.ended or record.started
        connectors = run.scenario.service(record.service).connectors
        if timeline.degraded(start) or not timeline.path_exists(start, record.site, connectors):
            continue
        excused = tuple(
            change
            for change in timeline.changes_between(start - within, end)
            if timeline.touches_paths(change, record.site, connectors)
        )
        out.append(Judged(probe=record, excused_by=excused))
    return out


def _label(run: RunData, index: int | None) -> str:
    for record in run.faults:
        if record.event.index == index:
            return f"#{index} {record.event.describe()}"
    return "a proxy transition"


def fault_recoveries(
    run: RunData, timeline: FaultTimeline, probes: list[Judged]
) -> list[dict[str, Any]]:
    """Per fault: its recovery deadline, and the judged probes that showed whether new
    connections recovered by then (the first ones at or after it)."""
    within = run.scenario.invariants.recovery_within
    judged = [p for p in probes if not p.excused_by]
    out = []
    for record in run.faults:
        index = record.event.index
        settles = [c.at for c in timeline.touched if c.fault == index]
        if not settles:
            continue  # never injected, or a fault that changes nothing (garbage, a replay)
        deadline = max(settles) + within
        entry: dict[str, Any] = {"fault": _label(run, index), "deadline": round(deadline, 3)}
        first = next((p for p in judged if p.probe.started >= deadline), None)
        if first is None:
            entry["judged"] = False
            entry["why_not"] = "no probe with a path was judged after its deadline"
            out.append(entry)
            continue
        span = [
            p
            for p in judged
            if first.probe.started <= p.probe.started < first.probe.started + within
        ]
        waited = {
            c.fault
            for p in probes
            if deadline <= p.probe.started < first.probe.started
            for c in p.excused_by
            if c.fault != index
        }
        failed = [p for p in span if p.probe.outcome is not Outcome.INTACT]
        entry |= {
            "judged": True,
            "first_judged_at": round(first.probe.started, 3),
            "probes": len(span),
            "failed": len(failed),
        }
        if waited:  # its window overlapped later faults' on the same paths
            entry["waited_for"] = sorted(_label(run, i) for i in waited)
        out.append(entry)
    return out


def new_connections_recover(run: RunData) -> InvariantResult:
    within = run.scenario.invariants.recovery_within
    timeline = fault_timeline(run)
    probes = judge_probes(run, timeline)
    recoveries = fault_recoveries(run, timeline, probes)
    judged = [p for p in probes if not p.excused_by]
    failures = []
    for p in judged:
        record = p.probe
        if record.outcome is Outcome.INTACT:
            continue
        covers = [
            r["fault"]
            for r in recoveries
            if r["judged"] and r["deadline"] <= record.started < r["first_judged_at"] + within
        ]
        failures.append(
            {
                "at": round(record.started, 3),
                "site": record.site,
                "outcome": record.outcome.value if record.outcome else None,
                "error": record.error,
                "connection": record.id,
                "recovery_of": covers,
            }
        )
    unjudged = [r["fault"] for r in recoveries if not r["judged"]]
    evidence: dict[str, Any] = {
        "recovery_within_s": within,
        "probes_checked": len(judged),
        "probes_failed": len(failures),
        "probes_excused": len(probes) - len(judged),
        "faults": recoveries,
        "faults_not_judged": unjudged,
        "recovery_s": recovery_times(run, timeline),
    }
    if failures:
        evidence["failures"] = failures[:EXAMPLES]
    waited = sum(1 for r in recoveries if r.get("waited_for"))
    return InvariantResult(
        name="new_connections_recover",
        passed=not failures,
        summary=(
            f"{len(judged)} new connections tried with a path left and no change on their "
            f"paths for {within:g} s: {len(failures)} failed; "
            f"{len(recoveries) - len(unjudged)} of {len(recoveries)} faults' recovery judged"
            + (f" ({waited} after an overlapping fault's window)" if waited else "")
        ),
        evidence=evidence,
    )


def recovery_times(run: RunData, timeline: FaultTimeline) -> dict[str, float]:
    """For each change, how long until new connections (with a path) last failed."""
    probes = sorted(
        (r for r in run.ledger.records.values() if r.kind == "probe" and r.outcome),
        key=lambda r: r.started,
    )
    changes = timeline.changes
    result: dict[str, float] = {}
    for index, change in enumerate(changes):
        horizon = changes[index + 1] if index + 1 < len(changes) else run.ended_at
        last_failure = None
        for probe in probes:
            if change <= probe.started < horizon and probe.outcome is not Outcome.INTACT:
                connectors = run.scenario.service(probe.service).connectors
                if timeline.path_exists(probe.started, probe.site, connectors):
                    last_failure = (probe.ended or probe.started) - change
        result[f"{change:.3f}"] = round(last_failure or 0.0, 3)
    return result
