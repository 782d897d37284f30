"""The observer attached over AMQP while TCP connections are made through two sites.

    python tools/bench/observer_bench.py [--rate 500] [--duration 300] [--workers 128]
        [--processes 1] [--topology 2plain|1node]

Two nodes, a -> b, plain inter-router link (``1node``: listener and connector both at
a); site a has an AMQP endpoint, listener ``bench-echo`` at a, connector at b
(loadgen.py's echo server). ``skupper-observer --router-url amqp://...`` attaches to
a. A load generator opens ``--rate`` new connections a second (paced, from
``--workers`` threads in each of ``--processes`` processes, which share the rate), each
one 64-byte echo then close, for ``--duration`` seconds. Two nodes spend about 3.2 ms
of CPU per connection between them here, so on a 2-core machine 500 connections a
second fit through ``1node`` only. Reported: the rate reached, the observer's RSS and
CPU, each node's CPU, and the records lost: connections the load generator completed
minus those the observer's REST API counts (every record must arrive: 0), and the
nodes' vanflow counters (records refused or dropped). ``--without-observer``: the same
load with nothing attached, the nodes' baseline CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import queue
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from skupper_actors.management import ManagementClient

ROOT = Path(__file__).resolve().parents[2]
for path in (str(ROOT), str(ROOT / "tools" / "bench")):
    if path not in sys.path:
        sys.path.insert(0, path)

from benchnodes import (  # noqa: E402
    Endpoints,
    Ports,
    Processes,
    Topology,
    cpu_seconds,
    listening,
    node_env,
    rss_kib,
    wait_until,
)

ECHO = random.Random(7).randbytes(64)
KEY = "bench-echo"


def one_connection(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(ECHO)
            got = b""
            while len(got) < len(ECHO):
                chunk = sock.recv(len(ECHO) - len(got))
                if not chunk:
                    return False
                got += chunk
            return got == ECHO
    except OSError:
        return False


def load(port: int, rate: float, duration: float, workers: int) -> tuple[int, int, float]:
    """Paced connections: (completed, failed, seconds)."""
    tickets: queue.Queue[float | None] = queue.Queue(maxsize=workers * 4)
    done = [0, 0]
    lock = threading.Lock()

    def work() -> None:
        while tickets.get() is not None:
            ok = one_connection(port)
            with lock:
                done[0 if ok else 1] += 1

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    start = time.monotonic()
    total = int(rate * duration)
    end = start + duration
    for n in range(total):
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if time.monotonic() >= end:
            break  # the machine did not keep up: fewer connections, same duration
        tickets.put(due)  # blocks when every worker is busy: the rate is not reached
    for _ in threads:
        tickets.put(None)
    for thread in threads:
        thread.join()
    return done[0], done[1], time.monotonic() - start


def _load_part(
    port: int, rate: float, duration: float, workers: int, out: Any, offset: float
) -> None:
    time.sleep(offset)  # the processes' tickets interleave
    out.put(load(port, rate, duration, workers))


def load_processes(
    port: int, rate: float, duration: float, workers: int, processes: int
) -> tuple[int, int, float]:
    """``load`` split across processes (no GIL shared by the load generator's threads)."""
    if processes <= 1:
        return load(port, rate, duration, workers)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    parts = [
        context.Process(
            target=_load_part,
            args=(port, rate / processes, duration, workers, results, n / rate),
            daemon=True,
        )
        for n in range(processes)
    ]
    for part in parts:
        part.start()
    totals = [results.get(timeout=duration + 600) for _ in parts]
    for part in parts:
        part.join(30)
    return (
        sum(t[0] for t in totals),
        sum(t[1] for t in totals),
        max(t[2] for t in totals),
    )


def observed(http: int) -> int:
    """Connections of KEY the observer's REST API knows, live and ended."""
    url = (
        f"http://127.0.0.1:{http}/api/v2alpha1/connections?state=all&routingKey={KEY}"
        "&timeRangeStart=0&limit=1"
    )
    with urllib.request.urlopen(url, timeout=30) as response:
        return int(json.load(response)["timeRangeCount"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="new connections a second")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--workers", type=int, default=128, help="load generator threads")
    parser.add_argument(
        "--processes", type=int, default=1, help="load generator processes (share the rate)"
    )
    parser.add_argument("--topology", choices=["2plain", "1node"], default="2plain")
    parser.add_argument("--keep", action="store_true", help="keep the nodes' folder")
    parser.add_argument(
        "--without-observer",
        action="store_true",
        help="the baseline: no observer attached (the nodes send no record)",
    )
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="observer-bench-"))
    ports, processes = Ports(), Processes()
    sink, echo, amqp, http = ports.take(), ports.take(), ports.take(), ports.take()
    topology = Topology(
        args.topology, folder / "nodes", Endpoints(sink, echo, None), ports, processes
    )
    try:
        processes.start(
            [
                sys.executable,
                str(ROOT / "tools" / "bench" / "loadgen.py"),
                "serve",
                "--sink-port",
                str(sink),
                "--echo-port",
                str(echo),
            ],
            folder / "loadgen.log",
        )
        wait_until(lambda: listening(sink) and listening(echo), 10, "the echo server")
        topology.configure()
        config_a = topology.nodes[0].config
        config: dict[str, Any] = yaml.safe_load(config_a.read_text())
        config["amqp"] = {"host": "127.0.0.1", "port": amqp}
        config_a.write_text(yaml.safe_dump(config, sort_keys=False))
        topology.start()
        topology.wait_ready()
        assert topology.endpoints is not None
        observer = None
        if not args.without_observer:
            observer = processes.start(
                [
                    sys.executable,
                    "-m",
                    "skupper_actors.observer.main",
                    "--router-url",
                    f"amqp://127.0.0.1:{amqp}",
                    "--listen",
                    f"127.0.0.1:{http}",
                    "--log-level",
                    "warning",
                    "--flow-record-ttl",
                    "1h",
                    "--max-ended-connections",
                    str(int(args.rate * args.duration) + 10_000),
                ],
                folder / "observer.log",
                env=node_env(),
            )

            def sites_seen() -> bool:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{http}/api/v2alpha1/sites", timeout=5
                ) as response:
                    return len(json.load(response)["results"]) == len(topology.nodes)

            wait_until(sites_seen, 30, "the observer to see every site")
            time.sleep(3)  # its subscriptions to every source are in place
        pids = topology.pids()
        cpu_before = {site: cpu_seconds(pid) for site, pid in pids.items()}
        observer_before = cpu_seconds(observer.pid) if observer else 0.0
        peak = [rss_kib(observer.pid) if observer else 0]
        stop = threading.Event()

        def sample() -> None:
            while observer is not None and not stop.wait(1.0):
                with contextlib.suppress(OSError):
                    peak[0] = max(peak[0], rss_kib(observer.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        print(f"load: {args.rate:g}/s for {args.duration:g} s ...", flush=True)
        completed, failed, seconds = load_processes(
            topology.endpoints.echo, args.rate, args.duration, args.workers, args.processes
        )
        cpu_after = {site: cpu_seconds(pid) for site, pid in pids.items()}
        rows = [
            ("connections completed (load generator)", f"{completed}"),
            ("connections failed", f"{failed}"),
            ("rate reached", f"{completed / seconds:.0f}/s over {seconds:.0f} s"),
        ]
        counted = completed
        if observer is not None:
            observer_cpu = cpu_seconds(observer.pid) - observer_before
            settle = time.monotonic()
            while time.monotonic() - settle < 60:
                counted = observed(http)
                if counted >= completed:
                    break
                time.sleep(2)
            stop.set()
            rss_end = rss_kib(observer.pid)
            peak[0] = max(peak[0], rss_end)
            rows += [
                ("connections counted by the observer", f"{counted}"),
                ("records lost", f"{completed - counted}"),
                ("observer CPU", f"{observer_cpu:.1f} s ({100 * observer_cpu / seconds:.0f} %)"),
                ("observer RSS (end / peak)", f"{rss_end / 1024:.0f} / {peak[0] / 1024:.0f} MiB"),
            ]
        for node in topology.nodes:
            used = cpu_after[node.site] - cpu_before[node.site]
            per = 1e6 * used / max(completed, 1)
            rows.append(
                (
                    f"node {node.site} CPU",
                    f"{used:.1f} s ({100 * used / seconds:.0f} %, {per:.0f} µs/conn)",
                )
            )
            status = ManagementClient(node.runtime_dir, timeout=5).status()
            every = {**status.counters, **status.health.limits_exceeded}
            lost = {k: v for k, v in every.items() if k.startswith("vanflow")}
            rows.append(
                (f"node {node.site} vanflow counters", json.dumps(lost) if lost else "none")
            )
        rows.append(
            (
                "load average (1/5/15 min) at the end",
                " / ".join(f"{x:.2f}" for x in os.getloadavg()),
            )
        )
        print("| measure | value |\n|---|---|")
        for name, value in rows:
            print(f"| {name} | {value} |")
        return 0 if completed == counted else 1
    finally:
        topology.stop()
        processes.stop_all()
        if args.keep:
            print(f"kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
