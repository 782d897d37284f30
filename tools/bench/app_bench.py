#!/usr/bin/env python3
"""Real clients through two sites over mutual TLS: redis-benchmark and pgbench.

    python tools/bench/app_bench.py [--repeats 3] [--seconds 10] [--json FILE]

The bench starts its own servers on 127.0.0.1 (redis-server, and PostgreSQL in a
temporary cluster), then measures each client on three paths, in turn within each
repeat so that every path sees the same neighbours:

- ``direct``: the client talks to the server;
- ``skr``: two skupper-router (skrouterd 3.5.1, 1 worker thread) routers, a -> b, mTLS,
  when skrouterd is installed (``../shared/anchors/README.md``); left out otherwise;
- ``actors``: two skupper-actors nodes, a -> b, mTLS (``--node-cmd`` to run another tree).

Figures: requests (transactions) per second, and the routers' CPU µs per request (both
routers together, from /proc). The report gives medians, every run, the load average,
and the ratios actors / skr, the targets of issue 17 (rate >= 1.0x, CPU <= 1.0x).

Needs redis-server, redis-benchmark, PostgreSQL's initdb/postgres and pgbench on PATH
(Debian: ``apt-get install redis-server redis-tools postgresql postgresql-contrib``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchnodes import (
    Endpoints,
    Ports,
    Processes,
    Topology,
    cpu_seconds,
    tail,
    wait_until,
)
from skrouter import SkRouterPath, find_skrouterd

REDIS_KEY = "bench-redis"
PG_KEY = "bench-pg"
PG_USER = "bench"


class BenchFailed(Exception):
    """A server or client could not run: the message says which and why."""


def _need(*commands: str) -> None:
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        raise BenchFailed(f"not installed: {', '.join(missing)} (see this file's docstring)")


def redis_pings(port: int) -> bool:
    """True when a Redis server answers PING on ``port`` (directly or through a path)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class Servers:
    """redis-server and a PostgreSQL cluster of the bench's own, on free ports."""

    def __init__(self, folder: Path, ports: Ports, processes: Processes) -> None:
        self.folder = folder
        self.ports = ports
        self.processes = processes
        self.redis = ports.take()
        self.pg = ports.take()
        self.pg_dir = folder / "pg"
        # PostgreSQL refuses to run as root: as root, its cluster belongs to 'postgres'
        self.as_pg: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> None:
        _need("redis-server", "redis-benchmark", "pgbench", "initdb", "postgres", "psql")
        self.processes.start(
            ["redis-server", "--port", str(self.redis), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            self.folder / "redis.log", stdout=subprocess.DEVNULL,
        )
        self.pg_dir.mkdir()
        if self.as_pg:
            shutil.chown(self.folder, "postgres")
            shutil.chown(self.pg_dir, "postgres")
        init = subprocess.run(
            [*self.as_pg, "initdb", "-D", str(self.pg_dir), "-U", PG_USER, "--auth", "trust",
             "-E", "UTF8", "--no-sync"],
            capture_output=True, text=True,
        )
        if init.returncode:
            raise BenchFailed(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        self.processes.start(
            [*self.as_pg, "postgres", "-D", str(self.pg_dir), "-p", str(self.pg),
             "-k", str(self.pg_dir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "max_connections=200"],
            self.folder / "postgres.log", stdout=subprocess.DEVNULL,
        )
        wait_until(lambda: redis_pings(self.redis), 20, "redis-server to answer")
        wait_until(lambda: self._pg_ready(), 30, "PostgreSQL to accept connections")
        fill = subprocess.run(
            ["pgbench", "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", str(self.pg),
             "-U", PG_USER, "postgres"],
            capture_output=True, text=True,
        )
        if fill.returncode:
            raise BenchFailed(f"pgbench -i failed: {fill.stderr.strip()}")

    def _pg_ready(self) -> bool:
        probe = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.pg), "-U", PG_USER, "-d", "postgres",
             "-c", "select 1"],
            capture_output=True,
        )
        return probe.returncode == 0


