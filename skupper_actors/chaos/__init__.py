"""The chaos harness: real topologies of ``skupper-node`` processes, checked traffic,
injected faults, invariants, and a report with a timeline picture.

    scenario = load_scenario("config/chaos/smoke.yaml")
    report = run_scenario(scenario, out=Path("out"), seed=1)
    assert report.passed

The command line is ``skupper-chaos`` (``skupper_actors.chaos.cli``); docs/chaos.md
explains scenarios, faults, invariants and the report.
"""

from __future__ import annotations

from ._schema import load_scenario, parse_scenario
from .faults import FaultRecord
from .invariants import InvariantResult, check_invariants
from .ledger import ConnectionRecord, Ledger, Outcome
from .pattern import ExchangeHeader, Pattern, Verifier
from .proxy import FaultProxy, GetProxyStatistics, ProxyStatistics, SetMode
from .proxy_modes import (
    Bandwidth,
    Blackhole,
    CorruptAfterTls,
    Cut,
    Flap,
    FlipBits,
    Latency,
    Pass,
    ProxyMode,
)
from .report import RunReport
from .runner import HarnessError, Progress, run_scenario
from .scenario import (
    FaultKind,
    FaultSpec,
    Mode,
    Scenario,
    ScenarioError,
    Setup,
)
from .schedule import FaultEvent, plan_schedule

__all__ = [
    "Bandwidth",
    "Blackhole",
    "ConnectionRecord",
    "CorruptAfterTls",
    "Cut",
    "ExchangeHeader",
    "FaultEvent",
    "FaultKind",
    "FaultProxy",
    "FaultRecord",
    "FaultSpec",
    "Flap",
    "FlipBits",
    "GetProxyStatistics",
    "HarnessError",
    "InvariantResult",
    "Latency",
    "Ledger",
    "Mode",
    "Outcome",
    "Pass",
    "Pattern",
    "Progress",
    "ProxyMode",
    "ProxyStatistics",
    "RunReport",
    "Scenario",
    "ScenarioError",
    "SetMode",
    "Setup",
    "Verifier",
    "check_invariants",
    "load_scenario",
    "parse_scenario",
    "plan_schedule",
    "run_scenario",
]
