"""The runner: set the topology up, drive traffic and faults, check invariants, write the report."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gevent
import gevent.pool

from .faults import FaultInjector
from .invariants import check_invariants
from .ledger import Ledger
from .monitor import Monitor
from .netns import NetnsUnavailable, check_netns
from .nodes import NodeFailed
from .proxy import GetProxyStatistics, ProxyStatistics
from .report import RunReport, write_report
from .rundata import RunData, run_time
from .scenario import FaultKind, Mode, Scenario, ScenarioError, Setup
from .schedule import FaultEvent, plan_schedule
from .topology import Topology
from .traffic_clients import TrafficClients

SETTLE = 2.0  # after the drain: time for the nodes to close their last TCP connections


class HarnessError(RuntimeError):
    """The harness could not set the run up (a node did not start, the mesh did not form)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """A snapshot for a progress display, every ``progress_interval`` seconds."""

    at: float
    duration: float
    phase: str  #: "starting" | "running" | "draining" | "checking"
    faults_done: int
    faults_total: int
    active_faults: tuple[str, ...]
    intact: int
    errors: int
    open_connections: int
    bytes_verified: int
    nodes_up: int
    nodes: int
    messages: tuple[str, ...] = ()


ProgressCallback = Callable[[Progress], None]


def supports_tokens() -> bool:
    """Whether ``skupper-node run`` takes ``-n`` (sites declared as resources, with tokens)."""
    result = subprocess.run(
        [sys.executable, "-m", "skupper_actors.node_cli", "run", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    return re.search(r"(^|\s)-n[\s,]", result.stdout) is not None


def preflight(scenario: Scenario, schedule: tuple[FaultEvent, ...], source: str) -> None:
    """Refuse, with the field to blame, what this machine or build cannot run."""
    problems = []
    if scenario.mode is Mode.NETNS:
        try:
            check_netns()
        except NetnsUnavailable as error:
            problems.append(("mode", str(error)))
    if scenario.setup is Setup.NAMESPACE and not supports_tokens():
        problems.append(
            (
                "setup",
                "namespace setup needs 'skupper-node run -n' (sites declared as resources), "
                "which this skupper-node does not offer",
            )
        )
    if problems:
        raise ScenarioError(source, problems)


def run_scenario(
    scenario: Scenario,
    *,
    out: Path,
    seed: int | None = None,
    duration: float | None = None,
    progress: ProgressCallback | None = None,
    progress_interval: float = 0.5,
    source: str = "<scenario>",
) -> RunReport:
    """Run ``scenario`` once; the report's ``passed`` is True only if every invariant held."""
    seed = scenario.seed if seed is None else seed
    duration = scenario.duration if duration is None else duration
    schedule = plan_schedule(scenario, seed=seed, duration=duration)
    preflight(scenario, schedule, source)
    out.mkdir(parents=True, exist_ok=True)
    clock = _RunClock()
    ledger = Ledger()
    run = RunData(scenario=scenario, seed=seed, duration=duration, schedule=schedule, ledger=ledger)
    topology = Topology(scenario, out / "nodes", seed=seed)
    notify = progress or (lambda _: None)
    try:
        setup_started = time.monotonic()
        _report_phase(notify, "starting", duration, len(schedule), len(scenario.sites))
        try:
            replay_targets = {e.target for e in schedule if e.kind is FaultKind.REPLAY_TOKEN}
            topology.prepare(ledger, clock.now, replay_targets)
            topology.start_nodes()
            run.timings["converged_s"] = topology.wait_converged()
        except (NodeFailed, NetnsUnavailable, OSError) as error:
            raise HarnessError(f"setting up {scenario.name}: {error}") from error
        run.timings["setup_s"] = time.monotonic() - setup_started
        clock.reset()
        run.started_wall = time.time()
        _drive(run, topology, clock, notify, progress_interval)
    finally:
        if topology.fabric is not None:
            run.network_namespaces = tuple(topology.fabric.namespace(s) for s in topology.sites)
        run.exit_codes = topology.close()
    for site, node in topology.nodes.items():
        events = node.log_events()
        for event in events:
            event["t"] = run_time(event, run.started_wall)
        run.node_events[site] = events
    results = check_invariants(run)
    return write_report(run, results, out)


class _RunClock:
    """Run time: seconds since traffic started (negative while setting up)."""

    def __init__(self) -> None:
        self._zero = time.monotonic()

    def reset(self) -> None:
        self._zero = time.monotonic()

    @property
    def zero(self) -> float:
        return self._zero

    def now(self) -> float:
        return time.monotonic() - self._zero


def _drive(
    run: RunData,
    topology: Topology,
    clock: _RunClock,
    notify: ProgressCallback,
    interval: float,
) -> None:
    scenario, ledger = run.scenario, run.ledger
    injector = FaultInjector(topology, clock.now, run.seed)
    monitor = Monitor(topology, ledger, injector, clock.now)
    clients = TrafficClients(scenario.traffic, topology.endpoints(), ledger, clock.now, run.seed)
    scheduler = gevent.pool.Group()
    for event in run.schedule:
        injector.record(event)
        scheduler.add(gevent.spawn_later(max(0.0, event.at), injector.begin, event))
        if event.end is not None and event.end < run.duration:
            scheduler.add(gevent.spawn_later(event.end, injector.end, event))
    monitor.start()
    clients.start()
    announced: dict[int, str] = {}
    try:
        while clock.now() < run.duration:
            gevent.sleep(min(interval, max(0.0, run.duration - clock.now())))
            notify(_progress(run, topology, injector, clock.now(), "running", announced))
        run.ended_at = clock.now()
        clients.stop_new()
        for greenlet in list(scheduler):
            if greenlet.gr_frame is None:  # not begun yet: a fault or an undo after the end
                greenlet.kill(block=False)
        scheduler.join(timeout=35)  # a restart under way finishes (it waits for readiness)
        injector.end_all()
        drain_until = clock.now() + scenario.drain
        while clock.now() < drain_until and not clients.wait_idle(min(interval, 1.0)):
            notify(_progress(run, topology, injector, clock.now(), "draining", announced))
        clients.abandon()
        # the nodes close what the clients just closed or abandoned within moments: what
        # they still hold after SETTLE was left behind (nodes.<site>.tcp_active_at_end)
        settle_until = clock.now() + SETTLE
        while clock.now() < settle_until and any(
            series and series[-1][1] for series in monitor.observed.tcp_active.values()
        ):
            gevent.sleep(monitor.interval)
    finally:
        clients.abandon()
        scheduler.kill()
        monitor.stop()
        run.faults = [injector.records[event.index] for event in run.schedule]
        run.observed = monitor.observed
        _collect_proxies(run, topology, clock)
    notify(_progress(run, topology, injector, clock.now(), "checking", announced))


def _collect_proxies(run: RunData, topology: Topology, clock: _RunClock) -> None:
    for link in run.scenario.links:
        proxy = topology.proxy(link.name)
        if proxy is None:
            continue
        stats: ProxyStatistics = proxy.ask(GetProxyStatistics(), timeout=5)
        run.proxies[link.name] = stats
        run.transitions[link.name] = [(t - clock.zero, state) for t, state in stats.transitions]


def _report_phase(
    notify: ProgressCallback, phase: str, duration: float, faults: int, nodes: int
) -> None:
    notify(
        Progress(
            at=0.0,
            duration=duration,
            phase=phase,
            faults_done=0,
            faults_total=faults,
            active_faults=(),
            intact=0,
            errors=0,
            open_connections=0,
            bytes_verified=0,
            nodes_up=0,
            nodes=nodes,
        )
    )


def _progress(
    run: RunData,
    topology: Topology,
    injector: FaultInjector,
    now: float,
    phase: str,
    announced: dict[int, str],
) -> Progress:
    messages = []
    for index, record in injector.records.items():
        if announced.get(index) != record.status and record.status != "pending":
            announced[index] = record.status
            at = record.started if record.status == "active" else record.ended
            note = f" ({record.detail['error']})" if "error" in record.detail else ""
            messages.append(f"+{at or 0:.1f}s {record.status:6s} {record.event.describe()}{note}")
    return Progress(
        at=now,
        duration=run.duration,
        phase=phase,
        faults_done=sum(1 for r in injector.records.values() if r.status in ("done", "failed")),
        faults_total=len(run.schedule),
        active_faults=tuple(
            r.event.describe() for r in injector.records.values() if r.status == "active"
        ),
        intact=run.ledger.intact,
        errors=run.ledger.errors,
        open_connections=run.ledger.open_connections,
        bytes_verified=run.ledger.bytes_verified,
        nodes_up=sum(1 for node in topology.nodes.values() if node.alive and not node.stopped),
        nodes=len(topology.nodes),
        messages=tuple(messages),
    )
