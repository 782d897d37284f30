"""The invariants, each a pure function of the run's data returning pass/fail with evidence."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from .ledger import SEEN_ERRORS, Outcome
from .memory_growth import memory_not_growing
from .recovery import new_connections_recover
from .rundata import RunData
from .scenario import FaultKind
from .units import format_bytes
from .verdict import EXAMPLES, InvariantResult

__all__ = ["CHECKS", "InvariantResult", "check_invariants"]


def no_corrupted_bytes(run: RunData) -> InvariantResult:
    corruptions = run.ledger.corruptions
    verified = run.ledger.bytes_verified
    if not corruptions:
        return InvariantResult(
            name="no_corrupted_bytes",
            passed=True,
            summary=f"{format_bytes(verified)} verified byte by byte, none corrupted",
            evidence={"bytes_verified": verified, "corrupted_deliveries": 0},
        )
    return InvariantResult(
        name="no_corrupted_bytes",
        passed=False,
        summary=f"{len(corruptions)} deliveries held corrupted bytes",
        evidence={
            "bytes_verified": verified,
            "corrupted_deliveries": len(corruptions),
            "corruptions": [
                {
                    "at": round(c.at, 3),
                    "connection": c.connection,
                    "side": c.side,
                    "offset": c.offset,
                    "detail": c.detail,
                }
                for c in corruptions[:EXAMPLES]
            ],
        },
    )


def _killed_near(run: RunData) -> Callable[[str, float | None], bool]:
    """Whether ``site`` was SIGKILLed around ``at``: its sockets then end as the kernel
    closes them (a FIN when nothing was unread), which no VAN can turn into a reset."""
    kills = [
        (r.event.target, r.started)
        for r in run.faults
        if r.event.kind is FaultKind.KILL and r.started is not None
    ]

    def killed(site: str, at: float | None) -> bool:
        return at is not None and any(
            site == target and started - 1.0 <= at <= started + 1.0 for target, started in kills
        )

    return killed


def no_silent_truncation(run: RunData) -> InvariantResult:
    truncated: list[dict[str, Any]] = []
    unconfirmed: list[dict[str, Any]] = []
    with_node: list[dict[str, Any]] = []
    unserved = ended = 0
    killed = _killed_near(run)
    for record in run.ledger.records.values():
        if record.outcome in (None, Outcome.ABANDONED):
            continue
        ended += 1
        if record.outcome is Outcome.TRUNCATED:
            if record.verified == 0 and record.server_outcome is None:
                # closed before any byte, and no server ever saw it: the VAN had nowhere
                # to send it (a listener with no reachable connector accepts, then closes)
                unserved += 1
            elif killed(record.site, record.ended):
                with_node.append({"connection": record.id, "side": "client", "site": record.site})
            else:
                truncated.append({"connection": record.id, "side": "client", "error": record.error})
        if record.server_outcome is Outcome.TRUNCATED:
            if killed(record.server_site, record.ended):
                with_node.append(
                    {"connection": record.id, "side": "server", "site": record.server_site}
                )
            else:
                truncated.append(
                    {"connection": record.id, "side": "server", "error": record.server_error}
                )
        elif (
            record.outcome is Outcome.INTACT
            and record.kind == "stream"
            and record.server_outcome in SEEN_ERRORS
        ):
            # the client had sent everything and read everything before the far end's
            # connection failed: TCP cannot tell a sender that its last bytes were lost
            unconfirmed.append(
                {
                    "connection": record.id,
                    "server_outcome": record.server_outcome.value,
                    "server_verified": record.server_verified,
                    "server_error": record.server_error,
                }
            )
    for at, outcome, why in run.ledger.unattributed:
        if outcome is Outcome.TRUNCATED:
            truncated.append(
                {"connection": None, "side": "server", "at": round(at, 3), "error": why}
            )
    counts = Counter(r.outcome.value for r in run.ledger.records.values() if r.outcome)
    evidence: dict[str, Any] = {
        "silent_truncations": len(truncated),
        "outcomes": dict(counts),
        "closed_before_any_byte": unserved,
        "ended_with_their_killed_node": len(with_node),
        "unconfirmed_uploads": len(unconfirmed),
        # reset: the VAN told the server; timeout: the server's bytes stopped coming
        # with no end at all (a stalled direction), which only its idle timeout ended
        "unconfirmed_by_server_outcome": dict(Counter(u["server_outcome"] for u in unconfirmed)),
    }
    if with_node:
        evidence["ended_with_their_killed_node_examples"] = with_node[:EXAMPLES]
    if unconfirmed:
        evidence["unconfirmed_examples"] = unconfirmed[:EXAMPLES]
    if truncated:
        evidence["truncated"] = truncated[:EXAMPLES]
        return InvariantResult(
            name="no_silent_truncation",
            passed=False,
            summary=f"{len(truncated)} connection ends saw a clean EOF before all bytes",
            evidence=evidence,
        )
    errors = sum(counts.get(o.value, 0) for o in SEEN_ERRORS)
    notes = f", {unserved} closed before any byte (no destination)" if unserved else ""
    if with_node:
        notes += f", {len(with_node)} ended as their node was SIGKILLed"
    return InvariantResult(
        name="no_silent_truncation",
        passed=True,
        summary=f"{ended} connections ended: {counts.get('intact', 0)} intact, "
        f"{errors} with an error their client saw{notes}, none silently truncated",
        evidence=evidence,
    )


def no_unexpected_exits(run: RunData) -> InvariantResult:
    exits = run.observed.exits
    evidence: dict[str, Any] = {"final_exit_codes": run.exit_codes}
    if exits:
        evidence["exits"] = [
            {"at": round(e.at, 3), "site": e.site, "code": e.code, "log_tail": e.log_tail}
            for e in exits
        ]
    killed = sorted({r.event.target for r in run.faults if r.event.kind.value in ("kill",)})
    return InvariantResult(
        name="no_unexpected_exits",
        passed=not exits,
        summary=(
            "no node exited unless killed on purpose"
            + (f" (killed: {', '.join(killed)})" if killed else "")
            if not exits
            else f"{len(exits)} unexpected exits: "
            + ", ".join(f"{e.site} ({e.code}) at {e.at:.1f}s" for e in exits)
        ),
        evidence=evidence,
    )


def memory_bound(run: RunData) -> InvariantResult:
    limit = run.scenario.invariants.memory_limit_mib
    peaks = {site: round(kib / 1024, 1) for site, kib in run.observed.peak_rss_kib.items()}
    over = {site: mib for site, mib in peaks.items() if mib > limit}
    return InvariantResult(
        name="memory_bound",
        passed=not over,
        summary=(
            f"peak RSS {max(peaks.values(), default=0):.1f} MiB, limit {limit} MiB"
            if not over
            else "over the limit: " + ", ".join(f"{s} {m} MiB" for s, m in over.items())
        ),
        evidence={"limit_mib": limit, "peak_rss_mib": peaks},
    )


def supervisor_restarts(run: RunData) -> InvariantResult:
    counts: dict[str, dict[str, int]] = {}
    gave_up = []
    for site in run.node_events:
        events = run.events(
            site, "child_restarted", "child_restart_failed", "supervisor_gave_up", "actor_crashed"
        )
        counts[site] = dict(Counter(str(e["event"]) for e in events))
        gave_up += [
            {"site": site, "at": e.get("t"), "actor": e.get("actor"), "child": e.get("child")}
            for e in events
            if e["event"] == "supervisor_gave_up"
        ]
    restarts = sum(c.get("child_restarted", 0) for c in counts.values())
    return InvariantResult(
        name="supervisor_restarts_within_intensity",
        passed=not gave_up,
        summary=(
            f"{restarts} child restarts, no supervisor exceeded its intensity"
            if not gave_up
            else f"{len(gave_up)} supervisors gave up (too many restarts in their period)"
        ),
        evidence={"per_site": counts, "gave_up": gave_up[:EXAMPLES]},
    )


def traffic_flowed(run: RunData) -> InvariantResult:
    minimum = run.scenario.invariants.min_intact_streams
    intact = sum(1 for r in run.ledger.records.values() if r.outcome is Outcome.INTACT)
    verified = run.ledger.bytes_verified
    passed = intact >= minimum and (verified > 0 or minimum == 0)
    return InvariantResult(
        name="traffic_flowed",
        passed=passed,
        summary=f"{intact} connections intact (at least {minimum} needed), "
        f"{format_bytes(verified)} verified",
        evidence={"intact": intact, "minimum": minimum, "bytes_verified": verified},
    )


def faults_injected(run: RunData) -> InvariantResult:
    failed = [r for r in run.faults if r.status == "failed"]
    pending = [r for r in run.faults if r.status == "pending"]
    bad = failed + pending
    return InvariantResult(
        name="faults_injected",
        passed=not bad,
        summary=(
            f"all {len(run.faults)} planned faults were injected"
            if not bad
            else f"{len(bad)} of {len(run.faults)} faults could not be injected"
        ),
        evidence={
            "problems": [
                {"fault": r.event.describe(), "status": r.status, "error": r.detail.get("error")}
                for r in bad
            ]
        },
    )


def used_tokens_refused(run: RunData) -> InvariantResult:
    replays = [r for r in run.faults if r.event.kind is FaultKind.REPLAY_TOKEN and r.started]
    accepted = [r for r in replays if r.detail.get("accepted")]
    refused = [r for r in replays if "refused_with" in r.detail]
    return InvariantResult(
        name="used_tokens_refused",
        passed=not accepted,
        summary=(
            "no token was replayed in this run"
            if not replays
            else f"{len(refused)} of {len(replays)} replays of a used token refused"
            + (f"; {len(accepted)} ACCEPTED" if accepted else "")
        ),
        evidence={
            "replays": [
                {
                    "site": r.event.target,
                    "at": r.started,
                    "refused_with": r.detail.get("refused_with"),
                    "accepted": bool(r.detail.get("accepted")),
                }
                for r in replays
            ]
        },
    )


CHECKS: tuple[Callable[[RunData], InvariantResult], ...] = (
    no_corrupted_bytes,
    no_silent_truncation,
    new_connections_recover,
    no_unexpected_exits,
    memory_bound,
    memory_not_growing,
    supervisor_restarts,
    traffic_flowed,
    faults_injected,
    used_tokens_refused,
)


def check_invariants(run: RunData) -> list[InvariantResult]:
    return [check(run) for check in CHECKS]
