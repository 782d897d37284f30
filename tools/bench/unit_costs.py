#!/usr/bin/env python3
"""What one unit of work costs each node: a 64-byte echo round trip, or a connection.

    python tools/bench/unit_costs.py [--path 2tls|2plain] [--unit echo|conn]
        [--measure split,syscalls,calls] [--seconds 4] [--top 40] [--node-cmd CMD]

Starts one topology as tcp_bench.py does and puts the unit's load through it
(sequential echo round trips on one connection, or connect + 64 B echo + close), once
per measurement, each in its own run because the tools disturb one another:

- ``split``: CPU µs per unit per node, in user space and in the kernel (/proc);
- ``syscalls``: system calls per unit per node, by name (``strace -c`` attached to the
  running nodes; strace slows them, the counts stay true);
- ``calls``: Python-level calls per unit per node, by function (cProfile switched on in
  the nodes for the run: ``cprofile_node.py``), with self and cumulative µs per unit
  under the profiler (several times the real cost; read them as shares).

The figures ADR 0021's addenda quote ("8 system calls per node and round trip", "88
calls per round trip") come from this.
"""

from __future__ import annotations

import argparse
import os
import pstats
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen
import tcp_ab
import tcp_bench
from benchnodes import ROOT, cpu_split

HERE = Path(__file__).resolve().parent


def load(unit: str, port: int, seconds: float) -> int:
    """Put the unit's load through ``port`` for ``seconds``; the units done."""
    if unit == "echo":
        return loadgen.echo_latency(port, 10**7, 0, seconds).rounds
    done = loadgen.connection_rate(port, seconds).connections
    time.sleep(0.5)  # the nodes finish closing (their work counts)
    return done


def warm(unit: str, port: int) -> None:
    load(unit, port, 0.5)
    time.sleep(0.3)


def measure_split(bench: tcp_bench.Bench, path: str, unit: str, seconds: float) -> str:
    pids = bench.topologies[path].pids()
    port = bench.endpoints[path].echo
    warm(unit, port)
    before = {site: cpu_split(pid) for site, pid in pids.items()}
    units = load(unit, port, seconds)
    lines = [f"CPU µs per {unit} ({units} units), user / kernel / total:"]
    for site, pid in pids.items():
        after = cpu_split(pid)
        user, kernel = ((after[i] - before[site][i]) * 1e6 / units for i in (0, 1))
        lines.append(f"  node {site}: {user:8.1f} / {kernel:8.1f} / {user + kernel:8.1f}")
    return "\n".join(lines)


def measure_syscalls(bench: tcp_bench.Bench, path: str, unit: str, seconds: float) -> str:
    strace = shutil.which("strace")
    if strace is None:
        return "syscalls: strace is not installed (apt-get install strace)"
    pids = bench.topologies[path].pids()
    port = bench.endpoints[path].echo
    warm(unit, port)
    folder = Path(tempfile.mkdtemp(prefix="unit-costs-"))
    tracers = {
        site: subprocess.Popen(
            [strace, "-f", "-c", "-p", str(pid), "-o", str(folder / f"{site}.txt")],
            stderr=subprocess.DEVNULL,
        )
        for site, pid in pids.items()
    }
    time.sleep(1.0)  # attached
    units = load(unit, port, seconds)
    for tracer in tracers.values():
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
    lines = [f"system calls per {unit} ({units} units):"]
    for site in pids:
        counts: list[tuple[float, str]] = []
        for row in (folder / f"{site}.txt").read_text().splitlines():
            fields = row.split()
            # "% time  seconds  usecs/call  calls  [errors]  syscall"
            if len(fields) >= 5 and fields[3].isdigit() and fields[-1] != "total":
                counts.append((int(fields[3]) / units, fields[-1]))
        counts.sort(reverse=True)
        shown = ", ".join(f"{name} {n:.2f}" for n, name in counts if n >= 0.01)
        lines.append(f"  node {site}: {sum(n for n, _ in counts):.1f} in all: {shown}")
    return "\n".join(lines)


def measure_calls(path: str, unit: str, seconds: float, top: int) -> str:
    folder = Path(tempfile.mkdtemp(prefix="unit-costs-cprofile-"))
    node_cmd = shlex.join([
        "env", f"PYTHONPATH={ROOT}", f"CPROFILE_DIR={folder}", sys.executable, "-P",
        str(HERE / "cprofile_node.py"),
    ])
    bench = tcp_ab.bench([path], node_cmd)
    try:
        pids = bench.topologies[path].pids()
        port = bench.endpoints[path].echo
        warm(unit, port)
        for pid in pids.values():
            os.kill(pid, signal.SIGUSR1)
        time.sleep(0.2)
        units = load(unit, port, seconds)
        for pid in pids.values():
            os.kill(pid, signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while not all((folder / f"{pid}.prof").exists() for pid in pids.values()):
            if time.monotonic() > deadline:
                return "calls: the nodes wrote no profile"
            time.sleep(0.2)
        time.sleep(0.5)  # written whole
    finally:
        bench.stop()
    lines = [f"Python-level calls per {unit} ({units} units; µs are the profiler's):"]
    for site, pid in pids.items():
        stats = pstats.Stats(str(folder / f"{pid}.prof"))
        table = stats.stats  # type: ignore[attr-defined]
        total = sum(row[1] for row in table.values())
        lines.append(f"  node {site}: {total / units:.1f} calls per {unit}")
        rows = sorted(table.items(), key=lambda item: -item[1][1])[:top]
        for (file, line, name), (_, calls, own, cumulative, _) in rows:
            where = f"{Path(file).name}:{line} {name}" if file != "~" else name
            lines.append(f"    {calls / units:7.2f} calls  {own * 1e6 / units:7.2f} self"
                         f"  {cumulative * 1e6 / units:8.2f} cum  {where}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", choices=("2tls", "2plain", "1node"), default="2tls")
    parser.add_argument("--unit", choices=("echo", "conn"), default="echo")
    parser.add_argument("--measure", default="split,syscalls,calls",
                        help="one or more of split, syscalls, calls")
    parser.add_argument("--seconds", type=float, default=4.0, help="load per measurement")
    parser.add_argument("--top", type=int, default=40, help="functions listed by calls")
    parser.add_argument("--node-cmd", default="",
                        help="run nodes with CMD (split and syscalls; calls runs this tree)")
    args = parser.parse_args(argv)
    measures = [m for m in args.measure.split(",") if m]
    unknown = set(measures) - {"split", "syscalls", "calls"}
    if unknown or not measures:
        parser.error(f"--measure: one or more of split, syscalls, calls (not {sorted(unknown)})")
    print(f"{args.unit} on {args.path}, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {os.getloadavg()[0]:.2f}")
    plain: list[tuple[str, Callable[[tcp_bench.Bench], str]]] = []
    if "split" in measures:
        plain.append(("split", lambda b: measure_split(b, args.path, args.unit, args.seconds)))
    if "syscalls" in measures:
        plain.append(
            ("syscalls", lambda b: measure_syscalls(b, args.path, args.unit, args.seconds))
        )
    if plain:
        bench = tcp_ab.bench([args.path], args.node_cmd)
        try:
            for _, measure in plain:
                print(measure(bench), flush=True)
        finally:
            bench.stop()
    if "calls" in measures:
        print(measure_calls(args.path, args.unit, args.seconds, args.top), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
