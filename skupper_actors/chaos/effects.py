"""What each fault visibly did: route changes and node log events inside its window.

This is the evidence that a fault really happened (a cut link changes routes, a stalled
one trips the HELLO max age, a flipped bit makes TLS refuse the connection).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .faults import FaultRecord
from .rundata import RunData

#: node log events worth quoting as effects of a fault
EFFECT_EVENTS = (
    "neighbour_lost",
    "neighbour_added",
    "router_lost",
    "router_added",
    "routes_changed",
    "link_closed",
    "link_refused",
    "link_connect_failed",
    "child_restarted",
    "actor_crashed",
    "node_ready",
)
GRACE = 1.0  # effects can trail a fault's end by this long


def fault_effects(run: RunData, record: FaultRecord) -> dict[str, Any]:
    if record.started is None:
        return {}
    start = record.started
    end = (record.ended if record.ended is not None else run.ended_at) + GRACE
    changes = [c for c in run.observed.route_changes if start <= c.at <= end]
    effects: dict[str, Any] = {}
    if changes:
        effects["first_route_change_s"] = round(changes[0].at - start, 3)
        effects["route_changes"] = [c.to_json() for c in changes[:12]]
    events: Counter[str] = Counter()
    quoted: list[dict[str, Any]] = []
    for site in run.node_events:
        for event in run.events(site, *EFFECT_EVENTS):
            at = event.get("t")
            if not isinstance(at, float) or not start <= at <= end:
                continue
            events[f"{site}:{event['event']}"] += 1
            if len(quoted) < 12 and event["event"] in (
                "neighbour_lost",
                "link_closed",
                "link_refused",
                "actor_crashed",
            ):
                quoted.append(
                    {
                        "site": site,
                        "at": round(at - start, 3),
                        "event": event["event"],
                        **{
                            key: event[key]
                            for key in ("peer", "router_id", "reason", "error")
                            if key in event
                        },
                    }
                )
    if events:
        effects["log_events"] = dict(sorted(events.items()))
    if quoted:
        effects["quoted"] = quoted
    hello_timeouts = [
        q for q in quoted if q["event"] == "neighbour_lost" and q.get("reason") == "hello-timeout"
    ]
    if hello_timeouts:
        effects["hello_timeout_after_s"] = min(q["at"] for q in hello_timeouts)
    link = record.event.target
    if record.event.on_link and link in run.transitions:
        effects["proxy_transitions"] = [
            [round(at - start, 3), state]
            for at, state in run.transitions[link]
            if start - GRACE <= at <= end
        ]
    return effects
