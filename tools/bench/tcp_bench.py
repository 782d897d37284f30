"""TCP data-path benchmark: client -> server directly, and through skupper-actors nodes.

    python tools/bench/tcp_bench.py [--quick] [--json FILE] [--paths direct,1node,2plain,2tls]
                                    [--throughput-tool auto|iperf3|builtin] [--profile DIR]
    python tools/bench/tcp_bench.py --idle-rounds 5 [--idle-connections 10000] [--paths 2tls]

Paths: ``direct`` (loopback), ``1node`` (listener and connector on one site),
``2plain`` (two sites, plaintext link), ``2tls`` (two sites, mutual TLS link). All
paths run in the same run; each figure is measured path after path, repeated, and the
median kept, so a drift of the machine touches every path alike. Ratios are against
``direct``. Exit status: 0 all measured targets met, 3 some not met, 1 a measurement
failed. See docs/benchmarks.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import loadgen  # noqa: E402 - beside this file
import profiling  # noqa: E402
from benchnodes import (  # noqa: E402
    Endpoints,
    Ports,
    Processes,
    Topology,
    cpu_seconds,
    rss_kib,
    tail,
)
from iperf import Iperf3  # noqa: E402

from skupper_actors.management import ManagementClient, ManagementError  # noqa: E402

PATHS = ("direct", "1node", "2plain", "2tls")
STREAMS = 8
IDLE_CONNECTIONS = 1000
# figure -> (label, format, shown ratio to direct: "%", "x" or ""); "-" rows are headings
ROWS = {
    "single_gbit": ("single stream (Gbit/s)", "{:.2f}", "%"),
    "parallel_gbit": (f"{STREAMS} streams (Gbit/s)", "{:.2f}", "%"),
    "echo_p50_us": ("echo 64 B p50 (µs)", "{:.0f}", "x"),
    "echo_p99_us": ("echo 64 B p99 (µs)", "{:.0f}", "x"),
    "echo_rounds": ("  round trips per run", "{:.0f}", ""),
    "conn_per_s": ("connect+echo+close /s", "{:.0f}", "%"),
    "idle_rss_kib_per_conn": ("idle RSS (KiB/conn)", "{:.1f}", ""),
    "-cpu": ("node CPU, all nodes of the path together:", "", ""),
    "single_gbit_node_cores": ("  cores busy, single stream", "{:.2f}", ""),
    "single_gbit_node_cpu_s_per_gb": ("  CPU s per GB, single", "{:.2f}", ""),
    "parallel_gbit_node_cpu_s_per_gb": (f"  CPU s per GB, {STREAMS} streams", "{:.2f}", ""),
    "echo_node_cpu_us": ("  CPU µs per echo round trip", "{:.0f}", ""),
    "conn_node_cpu_us": ("  CPU µs per connection", "{:.0f}", ""),
}
FIGURES = tuple(f for f in ROWS if not f.startswith("-"))
RATIO_FIGURES = ("single_gbit", "parallel_gbit", "echo_p50_us", "echo_p99_us", "conn_per_s")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    throughput_seconds: int
    repeats: int
    echo_rounds: int
    echo_seconds: float  # per run: the rounds done by then count (stalls can make rounds slow)
    conn_seconds: float
    integrity_mib: int
    idle_connections: int = IDLE_CONNECTIONS


QUICK = Settings(throughput_seconds=2, repeats=1, echo_rounds=3000, echo_seconds=4,
                 conn_seconds=2, integrity_mib=16)
FULL = Settings(throughput_seconds=3, repeats=3, echo_rounds=12000, echo_seconds=5,
                conn_seconds=4, integrity_mib=64)
ECHO_WARMUP = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    text: str
    path: str
    figure: str
    limit: float
    kind: str  # "min_ratio", "max_ratio" (to direct) or "max_value"


TARGETS = (
    Target(text="2 nodes + mTLS single stream >= 20% of direct", path="2tls",
           figure="single_gbit", limit=0.20, kind="min_ratio"),
    Target(text="2 nodes plaintext single stream >= 35% of direct", path="2plain",
           figure="single_gbit", limit=0.35, kind="min_ratio"),
    Target(text="2 nodes + mTLS echo p50 <= 4x direct", path="2tls",
           figure="echo_p50_us", limit=4.0, kind="max_ratio"),
    Target(text="2 nodes plaintext connections/s >= 12% of direct", path="2plain",
           figure="conn_per_s", limit=0.12, kind="min_ratio"),
    Target(text="2 nodes + mTLS connections/s >= 12% of direct", path="2tls",
           figure="conn_per_s", limit=0.12, kind="min_ratio"),
    Target(text="2 nodes plaintext idle RSS <= 50 KiB per connection", path="2plain",
           figure="idle_rss_kib_per_conn", limit=50.0, kind="max_value"),
    Target(text="2 nodes + mTLS idle RSS <= 50 KiB per connection", path="2tls",
           figure="idle_rss_kib_per_conn", limit=50.0, kind="max_value"),
)


class Interrupted(Exception):
    """SIGTERM: unwind like Ctrl-C so every child process is stopped."""


# -- the run --------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.settings = QUICK if args.quick else FULL
        self.paths: list[str] = args.paths
        self.work = Path(args.work_dir or tempfile.mkdtemp(prefix="tcp-bench-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.ports = Ports()
        self.processes = Processes()
        self.iperf: Iperf3 | None = None
        self.topologies: dict[str, Topology] = {}
        self.amqp_ports: dict[str, int] = {}  # path -> site a's AMQP endpoint, if asked for
        self.endpoints: dict[str, Endpoints] = {}
        self.samples: dict[str, dict[str, list[float]]] = {p: {} for p in self.paths}
        self.errors: dict[str, dict[str, str]] = {p: {} for p in self.paths}
        self.extra: dict[str, dict[str, Any]] = {p: {} for p in self.paths}
        self.profiles: list[str] = []
        self.load_at_start = os.getloadavg()[0]

    # -- set-up -----------------------------------------------------------------------------
    def start(self) -> None:
        sink, echo = self.ports.take(), self.ports.take()
        server = self.processes.start(
            [sys.executable, str(Path(loadgen.__file__)), "serve", "--sink-port", str(sink),
             "--echo-port", str(echo)],
            self.work / "servers.log",
            stdout=subprocess.PIPE,
        )
        assert server.stdout is not None
        if not server.stdout.readline():
            raise RuntimeError("the load generator's servers did not start:\n"
                               + tail(self.work / "servers.log"))
        iperf_port = None
        if self.tool == "iperf3":
            iperf_port = self.ports.take()
            self.iperf = Iperf3(iperf_port, self.processes, self.work / "iperf3.log")
        servers = Endpoints(sink=sink, echo=echo, iperf=iperf_port)
        for path in self.paths:
            if path == "direct":
                self.endpoints[path] = servers
                continue
            topology = Topology(path, self.work / path, servers, self.ports, self.processes,
                                node_cmd=shlex.split(self.args.node_cmd or ""))
            topology.configure()
            if getattr(self.args, "amqp_endpoint", False):
                # site a also serves AMQP clients (an observer attaches there: tcp_ab.py)
                config_a = topology.nodes[0].config
                config = yaml.safe_load(config_a.read_text())
                self.amqp_ports[path] = port = self.ports.take()
                config["amqp"] = {"host": "127.0.0.1", "port": port}
                config_a.write_text(yaml.safe_dump(config, sort_keys=False))
            topology.start()
            self.topologies[path] = topology
        for path, topology in self.topologies.items():
            topology.wait_ready()
            assert topology.endpoints is not None
            self.endpoints[path] = topology.endpoints

    @property
    def tool(self) -> str:
        choice: str = self.args.throughput_tool
        if choice == "auto":
            return "iperf3" if shutil.which("iperf3") else "builtin"
        return choice

    def stop(self) -> None:
        for topology in self.topologies.values():
            topology.stop()
        self.processes.stop_all()

    # -- measuring --------------------------------------------------------------------------
    def attempt(self, path: str, figure: str, fn: Callable[[], Any]) -> Any:
        if not self.nodes_alive(path):
            return None
        try:
            return fn()
        except (loadgen.BenchError, OSError, TimeoutError, subprocess.SubprocessError) as error:
            if not self.nodes_alive(path):
                return None
            self.errors[path].setdefault(figure, f"{type(error).__name__}: {error}")
            print(f"  {path} {figure}: FAILED: {error}", file=sys.stderr)
            return None

    def nodes_alive(self, path: str) -> bool:
        """False (and the reason recorded once) when a node of the path has exited."""
        topology = self.topologies.get(path)
        if topology is None:
            return True
        for node in topology.nodes:
            code = node.proc.poll() if node.proc is not None else None
            if code is not None:
                if f"node_{node.site}" not in self.errors[path]:
                    why = " (a SIGTERM/SIGINT from outside the benchmark?)" if code == 0 else ""
                    self.errors[path][f"node_{node.site}"] = f"exited with {code}{why}"
                    print(f"  {path}: node {node.site} exited with {code}{why}; "
                          f"skipping the rest of this path:\n{tail(node.log)}", file=sys.stderr)
                return False
        return True

    def add(self, path: str, figure: str, value: float) -> None:
        self.samples[path].setdefault(figure, []).append(value)

    def throughput(self, path: str, streams: int, seconds: int) -> loadgen.Throughput:
        ep = self.endpoints[path]
        if self.iperf is not None:
            assert ep.iperf is not None
            return self.iperf.run(ep.iperf, seconds, streams)
        return loadgen.throughput(ep.sink, seconds, streams)

    def node_cpu(self, path: str) -> float:
        """CPU seconds used so far by the path's node processes together (0 for direct)."""
        topology = self.topologies.get(path)
        if topology is None or not self.nodes_alive(path):
            return 0.0
        return sum(cpu_seconds(p) for p in topology.pids().values())

    def measure_throughput(self, path: str, figure: str, streams: int) -> None:
        before, start = self.node_cpu(path), time.monotonic()
        result = self.attempt(
            path, figure, lambda: self.throughput(path, streams, self.settings.throughput_seconds)
        )
        if result is None:
            return
        cpu = self.node_cpu(path) - before
        self.add(path, figure, result.gbit_per_s)
        if path in self.topologies:
            self.add(path, f"{figure}_node_cores", cpu / (time.monotonic() - start))
            self.add(path, f"{figure}_node_cpu_s_per_gb", cpu / (result.bytes / 1e9))

    def measure_echo(self, path: str) -> None:
        rounds = max(500, self.settings.echo_rounds // self.settings.repeats)
        before = self.node_cpu(path)
        result = self.attempt(
            path, "echo", lambda: loadgen.echo_latency(
                self.endpoints[path].echo, rounds, ECHO_WARMUP, self.settings.echo_seconds
            ),
        )
        if result is not None:
            self.add(path, "echo_p50_us", result.p50_us)
            self.add(path, "echo_p99_us", result.p99_us)
            self.add(path, "echo_rounds", result.rounds)
            if path in self.topologies:
                cpu = self.node_cpu(path) - before
                self.add(path, "echo_node_cpu_us", cpu * 1e6 / (result.rounds + ECHO_WARMUP))

    def measure_connections(self, path: str) -> None:
        seconds = self.settings.conn_seconds
        before = self.node_cpu(path)
        result = self.attempt(
            path, "conn_per_s", lambda: loadgen.connection_rate(self.endpoints[path].echo, seconds)
        )
        time.sleep(0.5)  # the nodes finish closing (counted), and the next path starts clean
        if result is not None:
            self.add(path, "conn_per_s", result.per_s)
            if path in self.topologies and result.connections:
                cpu = self.node_cpu(path) - before
                self.add(path, "conn_node_cpu_us", cpu * 1e6 / result.connections)
            if result.errors:
                failed = self.extra[path].get("conn_failures", 0) + result.errors
                self.extra[path]["conn_failures"] = failed
                self.errors[path]["conn_per_s"] = f"{failed} connections failed"

    def measure_idle(self, path: str) -> None:
        topology = self.topologies[path]
        if not self.nodes_alive(path):
            return
        pids = topology.pids()
        count = self.settings.idle_connections
        time.sleep(1.0)
        before = {site: rss_kib(pid) for site, pid in pids.items()}
        measured = self._hold_idle(path, count, settle=1.5)
        if measured is None:
            return
        held, closed = measured
        growth = sum(held.values()) - sum(before.values())
        self.add(path, "idle_rss_kib_per_conn", growth / count)
        self.extra[path]["rss_kib"] = {"before": before, "holding": held, "after_close": closed}

    def _hold_idle(
        self, path: str, count: int, settle: float
    ) -> tuple[dict[str, int], dict[str, int]] | None:
        """Open ``count`` idle connections, hold them a second, close them: the nodes'
        RSS while held and ``settle`` seconds after the close (None: opening failed)."""
        pids = self.topologies[path].pids()
        socks = self.attempt(
            path, "idle", lambda: loadgen.open_idle(self.endpoints[path].echo, count)
        )
        if socks is None:
            return None
        try:
            time.sleep(1.0)
            held = {site: rss_kib(pid) for site, pid in pids.items()}
        finally:
            loadgen.close_all(socks)
        time.sleep(settle)
        return held, {site: rss_kib(pid) for site, pid in pids.items()}

    def measure_idle_rounds(self, path: str) -> None:
        """``--idle-rounds``: open N idle connections, hold, close; again and again.

        Per round, each node's RSS while holding them and after closing them: what a
        connection costs once the node is warm, and whether closing gives it back
        (issue 17: after round 5 within 10% of after round 1)."""
        topology = self.topologies[path]
        if not self.nodes_alive(path):
            return
        pids = topology.pids()
        count = self.args.idle_connections
        time.sleep(1.0)
        before = {site: rss_kib(pid) for site, pid in pids.items()}
        rounds: list[dict[str, Any]] = []
        for number in range(1, self.args.idle_rounds + 1):
            began = time.monotonic()
            measured = self._hold_idle(path, count, settle=3.0)
            if measured is None:
                return
            held, closed = measured
            seconds = time.monotonic() - began
            stalls = {}
            for node in topology.nodes:  # the longest loop stall in the last seconds
                with contextlib.suppress(ManagementError, OSError):
                    recent = ManagementClient(node.runtime_dir, timeout=5).status().health
                    stalls[node.site] = max((s for _, s, _ in recent.loop_stalls), default=0.0)
            rounds.append({"round": number, "holding": held, "after_close": closed,
                           "seconds": round(seconds, 1), "stall_ms": stalls})
            print(f"  {path} round {number}: holding {sum(held.values())} KiB, "
                  f"after close {sum(closed.values())} KiB, longest loop stall (ms) "
                  f"{stalls}", file=sys.stderr)
        self.extra[path]["idle_rounds"] = {"connections": count, "before": before,
                                           "rounds": rounds}

    def rounds_report(self) -> str:
        lines = []
        for path in self.topologies:
            found = self.extra[path].get("idle_rounds")
            if not found:
                continue
            count, rounds = found["connections"], found["rounds"]
            base = sum(found["before"].values())
            lines.append(f"{path}: {count} idle connections per round, nodes' RSS summed "
                         f"(KiB; {base} before the first round)")
            lines.append("round  holding   KiB/conn (vs before the round)  after close"
                         "   seconds  per node: holding / after close (KiB)")
            previous = base
            for entry in rounds:
                held = sum(entry["holding"].values())
                closed = sum(entry["after_close"].values())
                per = (held - previous) / count
                nodes = ", ".join(f"{site} {kib} / {entry['after_close'][site]}"
                                  for site, kib in sorted(entry["holding"].items()))
                lines.append(f"{entry['round']:>5}  {held:>8}  {per:>8.1f}"
                             f"{'':24}{closed:>10}  {entry['seconds']:>8}  {nodes}")
                previous = closed
            first = sum(rounds[0]["after_close"].values())
            last = sum(rounds[-1]["after_close"].values())
            lines.append(f"after round {len(rounds)} / after round 1: {last / first:.3f} "
                         "(target <= 1.10)")
            lines.append("")
        return "\n".join(lines)

    def profile(self, path: str) -> None:
        """py-spy on the nodes during extra (unscored) runs of the costly figures."""
        folder = Path(self.args.profile)
        folder.mkdir(parents=True, exist_ok=True)
        pids = self.topologies[path].pids()
        seconds = max(2, self.settings.throughput_seconds)
        runs: list[tuple[str, Callable[[], Any]]] = [
            ("single", lambda: self.throughput(path, 1, seconds)),
            ("conn", lambda: loadgen.connection_rate(self.endpoints[path].echo, seconds)),
            ("echo", lambda: loadgen.echo_latency(
                self.endpoints[path].echo, 2000 * seconds, max_seconds=seconds)),
        ]
        for name, run in runs:
            recordings = profiling.record(pids, seconds, folder / f"{path}-{name}")
            time.sleep(0.3)  # py-spy attaching
            before = {site: cpu_seconds(pid) for site, pid in pids.items()}
            result = self.attempt(path, f"profile-{name}", run)
            cpu = {site: cpu_seconds(pid) - before[site] for site, pid in pids.items()}
            # units of work: connections, echo round trips (CPU per unit per node)
            units = getattr(result, "connections", None) or getattr(result, "rounds", None)
            if units and name == "echo":
                units += 200  # the warm-up rounds ran too
            for out, proc in recordings:
                _, err = proc.communicate(timeout=seconds + 30)
                if out.exists():
                    self.profiles.append(profiling.summarize(out, seconds))
                    site = out.stem.rsplit("-", 1)[-1]
                    per_unit = cpu[site] * 1e6 / units if units and site in cpu else None
                    self.profiles.append(profiling.phase_table(out, per_unit))
                else:
                    self.profiles.append(f"{out.name}: py-spy failed: {err.decode().strip()}")

    def run(self) -> None:
        settings = self.settings
        tool = self.tool if self.iperf is None else f"iperf3 ({self.iperf.version})"
        print(f"throughput by {tool}; {len(self.paths)} paths; work folder {self.work}",
              file=sys.stderr)
        if self.args.idle_rounds:
            for path in self.topologies:
                print(f"measuring {self.args.idle_rounds} idle rounds through {path} ...",
                      file=sys.stderr)
                self.measure_idle_rounds(path)
            return
        for path in self.paths:  # also a warm-up of every path
            echo = self.endpoints[path].echo
            check = functools.partial(loadgen.integrity, echo, settings.integrity_mib)
            verified = self.attempt(path, "integrity", check)
            self.extra[path]["integrity_bytes_verified"] = verified or 0
            self.attempt(path, "warmup", functools.partial(
                loadgen.echo_latency, echo, 200, warmup=0, max_seconds=5))
        steps: list[tuple[str, Callable[[str], None]]] = [
            ("single stream", lambda p: self.measure_throughput(p, "single_gbit", 1)),
            (f"{STREAMS} streams", lambda p: self.measure_throughput(p, "parallel_gbit", STREAMS)),
            ("echo round trips", self.measure_echo),
            ("connections/s", self.measure_connections),
        ]
        for name, step in steps:
            print(f"measuring {name} ...", file=sys.stderr)
            for _ in range(settings.repeats):
                for path in self.paths:
                    step(path)
        for path in self.topologies:
            print(f"measuring idle RSS through {path} ...", file=sys.stderr)
            self.measure_idle(path)
        if self.args.profile:
            for path in self.topologies:
                print(f"profiling {path} ...", file=sys.stderr)
                self.profile(path)
        for path in self.topologies:
            self.nodes_alive(path)

    # -- results ----------------------------------------------------------------------------
    def value(self, path: str, figure: str) -> float | None:
        samples = self.samples.get(path, {}).get(figure)
        return statistics.median(samples) if samples else None

    def ratio(self, path: str, figure: str) -> float | None:
        value, base = self.value(path, figure), self.value("direct", figure)
        return value / base if value is not None and base else None

    def targets(self) -> list[dict[str, Any]]:
        out = []
        for target in TARGETS:
            if target.path not in self.paths or (
                target.kind != "max_value" and "direct" not in self.paths
            ):
                continue
            measured = (
                self.value(target.path, target.figure)
                if target.kind == "max_value"
                else self.ratio(target.path, target.figure)
            )
            if measured is None:
                met = None
            elif target.kind == "min_ratio":
                met = measured >= target.limit
            else:
                met = measured <= target.limit
            out.append({"target": target.text, "measured": measured, "kind": target.kind,
                        "limit": target.limit, "met": met})
        return out

    def report(self) -> str:
        width = 20
        lines = [self.header(), ""]
        lines.append("figure".ljust(30) + "".join(p.ljust(width) for p in self.paths))
        for figure, (label, fmt, kind) in ROWS.items():
            if figure.startswith("-"):
                lines.append(label)
                continue
            cells = []
            for path in self.paths:
                value = self.value(path, figure)
                if value is None:
                    key = {"echo_p50_us": "echo", "echo_p99_us": "echo",
                           "idle_rss_kib_per_conn": "idle"}.get(figure, figure)
                    cells.append("error" if key in self.errors[path] else "-")
                    continue
                cell = fmt.format(value)
                ratio = self.ratio(path, figure) if path != "direct" else None
                if ratio is not None and kind == "%":
                    cell += f" ({ratio:.0%})"
                elif ratio is not None and kind == "x":
                    cell += f" ({ratio:.1f}x)"
                cells.append(cell)
            lines.append(label.ljust(30) + "".join(c.ljust(width) for c in cells))
        lines.append("")
        for entry in self.targets():
            measured = entry["measured"]
            if measured is None:
                shown, verdict = "n/a", "NOT measured"
            else:
                shown = {"min_ratio": f"{measured:.0%}", "max_ratio": f"{measured:.1f}x",
                         "max_value": f"{measured:.1f} KiB"}[entry["kind"]]
                verdict = "met" if entry["met"] else "NOT met"
            lines.append(f"  {entry['target']:<54} {shown:>9}  {verdict}")
        for path in self.paths:
            for figure, error in self.errors[path].items():
                lines.append(f"  error: {path} {figure}: {error}")
        for path, topology in self.topologies.items():
            problems = topology.log_problems()
            if problems:
                lines.append(f"  node log problems through {path}: {len(problems)} lines, first:")
                lines += [f"    {p[:300]}" for p in problems[:5]]
        return "\n".join(line.rstrip() for line in lines)

    def header(self) -> str:
        tool = f"iperf3 ({self.iperf.version}, -l 256K)" if self.iperf else "built-in (256 KiB)"
        mode = "quick" if self.args.quick else "full"
        text = (
            f"TCP data path, {mode} run, {time.strftime('%Y-%m-%d %H:%M')}, Python "
            f"{platform.python_version()}, {len(os.sched_getaffinity(0))} CPUs; "
            f"throughput by {tool}; median of {self.settings.repeats} run(s) per figure"
        )
        load = self.load_at_start
        if load > 0.5:
            text += (
                f"\nNOTE: load average {load:.1f} before the nodes started: other processes "
                "share the CPUs, figures are noisy (ratios, measured alike, less so)"
            )
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "meta": {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": len(os.sched_getaffinity(0)),
                "throughput_tool": self.tool,
                "iperf3": self.iperf.version if self.iperf else None,
                "quick": self.args.quick,
                "settings": asdict(self.settings),
                "command": " ".join(sys.argv),
                "load_average_at_start": self.load_at_start,
                "load_average_at_end": os.getloadavg()[0],
            },
            "paths": {
                path: {
                    "figures": {f: self.value(path, f) for f in FIGURES},
                    "ratios": {
                        f: self.ratio(path, f) for f in RATIO_FIGURES if path != "direct"
                    },
                    "samples": self.samples[path],
                    "errors": self.errors[path],
                    "extra": self.extra[path],
                    "log_problems": (
                        self.topologies[path].log_problems() if path in self.topologies else []
                    ),
                }
                for path in self.paths
            },
            "targets": self.targets(),
            "profiles": self.profiles,
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~1-2 minutes)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"comma-separated, from {','.join(PATHS)} (default: all)")
    parser.add_argument("--throughput-tool", choices=("auto", "iperf3", "builtin"),
                        default="auto", help="auto: iperf3 when installed, else built-in")
    parser.add_argument("--profile", metavar="DIR",
                        help="after measuring, record the nodes with py-spy into DIR")
    parser.add_argument("--node-cmd", metavar="CMD",
                        help="run nodes with CMD instead of 'python -m skupper_actors.node_cli' "
                        "(e.g. a patched build, to compare)")
    parser.add_argument("--work-dir", help="folder for configs and node logs (default: temp)")
    parser.add_argument("--idle-rounds", type=int, default=0, metavar="N",
                        help="only this: N rounds of opening, holding and closing "
                        "--idle-connections idle connections (memory given back?)")
    parser.add_argument("--idle-connections", type=int, default=10_000, metavar="C",
                        help="connections per idle round (default 10000)")
    args = parser.parse_args(argv)
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = sorted(set(paths) - set(PATHS))
    if unknown or not paths:
        parser.error(f"unknown paths {unknown}; choose from {','.join(PATHS)}")
    args.paths = [p for p in PATHS if p in paths]
    if args.throughput_tool == "iperf3" and not shutil.which("iperf3"):
        parser.error("iperf3 is not installed (apt-get install iperf3)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 16384 + 2 * args.idle_connections if args.idle_rounds else 16384
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, wanted)), hard))

    def terminate(signum: int, frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, terminate)
    bench = Bench(args)
    started = time.monotonic()
    try:
        bench.start()
        bench.run()
    except (KeyboardInterrupt, Interrupted):
        print("interrupted: stopping every process started", file=sys.stderr)
        bench.stop()
        return 130
    finally:
        bench.stop()
    if args.idle_rounds:
        print(bench.rounds_report())
        print(f"({time.monotonic() - started:.0f} s; node configs and logs in {bench.work})")
        return 1 if any(bench.errors[p] for p in bench.paths) else 0
    text = bench.report()
    print(text)
    if bench.profiles:
        print("\nprofiles (py-spy, extra runs not scored):")
        print("\n\n".join(bench.profiles))
    print(f"\n({time.monotonic() - started:.0f} s; node configs and logs in {bench.work})")
    if args.json:
        Path(args.json).write_text(json.dumps(bench.as_json(), indent=2) + "\n")
    if any(bench.errors[p] for p in bench.paths):
        return 1
    return 0 if all(t["met"] for t in bench.targets()) else 3


if __name__ == "__main__":
    raise SystemExit(main())
