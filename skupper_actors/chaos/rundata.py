"""Everything one run produced, gathered for the invariant checkers and the report."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from .faults import FaultRecord
from .ledger import Ledger
from .monitor import Observations
from .proxy import ProxyStatistics
from .scenario import Scenario
from .schedule import FaultEvent


@dataclass(slots=True, kw_only=True)
class RunData:
    scenario: Scenario
    seed: int
    duration: float  #: the traffic phase's planned length (s)
    ended_at: float = 0.0  #: run time when new traffic stopped
    schedule: tuple[FaultEvent, ...] = ()
    faults: list[FaultRecord] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    observed: Observations = field(default_factory=Observations)
    #: each node's JSON log events, with "t" = run time added
    node_events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    proxies: dict[str, ProxyStatistics] = field(default_factory=dict)
    #: proxy transitions in run time: link -> [(t, "down" | "up")]
    transitions: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    started_wall: float = 0.0  #: time.time() at run time 0
    #: namespace mode: the network namespaces this run made (and removed)
    network_namespaces: tuple[str, ...] = ()

    def events(self, site: str, *names: str) -> list[dict[str, Any]]:
        return [e for e in self.node_events.get(site, []) if e.get("event") in names]


def run_time(event: dict[str, Any], started_wall: float) -> float | None:
    """The run time of a node log event from its ISO timestamp."""
    stamp = event.get("timestamp")
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() - started_wall