def run_redis(port: int, clients: int, requests: int) -> dict[str, float]:
    """redis-benchmark SET and GET: requests per second of each."""
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
         "-n", str(requests), "-t", "set,get", "--csv"],
        capture_output=True, text=True, timeout=600,
    )
    rates: dict[str, float] = {}
    for line in out.stdout.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) >= 2 and cells[0] in ("SET", "GET"):
            rates[cells[0]] = float(cells[1])
    if set(rates) != {"SET", "GET"}:
        raise BenchFailed(f"redis-benchmark gave no SET/GET rates: {out.stderr.strip()}"
                          f" {out.stdout.strip()[-300:]}")
    return rates


def run_pgbench(port: int, clients: int, seconds: int, new_connections: bool) -> dict[str, float]:
    """pgbench -S (select only): transactions per second and how many were processed."""
    argv = ["pgbench", "-S", "-n", "-c", str(clients), "-j", str(min(clients, 2)),
            "-T", str(seconds), "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, "postgres"]
    if new_connections:
        argv.insert(1, "-C")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    tps = re.search(r"tps = ([0-9.]+) \((?:without initial |including re)connection", out.stdout)
    done = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
    if out.returncode or not tps or not done:
        raise BenchFailed(
            f"pgbench failed (exit {out.returncode}): {out.stderr.strip()[-300:]}"
            f" {out.stdout.strip()[-300:]}"
        )
    return {"tps": float(tps.group(1)), "transactions": float(done.group(1))}


class AppBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.work_dir or tempfile.mkdtemp(prefix="app-bench-"))
        self.ports = Ports()
        self.processes = Processes()
        self.servers = Servers(self.work, self.ports, self.processes)
        self.paths: dict[str, dict[str, int]] = {}  # path -> key -> port
        self.pids: dict[str, Callable[[], list[int]]] = {}
        self.samples: dict[str, dict[str, list[float]]] = {}
        self.loads: list[float] = []

    def start(self) -> None:
        self.servers.start()
        services = {REDIS_KEY: self.servers.redis, PG_KEY: self.servers.pg}
        self.paths["direct"] = dict(services)
        binary = find_skrouterd()
        if binary is not None and not self.args.no_skr:
            skr = SkRouterPath(self.work / "skr", binary, services, self.ports, self.processes)
            ready = {REDIS_KEY: lambda: redis_pings(skr.endpoints[REDIS_KEY])}
            skr.start(ready)
            self.paths["skr"] = skr.endpoints
            self.pids["skr"] = skr.pids
        topology = Topology(
            "2tls", self.work / "actors",
            # (its sink and echo keys lead to ports nothing listens on: unused here)
            Endpoints(sink=self.ports.take(), echo=self.ports.take(), iperf=None,
                      extra=services),
            self.ports, self.processes, node_cmd=shlex.split(self.args.node_cmd or ""),
        )
        topology.configure()
        topology.start()
        topology.wait_ready(timeout=60)
        assert topology.endpoints is not None
        self.paths["actors"] = topology.endpoints.extra
        self.pids["actors"] = lambda: list(topology.pids().values())
        wait_until(lambda: redis_pings(self.paths["actors"][REDIS_KEY]), 30,
                   "redis to answer through skupper-actors")

    def cpu(self, path: str) -> float:
        pids = self.pids.get(path)
        return sum(cpu_seconds(p) for p in pids()) if pids else 0.0

    def add(self, path: str, figure: str, value: float) -> None:
        self.samples.setdefault(path, {}).setdefault(figure, []).append(value)

    def measure(self, path: str) -> None:
        ports = self.paths[path]
        a = self.args
        before = self.cpu(path)
        rates = run_redis(ports[REDIS_KEY], 20, a.redis_requests)
        used = self.cpu(path) - before
        self.add(path, "redis_set_rps", rates["SET"])
        self.add(path, "redis_get_rps", rates["GET"])
        if path in self.pids:
            self.add(path, "redis_cpu_us_per_req", used / (2 * a.redis_requests) * 1e6)
        for name, fresh in (("pgbench", False), ("pgbench_C", True)):
            if fresh and not a.new_connections:
                continue
            before = self.cpu(path)
            result = run_pgbench(ports[PG_KEY], 4 if fresh else 8, a.seconds, fresh)
            used = self.cpu(path) - before
            self.add(path, f"{name}_tps", result["tps"])
            if path in self.pids:
                self.add(path, f"{name}_cpu_us_per_tx", used / result["transactions"] * 1e6)

    def run(self) -> None:
        for repeat in range(self.args.repeats):
            self.loads.append(os.getloadavg()[0])
            order = list(self.paths)
            if repeat % 2:
                order.reverse()  # neither path always runs first
            for path in order:
                print(f"repeat {repeat + 1}: {path} ...", file=sys.stderr, flush=True)
                self.measure(path)

    def stop(self) -> None:
        self.processes.stop_all()

    def report(self) -> str:
        figures = [
            ("redis_set_rps", "redis-benchmark -c 20 SET req/s", True),
            ("redis_get_rps", "redis-benchmark -c 20 GET req/s", True),
            ("redis_cpu_us_per_req", "  routers' CPU µs per redis request", False),
            ("pgbench_tps", "pgbench -S -c 8 tps", True),
            ("pgbench_cpu_us_per_tx", "  routers' CPU µs per transaction", False),
            ("pgbench_C_tps", "pgbench -S -C -c 4 tps (new connection each)", True),
            ("pgbench_C_cpu_us_per_tx", "  routers' CPU µs per transaction", False),
        ]
        paths = list(self.paths)
        lines = [
            f"real clients through two sites (mTLS), {time.strftime('%Y-%m-%d %H:%M')}, "
            f"{self.args.repeats} repeat(s), medians; load average at each repeat: "
            + ", ".join(f"{x:.2f}" for x in self.loads),
            f"{'figure':48s}" + "".join(f"{p:>12s}" for p in paths)
            + ("   actors/skr" if "skr" in paths else ""),
        ]
        for key, label, _higher in figures:
            values = {p: self.samples.get(p, {}).get(key) for p in paths}
            if not any(values.values()):
                continue
            row = f"{label:48s}"
            for p in paths:
                v = values[p]
                row += f"{statistics.median(v):12.1f}" if v else f"{'-':>12s}"
            if values.get("skr") and values.get("actors"):
                ratio = statistics.median(values["actors"]) / statistics.median(values["skr"])
                row += f"{ratio:12.2f}"
            lines.append(row)
        lines.append("each run:")
        for p in paths:
            for key, runs in self.samples.get(p, {}).items():
                lines.append(f"  {p:7s} {key:26s} " + ", ".join(f"{x:.1f}" for x in runs))
        return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="per pgbench run")
    parser.add_argument("--redis-requests", type=int, default=100_000,
                        help="per redis-benchmark test (SET, GET)")
    parser.add_argument("--no-new-connections", dest="new_connections", action="store_false",
                        help="leave out pgbench -C (a new connection per transaction)")
    parser.add_argument("--no-skr", action="store_true", help="leave skupper-router out")
    parser.add_argument("--node-cmd", help="run nodes with CMD (e.g. another tree)")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--work-dir")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = AppBench(args)
    try:
        bench.start()
        bench.run()
    except (BenchFailed, TimeoutError, RuntimeError, subprocess.SubprocessError) as error:
        print(f"app_bench: {error}", file=sys.stderr)
        for log in sorted(bench.work.rglob("*.log")):
            print(f"--- {log}:\n{tail(log, 5)}", file=sys.stderr)
        return 1
    finally:
        bench.stop()
    print(bench.report())
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"samples": bench.samples, "loads": bench.loads, "paths": list(bench.paths)},
            indent=1,
        ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
